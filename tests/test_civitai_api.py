"""Trigger words and preferred weight over real HTTP (``GET``/``PATCH /api/models/{sha256}``,
the listing), the Civitai endpoints (``POST /api/civitai/fetch``, ``GET
/api/civitai/status``, ``POST /api/models/{sha256}/civitai``) and ``hikaze-mm civitai``,
all against our own Civitai on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from hikaze_mm.config import CivitaiSettings, Config
from hikaze_mm.library.requests import ModelPatch
from hikaze_mm.server import create_app
from hikaze_mm.services import Services
from tests.civitai_fake import FakeCivitai, Reply, free_port_url
from tests.helpers import run_cli, same_origin_headers, start_server, stop
from tests.library_helpers import assert_error, seed_model, sha_for
from tests.waiting import wait_until_async

A, B, C = (sha_for(x) for x in ("alpha", "beta", "gamma"))
BATCH = "/api/v1/model-versions/by-hash"  # a batch's POST


async def open_client(aiohttp_client, config: Config, settings: CivitaiSettings):
    svc = Services.open(dataclasses.replace(config, civitai=settings))
    for label in ("alpha", "beta", "gamma"):
        seed_model(svc, label)
    return await aiohttp_client(create_app(svc)), svc


@pytest.fixture
async def api(aiohttp_client, config: Config, fake: FakeCivitai):
    return await open_client(aiohttp_client, config, fake.settings())


async def get_json(client, path: str) -> Any:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def patch(client, sha: str, body: dict[str, Any]):
    return await client.patch(f"/api/models/{sha}", json=body, headers=same_origin_headers(client))


async def post(client, path: str, body: dict[str, Any] | None = None):
    return await client.post(path, json=body, headers=same_origin_headers(client))


async def wait_idle(client, timeout: float = 30.0) -> dict[str, Any]:
    return await wait_until_async(
        lambda: get_json(client, "/api/civitai/status"),
        lambda status: not status["running"],
        timeout=timeout,
        message="the Civitai job to end",
    )


# ---------------------------------------------------------------- §4: trigger words, weight
async def test_trigger_words_and_weight_are_fields(api) -> None:
    client, _ = api
    body = await get_json(client, f"/api/models/{A}")
    assert body["trigger_words"] == [] and body["preferred_weight"] is None
    resp = await patch(
        client, A, {"trigger_words": [" warm light ", "b", "", "b", "c"], "preferred_weight": 0.8}
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert body["trigger_words"] == ["warm light", "b", "c"] and body["preferred_weight"] == 0.8
    assert body["meta"]["trigger_words"] == ["warm light", "b", "c"]
    assert body["meta"]["sources"] == {"trigger_words": "user", "preferred_weight": "user"}
    assert (await get_json(client, f"/api/models/{A}"))["trigger_words"] == ["warm light", "b", "c"]
    listing = await get_json(client, "/api/models")
    words = {item["sha256"]: item["trigger_words"] for item in listing["items"]}
    assert words == {A: ["warm light", "b", "c"], B: [], C: []}
    # null clears either; -10 and 10 are in range
    resp = await patch(client, A, {"preferred_weight": None, "trigger_words": None})
    body = await resp.json()
    assert body["preferred_weight"] is None and body["trigger_words"] == []
    assert "preferred_weight" not in body["meta"] and "trigger_words" not in body["meta"]
    for weight in (-10, 10, 0, 1.25):
        assert (await (await patch(client, A, {"preferred_weight": weight})).json())[
            "preferred_weight"
        ] == weight


@pytest.mark.parametrize(
    "body",
    [
        {"trigger_words": "one, two"},
        {"trigger_words": [1]},
        {"trigger_words": [["nested"]]},
        {"trigger_words": ["x" * 201]},
        {"trigger_words": [f"w{i}" for i in range(101)]},
        {"trigger_words": ["bad\nword"]},
        {"preferred_weight": 10.5},
        {"preferred_weight": -11},
        {"preferred_weight": "1"},
        {"preferred_weight": True},
        {"preferred_weight": float("nan")},
        {"trigger_words": ["a"], "meta_json": {"trigger_words": ["b"]}},
        {"name": "Changed", "trigger_words": [3]},  # all or nothing
        {"preferred_weight": 1, "tags": {"add": [999_999]}},  # an unknown tag id: nothing
    ],
)
async def test_bad_field_edits_change_nothing(api, body: dict[str, Any]) -> None:
    client, _ = api
    before = await get_json(client, f"/api/models/{A}")
    await assert_error(await patch(client, A, body), 400)
    assert await get_json(client, f"/api/models/{A}") == before


async def test_200_characters_and_100_words_are_allowed(api) -> None:
    client, _ = api
    words = [f"{i:03d}" + "x" * 197 for i in range(100)]
    resp = await patch(client, A, {"trigger_words": [f"  {w}  " for w in words]})
    assert (await resp.json())["trigger_words"] == words


# ---------------------------------------------------------------- §3: the job
async def test_fetch_runs_a_job_the_status_follows(api, fake: FakeCivitai) -> None:
    client, _ = api
    body = fake.found(A, images=[])
    fake.lookups[A] = [Reply(body=body, hold=True)]  # held until the test lets it go
    resp = await post(client, "/api/civitai/fetch", {"sha256s": [A, B.upper()]})
    started = await resp.json()
    assert resp.status == 202, started
    assert started["running"] is True and started["progress"] == {"done": 0, "total": 2}
    # The loop answers while Civitai keeps the job waiting.
    status = await wait_until_async(
        lambda: get_json(client, "/api/civitai/status"),
        lambda status: status["current"] == A,
        timeout=20,
        interval=0.01,
        message=f"the lookup of {A}",
    )
    assert status["running"] is True and status["mode"] == "sha256s"
    await assert_error(await post(client, "/api/civitai/fetch", {"missing": True}), 409)
    fake.release.set()
    status = await wait_idle(client)
    assert status["error"] is None and status["progress"] == {"done": 2, "total": 2}
    assert status["counts"] == {"found": 1, "not_found": 1, "failed": 0, "skipped": 0, "images": 0}
    report = status["last_report"]
    assert report["started_at"] == started["started_at"]
    assert [r["status"] for r in report["results"]] == ["found", "not_found"]
    # missing: C only (A has Civitai data, B is remembered as unknown)
    fake.requests.clear()
    resp = await post(client, "/api/civitai/fetch", {"missing": True})
    assert resp.status == 202
    status = await wait_idle(client)
    assert status["progress"]["total"] == 1
    assert fake.lookup_paths() == [BATCH] and fake.posted[-1] == [C.upper()]
    # force asks about B again
    resp = await post(client, "/api/civitai/fetch", {"sha256s": [B], "force": True})
    assert resp.status == 202
    await wait_idle(client)
    assert fake.lookup_paths()[-1] == BATCH and fake.posted[-1] == [B.upper()]


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"missing": True, "sha256s": [A]},
        {"sha256s": ["nothex"]},
        {"sha256s": [A] * 1001},
        {"missing": 1},
        {"everything": True},
    ],
)
async def test_fetch_bad_bodies(api, fake: FakeCivitai, body: Any) -> None:
    client, _ = api
    await assert_error(await post(client, "/api/civitai/fetch", body), 400)
    assert fake.requests == []


async def test_status_before_any_job(api) -> None:
    client, _ = api
    status = await get_json(client, "/api/civitai/status")
    assert status["running"] is False and status["last_report"] is None
    assert status["progress"] == {"done": 0, "total": 0} and status["error"] is None


# ---------------------------------------------------------------- §3: one model now
async def test_lookup_one_model(api, fake: FakeCivitai) -> None:
    client, _ = api
    fake.found(A)
    fake.serve_png("a.png")
    resp = await post(client, f"/api/models/{A}/civitai")
    body = await resp.json()
    assert resp.status == 200, body
    assert body["civitai"]["status"] == "found" and body["civitai"]["images"] == 1
    assert body["trigger_words"] == ["alpha style", "alpha"] and body["base"] == "SDXL 1.0"
    assert body["meta"]["civitai"]["version_id"] == 101 and body["image_count"] == 1
    # unknown on Civitai: 200, not_found, remembered (no second request) unless forced
    resp = await post(client, f"/api/models/{B}/civitai", {})
    body = await resp.json()
    assert resp.status == 200 and body["civitai"]["status"] == "not_found"
    assert body["sha256"] == B
    body = await (await post(client, f"/api/models/{B}/civitai")).json()
    assert body["civitai"]["remembered"] is True
    assert len(fake.lookup_paths()) == 2
    await post(client, f"/api/models/{B}/civitai", {"force": True})
    assert len(fake.lookup_paths()) == 3
    # not in the library, not a hash, a bad body
    await assert_error(await post(client, f"/api/models/{sha_for('nope')}/civitai"), 404)
    await assert_error(await post(client, "/api/models/xyz/civitai"), 400)
    await assert_error(await post(client, f"/api/models/{A}/civitai", {"force": "yes"}), 400)
    assert len(fake.lookup_paths()) == 3


async def test_lookup_one_when_civitai_fails_is_a_502(
    aiohttp_client, config: Config, fake: FakeCivitai
) -> None:
    offline = CivitaiSettings(url=free_port_url(), requests_per_second=1000.0)
    client, _ = await open_client(aiohttp_client, config, offline)
    body = await assert_error(await post(client, f"/api/models/{A}/civitai"), 502)
    assert body["error"] == "Civitai unreachable" and "cannot connect" in body["detail"]
    fake.lookups[A] = [Reply(raw=b"{broken", content_type="application/json")]
    other = dataclasses.replace(config, data_dir=config.data_dir.with_name("other"))
    other = dataclasses.replace(other, db_path=other.data_dir / "hikaze_mm.db")
    client, _ = await open_client(aiohttp_client, other, fake.settings())
    body = await assert_error(await post(client, f"/api/models/{A}/civitai"), 502)
    assert body["error"] == "Bad answer from Civitai" and "not JSON" in body["detail"]


# ---------------------------------------------------------------- the CLI
def make_library(config: Config) -> None:
    svc = Services.open(config)
    for label in ("alpha", "beta", "gamma"):
        seed_model(svc, label)
    svc.models.patch(A, ModelPatch(preferred_weight=0.5))
    svc.close()


def test_cli_civitai(config: Config, fake: FakeCivitai) -> None:
    make_library(config)
    fake.found(A, images=[])
    env = {"HIKAZE_CIVITAI_URL": fake.url}
    data = ["--data-dir", str(config.data_dir)]
    proc = run_cli("civitai", A, B, "--json", *data, env_extra=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [r["status"] for r in report["results"]] == ["found", "not_found"]
    assert report["error"] is None
    proc = run_cli("civitai", "--missing", *data, env_extra=env)
    assert proc.returncode == 0, proc.stderr
    assert f"{C[:10]}  not found" in proc.stdout
    assert "1 of 1 model: 0 found, 1 not found, 0 failed, 0 skipped, 0 images" in proc.stdout
    proc = run_cli("civitai", B, *data, env_extra=env)  # remembered: no request
    assert "not found (remembered)" in proc.stdout
    assert fake.lookup_paths() == [BATCH, BATCH]  # A and B in one request, then C
    # list shows the trigger words (text) and carries them (JSON)
    proc = run_cli("list", *data)
    assert "<alpha style, alpha>" in proc.stdout
    items = json.loads(run_cli("list", "--json", *data).stdout)["items"]
    assert {i["sha256"]: i["trigger_words"] for i in items}[A] == ["alpha style", "alpha"]


def test_cli_civitai_errors_are_one_line(config: Config) -> None:
    make_library(config)
    data = ["--data-dir", str(config.data_dir)]
    offline = {"HIKAZE_CIVITAI_URL": free_port_url()}
    proc = run_cli("civitai", A, B, *data, env_extra=offline)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(
        "hikaze-mm: error: Civitai unreachable: cannot connect to http://127.0.0.1:"
    ), proc.stderr
    proc = run_cli("civitai", A, "--json", *data, env_extra=offline)
    assert proc.returncode == 1 and json.loads(proc.stdout)["done"] == 1
    for args, env, words in (
        ((), {}, "give either --missing or model hashes"),
        (("--missing", A), {}, "give either"),
        (("abc",), {}, "not a SHA-256"),
        (("--missing",), {"HIKAZE_CIVITAI_MAX_NSFW": "99"}, "HIKAZE_CIVITAI_MAX_NSFW"),
    ):
        proc = run_cli("civitai", *args, *data, env_extra={**offline, **env})
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and words in lines[0], lines
    nowhere = {**offline, "HIKAZE_DB_URL": ""}  # the file of an empty data folder: none
    proc = run_cli(
        "civitai", A, "--data-dir", str(config.data_dir.with_name("none")), env_extra=nowhere
    )
    assert proc.returncode == 1 and "no library" in proc.stderr


def test_cli_civitai_runs_in_the_server_that_holds_the_library(
    config: Config, fake: FakeCivitai, tmp_path: Path
) -> None:
    make_library(config)
    fake.found(A, images=[])
    server = start_server(config.data_dir, tmp_path, env={"HIKAZE_CIVITAI_URL": fake.url})
    try:
        # This command's own setting is not used: the server asks its Civitai.
        proc = run_cli(
            "civitai",
            A,
            "--json",
            "--data-dir",
            str(config.data_dir),
            env_extra={"HIKAZE_CIVITAI_URL": free_port_url()},
        )
        assert proc.returncode == 0, proc.stderr
        assert "served by hikaze-mm serve" in proc.stderr
        assert json.loads(proc.stdout)["counts"]["found"] == 1
        assert fake.lookup_paths() == [BATCH]
    finally:
        stop(server)
