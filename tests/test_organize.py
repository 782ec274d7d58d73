"""Organizing files: the path template, moves in a real library (same and across file
systems), refusals, dry runs, crashes (a real SIGKILL) that converge, the API and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hikaze_mm.config import Config
from hikaze_mm.errors import ValidationError
from hikaze_mm.library.file_moves import CopyMismatch, copy_verified, temp_path
from hikaze_mm.library.move_journal import JOURNAL_KEY
from hikaze_mm.library.path_template import (
    MAX_SEGMENT_BYTES,
    render_template,
    template_values,
)
from hikaze_mm.library.requests import ModelMove
from hikaze_mm.services import Services
from tests.conftest import on_each_backend, sqlite_only
from tests.helpers import REPO, cli_env, run_cli, same_origin_headers, write_model
from tests.library_helpers import assert_error, services_of
from tests.waiting import wait_until

config = on_each_backend()

INFO = {
    "id": 101,
    "modelId": 11,
    "name": "v1.0",
    "model": {"name": "Alpha LoRA", "nsfw": False},
    "trainedWords": ["alpha"],
    "baseModel": "SDXL 1.0",
    "nsfwLevel": 1,
}
TEMPLATE = "{base_model}/{model_name}"


# ---------------------------------------------------------------- the template
def test_template_values_are_cleaned_into_one_segment_each() -> None:
    values = {
        "base_model": "../../etc",
        "model_name": 'a/b\\c:d*e?f"g<h>i|j\x00k\x1fl',
        "version_name": " .. ",
        "author": "CON",
        "first_tag": "x" * 400,
    }
    out = render_template("{base_model}/{model_name}/{version_name}/{author}/{first_tag}", values)
    parts = out.split("/")
    assert parts[0] == "_.._etc"
    assert parts[1] == "a_b_c_d_e_f_g_h_i_j_k_l"
    assert parts[2] == "unknown"  # nothing left once cleaned
    assert parts[3] == "CON_"  # a name Windows reserves
    assert len(parts[4].encode()) == MAX_SEGMENT_BYTES
    assert not os.path.isabs(out) and ".." not in parts


def test_template_empty_values_become_unknown_and_reserved_names_change() -> None:
    assert render_template("{base_model}/{author}", {}) == "unknown/unknown"
    assert render_template("{base_model} - {version_name}", {"base_model": "SDXL"}) == (
        "SDXL - unknown"
    )
    assert render_template("lpt1.{author}", {"author": "x"}) == "lpt1.x_"
    assert render_template("{model_name}.", {"model_name": "dots..."}) == "dots"
    assert render_template("literal{{x}}", {}) == "literal{x}"
    assert render_template("{model_name}", {"model_name": "ü" * 100}).encode() == (
        ("ü" * 60).encode()
    )


@pytest.mark.parametrize(
    "template, words",
    [
        ("{nope}/{base_model}/{worse}", ["nope", "worse"]),
        ("/abs/{base_model}", ["relative"]),
        ("C:/x", ["control characters"]),
        ("a/../b", ["'..'"]),
        ("a/{", ["stray"]),
        ("{}", ["{}"]),
        ("/".join(["a"] * 9), ["at most 8"]),
    ],
)
def test_bad_templates_are_refused_naming_the_fault(template: str, words: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        render_template(template, {})
    for word in words:
        assert word in info.value.detail


def test_template_values_of_a_record() -> None:
    record = {
        "name": "file name",
        "base": None,
        "tags": [{"name": "zeta"}, {"name": "Alpha"}],
        "meta": {
            "civitai": {
                "model_name": "M",
                "version_name": "V",
                "base_model": "Pony",
                "creator": {"username": "someone"},
            }
        },
    }
    assert template_values(record) == {
        "base_model": "Pony",
        "model_name": "M",
        "version_name": "V",
        "author": "someone",
        "first_tag": "Alpha",
    }
    assert template_values({"name": "n", "base": "SD1", "tags": [], "meta": {}}) == {
        "base_model": "SD1",
        "model_name": "n",
    }


# ---------------------------------------------------------------- a real library
def _lora(services: Services, root: Path, name: str = "alpha") -> dict[str, Any]:
    """A LoRA with a Civitai Helper sidecar and a preview, scanned and promoted, tagged."""
    folder = root / "loras"
    write_model(folder / f"{name}.safetensors", 3000, seed=len(name))
    (folder / f"{name}.civitai.info").write_text(json.dumps(INFO), encoding="utf-8")
    shutil.copy(REPO / "hikaze_mm" / "web" / "favicon.svg", folder / f"{name}.txt")
    _png(folder / f"{name}.preview.png")
    report = services.scanner.scan(immediate_hashing=True).to_dict()
    assert report["counts"]["promoted"] >= 1
    record = services.db.models.get_by_path(folder / f"{name}.safetensors")
    assert record is not None
    services.db.models.add_tags(record["sha256"], ["style"])
    return services.db.models.get(record["sha256"])


def _png(path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (32, 24), (200, 10, 10)).save(path, "PNG")


def _cache_row(services: Services, path: str) -> tuple | None:
    return services.db.hash_cache.rows([path]).get(path)


def _move(services: Services, sha: str, **kw: Any) -> dict[str, Any]:
    return services.organizer.move(ModelMove(sha256s=(sha,), **kw))


def test_same_fs_move_keeps_everything_and_never_rehashes(
    services: Services, models_root: Path
) -> None:
    record = _lora(services, models_root)
    sha, old = record["sha256"], record["path"]
    images = services.images.list_seqs(sha)
    assert images and record["base"] == "SDXL 1.0"
    old_row = _cache_row(services, old)
    old_sidecars = {p for p in services.db.sidecars.below([str(models_root)])}
    assert old_sidecars == {
        str(models_root / "loras" / n) for n in ("alpha.civitai.info", "alpha.preview.png")
    }

    result = _move(services, sha, template=TEMPLATE)
    new_dir = models_root / "loras" / "SDXL 1.0" / "Alpha LoRA"
    new = str(new_dir / "alpha.safetensors")
    assert result["counts"]["moved"] == 1
    assert result["results"] == [
        {"sha256": sha, "from": old, "to": new, "status": "moved", "error": None}
    ]
    assert not os.path.exists(old) and os.path.isfile(new)
    for name in ("alpha.civitai.info", "alpha.preview.png", "alpha.txt"):
        assert (new_dir / name).is_file() and not (models_root / "loras" / name).exists()
    moved = services.db.models.get(sha)
    assert moved["path"] == new and not moved["missing"]
    assert [t["name"] for t in moved["tags"]] == ["style"]
    assert moved["meta"] == record["meta"] and services.images.list_seqs(sha) == images
    # the cache row followed the file, with its stat (a rename keeps inode and mtime)
    st = os.stat(new)
    assert _cache_row(services, new) == (new, st.st_size, st.st_mtime_ns, st.st_ino, sha)
    assert old_row[1:] == _cache_row(services, new)[1:] and _cache_row(services, old) is None
    assert set(services.db.sidecars.below([str(models_root)])) == {
        str(new_dir / "alpha.civitai.info"),
        str(new_dir / "alpha.preview.png"),
    }
    assert services.organizer.journal.entries() == {}
    # a scan afterwards finds everything in place: nothing hashed, read, queued or moved
    counts = services.scanner.scan().to_dict()["counts"]
    assert (counts["hashed"], counts["new"], counts["moved"], counts["sidecars"]) == (0, 0, 0, 0)
    assert counts["unchanged"] == 1 and services.db.pending.count() == 0
    # moving again to the same template changes nothing
    again = _move(services, sha, template=TEMPLATE)["results"][0]
    assert again["status"] == "unchanged" and again["to"] == new


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    """A folder on another file system (the tmpfs /dev/shm), or a skip."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system (/dev/shm) here")
    folder = shm / f"hikaze-organize-{uuid.uuid4().hex}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_cross_fs_move_copies_verifies_and_deletes(
    data_dir: Path, models_root: Path, other_fs: Path
) -> None:
    config = Config.load(data_dir=data_dir, model_roots=[str(models_root), str(other_fs)], env={})
    services = Services.open(config)
    try:
        record = _lora(services, models_root)
        sha, old = record["sha256"], record["path"]
        result = _move(services, sha, folder=str(other_fs / "loras" / "far"))["results"][0]
        new = str(other_fs / "loras" / "far" / "alpha.safetensors")
        assert result["status"] == "moved" and result["to"] == new, result
        assert not os.path.exists(old) and os.path.isfile(new)
        assert not os.path.exists(temp_path(new))
        assert (other_fs / "loras" / "far" / "alpha.civitai.info").is_file()
        assert services.db.models.get(sha)["path"] == new
        st = os.stat(new)
        assert _cache_row(services, new) == (new, st.st_size, st.st_mtime_ns, st.st_ino, sha)
        counts = services.scanner.scan().to_dict()["counts"]
        assert (counts["hashed"], counts["new"], counts["moved"]) == (0, 0, 0)
        assert services.db.pending.count() == 0
    finally:
        services.close()


def test_a_copy_with_other_bytes_is_refused_and_deleted(tmp_path: Path) -> None:
    source = tmp_path / "a.safetensors"
    sha = write_model(source, 5000)
    dest = tmp_path / "copy.safetensors"
    assert copy_verified(str(source), str(dest), sha)[0] == 5000
    assert dest.read_bytes() == source.read_bytes()
    with pytest.raises(CopyMismatch, match="not " + "0" * 64):
        copy_verified(str(source), str(tmp_path / "bad"), "0" * 64)
    assert not (tmp_path / "bad").exists() and source.is_file()
    with pytest.raises(FileExistsError):
        copy_verified(str(source), str(dest), sha)  # never over an existing file


def test_refusals_change_nothing(services: Services, models_root: Path, tmp_path: Path) -> None:
    record = _lora(services, models_root)
    sha, old = record["sha256"], record["path"]
    outside = tmp_path / "elsewhere"
    result = _move(services, sha, folder=str(outside))["results"][0]
    assert result["status"] == "failed" and "outside the model roots" in result["error"]
    escape = _move(services, sha, folder="../../..")["results"][0]
    assert escape["status"] == "failed" and "outside the model roots" in escape["error"]

    taken = models_root / "loras" / "taken"
    write_model(taken / "alpha.safetensors", b"someone else's file")
    result = _move(services, sha, folder=str(taken))["results"][0]
    assert result["status"] == "failed" and "exists" in result["error"]
    assert (taken / "alpha.safetensors").read_bytes() == b"someone else's file"

    sidecar_taken = models_root / "loras" / "sidecar"
    sidecar_taken.mkdir()
    (sidecar_taken / "alpha.preview.png").write_bytes(b"mine")
    result = _move(services, sha, folder=str(sidecar_taken))["results"][0]
    assert result["status"] == "failed" and "alpha.preview.png exists" in result["error"]
    assert (sidecar_taken / "alpha.preview.png").read_bytes() == b"mine"

    assert os.path.isfile(old) and services.db.models.get(sha)["path"] == old
    assert not (outside / "alpha.safetensors").exists()
    assert services.organizer.journal.entries() == {}

    os.rename(old, old + ".gone")
    result = _move(services, sha, template=TEMPLATE)["results"][0]
    assert result["status"] == "failed" and "missing" in result["error"]
    unknown = _move(services, "f" * 64, template=TEMPLATE)["results"][0]
    assert unknown["status"] == "failed" and unknown["from"] is None


def test_dry_run_plans_and_changes_nothing(services: Services, models_root: Path) -> None:
    record = _lora(services, models_root)
    before = sorted(p.relative_to(models_root) for p in models_root.rglob("*"))
    result = _move(services, record["sha256"], template=TEMPLATE, dry_run=True)
    planned = result["results"][0]
    assert planned["status"] == "planned"
    assert planned["to"] == str(models_root / "loras/SDXL 1.0/Alpha LoRA/alpha.safetensors")
    assert sorted(p.relative_to(models_root) for p in models_root.rglob("*")) == before
    assert services.db.models.get(record["sha256"])["path"] == record["path"]
    assert services.db.state.get(JOURNAL_KEY) is None


def test_two_models_sent_to_one_path_move_once(services: Services, models_root: Path) -> None:
    a = _lora(services, models_root)
    write_model(models_root / "vae" / "alpha.safetensors", 4000, seed=9)
    services.scanner.scan(immediate_hashing=True)
    b = services.db.models.get_by_path(models_root / "vae" / "alpha.safetensors")
    both = (a["sha256"], b["sha256"])
    shared = str(models_root / "shared")
    plan = services.organizer.move(ModelMove(sha256s=both, folder=shared, dry_run=True))
    assert [r["status"] for r in plan["results"]] == ["planned", "failed"], plan
    assert "another model of this request" in plan["results"][1]["error"]
    report = services.organizer.move(ModelMove(sha256s=both, folder=shared))
    assert [r["status"] for r in report["results"]] == ["moved", "failed"], report
    assert "exists; not overwriting it" in report["results"][1]["error"]
    assert services.db.models.get(b["sha256"])["path"] == b["path"]


def test_a_scan_between_the_rename_and_the_commit_relinks_without_hashing(
    services: Services, models_root: Path
) -> None:
    """What the watcher would see mid-move: the file at its target, the library not yet
    updated. The target's cache row, written first, makes it known by its hash."""
    record = _lora(services, models_root)
    organizer = services.organizer
    plan = organizer.plan(record, models_root / "loras" / "later")
    organizer.transfer(plan, organizer.begin(plan))
    report = services.scanner.scan_folders([str(models_root / "loras")]).to_dict()
    counts = report["counts"]
    assert (counts["hashed"], counts["new"], counts["moved"]) == (0, 0, 1), counts
    assert services.db.pending.count() == 0
    assert organizer.converge(record["sha256"]) is True
    assert services.db.models.get(record["sha256"])["path"] == plan.target
    assert (models_root / "loras" / "later" / "alpha.civitai.info").is_file()


def test_the_watcher_sees_a_move_as_nothing_new(services: Services, models_root: Path) -> None:
    """With the watcher on, a move raises file events in both folders: its scans find the
    model where the library says it is, hash nothing and queue nothing."""
    record = _lora(services, models_root)
    services.start_watching()
    try:
        assert services.scanner.status()["watch"]["mode"] == "watching"
        before = services.scanner.watch.incremental_scans
        result = _move(services, record["sha256"], template=TEMPLATE)["results"][0]
        assert result["status"] == "moved"
        wait_until(
            lambda: (
                services.scanner.watch.incremental_scans > before
                and not services.scanner.job.running
            ),
            timeout=20,
            message="the watcher to scan the folders of the move",
        )
        report = services.scanner.status()["last_report"]
        counts = report["counts"]
        assert (counts["hashed"], counts["new"], counts["moved"]) == (0, 0, 0), report
        assert services.db.pending.count() == 0
        assert services.db.models.get(record["sha256"])["path"] == result["to"]
    finally:
        services.watcher.close()


# ---------------------------------------------------------------- crashes (SIGKILL)
CHILD = """
import os, signal, sys
from pathlib import Path
from hikaze_mm.config import Config
from hikaze_mm.services import Services
data, roots, sha, folder, stop = sys.argv[1:6]
config = Config.load(data_dir=data, model_roots=roots.split(os.pathsep), env={})
services = Services.open(config)
organizer = services.organizer
plan = organizer.plan(services.db.models.get(sha), Path(folder))
entry = organizer.begin(plan)
if stop == "after-rename":
    organizer.transfer(plan, entry)
if stop == "after-copy":  # across file systems: verified and journaled, not yet renamed
    os.makedirs(os.path.dirname(plan.target), exist_ok=True)
    organizer.copy_across(plan, entry)
print("killing", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_child(config: Config, sha: str, folder: Path, stop: str) -> None:
    roots = os.pathsep.join(str(r.path) for r in config.model_roots)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(config.data_dir), roots, sha, str(folder), stop],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        cwd=str(REPO),
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "killing" in proc.stdout


@sqlite_only
def test_killed_before_the_rename_keeps_the_old_path(config: Config, models_root: Path) -> None:
    services = Services.open(config)
    record = _lora(services, models_root)
    services.close()
    target = models_root / "loras" / "dest"
    _killed_child(config, record["sha256"], target, "before-rename")
    services = Services.open(config)  # the lock is free: it converges what the child left
    try:
        assert services.organizer.journal.entries() == {}
        assert services.db.models.get(record["sha256"])["path"] == record["path"]
        assert os.path.isfile(record["path"])
        assert _cache_row(services, str(target / "alpha.safetensors")) is None
        assert not (target / "alpha.civitai.info").exists()
    finally:
        services.close()


@sqlite_only
def test_killed_after_the_rename_follows_the_new_path(config: Config, models_root: Path) -> None:
    services = Services.open(config)
    record = _lora(services, models_root)
    services.close()
    target = models_root / "loras" / "dest"
    _killed_child(config, record["sha256"], target, "after-rename")
    assert (target / "alpha.safetensors").is_file() and not os.path.exists(record["path"])
    assert (models_root / "loras" / "alpha.civitai.info").is_file()  # not moved yet
    services = Services.open(config)
    try:
        new = str(target / "alpha.safetensors")
        assert services.organizer.journal.entries() == {}
        assert services.db.models.get(record["sha256"])["path"] == new
        assert (target / "alpha.civitai.info").is_file()  # the sidecars followed
        assert not (models_root / "loras" / "alpha.civitai.info").exists()
        counts = services.scanner.scan().to_dict()["counts"]
        assert (counts["hashed"], counts["new"], counts["sidecars"]) == (0, 0, 0), counts
        assert [t["name"] for t in services.db.models.get(record["sha256"])["tags"]] == ["style"]
    finally:
        services.close()


def test_killed_after_a_verified_copy_rolls_forward(
    data_dir: Path, models_root: Path, other_fs: Path
) -> None:
    config = Config.load(data_dir=data_dir, model_roots=[str(models_root), str(other_fs)], env={})
    services = Services.open(config)
    record = _lora(services, models_root)
    services.close()
    target = other_fs / "loras"
    _killed_child(config, record["sha256"], target, "after-copy")
    new = target / "alpha.safetensors"
    assert Path(temp_path(str(new))).is_file() and os.path.isfile(record["path"])
    services = Services.open(config)
    try:
        assert services.db.models.get(record["sha256"])["path"] == str(new)
        assert new.is_file() and not os.path.exists(record["path"])
        assert not Path(temp_path(str(new))).exists()
        counts = services.scanner.scan().to_dict()["counts"]
        assert (counts["hashed"], counts["new"]) == (0, 0), counts
    finally:
        services.close()


def test_a_live_owner_keeps_its_entry(services: Services, models_root: Path) -> None:
    """An entry of this (live) process is not recovered at open: it is still moving."""
    record = _lora(services, models_root)
    plan = services.organizer.plan(record, models_root / "loras" / "x")
    services.organizer.begin(plan)
    assert services.organizer.recover() == 0
    assert record["sha256"] in services.organizer.journal.entries()
    assert services.organizer.converge(record["sha256"]) is False  # never renamed
    assert services.organizer.journal.entries() == {}


# ---------------------------------------------------------------- whole library, API, CLI
def test_organize_moves_every_model(services: Services, models_root: Path) -> None:
    _lora(services, models_root, "alpha")
    _lora(services, models_root, "beta")
    report = services.organizer.organize(TEMPLATE)
    assert report["counts"]["moved"] == 2, report
    folder = models_root / "loras" / "SDXL 1.0" / "Alpha LoRA"
    assert {p.name for p in folder.iterdir()} >= {"alpha.safetensors", "beta.safetensors"}
    assert services.organizer.organize(TEMPLATE)["counts"] == {
        "moved": 0,
        "unchanged": 2,
        "planned": 0,
        "failed": 0,
    }
    with pytest.raises(ValidationError, match="HIKAZE_DOWNLOAD_TEMPLATE"):
        services.organizer.organize()


async def test_api_moves_and_refuses_bad_bodies(client, models_root: Path) -> None:
    services = services_of(client)
    record = _lora(services, models_root)
    sha = record["sha256"]
    headers = same_origin_headers(client)

    async def post(body: Any):
        return await client.post("/api/models/move", json=body, headers=headers)

    for body, word in [
        ({}, "give sha256s"),
        ({"sha256s": [sha], "sha256": sha, "folder": "x"}, "not both"),
        ({"sha256s": "abc"}, "sha256s"),
        ({"sha256s": [sha], "template": "{nope}"}, "nope"),
        ({"sha256s": [sha], "template": "/abs"}, "relative"),
        ({"sha256s": [sha]}, "HIKAZE_DOWNLOAD_TEMPLATE"),
        ({"sha256s": [sha], "template": TEMPLATE, "dry_run": "yes"}, "dry_run"),
        ({"sha256s": [sha], "what": 1}, "unknown"),
        ({"sha256": sha, "folder": ""}, "folder"),
        ({"sha256": "xyz", "folder": "a"}, "SHA-256"),
    ]:
        error = await assert_error(await post(body), 400)
        assert word in error["detail"], (body, error)
    assert os.path.isfile(record["path"])

    resp = await post({"sha256s": [sha], "template": TEMPLATE, "dry_run": True})
    assert resp.status == 200 and (await resp.json())["results"][0]["status"] == "planned"
    resp = await post({"sha256": sha, "folder": "sub"})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["results"][0]["to"] == str(models_root / "loras" / "sub" / "alpha.safetensors")
    assert body["counts"]["moved"] == 1
    assert services.db.models.get(sha)["path"] == body["results"][0]["to"]


@sqlite_only
def test_cli_organize_dry_run_then_moves(config: Config, models_root: Path) -> None:
    services = Services.open(config)
    record = _lora(services, models_root)
    services.close()
    args = ["--data-dir", str(config.data_dir), "--models-root", str(models_root)]
    plain = run_cli("organize", *args)
    assert plain.returncode == 2 and "HIKAZE_DOWNLOAD_TEMPLATE" in plain.stderr
    assert len(plain.stderr.strip().splitlines()) == 1
    dry = run_cli("organize", "--dry-run", *args, env_extra={"HIKAZE_DOWNLOAD_TEMPLATE": TEMPLATE})
    assert dry.returncode == 0, dry.stderr
    new = models_root / "loras" / "SDXL 1.0" / "Alpha LoRA" / "alpha.safetensors"
    assert f"would move: {record['path']} -> {new}" in dry.stdout
    assert "1 model to move" in dry.stdout and os.path.isfile(record["path"])
    done = run_cli("organize", "--template", TEMPLATE, "--json", *args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["status"] == "moved"
    assert new.is_file() and not os.path.exists(record["path"])
