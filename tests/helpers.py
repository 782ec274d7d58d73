"""Small builders shared by tests."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without HIKAZE_* settings (no test reaches a user's library)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKAZE_")}
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
