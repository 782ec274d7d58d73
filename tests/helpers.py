"""Small builders shared by tests."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]


# Set by the ``config`` fixtures for a test whose library is on PostgreSQL: its CLI
# subprocesses get it as HIKAZE_DB_URL.
CLI_DB_URL = "HIKAZE_TEST_CLI_DB_URL"


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without HIKAZE_* settings (no test reaches a user's library), but
    for the test's own PostgreSQL library (``CLI_DB_URL``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKAZE_")}
    if CLI_DB_URL in os.environ:
        env["HIKAZE_DB_URL"] = os.environ[CLI_DB_URL]
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


def run_cli(
    *args: str, env_extra: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """Run ``python -m hikaze_mm ARGS`` as a real subprocess and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "hikaze_mm", *args],
        capture_output=True,
        text=True,
        env=cli_env(env_extra),
        timeout=timeout,
        cwd=str(REPO),
    )


def write_model(path: Path, content: bytes | int, *, seed: int = 0) -> str:
    """Write a model file (given bytes, or that many deterministic bytes); return its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, int):
        block = hashlib.sha256(f"{path.name}:{seed}".encode()).digest() * 2048
        data = (block * (content // len(block) + 1))[:content]
    else:
        data = content
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def make_sparse(path: Path, size: int, *, tail: bytes = b"end") -> None:
    """A sparse file of ``size`` bytes whose last bytes are ``tail`` (no disk blocks used)."""
    with open(path, "wb") as f:
        f.truncate(size - len(tail))
        f.seek(size - len(tail))
        f.write(tail)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def same_origin_headers(client) -> dict[str, str]:
    return {"Origin": f"http://{client.server.host}:{client.server.port}"}


def set_mtime_ns(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))


@dataclass
class Server:
    """A ``hikaze-mm serve`` in a process of its own, on a free port of 127.0.0.1."""

    proc: subprocess.Popen
    url: str  # http://127.0.0.1:PORT/
    address: str  # 127.0.0.1:PORT
    stdout: Path


def start_server(
    data: Path, logs: Path, *, root: Path | None = None, env: dict[str, str] | None = None
) -> Server:
    """Start ``hikaze-mm serve`` on the library in ``data`` (over ``root``, if given), its
    output in ``logs``; returns once it serves (fails if it exits first)."""
    out, err = logs / "serve.out", logs / "serve.err"
    command = ["serve", "--data-dir", str(data), "--port", "0"]
    if root is not None:
        command += ["--models-root", str(root)]
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hikaze_mm", *command],
            stdout=stdout,
            stderr=stderr,
            env=cli_env(env),
            cwd=REPO,
        )

    def serving() -> re.Match[str] | None:
        assert proc.poll() is None, err.read_text()
        return re.search(r"Serving on (http://([\d.]+:\d+)/)", out.read_text())

    match = wait_until(serving, timeout=60, interval=0.05, message="the server to start")
    return Server(proc, match.group(1), match.group(2), out)


def stop(server: Server) -> int:
    """SIGTERM the server (if it still runs) and return its exit status."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
    return server.proc.wait(60)


def server_json(server: Server, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET ``path`` (relative to the server's URL), or POST ``body`` as JSON; the answer."""
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    request = urllib.request.Request(server.url + path, data, headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)
