"""Issue 12: a base model for every model (probes, backfill, ``unknown``) and duplicates
(every path a model's content is found at; the listing; deleting an extra copy)."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.database import DatabaseManager
from hikaze_mm.library.requests import ModelPatch
from hikaze_mm.probe import classify
from hikaze_mm.server import create_app
from hikaze_mm.services import Services
from tests.conftest import on_each_backend, sqlite_only
from tests.helpers import run_cli, same_origin_headers, sha256_of
from tests.legacy_fixtures import build_sample_legacy, import_into
from tests.library_helpers import assert_error, services_of
from tests.test_probe import write_safetensors

config = on_each_backend()

LORA_KEY = "lora_unet_down_blocks_0_attn1_to_q.lora_down.weight"


def lora(path: Path, metadata: dict[str, str] | None = None, *, pad: int = 0) -> str:
    """A tiny LoRA safetensors file with ``metadata``; its sha256 (``pad`` makes it unique)."""
    write_safetensors(path, {LORA_KEY: [4, 320 + pad]}, metadata)
    return sha256_of(path)


SDXL_META = {"ss_base_model_version": "sdxl_base_v1-0", "ss_network_module": "networks.lora"}


# ---------------------------------------------------------------------- the probe
@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ({"ss_base_model_version": "sd_v1"}, "SD1.x"),
        ({"ss_base_model_version": "sd_v2_768_v"}, "SD2.x"),
        ({"ss_base_model_version": "sdxl_base_v1-0"}, "SDXL"),
        ({"modelspec.architecture": "stable-diffusion-xl-v1-refiner/lora"}, "SDXL Refiner"),
        ({"ss_base_model_version": "sd3"}, "SD3"),
        ({"ss_base_model_version": "flux1"}, "Flux.1"),
        (
            {"ss_base_model_version": "sdxl_base_v1-0", "ss_sd_model_name": "ponyDiffusionV6XL"},
            "Pony",
        ),
        ({"modelspec.architecture": "stable-diffusion-xl-v1-base/lora/pony"}, "Pony"),
        (
            {
                "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
                "ss_sd_model_name": "Illustrious-XL-v0.1.safetensors",
            },
            "Illustrious",
        ),
        ({"ss_base_model_version": "illustrious_xl"}, "Illustrious"),
        ({"modelspec.architecture": "hunyuan-video/lora"}, "Hunyuan Video"),
        ({"modelspec.architecture": "wan2.1-t2v-14b/lora"}, "Wan"),
        ({"modelspec.architecture": "ltx-video/lora"}, "LTX Video"),
        ({"ss_sd_model_name": "ponyDiffusionV6XL"}, "Pony"),
    ],
)
def test_metadata_names_the_family(metadata: dict[str, str], expected: str) -> None:
    assert classify({LORA_KEY: {"shape": [4, 320]}}, metadata).base == expected


def test_a_pony_name_does_not_turn_flux_into_pony() -> None:
    meta = {"ss_base_model_version": "flux1", "ss_sd_model_name": "pony_flux_test"}
    assert classify({LORA_KEY: {"shape": [4, 320]}}, meta).base == "Flux.1"


# ---------------------------------------------------------------------- probing on the way in
def test_promotion_and_relink_probe_the_header(services: Services, models_root: Path) -> None:
    sha = lora(models_root / "loras" / "style.safetensors", SDXL_META)
    report = services.scanner.scan(immediate_hashing=True)
    assert report.counts.promoted == 1
    model = services.db.models.get(sha)
    assert model["base"] == "SDXL" and model["meta"]["sources"] == {"base": "probe"}
    # A probed base may be probed again; a relink probes the file it moves to.
    services.db.models.update(sha, base=None)
    (models_root / "loras" / "style.safetensors").rename(
        models_root / "loras" / "moved.safetensors"
    )
    report = services.scanner.scan()
    assert report.counts.renamed == 1
    assert services.db.models.get(sha)["base"] == "SDXL"


def test_legacy_loras_have_their_base_after_stage_1_and_2(
    services: Services, tmp_path: Path
) -> None:
    sample = build_sample_legacy(tmp_path / "old")
    import_into(services, sample.db.path, sample.images_dir, workers=1)
    assert services.db.models.get(sample.shas[2])["base"] == "SDXL"  # hashed: Stage 1
    for pending in services.db.pending.list():
        services.promoter.promote(pending["id"], "merge")
    loras = [services.db.models.get(sha) for sha in services.db.listing.all_sha256s()]
    bases = {Path(m["path"]).name: m["base"] for m in loras if m["type"] == "loras"}
    assert bases == {"two.safetensors": "SDXL", "four.safetensors": "SD1.x"}


def test_probe_never_overwrites_another_source(services: Services, models_root: Path) -> None:
    sha = lora(models_root / "loras" / "a.safetensors", SDXL_META)
    services.scanner.scan(immediate_hashing=True)
    services.models.patch(sha, ModelPatch(base="My base"))
    assert services.db.models.set_probed_base(sha, "SDXL") is False
    assert services.db.models.get(sha)["base"] == "My base"
    services.models.patch(sha, ModelPatch(base=None))  # a user's "no base" stays too
    assert services.db.models.set_probed_base(sha, "SDXL") is False
    assert services.db.models.probe_targets() == []
    services.db.models.update(sha, base="Civitai name", meta={"sources": {"base": "civitai"}})
    assert services.db.models.set_probed_base(sha, "SDXL") is False


async def test_probe_api_all_keeps_the_users_base(
    aiohttp_client, config: Config, models_root: Path
) -> None:
    client = await aiohttp_client(create_app(Services.open(config)))
    svc = services_of(client)
    user_sha = lora(models_root / "loras" / "user.safetensors", SDXL_META, pad=1)
    probed_sha = lora(models_root / "loras" / "probed.safetensors", SDXL_META, pad=2)
    plain_sha = lora(models_root / "loras" / "plain.safetensors", None, pad=3)
    await asyncio.to_thread(svc.scanner.scan, immediate_hashing=True)
    headers = same_origin_headers(client)
    resp = await client.patch(f"/api/models/{user_sha}", json={"base": "Mine"}, headers=headers)
    assert resp.status == 200
    # A probed base that went stale is probed again with all=true.
    svc.db.models.update(probed_sha, base="Old probe")
    # The plain LoRA names no base: it is "unknown" in the listing and the facet.
    listing = await (await client.get("/api/models?base=unknown")).json()
    assert [m["sha256"] for m in listing["items"]] == [plain_sha]
    bases = {b["base"]: b["count"] for b in await (await client.get("/api/models/bases")).json()}
    assert bases == {"Mine": 1, "Old probe": 1, "unknown": 1}

    await assert_error(
        await client.post("/api/models/probe", json={"all": "yes"}, headers=headers), 400
    )
    resp = await client.post("/api/models/probe", json={"all": True}, headers=headers)
    assert resp.status == 202
    assert (await resp.json())["mode"] == "all"
    await asyncio.to_thread(svc.prober.wait)
    status = await (await client.get("/api/models/probe/status")).json()
    assert status["running"] is False and status["last_report"]["total"] == 2
    assert svc.db.models.get(user_sha)["base"] == "Mine"
    assert svc.db.models.get(probed_sha)["base"] == "SDXL"
    assert svc.db.models.get(plain_sha)["base"] is None


@sqlite_only
def test_cli_probe(config: Config, models_root: Path, data_dir: Path) -> None:
    svc = Services.open(config)
    try:
        sha = lora(models_root / "loras" / "a.safetensors", SDXL_META)
        user_sha = lora(models_root / "loras" / "b.safetensors", SDXL_META, pad=1)
        svc.scanner.scan(immediate_hashing=True)
        svc.db.models.update(sha, base=None, meta={})
        svc.models.patch(user_sha, ModelPatch(base="Mine"))
    finally:
        svc.close()
    args = ("--data-dir", str(data_dir), "--models-root", str(models_root))
    done = run_cli(*args, "probe", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["total"] == 1 and report["counts"]["set"] == 1
    done = run_cli(*args, "probe", "--all")
    assert done.returncode == 0, done.stderr
    assert "1 model to probe" in done.stdout
    with sqlite3.connect(config.db_path) as conn:
        bases = dict(conn.execute("SELECT sha256, base FROM models"))
    assert bases == {sha: "SDXL", user_sha: "Mine"}


@sqlite_only
def test_upgrade_backfills_bases_once(config: Config, models_root: Path) -> None:
    sha = lora(models_root / "loras" / "old.safetensors", SDXL_META)
    config.ensure_dirs()
    old = DatabaseManager(config.db_path)
    old.conn.execute("PRAGMA journal_mode = WAL")
    old.upgrade_to(7)
    path = str(models_root / "loras" / "old.safetensors")
    old.conn.execute(
        "INSERT INTO models (sha256, path, name, type, size_bytes) VALUES (?, ?, 'old', "
        "'loras', 10)",
        (sha, path),
    )
    old.close()
    svc = Services.open(config)
    try:
        assert svc.prober.wait(30)
        assert svc.db.models.get(sha)["base"] == "SDXL"
        assert svc.db.state.get("probe_backfill")["done"] is True
        assert svc.db.models.files([sha]) == {sha: [path]}  # the primary path
        svc.db.models.update(sha, base=None)
    finally:
        svc.close()
    svc = Services.open(config)  # the backfill ran once: not again
    try:
        assert svc.prober.wait(30) and svc.prober.status()["started_at"] is None
        assert svc.db.models.get(sha)["base"] is None
    finally:
        svc.close()


# ---------------------------------------------------------------------- duplicates
async def test_duplicates_follow_copies_moves_and_deletes(
    aiohttp_client, config: Config, models_root: Path
) -> None:
    client = await aiohttp_client(create_app(Services.open(config)))
    svc = services_of(client)

    def scan() -> None:
        svc.scanner.scan(immediate_hashing=True, conf_strategy="delete")

    async def groups() -> list[dict]:
        await asyncio.to_thread(scan)
        resp = await client.get("/api/duplicates")
        assert resp.status == 200
        return await resp.json()

    primary = models_root / "loras" / "a.safetensors"
    sha = lora(primary, SDXL_META)
    size = primary.stat().st_size
    small = lora(models_root / "loras" / "small.safetensors", None, pad=5)
    assert await groups() == []

    copy = models_root / "loras" / "sub" / "a_copy.safetensors"
    copy.parent.mkdir()
    shutil.copyfile(primary, copy)
    shutil.copyfile(models_root / "loras" / "small.safetensors", models_root / "s2.safetensors")
    shutil.copyfile(models_root / "loras" / "small.safetensors", models_root / "s3.safetensors")
    found = await groups()
    by_sha = {g["sha256"]: g for g in found}
    assert by_sha[sha] == {
        "sha256": sha,
        "name": "a",
        "size_bytes": size,
        "paths": [str(primary), str(copy)],
        "wasted_bytes": size,
    }
    assert by_sha[small]["wasted_bytes"] == 2 * by_sha[small]["size_bytes"]
    wastes = [g["wasted_bytes"] for g in found]
    assert wastes == sorted(wastes, reverse=True)
    assert await groups() == found  # a rescan (cached copies) changes nothing

    moved = models_root / "other" / "a_moved.safetensors"
    moved.parent.mkdir()
    copy.rename(moved)
    by_sha = {g["sha256"]: g for g in await groups()}
    assert by_sha[sha]["paths"] == [str(primary), str(moved)]

    moved.unlink()
    by_sha = {g["sha256"]: g for g in await groups()}
    assert sha not in by_sha and small in by_sha

    # The primary file vanishes while a copy is left: the primary moves there.
    shutil.copyfile(primary, copy)
    await groups()
    primary.unlink()
    assert {g["sha256"] for g in await groups()} == {small}
    model = svc.db.models.get(sha)
    assert model["path"] == str(copy) and model["missing"] is False


async def test_delete_an_extra_copy(
    aiohttp_client, config: Config, models_root: Path, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(Services.open(config)))
    svc = services_of(client)
    headers = same_origin_headers(client)
    primary = models_root / "loras" / "a.safetensors"
    sha = lora(primary, SDXL_META)
    copy = models_root / "loras" / "b.safetensors"
    shutil.copyfile(primary, copy)
    await asyncio.to_thread(svc.scanner.scan, immediate_hashing=True, conf_strategy="delete")
    assert svc.db.models.files([sha]) == {sha: [str(primary), str(copy)]}
    outside = tmp_path / "outside.safetensors"
    shutil.copyfile(primary, outside)
    svc.db.models.add_files([(sha, str(outside), outside.stat().st_size)])

    url = f"/api/models/{sha}/files"
    await assert_error(await client.delete(url, params={"path": str(copy)}, headers=headers), 400)
    await assert_error(
        await client.delete(
            url, params={"path": str(models_root / "x"), "confirm": "true"}, headers=headers
        ),
        404,
    )
    await assert_error(
        await client.delete(url, params={"path": str(outside), "confirm": "true"}, headers=headers),
        403,
    )
    assert outside.exists()
    svc.db.models.remove_files([str(outside)])

    # Deleting the primary moves it to the surviving copy.
    resp = await client.delete(
        url, params={"path": str(primary), "confirm": "true"}, headers=headers
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["path"] == str(copy) and body["paths"] == [str(copy)]
    assert not primary.exists() and copy.exists()
    assert svc.db.models.get(sha)["path"] == str(copy)
    # Never the last copy.
    await assert_error(
        await client.delete(url, params={"path": str(copy), "confirm": "true"}, headers=headers),
        409,
    )
    assert copy.exists()
    assert await (await client.get("/api/duplicates")).json() == []
