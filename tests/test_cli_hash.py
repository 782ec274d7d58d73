"""``hikaze-mm hash``: regular files only (a FIFO or a device never hangs it), with or
without a library, and the library's cache used as far as this process may."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.hashing import HashService, NotARegularFileError
from hikaze_mm.services import Services
from tests.helpers import run_cli, write_model


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_hash_service_refuses_what_is_not_a_regular_file(fifo: Path, tmp_path: Path) -> None:
    service = HashService(None)
    errors: list[BaseException] = []

    def attempt() -> None:
        for path in (fifo, tmp_path, Path(os.devnull)):
            try:
                service.hash_file(path)
            except NotARegularFileError as exc:
                errors.append(exc)

    try:
        thread = threading.Thread(target=attempt, daemon=True)
        thread.start()
        thread.join(20)
        assert not thread.is_alive(), "hashing a FIFO blocked"
    finally:
        service.close()
    assert [e.strerror for e in errors] == [
        "not a regular file (a FIFO)",
        "not a regular file (a folder)",
        "not a regular file (a character device)",
    ]
    assert all(isinstance(e, OSError) for e in errors)


def test_cli_refuses_a_fifo_and_a_device_in_one_line_each(fifo: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    sha = write_model(model, 5000)
    proc = run_cli("hash", "--data-dir", str(tmp_path / "d"), str(fifo), os.devnull, str(model))
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"hikaze-mm: error: {fifo}: not a regular file (a FIFO)",
        f"hikaze-mm: error: {os.devnull}: not a regular file (a character device)",
    ]
    assert proc.stdout.split() == [sha, sha[:10], str(model)]
    proc = run_cli("hash", "--json", "--data-dir", str(tmp_path / "d"), str(fifo))
    assert proc.returncode == 1 and proc.stderr == ""
    body = json.loads(proc.stdout)
    assert body["path"] == str(fifo) and body["error"] == "Not a regular file"
    assert "FIFO" in body["detail"]


def test_hash_without_a_library_creates_nothing(tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    sha = write_model(model, 3000)
    data = tmp_path / "data"
    for _ in range(2):
        proc = run_cli("hash", "--json", "--data-dir", str(data), str(model))
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["sha256"] == sha and out["cached"] is False
    assert not data.exists()


def test_hash_fills_the_cache_of_a_library(tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    sha = write_model(model, 3000)
    data = tmp_path / "data"
    Services.open(Config.load(data_dir=data, env={})).close()
    first = json.loads(run_cli("hash", "--json", "--data-dir", str(data), str(model)).stdout)
    again = json.loads(run_cli("hash", "--json", "--data-dir", str(data), str(model)).stdout)
    assert first["sha256"] == again["sha256"] == sha
    assert (first["cached"], again["cached"]) == (False, True)
