"""The directory scanner, on real directory trees and a real library database."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hikaze_mm.config import Config, ModelRoot
from hikaze_mm.errors import ConflictError, ValidationError
from hikaze_mm.library.scan_walk import Walker
from hikaze_mm.library.scanner import Scanner, ScanReport
from hikaze_mm.services import Services
from tests.conftest import on_each_backend, sqlite_only
from tests.helpers import make_sparse, set_mtime_ns, write_model
from tests.test_probe import KOHYA_DOWN, write_safetensors
from tests.waiting import wait_until

config = on_each_backend()

NOBODY = 65534


# ---------------------------------------------------------------------- helpers
def scan(svc: Services, **kwargs: Any) -> dict[str, Any]:
    return svc.scanner.scan(**kwargs).to_dict()


def promote_all(svc: Services) -> dict[str, str]:
    """Promote every pending model; returns path -> sha256."""
    result = {}
    for pending in svc.db.pending.list():
        outcome = svc.promoter.promote(pending["id"])
        result[pending["path"]] = outcome["sha256"]
    return result


def pending_by_path(svc: Services) -> dict[str, dict[str, Any]]:
    return {p["path"]: p for p in svc.db.pending.list()}


def model(svc: Services, sha: str) -> dict[str, Any]:
    record = svc.db.models.get(sha)
    assert record is not None
    return record


def hash_cache_rows(svc: Services) -> list[tuple]:
    return [
        tuple(r) for r in svc.db.conn.execute("SELECT * FROM hash_cache ORDER BY path").fetchall()
    ]


def library_rows(svc: Services) -> list[tuple]:
    rows = svc.db.conn.execute("SELECT * FROM models ORDER BY sha256").fetchall()
    return [tuple(r) for r in rows]


def wait_for_phase(svc: Services, phase: str, timeout: float = 30.0) -> dict[str, Any]:
    return wait_until(
        svc.scanner.status,
        lambda status: status["phase"] == phase,
        timeout=timeout,
        interval=0.01,
        message=f"the scan's phase {phase!r}",
    )


def make_png(path: Path) -> Path:
    Image.new("RGB", (32, 24), (10, 200, 30)).save(path, "PNG")
    return path


@pytest.fixture
def lib(services: Services, models_root: Path) -> tuple[Services, Path, dict[str, str]]:
    """A scanned and promoted library of four models; returns (services, root, path->sha)."""
    write_model(models_root / "loras" / "a.safetensors", 3000, seed=1)
    write_model(models_root / "loras" / "style" / "b.safetensors", 3100, seed=2)
    write_model(models_root / "checkpoints" / "c.ckpt", 5000, seed=3)
    write_model(models_root / "embeddings" / "d.pt", 700, seed=4)
    report = scan(services)
    assert report["counts"]["new"] == 4
    shas = promote_all(services)
    assert len(shas) == 4
    return services, models_root, shas


# ---------------------------------------------------------------------- new files
def test_first_scan_queues_new_files_with_name_type_size_and_base(
    services: Services, models_root: Path
) -> None:
    lora = write_safetensors(
        models_root / "loras" / "sub" / "My LoRA.safetensors",
        {KOHYA_DOWN: [8, 768]},
        {"ss_base_model_version": "sdxl_base_v1-0"},
    )
    loose = write_safetensors(models_root / "loose.safetensors", {KOHYA_DOWN: [8, 1024]})
    ckpt = models_root / "Checkpoints" / "model.CKPT"
    write_model(ckpt, 1234)
    vae = models_root / "vae" / "v.pt2"
    write_model(vae, 99)
    gguf = models_root / "unet" / "flux-q4.gguf"
    write_model(gguf, 321)
    for junk in ("readme.txt", "preview.png", "model.safetensors.part"):
        (models_root / "loras" / junk).write_bytes(b"x")

    report = scan(services)

    counts = report["counts"]
    assert counts["files_seen"] == 5
    assert counts["new"] == 5
    assert counts["errors"] == 0
    assert len(report["new_pending_ids"]) == 5
    rows = pending_by_path(services)
    assert set(rows) == {str(p) for p in (lora, loose, ckpt, vae, gguf)}
    row = rows[str(lora)]
    assert row["name"] == "My LoRA"
    assert row["type"] == "loras"
    assert row["base"] == "SDXL"  # kohya metadata wins over the 768-wide tensor
    assert row["size_bytes"] == lora.stat().st_size
    assert (row["status"], row["source"], row["sha256"]) == ("new", "scan", None)
    # A file at the root of a ComfyUI-style folder has no type folder: the probe's kind
    # (a LoRA) gives it one.
    assert (rows[str(loose)]["type"], rows[str(loose)]["base"]) == ("loras", "SD2.x")
    assert rows[str(ckpt)]["type"] == "checkpoints"  # folder key through canonical_type
    assert rows[str(ckpt)]["base"] is None
    assert rows[str(vae)]["type"] == "vae"
    assert rows[str(gguf)]["type"] == "unet"

    # Rescanning queues nothing twice.
    again = scan(services)
    assert again["counts"]["new"] == 0
    assert again["counts"]["pending"] == 5
    assert services.db.pending.count() == 5


def test_typed_roots_give_every_file_their_type(services: Services, tmp_path: Path) -> None:
    loras = tmp_path / "elsewhere" / "my-loras"
    write_model(loras / "deep" / "er" / "x.safetensors", 10)
    write_model(loras / "y.pt", 11)
    # The roots are an input of the scan (ComfyUI's folder_paths will supply them).
    report = scan(services, roots=[ModelRoot(loras, "loras")])
    assert report["counts"]["new"] == 2
    assert report["roots"] == [{"path": str(loras), "type": "loras"}]
    assert {p["type"] for p in services.db.pending.list()} == {"loras"}


def test_batches_cover_every_file(services: Services, models_root: Path) -> None:
    for i in range(23):
        write_model(models_root / "loras" / f"m{i:02}.safetensors", 100 + i)
    scanner = Scanner(
        services.db, services.hashes, roots=lambda: services.config.model_roots, batch_size=4
    )
    report = scanner.scan().to_dict()
    assert report["counts"]["new"] == 23
    assert services.db.pending.count() == 23


# ---------------------------------------------------------------------- incremental
def test_unchanged_rescan_reads_no_content_and_writes_nothing(lib) -> None:
    svc, root, _shas = lib
    cache_before = hash_cache_rows(svc)
    models_before = library_rows(svc)

    report = scan(svc)

    counts = report["counts"]
    assert counts["files_seen"] == 4
    assert counts["unchanged"] == 4
    assert (counts["to_hash"], counts["hashed"], counts["new"], counts["missing"]) == (0, 0, 0, 0)
    assert hash_cache_rows(svc) == cache_before  # no hash stored: no hash computed
    assert library_rows(svc) == models_before

    # Proof that content is not read: rewrite a file's bytes in place, keeping its size,
    # inode and mtime. A scanner that read the file would see another hash; ours trusts
    # the (size, mtime_ns, inode) match and never opens it.
    path = root / "checkpoints" / "c.ckpt"
    st = path.stat()
    with open(path, "r+b") as f:
        f.write(b"\0" * 64)
    set_mtime_ns(path, st.st_mtime_ns)
    assert path.stat().st_ino == st.st_ino
    again = scan(svc)
    assert again["counts"]["unchanged"] == 4
    assert again["counts"]["hashed"] == 0
    assert library_rows(svc) == models_before


def test_touched_file_is_rehashed_and_kept(lib) -> None:
    svc, root, shas = lib
    path = root / "loras" / "a.safetensors"
    set_mtime_ns(path, path.stat().st_mtime_ns + 5_000_000_000)  # same bytes, new mtime
    report = scan(svc)
    counts = report["counts"]
    assert (counts["hashed"], counts["missing"], counts["new"], counts["moved"]) == (1, 0, 0, 0)
    assert model(svc, shas[str(path)])["missing"] is False
    # ...and the next scan knows it from the cache again.
    assert scan(svc)["counts"]["hashed"] == 0


def test_changed_content_at_a_model_path(lib) -> None:
    svc, root, shas = lib
    path = root / "embeddings" / "d.pt"
    old_sha = shas[str(path)]
    write_model(path, 700, seed=99)  # same size, other bytes
    report = scan(svc)
    assert report["counts"]["hashed"] == 1  # same size as the vanished model: checked
    assert report["counts"]["missing"] == 1
    assert report["counts"]["new"] == 1
    assert model(svc, old_sha)["missing"] is True
    assert pending_by_path(svc)[str(path)]["status"] == "new"


# ---------------------------------------------------------------------- moves
def _decorate(svc: Services, sha: str, tmp: Path) -> None:
    svc.db.models.add_tags(sha, ["favourite"])
    svc.db.models.update(sha, meta={"notes": "keep me"}, name="Custom name")
    svc.images.add_image(sha, make_png(tmp / "img.png"))


def test_rename_keeps_tags_meta_and_images(lib, tmp_path: Path) -> None:
    svc, root, shas = lib
    old = root / "loras" / "a.safetensors"
    sha = shas[str(old)]
    _decorate(svc, sha, tmp_path)
    new = root / "loras" / "a-renamed.safetensors"
    os.rename(old, new)

    report = scan(svc)

    counts = report["counts"]
    assert (counts["renamed"], counts["moved"], counts["new"], counts["missing"]) == (1, 0, 0, 0)
    assert counts["hashed"] == 1  # the candidate is verified by its content
    assert report["relinked"] == [
        {"sha256": sha, "from": str(old), "to": str(new), "kind": "renamed"}
    ]
    record = model(svc, sha)
    assert record["path"] == str(new)
    assert record["missing"] is False
    assert record["name"] == "Custom name"
    assert record["meta"] == {"notes": "keep me"}
    assert [t["name"] for t in record["tags"]] == ["favourite"]
    assert svc.images.image_names(sha) == [f"{sha}_0.webp"]
    assert svc.db.pending.count() == 0
    assert scan(svc)["counts"]["hashed"] == 0  # and the new path is cached


def test_move_to_another_folder_and_type(lib) -> None:
    svc, root, shas = lib
    old = root / "loras" / "style" / "b.safetensors"
    new = root / "checkpoints" / "deep" / "b-moved.safetensors"
    new.parent.mkdir(parents=True)
    shutil.move(old, new)
    report = scan(svc)
    assert report["counts"]["moved"] == 1
    assert report["relinked"][0]["kind"] == "moved"
    record = model(svc, shas[str(old)])
    assert record["path"] == str(new)
    assert record["type"] == "loras"  # the model's type is the user's; only the path moves


def test_cross_root_move_by_copy_and_delete(
    services: Services, models_root: Path, tmp_path: Path
) -> None:
    other_root = tmp_path / "second-drive" / "loras"
    other_root.mkdir(parents=True)
    config = replace(
        services.config, model_roots=(*services.config.model_roots, ModelRoot(other_root, "loras"))
    )
    svc = Services.open(config)
    try:
        src = models_root / "loras" / "x.safetensors"
        sha = write_model(src, 4096, seed=7)
        scan(svc)
        promote_all(svc)
        svc.db.models.add_tags(sha, ["keep"])
        # Another file system in real life: a copy (new inode, new mtime), then a delete.
        dst = other_root / "x.safetensors"
        shutil.copyfile(src, dst)
        src.unlink()
        report = scan(svc)
        assert report["counts"]["moved"] == 1
        assert report["relinked"] == [
            {"sha256": sha, "from": str(src), "to": str(dst), "kind": "moved"}
        ]
        assert model(svc, sha)["path"] == str(dst)
        assert [t["name"] for t in model(svc, sha)["tags"]] == ["keep"]
    finally:
        svc.close()


def test_swapped_names_relink_both(lib) -> None:
    svc, root, shas = lib
    a = root / "loras" / "a.safetensors"
    b = root / "loras" / "a2.safetensors"
    sha_b = write_model(b, 3000, seed=42)  # same size as a
    scan(svc)
    promote_all(svc)
    tmp = root / "loras" / "tmp.bin.partial"
    os.rename(a, tmp)
    os.rename(b, a)
    os.rename(tmp, b)
    report = scan(svc)
    assert report["counts"]["renamed"] == 2
    assert model(svc, shas[str(a)])["path"] == str(b)
    assert model(svc, sha_b)["path"] == str(a)


def test_same_size_stranger_is_not_a_move(lib) -> None:
    svc, root, shas = lib
    old = root / "checkpoints" / "c.ckpt"
    old.unlink()
    write_model(root / "checkpoints" / "other.ckpt", 5000, seed=77)  # same size, other bytes
    report = scan(svc)
    assert report["counts"]["hashed"] == 1
    assert report["counts"]["moved"] == 0
    assert report["counts"]["missing"] == 1
    assert report["counts"]["new"] == 1
    assert model(svc, shas[str(old)])["missing"] is True


def test_a_copy_known_by_its_hash_is_a_duplicate(lib) -> None:
    svc, root, shas = lib
    original = root / "loras" / "a.safetensors"
    copy = root / "loras" / "copy-of-a.safetensors"
    shutil.copyfile(original, copy)
    svc.hashes.hash_file(copy)  # e.g. `hikaze-mm hash` ran on it
    report = scan(svc)
    assert report["counts"]["duplicates"] == 1
    assert report["counts"]["new"] == 0
    assert model(svc, shas[str(original)])["path"] == str(original)


# ---------------------------------------------------------------------- missing
def test_missing_is_flagged_never_deleted_and_comes_back(lib, tmp_path: Path) -> None:
    svc, root, shas = lib
    path = root / "loras" / "a.safetensors"
    sha = shas[str(path)]
    _decorate(svc, sha, tmp_path)
    parked = tmp_path / "parked.safetensors"
    shutil.move(path, parked)

    report = scan(svc)
    assert report["counts"]["missing"] == 1
    assert report["missing"] == [{"sha256": sha, "path": str(path)}]
    record = model(svc, sha)
    assert record["missing"] is True
    assert [t["name"] for t in record["tags"]] == ["favourite"]
    assert svc.images.image_names(sha) == [f"{sha}_0.webp"]
    # Still missing on the next scan, not flagged twice, not deleted.
    assert scan(svc)["counts"]["missing"] == 1
    assert svc.db.models.get(sha) is not None

    # It reappears anywhere under a root: relinked and no longer missing.
    back = root / "checkpoints" / "found-again.safetensors"
    shutil.copyfile(parked, back)
    report = scan(svc)
    assert report["counts"]["moved"] == 1
    assert report["counts"]["restored"] == 1
    assert report["counts"]["missing"] == 0
    record = model(svc, sha)
    assert (record["path"], record["missing"]) == (str(back), False)
    assert record["meta"] == {"notes": "keep me"}


def test_missing_file_back_at_its_own_path(lib, tmp_path: Path) -> None:
    svc, root, shas = lib
    path = root / "checkpoints" / "c.ckpt"
    sha = shas[str(path)]
    shutil.move(path, tmp_path / "c.ckpt")
    scan(svc)
    assert model(svc, sha)["missing"] is True
    shutil.move(tmp_path / "c.ckpt", path)  # rename back: same inode and mtime, cache hit
    report = scan(svc)
    assert report["counts"]["restored"] == 1
    assert report["counts"]["hashed"] == 0
    assert model(svc, sha)["missing"] is False


def test_models_outside_the_roots(lib, tmp_path: Path) -> None:
    svc, _root, _shas = lib
    outside = tmp_path / "legacy-place" / "old.safetensors"
    sha_there = write_model(outside, 50, seed=5)
    sha_gone = "ab" * 32
    svc.db.models.upsert({"sha256": sha_there, "path": str(outside), "size_bytes": 50})[0]
    svc.db.models.upsert(
        {"sha256": sha_gone, "path": str(tmp_path / "nowhere.pt"), "size_bytes": 9}
    )[0]
    report = scan(svc)
    assert report["counts"]["missing"] == 1
    assert model(svc, sha_there)["missing"] is False
    assert model(svc, sha_gone)["missing"] is True


def test_an_unreachable_root_flags_nothing_missing(lib, tmp_path: Path) -> None:
    svc, root, shas = lib
    unmounted = tmp_path / "unmounted"
    root.rename(unmounted)  # the whole root disappears (a drive not plugged in)
    report = scan(svc)
    assert report["counts"]["errors"] == 1
    assert report["problems"][0]["path"] == str(root)
    assert report["counts"]["missing"] == 0
    assert all(not model(svc, sha)["missing"] for sha in shas.values())


def test_legacy_pending_rows_are_left_alone_and_scan_rows_follow_their_file(
    services: Services, models_root: Path
) -> None:
    legacy_path = models_root / "loras" / "legacy.safetensors"
    services.db.pending.add({"path": str(legacy_path), "name": "legacy"})
    src = models_root / "loras" / "fresh.safetensors"
    write_model(src, 64)
    scan(services)
    src.rename(models_root / "loras" / "fresh-renamed.safetensors")  # before Stage 2 ran
    report = scan(services)
    assert report["counts"]["pending_removed"] == 1
    assert report["counts"]["new"] == 1
    assert set(pending_by_path(services)) == {
        str(legacy_path),
        str(models_root / "loras" / "fresh-renamed.safetensors"),
    }


# ---------------------------------------------------------------------- robustness
def test_symlink_loops_terminate_and_links_are_followed(
    services: Services, models_root: Path, tmp_path: Path
) -> None:
    loras = models_root / "loras"
    write_model(loras / "real.safetensors", 10)
    os.symlink(models_root, loras / "up-loop")  # back to the root
    os.symlink(loras, loras / "self-loop")
    (loras / "a").mkdir()
    os.symlink(loras / "a", loras / "a" / "b")  # loop below
    external = tmp_path / "external"
    write_model(external / "ext.safetensors", 20)
    os.symlink(external, loras / "linked-folder")  # a link to a folder outside: followed
    outside_file = write_model(tmp_path / "single.ckpt", 30)
    assert outside_file
    os.symlink(tmp_path / "single.ckpt", models_root / "checkpoints-link.ckpt")

    report = scan(services)

    paths = set(pending_by_path(services))
    assert paths == {
        str(loras / "real.safetensors"),
        str(loras / "linked-folder" / "ext.safetensors"),
        str(models_root / "checkpoints-link.ckpt"),
    }
    kinds = [p["kind"] for p in report["problems"]]
    assert kinds.count("loop") == 3
    assert report["counts"]["errors"] == 0


def test_broken_symlinks_are_reported_not_fatal(services: Services, models_root: Path) -> None:
    loras = models_root / "loras"
    write_model(loras / "fine.safetensors", 10)
    os.symlink(loras / "gone.safetensors", loras / "dangling.safetensors")
    os.symlink(loras / "self.pt", loras / "self.pt")  # ELOOP
    os.symlink(models_root / "no-such-dir", models_root / "dead-dir-link")
    report = scan(services)
    assert report["counts"]["new"] == 1
    broken = sorted(p["path"] for p in report["problems"] if p["kind"] == "broken_symlink")
    assert broken == [str(loras / "dangling.safetensors"), str(loras / "self.pt")]
    assert report["counts"]["errors"] == 2


def test_a_stale_scan_row_with_images_is_kept(
    services: Services, models_root: Path, tmp_path: Path
) -> None:
    src = models_root / "loras" / "pictured.safetensors"
    write_model(src, 64)
    scan(services)
    pid = pending_by_path(services)[str(src)]["id"]
    services.images.add_pending_image(pid, make_png(tmp_path / "p.png"))
    src.unlink()
    assert scan(services)["counts"]["pending_removed"] == 0
    assert services.db.pending.get(pid) is not None


def test_files_vanishing_mid_scan(lib) -> None:
    svc, root, _shas = lib
    # A moved model (a candidate that must be hashed) and a brand-new file both vanish
    # after the walk saw them: one while candidates are hashed, one while new files are
    # probed. The scan reports and goes on.
    os.rename(root / "loras" / "a.safetensors", root / "loras" / "a2.safetensors")
    write_safetensors(root / "loras" / "new.safetensors", {KOHYA_DOWN: [8, 768]})
    vanished: list[str] = []

    def on_progress(status: dict[str, Any]) -> None:
        if status["phase"] == "hashing" and not vanished:
            (root / "loras" / "a2.safetensors").unlink()
            vanished.append("a2")
        if status["phase"] == "probing" and len(vanished) == 1:
            (root / "loras" / "new.safetensors").unlink()
            vanished.append("new")

    report = scan(svc, on_progress=on_progress)
    assert vanished == ["a2", "new"]
    assert [(p["kind"], Path(p["path"]).name) for p in report["problems"]] == [
        ("vanished", "a2.safetensors")
    ]
    assert report["counts"]["missing"] == 1
    # The new file was queued as it was seen; the next scan drops the stale row.
    assert report["counts"]["new"] == 1
    assert scan(svc)["counts"]["pending_removed"] == 1
    assert svc.db.pending.count() == 0


def test_files_vanishing_during_the_walk(services: Services, models_root: Path) -> None:
    folder = models_root / "loras"
    paths = [folder / f"f{i:03}.safetensors" for i in range(400)]
    for p in paths:
        write_model(p, 10)
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            for p in paths:
                p.unlink(missing_ok=True)
            for p in paths:
                p.write_bytes(b"0123456789")

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        reports = [scan(services) for _ in range(5)]
    finally:
        stop.set()
        thread.join()
    for report in reports:
        assert {p["kind"] for p in report["problems"]} <= {"vanished"}
        assert report["counts"]["files_seen"] <= len(paths)
    final = scan(services)
    assert final["counts"]["errors"] == 0
    assert services.db.pending.count() == len(paths)


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder another user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="hikaze-scan-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for dirpath, dirnames, _ in os.walk(path):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o755)
        shutil.rmtree(path)


def _scan_unprivileged(config: Config, locked: Path) -> dict[str, Any]:
    """Scan as a user who cannot read ``locked``.

    Running as root, permissions do not deny anything, so the scan runs in a forked child
    that switched to ``nobody``; otherwise ``locked`` is made unreadable here.
    """
    if os.geteuid() != 0:
        locked.chmod(0)
        try:
            svc = Services.open(config)
            try:
                return svc.scanner.scan().to_dict()
            finally:
                svc.close()
        finally:
            locked.chmod(0o755)
    for dirpath, dirnames, filenames in os.walk(config.data_dir):
        for name in (*dirnames, *filenames):
            os.chown(os.path.join(dirpath, name), NOBODY, NOBODY)
    os.chown(config.data_dir, NOBODY, NOBODY)
    locked.chmod(0o700)  # root's, so nobody may not enter
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            svc = Services.open(config)
            try:
                result = svc.scanner.scan().to_dict()
            finally:
                svc.close()
            payload = json.dumps(result).encode()
            code = 0
        except BaseException as exc:
            payload = json.dumps({"child_error": repr(exc)}).encode()
        finally:
            with os.fdopen(write_fd, "wb") as out:
                out.write(payload)
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    result = json.loads(data or b"{}")
    assert os.waitstatus_to_exitcode(status) == 0, result
    return result


def test_permission_denied_folders_are_reported(shared_tmp: Path) -> None:
    root = shared_tmp / "models"
    secret = root / "loras" / "secret"
    hidden_model = write_model(secret / "hidden.safetensors", 100, seed=1)
    write_model(root / "loras" / "open.safetensors", 200, seed=2)
    for dirpath, _dirnames, filenames in os.walk(shared_tmp):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    config = Config.load(data_dir=shared_tmp / "data", model_roots=[str(root)], env={})
    svc = Services.open(config)
    try:
        scan(svc)
        promote_all(svc)  # both are in the library, scanned with full access
    finally:
        svc.close()
    write_model(root / "loras" / "later.safetensors", 300, seed=3)
    os.chmod(root / "loras" / "later.safetensors", 0o644)

    report = _scan_unprivileged(config, secret)

    assert [(p["kind"], p["path"]) for p in report["problems"]] == [("permission", str(secret))]
    assert report["counts"]["errors"] == 1
    assert report["counts"]["new"] == 1  # the rest of the tree was scanned
    # A model in a folder that could not be read is unknown, not missing.
    assert report["counts"]["missing"] == 0
    svc = Services.open(config)
    try:
        assert model(svc, hidden_model)["missing"] is False
        assert str(root / "loras" / "later.safetensors") in pending_by_path(svc)
    finally:
        svc.close()
    assert stat.S_IMODE(secret.stat().st_mode) in (0o700, 0o755)


# ---------------------------------------------------------------------- options & control
def test_an_immediate_scan_promotes_what_an_earlier_scan_left_waiting(lib) -> None:
    """A scan that queued files and ended before promoting them (plain, or failed on the
    way): the next immediate-hashing scan promotes them; rows for review stay."""
    svc, root, _shas = lib
    waiting_sha = write_model(root / "loras" / "waiting.safetensors", 321, seed=21)
    shutil.copyfile(root / "loras" / "a.safetensors", root / "loras" / "copy.safetensors")
    first = scan(svc, immediate_hashing=False)
    assert (first["counts"]["new"], first["counts"]["promoted"]) == (2, 0)
    first_conflict = scan(svc, immediate_hashing=True)  # nothing new: both resumed
    assert first_conflict["counts"]["new"] == 0
    assert (first_conflict["counts"]["promoted"], first_conflict["counts"]["conflicts"]) == (1, 1)
    assert model(svc, waiting_sha)["path"] == str(root / "loras" / "waiting.safetensors")
    # a resumed LoRA is hashed as a new one is: its AutoV3 in the same read
    lora = write_safetensors(root / "loras" / "late.safetensors", {"lora_up.weight": [4, 4]})
    assert scan(svc, immediate_hashing=False)["counts"]["new"] == 1
    assert scan(svc, immediate_hashing=True)["counts"]["promoted"] == 1
    late = svc.db.models.get_by_path(str(lora))
    assert late is not None and late["autov3"]
    again = scan(svc, immediate_hashing=True)  # the conflict waits for review now
    assert (again["counts"]["promoted"], again["counts"]["conflicts"]) == (0, 0)
    assert set(pending_by_path(svc)) == {str(root / "loras" / "copy.safetensors")}


def test_immediate_hashing_promotes_new_files(lib) -> None:
    svc, root, _shas = lib
    fresh = root / "loras" / "fresh.safetensors"
    fresh_sha = write_model(fresh, 123, seed=8)
    dup = root / "loras" / "dup-of-a.safetensors"
    shutil.copyfile(root / "loras" / "a.safetensors", dup)

    report = scan(svc, immediate_hashing=True)

    counts = report["counts"]
    assert (counts["new"], counts["promoted"], counts["conflicts"]) == (2, 1, 1)
    assert model(svc, fresh_sha)["path"] == str(fresh)
    # The copy's content is already a model: left pending for review (strategy null).
    assert set(pending_by_path(svc)) == {str(dup)}

    dup2 = root / "loras" / "dup-again.safetensors"
    shutil.copyfile(root / "loras" / "a.safetensors", dup2)
    report = scan(svc, immediate_hashing=True, conf_strategy="delete")
    assert report["counts"]["promoted"] == 1
    assert set(pending_by_path(svc)) == {str(dup)}


def test_bad_options_and_missing_roots(services: Services, data_dir: Path) -> None:
    with pytest.raises(ValidationError):
        services.scanner.scan(immediate_hashing=True, conf_strategy="override-all")
    bare = Services.open(Config.load(data_dir=data_dir, env={}))
    try:
        with pytest.raises(ValidationError, match="no model roots"):
            bare.scanner.scan()
    finally:
        bare.close()
    assert services.scanner.status()["running"] is False


@sqlite_only
def test_one_scan_at_a_time_and_live_status(services: Services, models_root: Path) -> None:
    write_model(models_root / "loras" / "one.safetensors", 10)
    blocker = sqlite3.connect(services.config.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the scan will wait at its first write
    try:
        status = services.scanner.start()
        assert status["running"] is True
        with pytest.raises(ConflictError):
            services.scanner.scan()
        with pytest.raises(ConflictError):
            services.scanner.start()
        live = wait_for_phase(services, "writing")
        assert services.scanner.wait(timeout=0.1) is False
        assert live["running"] is True
        assert live["counts"]["files_seen"] == 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert services.scanner.wait(timeout=30)
    done = services.scanner.status()
    assert done["running"] is False
    assert done["phase"] == "done"
    assert done["counts"]["new"] == 1
    assert done["last_report"]["counts"]["new"] == 1


def test_close_stops_a_running_scan(services: Services, models_root: Path) -> None:
    # A 64 GiB sparse model: promoting it hashes for far longer than this test may take,
    # so close() can only return in time by cancelling the scan, not by waiting it out.
    big = models_root / "checkpoints" / "big.safetensors"
    big.parent.mkdir(parents=True)
    make_sparse(big, 64 << 30, tail=b"the big one")
    services.scanner.start(immediate_hashing=True)
    before = wait_for_phase(services, "promoting")
    assert before["running"] is True
    assert before["counts"]["new"] == 1

    closer = threading.Thread(target=services.scanner.close)
    closer.start()
    closer.join(timeout=30)

    assert not closer.is_alive(), "close() did not stop the running scan"
    after = services.scanner.status()
    assert after["running"] is False
    assert after["phase"] == "cancelled"
    assert after["error"] == "cancelled"
    assert after["counts"]["promoted"] == 0
    assert after["last_report"] is None  # a cancelled scan leaves no report
    assert services.db.models.get_by_path(str(big)) is None
    assert [row["path"] for row in services.db.pending.list()] == [str(big)]  # still queued
    with pytest.raises(ConflictError):
        services.scanner.start()


def test_walker_reports_unreadable_roots(tmp_path: Path) -> None:
    file_root = tmp_path / "a-file"
    file_root.write_bytes(b"x")
    walker = Walker([ModelRoot(tmp_path / "absent"), ModelRoot(file_root)])
    assert list(walker.walk()) == []
    assert [p.kind for p in walker.problems] == ["vanished", "error"]
    assert walker.unreadable == [str(tmp_path / "absent"), str(file_root)]


def test_report_round_trips_as_json(lib) -> None:
    svc, _root, _shas = lib
    report = svc.scanner.scan()
    assert isinstance(report, ScanReport)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["duration_ms"] >= 0
    assert set(data["counts"]) >= {"files_seen", "new", "moved", "missing", "errors"}
