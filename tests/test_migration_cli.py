"""``hikaze-mm promote`` and ``status`` as real subprocesses, including a SIGKILL mid-run."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from hikaze_mm.config import Config
from hikaze_mm.database import DatabaseManager
from hikaze_mm.pending.state import STATE_KEY
from hikaze_mm.services import Services
from tests.helpers import cli_env, make_sparse, run_cli
from tests.promotion_helpers import add_pending, library_snapshot, make_png
from tests.waiting import wait_until


def open_library(data: Path, root: Path) -> Services:
    return Services.open(Config.load(data_dir=data, model_roots=[str(root)], env={}))


def test_promote_ids_and_status(tmp_path: Path) -> None:
    data, root = tmp_path / "data", tmp_path / "models"
    services = open_library(data, root)
    a, sha = add_pending(services, root, "a.safetensors", b"same", images=((1, 2, 3),))
    b, _ = add_pending(services, root, "b.safetensors", b"same", base="SDXL")
    services.close()
    common = ("--data-dir", str(data), "--models-root", str(root))

    proc = run_cli("promote", *common, "--json", str(a), str(b), "424242")
    assert proc.returncode == 1, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0] == {"status": "success", "id": a, "sha256": sha, "action_taken": "created"}
    assert lines[1]["status"] == "conflict" and sha in lines[1]["detail"]
    assert lines[2]["status"] == "error" and "424242" in lines[2]["detail"]

    proc = run_cli("promote", *common, "--strategy", "merge", str(b))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{b}: merged {sha}"

    proc = run_cli("status", *common, "--json")
    assert proc.returncode == 0
    status = json.loads(proc.stdout)
    assert status["status"] == "IDLE" and status["pending"]["new"] == 0

    for bad in (("promote", *common), ("promote", *common, "--all", "3")):
        proc = run_cli(*bad)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.count("\n") == 1


def _populate(data: Path, root: Path, count: int, size: int) -> None:
    """The same pending items (ids, files, images, tags) in a library at ``data``."""
    services = open_library(data, root)
    try:
        for n in range(count):
            path = root / "checkpoints" / f"m{n:02d}.safetensors"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                make_sparse(path, size, tail=f"model {n}".encode())
            pid = services.db.pending.add(
                {"id": n + 1, "path": str(path), "name": path.stem, "created_at": 1000 + n},
                tags=(f"tag{n % 3}",),
            )
            if n % 2 == 0:
                png = make_png(root.parent / "src" / f"{n}.png", (n * 20 % 256, 50, 90))
                services.images.add_pending_image(pid, png, 0)
    finally:
        services.close()


def _snapshot(data: Path, root: Path) -> dict[str, Any]:
    services = open_library(data, root)
    try:
        snap = library_snapshot(services)
        snap["tier_digests"] = [
            hashlib.sha256((services.images.images_dir / name).read_bytes()).hexdigest()
            for name in snap["tier_files"]
        ]
        status = services.migration.get_status()
        snap["status"] = status["status"]
        snap["stats"] = {k: v for k, v in status["stats"].items() if k != "bytes_read"}
        return snap
    finally:
        services.close()


def test_sigkill_mid_run_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    root = tmp_path / "models"
    count, size = 12, 200 * 1024 * 1024
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    _populate(reference, root, count, size)
    _populate(killed, root, count, size)
    common = ("--models-root", str(root))

    proc = run_cli("promote", "--all", "--data-dir", str(reference), *common)
    assert proc.returncode == 0, proc.stderr
    expected = _snapshot(reference, root)
    assert expected["status"] == "COMPLETED" and expected["stats"]["promoted"] == count

    child = subprocess.Popen(
        [sys.executable, "-m", "hikaze_mm", "promote", "--all", "--data-dir", str(killed), *common],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env(),
    )
    db = DatabaseManager(killed / "hikaze_mm.db")
    try:

        def processed() -> int:
            assert child.poll() is None, "the run ended before it could be killed"
            return (db.state.get(STATE_KEY) or {}).get("processed_items", 0)

        wait_until(
            processed, lambda done: done >= 2, timeout=60, interval=0.002, message="two items"
        )
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        state = db.state.get(STATE_KEY)
        done = state["processed_items"]
        assert state["status"] == "RUNNING"
        assert 2 <= done < count, "the run finished before it could be killed"
        assert db.pending.count() == count - done  # counters match the library exactly
    finally:
        db.close()

    # After the restart the state is reported as it was.
    status = json.loads(run_cli("status", "--json", "--data-dir", str(killed), *common).stdout)
    assert status["status"] == "RUNNING" and status["stats"]["processed_items"] == done

    proc = run_cli("promote", "--all", "--data-dir", str(killed), *common)
    assert proc.returncode == 0, proc.stderr
    assert "COMPLETED" in proc.stdout
    # Same library, same counters: no finished item was done (or counted) twice.
    assert _snapshot(killed, root) == expected
