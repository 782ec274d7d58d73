"""Stage 1: the private copy of the user's legacy DB never outlives its run.

``LegacySnapshot`` copies the legacy DB under Stage 1's work folder
(``Config.legacy_work_dir``). A run killed with SIGKILL after the copy leaves it behind;
``remove_stale_snapshots`` (run by the next snapshot, and when the library opens) deletes
it, and never a live process's copy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.database.legacy_v2 import LegacyDatabaseError
from hikaze_mm.legacy.snapshots import LegacySnapshot, remove_stale_snapshots
from hikaze_mm.services import Services
from tests.legacy_fixtures import build_sample_legacy, import_into
from tests.test_legacy_safety import run_import_process

REPO = Path(__file__).resolve().parents[1]

HOLD_SNAPSHOT = textwrap.dedent(
    """
    import sys
    from hikaze_mm.legacy.snapshots import LegacySnapshot

    snapshot = LegacySnapshot.open(sys.argv[1], root=sys.argv[2])
    print(snapshot.folder, flush=True)
    sys.stdin.readline()  # hold it until told
    snapshot.close()
    """
)


def work_dir(data: Path) -> Path:
    """Stage 1's work folder for the library in ``data``."""
    return Config.load(data_dir=data, env={}).legacy_work_dir


def hold_snapshot(legacy_db: Path, root: Path) -> tuple[subprocess.Popen, Path]:
    """A live process holding a snapshot under ``root``: (process, its snapshot folder)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_SNAPSHOT, str(legacy_db), str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=str(REPO),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, proc.communicate(timeout=30)[1]
    return proc, Path(line)


def killed_import(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Run an import in a subprocess, SIGKILL it after the copy: (legacy db, images, data)."""
    sample = build_sample_legacy(tmp_path / "src")
    data = tmp_path / "data"
    proc = run_import_process(data, sample.db.path, sample.images_dir, kill_at=3)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    root = work_dir(data)
    (folder,) = list(root.iterdir())
    assert folder.name.startswith(f"{proc.pid}-")
    # Left behind: a full copy of the user's database.
    assert (folder / "legacy.sqlite3").read_bytes() == sample.db.path.read_bytes()
    return sample.db.path, sample.images_dir, data


def test_a_killed_runs_copy_is_removed_by_the_cleanup(tmp_path: Path) -> None:
    _legacy, _images, data = killed_import(tmp_path)
    root = work_dir(data)
    assert remove_stale_snapshots(root) == 1
    assert not root.exists()
    assert remove_stale_snapshots(root) == 0  # nothing left; no root is fine


def test_the_next_start_of_the_library_removes_the_stale_copy(tmp_path: Path) -> None:
    _legacy, _images, data = killed_import(tmp_path)
    Services.open(Config.load(data_dir=data, env={})).close()
    assert not work_dir(data).exists()


def test_the_next_import_removes_the_stale_copy_and_its_own(tmp_path: Path) -> None:
    legacy, images, data = killed_import(tmp_path)
    services = Services.open(Config.load(data_dir=data, env={}))
    try:
        report = import_into(services, legacy, images)
        assert report.active_models == 2
    finally:
        services.close()
    assert not work_dir(data).exists()


def test_a_live_owners_copy_is_kept_until_it_dies(tmp_path: Path) -> None:
    legacy = build_sample_legacy(tmp_path / "src").db.path
    root = work_dir(tmp_path / "data")
    proc, theirs = hold_snapshot(legacy, root)
    try:
        with LegacySnapshot.open(legacy, root=root) as ours:  # this process's own: kept too
            assert theirs.parent == ours.folder.parent == root
            assert remove_stale_snapshots(root) == 0
            assert (theirs / "legacy.sqlite3").is_file() and ours.folder.is_dir()
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
            assert remove_stale_snapshots(root) == 1
            assert not theirs.exists() and (ours.folder / "legacy.sqlite3").is_file()
            assert ours.count_models() == 6  # still readable
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert not root.exists()


def test_an_owner_that_finishes_removes_its_copy(tmp_path: Path) -> None:
    legacy = build_sample_legacy(tmp_path / "src").db.path
    root = work_dir(tmp_path / "data")
    proc, folder = hold_snapshot(legacy, root)
    assert folder.is_dir()
    proc.communicate("\n", timeout=30)
    assert proc.returncode == 0
    assert not folder.exists() and not root.exists()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.skipif(os.name == "nt", reason="flock and fork semantics")
def test_which_folders_are_stale(tmp_path: Path) -> None:
    root = tmp_path / "snapshots"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = sleeper.pid

        def folder(name: str, *, lock: bool = False) -> Path:
            path = root / name
            path.mkdir(parents=True)
            (path / "legacy.sqlite3").write_bytes(b"copy")
            if lock:
                (path / "owner.lock").write_bytes(b"")  # present, but nobody holds it
            return path

        stale = [
            folder(f"{os.getpid()}-earlier"),  # our pid, not ours: a restarted process's
            folder(f"{dead_pid()}-dead"),  # no lock file, pid dead
            folder(f"{live}-unlocked", lock=True),  # pid reused by another process
        ]
        kept = [
            folder(f"{live}-locking"),  # no lock file yet, owner alive: being created
            folder("not-a-snapshot"),
        ]
        (root / "123-file").write_bytes(b"")  # not a folder
        assert remove_stale_snapshots(root) == 3
        assert not any(p.exists() for p in stale)
        assert all(p.is_dir() for p in kept) and (root / "123-file").is_file()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_unusable_input_leaves_no_copy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    root = work_dir(tmp_path / "data")
    with pytest.raises(LegacyDatabaseError):
        LegacySnapshot.open(bad, root=root)
    assert not root.exists()
