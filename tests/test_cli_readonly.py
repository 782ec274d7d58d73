"""A library whose folder cannot be written: ``status``, ``list`` and ``hash`` read it
(SQLite ``mode=ro``, no recovery, nothing created), the commands that write say it is
read-only, and not one byte of it changes.

Root writes anywhere, so as root the CLI runs without the capabilities that let it
(``setpriv`` drops CAP_DAC_OVERRIDE); the files stay root's, made read-only by chmod.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.services import Services
from tests.helpers import REPO, cli_env, write_model
from tests.legacy_fixtures import build_sample_legacy
from tests.library_helpers import seed_model
from tests.promotion_helpers import add_pending

SETPRIV = shutil.which("setpriv")
DROP = ["--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


def run_unprivileged(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "hikaze_mm", *args]
    if os.geteuid() == 0:
        command = [SETPRIV, *DROP, *command]  # type: ignore[list-item]
    return subprocess.run(
        command, capture_output=True, text=True, env=cli_env(), cwd=REPO, timeout=120
    )


def tree(folder: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every entry below ``folder``: mode, mtime, and the bytes of files."""
    found = {}
    for path in sorted([folder, *folder.rglob("*")]):
        st = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
        found[str(path.relative_to(folder))] = (st.st_mode, st.st_mtime_ns, content)
    return found


def set_writable(folder: Path, writable: bool) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~0o222)


@pytest.fixture
def library(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    if os.geteuid() == 0 and SETPRIV is None:
        pytest.skip("running as root without setpriv: permissions deny root nothing")
    data, root = tmp_path / "data", tmp_path / "models"
    services = Services.open(Config.load(data_dir=data, model_roots=[str(root)], env={}))
    try:
        sha = seed_model(services, "Kept LoRA", ("style",))
        add_pending(services, root, "waiting.safetensors", 2048)
        cached = root / "cached.safetensors"
        write_model(cached, 4096)
        services.hashes.hash_file(cached)
    finally:
        services.close()
    set_writable(data, False)
    try:
        yield data, root, sha
    finally:
        set_writable(data, True)


def test_reads_work_and_writes_are_refused(library, tmp_path: Path) -> None:
    data, root, sha = library
    before = tree(data)
    common = ("--data-dir", str(data), "--models-root", str(root))

    proc = run_unprivileged("status", "--json", *common)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["status"] == "IDLE" and status["pending"]["new"] == 1
    proc = run_unprivileged("list", "--json", *common)
    assert proc.returncode == 0, proc.stderr
    assert [item["sha256"] for item in json.loads(proc.stdout)["items"]] == [sha]

    # hash reads the cache and writes nothing.
    proc = run_unprivileged("hash", "--json", *common, str(root / "cached.safetensors"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cached"] is True

    legacy = build_sample_legacy(tmp_path / "src")
    for args in (
        ["scan"],
        ["scan", "--immediate"],
        ["promote", "--all"],
        ["promote", "1"],
        ["migrate-legacy", str(legacy.db.path)],
        ["serve", "--port", "0"],
    ):
        proc = run_unprivileged(*args, *common)
        assert proc.returncode == 1, (args, proc.stderr)
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("hikaze-mm: error: "), (args, lines)
        assert "read-only" in lines[0], (args, lines)
        assert "Serving on" not in proc.stdout
    assert tree(data) == before
