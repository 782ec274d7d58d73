"""One writer per library, with real processes: a ``hikaze-mm serve`` on a free port of
127.0.0.1 and second commands beside it. ``scan``, ``promote --all`` and ``status`` run
through the server; ``list`` and ``hash`` read the library; the other writers and a
second ``serve`` are refused, naming the holder (pid and address), and change nothing.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.services import Services
from tests.helpers import (
    REPO,
    Server,
    cli_env,
    run_cli,
    server_json,
    start_server,
    stop,
    write_model,
)
from tests.legacy_fixtures import build_sample_legacy
from tests.waiting import wait_until


def refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hikaze-mm: error: "), lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Path, Path]]:
    data, root = tmp_path / "data", tmp_path / "models"
    write_model(root / "loras" / "first.safetensors", 70_000, seed=1)
    server = start_server(data, tmp_path, root=root)
    try:
        yield server, data, root
    finally:
        stop(server)


def test_commands_beside_a_server(served, tmp_path: Path) -> None:
    server, data, root = served
    pid = server.proc.pid
    holder = f"pid {pid}, {server.url}"
    lock = json.loads((data / "hikaze_mm.lock").read_text())
    assert lock == {"pid": pid, "command": "serve", "address": server.address}
    common = ("--data-dir", str(data))

    # A second server on the same library is refused (on another port as well).
    proc = run_cli("serve", *common, "--port", "0")
    refused(proc, "already held", holder)
    assert "Serving on" not in proc.stdout

    # scan runs in the server, over the server's roots (none given here).
    proc = run_cli("scan", *common)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("scanned 1 file in ") and "1 new" in proc.stdout
    assert f"served by hikaze-mm serve ({holder})" in proc.stderr

    # status asks the server; list reads the library beside it.
    status = json.loads(run_cli("status", "--json", *common).stdout)
    assert status["pending"]["new"] == 1
    assert status["holder"] == {"pid": pid, "command": "serve", "address": server.address}
    listed = json.loads(run_cli("list", "--json", *common).stdout)
    assert listed["total"] == 0

    # Writers that do not delegate are refused, and change nothing.
    refused(run_cli("promote", "1", *common), holder, "promote through that server")
    legacy = build_sample_legacy(tmp_path / "src")
    refused(run_cli("migrate-legacy", str(legacy.db.path), *common), holder)
    status = json.loads(run_cli("status", "--json", *common).stdout)
    assert status["pending"]["new"] == 1 and status["legacy_import"]["last_report"] is None

    # promote --all runs in the server and is followed here.
    proc = run_cli("promote", "--all", *common)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("COMPLETED: 1/1 item (100.0%), promoted 1")
    listed = json.loads(run_cli("list", "--json", *common).stdout)
    assert [item["name"] for item in listed["items"]] == ["first"]

    # probe runs in the server too, followed through GET /api/jobs/probe.
    proc = run_cli("probe", "--json", *common)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["total"] == 1
    assert f"served by hikaze-mm serve ({holder}): probing there" in proc.stderr

    # hash beside the writer: its cache is read, not written.
    proc = run_cli("hash", "--json", *common, str(root / "loras" / "first.safetensors"))
    assert proc.returncode == 0 and json.loads(proc.stdout)["cached"] is True

    # Once the server stops, the lock says so and a local writer runs.
    assert stop(server) == 0
    assert (data / "hikaze_mm.lock").read_text() == ""
    write_model(root / "loras" / "second.safetensors", 50_000, seed=2)
    proc = run_cli("scan", *common, "--models-root", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "1 new" in proc.stdout and "served by" not in proc.stderr


def test_strategies_reach_the_server(served) -> None:
    """``scan --immediate --strategy`` and ``promote --all --strategy`` beside a server send
    the strategy as ``conf_strategy``, and the server's runs use it."""
    server, data, root = served
    common = ("--data-dir", str(data))
    shutil.copyfile(root / "loras" / "first.safetensors", root / "loras" / "copy.safetensors")
    assert run_cli("scan", *common).returncode == 0  # both files queued, none promoted
    proc = run_cli("scan", *common, "--immediate", "--strategy", "delete")
    assert proc.returncode == 0, proc.stderr
    assert server_json(server, "api/scan/status")["conflict_strategy"] == "delete"

    # The immediate scan promoted what the first one queued: one model, and its copy (the
    # same content) went by "delete".
    status = server_json(server, "api/migration/status")
    assert status["pending"]["new"] == 0 and status["pending"]["conflict"] == 0
    assert json.loads(run_cli("list", "--json", *common).stdout)["total"] == 1

    # Another copy, queued by a plain scan: with "skip" it stays pending as a conflict.
    # (The server's watcher may be scanning the new file already: the CLI's scan is
    # refused while it runs, and either scan queues it.)
    shutil.copyfile(root / "loras" / "first.safetensors", root / "loras" / "again.safetensors")
    proc = wait_until(
        lambda: run_cli("scan", *common),
        lambda proc: proc.returncode == 0 or "already running" not in proc.stderr,
        message="the CLI's scan beside the server",
    )
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("promote", "--all", *common, "--strategy", "skip")
    assert proc.returncode == 0, proc.stderr
    status = server_json(server, "api/migration/status")
    assert status["policy"] == "skip"
    assert status["pending"]["conflict"] == 1 and status["pending"]["new"] == 0
    assert json.loads(run_cli("list", "--json", *common).stdout)["total"] == 1


HOLD = """
import sys
from pathlib import Path
from hikaze_mm.process_lock import ProcessLock
lock = ProcessLock(Path(sys.argv[1]))
assert lock.try_acquire()
lock.set_info(command="promote")
print("held", flush=True)
sys.stdin.read()
"""


def start_holder(data: Path, root: Path) -> subprocess.Popen:
    """A library with one model file, and a process holding its lock (not serving)."""
    write_model(root / "loras" / "a.safetensors", 1000)
    Services.open(Config.load(data_dir=data, env={})).close()
    return subprocess.Popen(
        [sys.executable, "-c", HOLD, str(data / "hikaze_mm.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=REPO,
    )


def test_a_holder_that_does_not_serve(tmp_path: Path) -> None:
    data, root = tmp_path / "data", tmp_path / "models"
    holder = start_holder(data, root)
    try:
        assert holder.stdout.readline().strip() == "held"
        who = f"hikaze-mm promote (pid {holder.pid})"
        common = ("--data-dir", str(data), "--models-root", str(root))
        refused(run_cli("scan", *common), who, "wait for it to finish")
        refused(run_cli("promote", "--all", *common), who)
        proc = run_cli("serve", *common, "--port", "0")
        refused(proc, who)
        assert "Serving on" not in proc.stdout
        proc = run_cli("status", *common)
        assert proc.returncode == 0, proc.stderr
        assert f"held by: {who}" in proc.stdout
        assert run_cli("list", *common).returncode == 0
    finally:
        holder.stdin.close()
        holder.wait(30)
    proc = run_cli("scan", *common)
    assert proc.returncode == 0 and "1 new" in proc.stdout, proc.stderr


def test_a_dead_holders_line_is_ignored(tmp_path: Path) -> None:
    data, root = tmp_path / "data", tmp_path / "models"
    holder = start_holder(data, root)
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)  # leaves its line in the lock file
    holder.wait(30)
    assert str(holder.pid) in (data / "hikaze_mm.lock").read_text()
    common = ("--data-dir", str(data), "--models-root", str(root))
    status = json.loads(run_cli("status", "--json", *common).stdout)
    assert status["holder"] is None
    proc = run_cli("scan", *common)
    assert proc.returncode == 0 and "1 new" in proc.stdout, proc.stderr
