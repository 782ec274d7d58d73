"""A live library: incremental scans of folders, and the watcher that runs them.

Real files in a temp dir, a real watchdog observer, a real library. The watcher's effects
are awaited by polling the library with a generous timeout (nothing here asserts how
long anything took); each test then checks that a full rescan finds nothing to change.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hikaze_mm.config import Config
from hikaze_mm.errors import ConflictError, ValidationError
from hikaze_mm.library.scan_walk import SeenFile
from hikaze_mm.library.watcher import LibraryWatcher, network_fs
from hikaze_mm.server import create_app
from hikaze_mm.services import Services
from tests.helpers import set_mtime_ns, write_model
from tests.waiting import wait_until

TIMEOUT = 10.0


# ---------------------------------------------------------------------- helpers
def followed(check: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Poll ``check`` until it returns something true (the library followed a change)."""
    return wait_until(
        check, timeout=timeout, interval=0.05, message="the library to follow the change"
    )


def state(svc: Services) -> tuple[list[tuple], list[tuple]]:
    """The models and pending tables, as a full scan would have to leave them."""
    models = svc.db.conn.execute(
        "SELECT sha256, path, name, type, size_bytes, missing FROM models ORDER BY sha256"
    ).fetchall()
    pending = svc.db.conn.execute(
        "SELECT path, name, type, size_bytes, status, source FROM pending_import ORDER BY path"
    ).fetchall()
    return [tuple(r) for r in models], [tuple(r) for r in pending]


def assert_full_scan_agrees(svc: Services) -> None:
    """A full rescan changes nothing: the incremental scans left what it would. (The
    watcher's own scan may still be finishing what the test waited for: one scan runs at a
    time, so the full scan starts once it is free.)"""
    wait_until(lambda: not svc.scanner.job.running, message="the watcher's scan to end")
    before = state(svc)

    def full_scan() -> Any:
        try:
            return svc.scanner.scan()
        except ConflictError:  # another of the watcher's scans began in between
            return None

    report = wait_until(full_scan, message="a full scan to run beside the watcher").counts
    assert state(svc) == before
    assert (report.new, report.moved, report.renamed, report.restored) == (0, 0, 0, 0)


def model_at(svc: Services, path: Path) -> dict[str, Any] | None:
    return svc.db.models.get_by_path(path)


def pending_at(svc: Services, path: Path) -> dict[str, Any] | None:
    return svc.db.pending.get_by_path(path)


def scans(svc: Services) -> int:
    return svc.scanner.watch.incremental_scans


@pytest.fixture
def lib(services: Services, models_root: Path) -> tuple[Services, Path, dict[str, str]]:
    """A library of three promoted models; returns (services, root, name -> sha256)."""
    shas = {
        "a": write_model(models_root / "loras" / "a.safetensors", 3000, seed=1),
        "b": write_model(models_root / "loras" / "style" / "b.safetensors", 3100, seed=2),
        "c": write_model(models_root / "checkpoints" / "c.ckpt", 5000, seed=3),
    }
    assert services.scanner.scan(immediate_hashing=True).counts.promoted == 3
    return services, models_root, shas


@pytest.fixture
def watching(lib) -> Iterator[tuple[Services, Path, dict[str, str]]]:
    svc, _root, _shas = lib
    svc.start_watching()
    assert svc.scanner.status()["watch"]["mode"] == "watching"
    yield lib
    svc.watcher.close()


# ---------------------------------------------------------------------- scan_folders
def test_a_folder_scan_sees_only_its_folders(lib) -> None:
    svc, root, shas = lib
    (root / "checkpoints" / "c.ckpt").unlink()  # outside the scanned folder: not looked at
    write_model(root / "loras" / "style" / "new.safetensors", 1234, seed=9)

    report = svc.scanner.scan_folders([str(root / "loras")])

    assert report.scope == [str(root / "loras")]
    assert report.counts.new == 1 and report.counts.files_seen == 3
    assert not model_at(svc, root / "checkpoints" / "c.ckpt")["missing"]
    assert pending_at(svc, root / "loras" / "style" / "new.safetensors")["source"] == "scan"
    assert svc.scanner.scan_folders([str(root / "checkpoints")]).counts.missing == 1
    assert svc.db.models.get(shas["c"])["missing"] is True
    assert_full_scan_agrees(svc)


def test_a_move_across_folders_is_a_relink_when_both_are_scanned(lib) -> None:
    svc, root, shas = lib
    target = root / "checkpoints" / "sub" / "a-moved.safetensors"
    target.parent.mkdir()
    os.rename(root / "loras" / "a.safetensors", target)

    report = svc.scanner.scan_folders([str(root / "loras"), str(target.parent)])

    assert (report.counts.moved, report.counts.new, report.counts.missing) == (1, 0, 0)
    assert model_at(svc, target)["sha256"] == shas["a"]
    assert_full_scan_agrees(svc)


def test_a_move_is_a_relink_when_only_the_new_folder_is_scanned(lib) -> None:
    """The old folder's event may come later (inotify pairs a move's two halves after a
    delay): the model whose file is gone is found by its size all the same."""
    svc, root, shas = lib
    target = root / "embeddings" / "b-moved.safetensors"
    target.parent.mkdir()
    os.rename(root / "loras" / "style" / "b.safetensors", target)

    report = svc.scanner.scan_folders([str(target.parent)])

    assert (report.counts.moved, report.counts.new, report.counts.hashed) == (1, 0, 1)
    assert svc.db.models.get(shas["b"])["path"] == str(target)
    assert svc.scanner.scan_folders([str(root / "loras")]).counts.missing == 0
    assert_full_scan_agrees(svc)


def test_a_model_flagged_missing_is_relinked_from_another_folder(lib) -> None:
    svc, root, shas = lib
    kept = root.parent / "kept.bin"
    shutil.move(root / "loras" / "a.safetensors", kept)
    assert svc.scanner.scan_folders([str(root / "loras")]).counts.missing == 1
    shutil.move(kept, root / "checkpoints" / "a.safetensors")

    report = svc.scanner.scan_folders([str(root / "checkpoints")])

    assert report.counts.moved == 1 and report.counts.restored == 1
    record = svc.db.models.get(shas["a"])
    assert record["path"] == str(root / "checkpoints" / "a.safetensors")
    assert record["missing"] is False
    assert_full_scan_agrees(svc)


def test_a_deleted_folder_flags_its_models_and_nested_folders_scan_once(lib) -> None:
    svc, root, shas = lib
    shutil.rmtree(root / "loras" / "style")
    report = svc.scanner.scan_folders(
        [str(root / "loras" / "style"), str(root / "loras"), str(root / "loras" / "style")]
    )
    assert report.scope == [str(root / "loras")]
    assert report.counts.missing == 1 and report.counts.errors == 0
    assert svc.db.models.get(shas["b"])["missing"] is True
    assert_full_scan_agrees(svc)


def test_a_folder_scan_leaves_unsettled_files_alone(lib) -> None:
    svc, root, shas = lib
    growing = root / "loras" / "growing.safetensors"
    write_model(growing, 500, seed=5)
    touched = root / "loras" / "a.safetensors"
    write_model(touched, 3000, seed=6)  # rewritten in place, still being written

    def settled(f: SeenFile) -> bool:
        return False

    report = svc.scanner.scan_folders([str(root / "loras")], settled=settled)

    assert report.counts.deferred == 2 and report.counts.new == 0
    assert sorted(report.deferred_paths) == sorted([str(growing), str(touched)])
    assert pending_at(svc, growing) is None
    assert svc.db.models.get(shas["a"])["missing"] is False  # its file: unknown, not gone
    report = svc.scanner.scan_folders([str(root / "loras")], settled=lambda f: True)
    assert report.counts.new == 2 and report.counts.missing == 1
    assert_full_scan_agrees(svc)


def test_scope_folders_keep_the_outermost() -> None:
    from hikaze_mm.library.scan_plan import outermost

    sep = os.sep
    folders = [f"{sep}r{sep}a{sep}b", f"{sep}r{sep}a-b", f"{sep}r{sep}a", f"{sep}r{sep}a{sep}"]
    assert outermost(folders) == [f"{sep}r{sep}a", f"{sep}r{sep}a-b"]


def test_folder_scan_options_are_checked(lib, tmp_path: Path) -> None:
    svc, _root, _shas = lib
    with pytest.raises(ValidationError):
        svc.scanner.scan_folders([])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    report = svc.scanner.scan_folders([str(elsewhere)])
    assert [p["kind"] for p in report.problems] == ["error"]


# ---------------------------------------------------------------------- the watcher
def test_create_rename_move_delete_and_overwrite_reach_the_library(watching) -> None:
    svc, root, shas = watching
    new = root / "loras" / "fresh.safetensors"
    write_model(new, 2222, seed=7)
    followed(lambda: pending_at(svc, new))
    assert_full_scan_agrees(svc)

    renamed = root / "loras" / "a-renamed.safetensors"
    os.rename(root / "loras" / "a.safetensors", renamed)
    followed(lambda: model_at(svc, renamed))
    assert model_at(svc, renamed)["sha256"] == shas["a"]
    assert_full_scan_agrees(svc)

    moved = root / "checkpoints" / "deep" / "b.safetensors"
    moved.parent.mkdir()
    os.rename(root / "loras" / "style" / "b.safetensors", moved)
    followed(lambda: model_at(svc, moved))
    assert svc.db.models.get(shas["b"])["path"] == str(moved)
    assert svc.scanner.status()["last_report"]["counts"]["moved"] == 1
    assert_full_scan_agrees(svc)

    (root / "checkpoints" / "c.ckpt").unlink()
    followed(lambda: svc.db.models.get(shas["c"])["missing"])
    assert_full_scan_agrees(svc)

    write_model(root / "checkpoints" / "c.ckpt", 5000, seed=3)  # back: restored
    followed(lambda: not svc.db.models.get(shas["c"])["missing"])
    assert_full_scan_agrees(svc)

    write_model(renamed, 3000, seed=42)  # overwritten in place: other content, same size
    followed(lambda: pending_at(svc, renamed))
    assert svc.db.models.get(shas["a"])["missing"] is True
    assert_full_scan_agrees(svc)


def test_immediate_hashing_promotes_what_the_watcher_finds(lib) -> None:
    svc, root, _shas = lib
    svc.start_watching(immediate_hashing=True)
    path = root / "embeddings" / "e.pt"
    sha = write_model(path, 777, seed=8)
    followed(lambda: svc.db.models.get(sha))
    assert svc.db.models.get(sha)["path"] == str(path)
    assert pending_at(svc, path) is None
    assert_full_scan_agrees(svc)


def test_a_burst_of_files_takes_a_handful_of_scans(watching) -> None:
    svc, root, _shas = watching
    before = scans(svc)
    paths = [root / "loras" / "burst" / f"m{i:03d}.safetensors" for i in range(500)]
    for i, path in enumerate(paths):
        write_model(path, 100 + i, seed=100 + i)
    followed(lambda: svc.db.pending.count() == 500)
    assert {p["path"] for p in svc.db.pending.list()} == {str(p) for p in paths}
    assert scans(svc) - before <= 5
    assert_full_scan_agrees(svc)


def test_a_file_is_queued_once_it_has_settled(watching) -> None:
    svc, root, _shas = watching
    path = root / "loras" / "slow.safetensors"
    final_size = 0
    with open(path, "wb") as f:  # written in pieces, across several windows
        for _ in range(8):
            f.write(b"x" * 4096)
            f.flush()
            final_size += 4096
            # Not a wait: the scenario is a file that grows for two seconds, a piece at
            # a time, and must not be queued before it stops growing.
            time.sleep(0.25)
            assert pending_at(svc, path) is None
    row = followed(lambda: pending_at(svc, path))
    assert row["size_bytes"] == final_size  # never queued half written
    assert_full_scan_agrees(svc)


def test_settled_looks_at_size_and_mtime_twice(lib, tmp_path: Path) -> None:
    svc, _root, _shas = lib
    watcher = LibraryWatcher(svc.scanner, lambda: svc.config.model_roots, window=0.5)
    now = time.time_ns()
    fresh = SeenFile(str(tmp_path / "f"), 10, now, 1, "loras")
    assert watcher.settled(fresh) is False  # written less than a window ago
    assert watcher.settled(SeenFile(fresh.path, 20, now + 1, 1, "loras")) is False  # grew
    assert watcher.settled(SeenFile(fresh.path, 20, now + 1, 1, "loras")) is True  # same
    future = SeenFile(str(tmp_path / "g"), 5, now + 10**12, 2, "loras")  # a skewed clock
    assert watcher.settled(future) is False
    assert watcher.settled(future) is True
    old = SeenFile(str(tmp_path / "h"), 5, now - 10**10, 3, "loras")
    assert watcher.settled(old) is True


def test_polling_when_a_root_cannot_be_watched(
    data_dir: Path, models_root: Path, tmp_path: Path
) -> None:
    absent = tmp_path / "not-mounted"
    config = Config.load(
        data_dir=data_dir,
        model_roots=[str(models_root), f"loras={absent}"],
        env={"HIKAZE_RESCAN_INTERVAL": "0.2"},
    )
    svc = Services.open(config)
    try:
        svc.start_watching()
        watch = svc.scanner.status()["watch"]
        assert watch["mode"] == "polling"
        assert watch["polled"] == [str(absent)] and str(absent) in watch["reason"]
        assert watch["interval"] == 0.2
        absent.mkdir()  # the share comes back: the clock finds its files
        path = absent / "polled.safetensors"
        write_model(path, 321, seed=3)
        set_mtime_ns(path, time.time_ns() - 10**10)
        followed(lambda: pending_at(svc, path))
        assert pending_at(svc, path)["type"] == "loras"
        write_model(models_root / "loras" / "watched.safetensors", 123, seed=4)
        followed(lambda: pending_at(svc, models_root / "loras" / "watched.safetensors"))
    finally:
        svc.close()
    assert svc.scanner.status()["watch"]["mode"] == "off"


def test_forced_polling_and_off(data_dir: Path, models_root: Path) -> None:
    config = Config.load(
        data_dir=data_dir,
        model_roots=[str(models_root)],
        env={"HIKAZE_WATCH": "poll", "HIKAZE_RESCAN_INTERVAL": "0.2"},
    )
    svc = Services.open(config)
    try:
        svc.start_watching()
        watch = svc.scanner.status()["watch"]
        assert (watch["mode"], watch["polled"]) == ("polling", [str(models_root)])
        assert "HIKAZE_WATCH=poll" in watch["reason"]
        path = models_root / "vae" / "v.pt"
        write_model(path, 99, seed=1)
        set_mtime_ns(path, time.time_ns() - 10**10)
        followed(lambda: pending_at(svc, path))
        assert_full_scan_agrees(svc)
    finally:
        svc.close()

    svc = Services.open(Config.load(data_dir=data_dir, env={"HIKAZE_WATCH": "0"}))
    try:
        svc.start_watching()
        watch = svc.scanner.status()["watch"]
        assert watch["mode"] == "off" and "HIKAZE_WATCH=0" in watch["reason"]
        assert svc.watcher._thread is None
    finally:
        svc.close()


def test_watch_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="HIKAZE_WATCH"):
        Config.load(env={"HIKAZE_WATCH": "sometimes"})
    with pytest.raises(ValueError, match="HIKAZE_RESCAN_INTERVAL"):
        Config.load(env={"HIKAZE_RESCAN_INTERVAL": "-5"})
    # A command that does not serve never reads them.
    config = Config.load(env={"HIKAZE_WATCH": "sometimes"}, address_from_env=False)
    assert (config.watch, config.rescan_interval) == ("on", 300.0)
    assert Config.load(env={}, watch="off", rescan_interval=60).rescan_interval == 60.0


def test_close_stops_every_thread(lib) -> None:
    svc, root, _shas = lib
    svc.start_watching()
    watcher_thread = svc.watcher._thread
    observer = svc.watcher._observer
    assert watcher_thread.is_alive() and observer.is_alive()
    svc.watcher.close()
    assert not watcher_thread.is_alive() and not observer.is_alive()
    names = {t.name for t in threading.enumerate()}
    assert "hikaze-watch" not in names
    write_model(root / "loras" / "after.safetensors", 50, seed=1)
    assert svc.scanner.status()["watch"]["mode"] == "off"


def test_network_file_systems_are_polled(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    share, local = tmp_path / "share", tmp_path / "local"
    share.mkdir()
    local.mkdir()
    mounts.write_text(
        f"/dev/sda1 / ext4 rw 0 0\n"
        f"server:/export {share} nfs4 rw 0 0\n"
        f"//nas/models {local}/cifs cifs rw 0 0\n"
    )
    assert network_fs(str(share / "loras"), str(mounts)) == "nfs4"
    assert network_fs(str(local), str(mounts)) is None
    assert network_fs(str(local / "cifs" / "x"), str(mounts)) == "cifs"
    assert network_fs(str(local), str(tmp_path / "no-such-file")) is None


async def test_scan_status_reports_the_watch(aiohttp_client, lib) -> None:
    svc, _root, _shas = lib
    client = await aiohttp_client(create_app(svc, close_services=False))
    body = await (await client.get("/api/scan/status")).json()
    assert body["watch"]["mode"] == "off" and body["watch"]["reason"] == "not started"
    svc.start_watching()
    body = await (await client.get("/api/scan/status")).json()
    assert body["watch"] == {
        "mode": "watching",
        "reason": None,
        "interval": 300.0,
        "polled": [],
        "incremental_scans": 0,
    }
    svc.watcher.close()


def test_serve_options(tmp_path: Path) -> None:
    from hikaze_mm.cli import build_parser
    from hikaze_mm.cli.common import CliError
    from hikaze_mm.cli.context import config_from_args

    parser = build_parser()
    args = parser.parse_args(
        ["serve", "--data-dir", str(tmp_path), "--no-watch", "--rescan-interval", "60"]
    )
    config = config_from_args(args, serving=True)
    assert (config.watch, config.rescan_interval) == ("off", 60.0)
    config = config_from_args(parser.parse_args(["serve", "--data-dir", str(tmp_path)]))
    assert (config.watch, config.rescan_interval) == ("on", 300.0)
    for bad in ("0", "-1", "soon", "inf"):
        with pytest.raises(CliError, match="rescan-interval"):
            parser.parse_args(["serve", "--rescan-interval", bad])
