"""Stage 1 safety: unusable input changes nothing, the legacy files are never written (even
read-only for real), and a kill in the middle converges when the import runs again."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.database import DatabaseManager
from hikaze_mm.database.legacy_v2 import LegacyDatabaseError
from hikaze_mm.errors import UnprocessableError, ValidationError
from hikaze_mm.services import Services
from tests.legacy_fixtures import (
    LEGACY_SCHEMA,
    LegacyModel,
    LegacyTag,
    build_legacy_db,
    build_sample_legacy,
    import_into,
    make_image,
    media_url,
)
from tests.test_legacy_import import dump_v3, files_of
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]


def seed_v3(services: Services, tmp_path: Path) -> None:
    tag = services.db.tags.create("mine")
    services.db.models.upsert({"sha256": "e" * 64, "path": "/v3/e.st"}, tags=[tag["id"]])[0]
    services.images.add_image("e" * 64, make_image(tmp_path / "seed.png", "rgb_png"))


def build_bad(kind: str, tmp_path: Path) -> Path:
    good = build_sample_legacy(tmp_path / "good").db.path
    target = tmp_path / f"{kind}.sqlite3"
    data = good.read_bytes()
    if kind == "text":
        target.write_text("id,name\n1,not a database\n" * 50)
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "truncated":
        target.write_bytes(data[: len(data) // 2])
    elif kind == "garbage_pages":
        blob = bytearray(data)
        blob[4096 : len(blob)] = os.urandom(len(blob) - 4096)
        target.write_bytes(bytes(blob))
    elif kind in ("other_schema", "v3_version", "missing_column", "header_only"):
        conn = sqlite3.connect(target)
        if kind == "other_schema":
            conn.execute("CREATE TABLE models (sha256 TEXT PRIMARY KEY, path TEXT)")
        elif kind == "v3_version":
            conn.executescript(LEGACY_SCHEMA)
            conn.execute("INSERT INTO schema_version VALUES (3)")
        elif kind == "header_only":
            conn.execute("PRAGMA user_version = 7")  # a valid SQLite file with no tables
        elif kind == "missing_column":
            conn.executescript(LEGACY_SCHEMA.replace(" extra_json TEXT", " other TEXT"))
        conn.commit()
        conn.close()
    elif kind == "directory":
        target.mkdir()
    return target


@pytest.mark.parametrize(
    "kind, error, words",
    [
        ("text", LegacyDatabaseError, "not a SQLite database"),
        ("empty", LegacyDatabaseError, "empty file"),
        ("truncated", LegacyDatabaseError, "malformed"),
        ("garbage_pages", LegacyDatabaseError, ""),
        ("other_schema", LegacyDatabaseError, "not a Hikaze Model Manager v2 database"),
        ("v3_version", LegacyDatabaseError, "schema version 3"),
        ("missing_column", LegacyDatabaseError, "lacks extra_json"),
        ("header_only", LegacyDatabaseError, "no model_tags, models, tags tables"),
        ("directory", ValidationError, "not a file"),
        ("missing", ValidationError, "not found"),
    ],
)
def test_unusable_input_changes_nothing(
    services: Services, tmp_path: Path, kind: str, error: type, words: str
) -> None:
    seed_v3(services, tmp_path)
    rows, files = dump_v3(services.db), files_of(services.config.images_dir)
    temp_before = set(Path(tempfile.gettempdir()).glob("hikaze-legacy-*"))
    path = tmp_path / "missing.sqlite3" if kind == "missing" else build_bad(kind, tmp_path)
    with pytest.raises(error) as raised:
        import_into(services, path, None, workers=1)
    assert words in raised.value.detail
    assert "\n" not in raised.value.detail
    if error is LegacyDatabaseError:
        assert isinstance(raised.value, UnprocessableError) and raised.value.status == 422
    else:
        assert raised.value.status == 400
    assert dump_v3(services.db) == rows
    assert files_of(services.config.images_dir) == files
    assert set(Path(tempfile.gettempdir()).glob("hikaze-legacy-*")) == temp_before


def test_missing_images_folder_is_400_and_changes_nothing(services: Services, tmp_path: Path):
    sample = build_sample_legacy(tmp_path / "src")
    rows = dump_v3(services.db)
    for bad in (tmp_path / "nope", sample.db.path):  # missing; a file, not a folder
        with pytest.raises(ValidationError):
            import_into(services, sample.db.path, bad)
    assert dump_v3(services.db) == rows


# ------------------------------------------------------------------------- read-only


def _drop_write_privileges() -> list[str]:
    """A command prefix under which root obeys file permissions (no DAC override)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("running as root without setpriv: cannot make a folder really read-only")
    caps = "-dac_override,-dac_read_search,-fowner"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


RUN_IMPORT = textwrap.dedent(
    """
    import json, os, signal, sys
    from hikaze_mm.config import Config
    from hikaze_mm.services import Services
    from hikaze_mm.legacy.importer import import_legacy_data

    data_dir, legacy_db, images_dir, kill_at, probe = sys.argv[1:6]
    kill_at = int(kill_at)
    if probe:  # prove the folder is really read-only for this process
        try:
            open(os.path.join(probe, "probe"), "w")
        except PermissionError:
            print("READ-ONLY", file=sys.stderr)
        else:
            raise SystemExit("the legacy folder is writable: the test would prove nothing")
    svc = Services.open(Config.load(data_dir=data_dir, env={}))

    def progress(phase, done, total):
        if phase == "models" and done == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    report = import_legacy_data(legacy_db, images_dir or None, db=svc.db, images=svc.images,
                                work_dir=svc.config.legacy_work_dir, progress=progress,
                                workers=2)
    print(json.dumps(report.to_dict()))
    """
)


def run_import_process(
    data_dir: Path,
    legacy_db: Path,
    images_dir: Path | None,
    *,
    kill_at: int = -1,
    probe: Path | None = None,
    prefix: list[str] | None = None,
) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            *(prefix or []),
            sys.executable,
            "-c",
            RUN_IMPORT,
            str(data_dir),
            str(legacy_db),
            str(images_dir or ""),
            str(kill_at),
            str(probe or ""),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(REPO),
    )


def folder_state(folder: Path) -> dict[str, tuple[str, int, int]]:
    return {
        p.name: (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
            stat.S_IMODE(p.stat().st_mode),
        )
        for p in folder.iterdir()
    }


def test_read_only_folder_with_wal(tmp_path: Path) -> None:
    import json

    prefix = _drop_write_privileges()
    sample = build_sample_legacy(tmp_path / "src", wal=True)
    legacy_dir = sample.db.path.parent
    for f in legacy_dir.iterdir():
        f.chmod(0o444)
    legacy_dir.chmod(0o555)
    sample.images_dir.chmod(0o555)
    try:
        before = folder_state(legacy_dir)
        dir_mtime = legacy_dir.stat().st_mtime_ns
        proc = run_import_process(
            tmp_path / "data", sample.db.path, sample.images_dir, probe=legacy_dir, prefix=prefix
        )
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        if prefix:
            assert "READ-ONLY" in err
        report = json.loads(out)
        for key, value in sample.expected.items():
            assert report[key] == value, key
        assert folder_state(legacy_dir) == before  # no -shm, same bytes, same mtimes
        assert legacy_dir.stat().st_mtime_ns == dir_mtime
    finally:
        legacy_dir.chmod(0o755)
        sample.images_dir.chmod(0o755)


# ------------------------------------------------------------------------- kill & resume


def build_big_legacy(root: Path) -> tuple[Path, Path]:
    """100 models: 70 hashed (each 10th a twin of the one before), 30 pending; images."""
    images = root / "imgs"
    models, links = [], []
    tags = [LegacyTag(i, f"tag{i}") for i in range(1, 6)]
    for i in range(1, 101):
        refs = []
        for k in range(1 + i % 2):
            name = f"m{i}_{k}.png"
            make_image(images / name, "rgb_png", (20 + i, 10 + k))
            refs.append(media_url(name))
        if i % 17 == 0:
            refs.append(media_url("missing.png"))
        hashed = i <= 70
        twin_of = i - 1 if hashed and i % 10 == 0 else i
        sha = hashlib.sha256(f"model{twin_of}".encode()).hexdigest() if hashed else ""
        models.append(
            LegacyModel(i, f"/models/m{i}.safetensors", "lora", sha, extra_json={"images": refs})
        )
        links += sorted({(i, 1 + i % 5), (i, 1 + (i * 3) % 5)})
    links.append((500, 1))
    info = build_legacy_db(root / "legacy.sqlite3", tags=tags, models=models, links=links, wal=True)
    return info.path, images


def assert_consistent(db_path: Path) -> None:
    db = DatabaseManager(db_path)
    try:
        assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # Every model the ledger records exists; every legacy model in v3 is recorded.
        dangling = db.conn.execute(
            "SELECT COUNT(*) FROM legacy_import_models l WHERE "
            "(l.sha256 IS NOT NULL AND l.sha256 NOT IN (SELECT sha256 FROM models)) OR "
            "(l.pending_id IS NOT NULL AND l.pending_id NOT IN (SELECT id FROM pending_import))"
        ).fetchone()[0]
        assert dangling == 0
        unrecorded = db.conn.execute(
            "SELECT COUNT(*) FROM models WHERE sha256 NOT IN "
            "(SELECT sha256 FROM legacy_import_models WHERE sha256 IS NOT NULL)"
        ).fetchone()[0]
        assert unrecorded == 0
    finally:
        db.close()


def visible_images(images_dir: Path) -> dict[str, str]:
    """Complete image files (what a reader can see): no .tmp, no empty claims."""
    return {
        k: v
        for k, v in files_of(images_dir).items()
        if not k.split("/")[-1].startswith(".") and v != hashlib.sha256(b"").hexdigest()
    }


@pytest.fixture(scope="module")
def clean_import(tmp_path_factory: pytest.TempPathFactory):
    """The big legacy DB imported once without interruption: the reference result."""
    root = tmp_path_factory.mktemp("clean")
    legacy, images = build_big_legacy(root / "src")
    services = Services.open(Config.load(data_dir=root / "data", env={}))
    try:
        report = import_into(services, legacy, images)
        yield legacy, images, dump_v3(services.db), files_of(services.config.images_dir), report
    finally:
        services.close()


@pytest.mark.parametrize("when", ["model 3", "model 70", "external"])
def test_kill_in_the_middle_then_resume(clean_import, tmp_path: Path, when: str) -> None:
    legacy, images, rows, files, clean_report = clean_import
    assert clean_report.active_models == 63 and clean_report.merged_duplicates == 7
    assert clean_report.pending_models == 30 and clean_report.dangling_links == 1
    data = tmp_path / "data"
    if when == "external":
        proc = run_import_process(data, legacy, images)
        wait_until(
            lambda: any((data / "images").glob("*_high.webp")),
            timeout=60,
            interval=0.005,
            message="the import's first image",
        )
        proc.send_signal(signal.SIGKILL)
    else:
        proc = run_import_process(data, legacy, images, kill_at=int(when.split()[1]))
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert_consistent(data / "hikaze_mm.db")
    db = DatabaseManager(data / "hikaze_mm.db")
    done = db.conn.execute("SELECT COUNT(*) FROM legacy_import_models").fetchone()[0]
    db.close()
    assert done < 100  # really interrupted
    services = Services.open(Config.load(data_dir=data, env={}))  # cleans partial files
    try:
        report = import_into(services, legacy, images)
        assert report.already_imported == done
        assert dump_v3(services.db) == rows
        assert visible_images(services.config.images_dir) == files
        assert files_of(services.config.images_dir) == files  # no leftovers either
    finally:
        services.close()
