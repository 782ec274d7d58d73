"""Our package in a real ComfyUI, around the edges: a broken library never breaks ComfyUI,
another process's library is used read-only, a LAN address is served as ComfyUI serves it,
and a stop leaves the library closed (WAL checkpointed, lock released).

Each test starts its own ComfyUI (a few seconds each); they run only with ``COMFYUI_DIR``
and ``COMFYUI_PYTHON`` set (see ``tests/comfyui_harness.py``)."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hikaze_mm.database import LATEST_REVISION
from tests.comfyui_harness import REPO, ComfyBase, ComfyEnv, ComfyUI, child_env, free_port, http
from tests.waiting import wait_until

STOCK_PROMPT_NODE = "EmptyLatentImage"


def broken_checks(server: ComfyUI, words: str) -> None:
    """Our routes answer 503 with the reason; ComfyUI answers and runs other workflows;
    our nodes refuse a prompt with the reason; the log says it once."""
    resp = server.get("/hikaze/api/models")
    assert resp.status == 503, resp
    body = resp.json()
    assert body["error"] == "Hikaze Model Manager unavailable" and words in body["detail"]
    assert server.get("/system_stats").status == 200
    workflow = {
        "1": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1},
        },
        "2": {"class_type": "SaveLatent", "inputs": {"samples": ["1", 0], "filename_prefix": "ok"}},
    }
    entry = server.run_prompt(workflow)
    assert entry["status"]["status_str"] == "success"
    refused = server.submit_prompt(
        {
            "1": {
                "class_type": "HikazeCheckpointLoader",
                "inputs": {"hikaze_payload": json.dumps({"sha256": "ab" * 32})},
            },
            "2": {
                "class_type": "CheckpointSave",
                "inputs": {
                    "model": ["1", 0],
                    "clip": ["1", 1],
                    "vae": ["1", 2],
                    "filename_prefix": "x",
                },
            },
        }
    )
    assert refused.status == 400
    assert words in json.dumps(refused.json()["node_errors"])
    assert server.log_text().count("Hikaze Model Manager is unavailable") == 1


@pytest.fixture
def base(comfyui_env: ComfyEnv, tmp_path: Path) -> ComfyBase:
    return ComfyBase(tmp_path)


def test_a_corrupt_database(comfyui_env, base: ComfyBase) -> None:
    (base.data_dir / "hikaze_mm.db").write_bytes(b"not a database at all " * 200)
    with ComfyUI(comfyui_env, base) as server:
        broken_checks(server, "not a library database")


def test_a_schema_from_a_newer_release(comfyui_env, base: ComfyBase) -> None:
    with sqlite3.connect(base.data_dir / "hikaze_mm.db") as conn:
        conn.execute(f"PRAGMA user_version = {LATEST_REVISION + 5}")
    with ComfyUI(comfyui_env, base) as server:
        broken_checks(server, "Upgrade Hikaze Model Manager")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write any folder")
def test_a_data_folder_that_cannot_be_written(comfyui_env, base: ComfyBase) -> None:
    base.data_dir.chmod(0o500)
    try:
        with ComfyUI(comfyui_env, base) as server:
            broken_checks(server, "read-only")
    finally:
        base.data_dir.chmod(0o700)


def test_a_data_folder_that_is_a_file(comfyui_env, base: ComfyBase) -> None:
    """Root can write anywhere, so the unwritable folder is also tried as a file in its
    way: the library cannot be created there."""
    data = base.root / "data-is-a-file"
    data.write_text("a file where the data folder should be")
    with ComfyUI(comfyui_env, base, extra_env={"HIKAZE_DATA_DIR": str(data)}) as server:
        broken_checks(server, "is a file")


def test_a_missing_dependency(comfyui_env, base: ComfyBase, tmp_path: Path) -> None:
    """ComfyUI's Python without one of our imports (here: the library's image store, made
    unimportable by a path hook the test installs with ``sitecustomize``)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'hikaze_mm.images':\n"
        "            raise ImportError(\"No module named 'hikaze_needed_dependency'\")\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    pythonpath = os.pathsep.join(filter(None, [str(hooks), os.environ.get("PYTHONPATH")]))
    with ComfyUI(comfyui_env, base, extra_env={"PYTHONPATH": pythonpath}) as server:
        broken_checks(server, "a dependency is missing")


def test_a_library_another_process_writes_is_used_read_only(comfyui_env, base: ComfyBase) -> None:
    """A hikaze-mm serve holds the library: ComfyUI does not write it, says who holds it,
    and its nodes still resolve models by hash."""
    port = free_port()
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hikaze_mm",
            "serve",
            "--port",
            str(port),
            "--models-root",
            str(base.models),
        ],
        cwd=REPO,
        env=child_env(base.data_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def healthy() -> bool:
            assert serve.poll() is None, "hikaze-mm serve exited"
            try:
                return http("GET", f"http://127.0.0.1:{port}/api/health", timeout=1).status == 200
            except OSError:
                return False

        wait_until(healthy, interval=0.1, message="hikaze-mm serve to answer /api/health")
        with ComfyUI(comfyui_env, base) as server:
            resp = server.get("/hikaze/api/models")
            assert resp.status == 503
            assert (
                f"pid {serve.pid}" in resp.json()["detail"]
                or str(serve.pid) in resp.json()["detail"]
            )
            assert "read-only" in resp.json()["detail"]
            lock = json.loads((base.data_dir / "hikaze_mm.lock").read_text())
            assert lock["pid"] == serve.pid  # the server still holds it
    finally:
        serve.terminate()
        serve.wait(20)


def test_a_lan_address_is_served_as_comfyui_serves_it(comfyui_env, base: ComfyBase) -> None:
    with ComfyUI(comfyui_env, base, extra_args=["--listen", "0.0.0.0"]) as server:
        for path in ("/system_stats", "/hikaze/api/health"):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(
                    f"GET {path} HTTP/1.1\r\nHost: studio-pc.lan:{server.port}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
            assert answer.split()[1] == b"200", (path, answer[:200])


def test_a_stop_checkpoints_the_wal_and_releases_the_lock(comfyui_env, base: ComfyBase) -> None:
    (base.models / "loras" / "a.safetensors").write_bytes(os.urandom(4096))
    server = ComfyUI(comfyui_env, base).start()
    try:
        server.wait_for_model(base.models / "loras" / "a.safetensors")
        lock = json.loads((base.data_dir / "hikaze_mm.lock").read_text())
        assert lock["pid"] == server.proc.pid and lock["command"] == "comfyui"
    finally:
        code = server.stop()
    assert code is not None
    wal = base.data_dir / "hikaze_mm.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    text = (base.data_dir / "hikaze_mm.lock").read_text().strip()
    assert text == "" or json.loads(text).get("pid") != server.proc.pid
