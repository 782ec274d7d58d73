"""Update checks against our own Civitai on 127.0.0.1 (``tests/civitai_fake.py``'s ``GET
/api/v1/models?ids=...&nsfw=true``): up to 100 model ids a request, the newest version
newer than the one held of the same base model (any base when asked), ignored versions,
a model already at its newest, a version already in the library, the NSFW site, malformed
answers, one check at a time (409), the listing's ``update=available`` filter and the
item's ``update`` field, ``GET /api/updates``, and ``hikaze-mm updates``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hikaze_mm.config import Config
from hikaze_mm.library.update_versions import RemoteVersion, pick_update, ranked
from hikaze_mm.library.updates import UpdateService
from hikaze_mm.server.app import create_app
from hikaze_mm.services import Services
from tests.civitai_fake import (
    FakeCivitai,
    Reply,
    fake_civitai_server,
    free_port_url,
    model_item,
    model_version_item,
)
from tests.conftest import on_each_backend, sqlite_only
from tests.helpers import run_cli, server_json, start_server, stop
from tests.library_helpers import seed_model, services_of
from tests.waiting import wait_until

config = on_each_backend()

JAN, FEB, MAR, APR = (f"2024-0{m}-01T00:00:00.000Z" for m in (1, 2, 3, 4))


@pytest.fixture
def svc(config: Config, fake: FakeCivitai) -> Iterator[Services]:
    services = Services.open(dataclasses.replace(config, civitai=fake.settings()))
    yield services
    services.close()


@pytest.fixture
def red() -> Iterator[FakeCivitai]:
    """A second stand-in: Civitai's NSFW site (civitai.red)."""
    yield from fake_civitai_server()


def holding(
    svc: Services,
    label: str,
    model_id: int,
    version_id: int,
    *,
    base: str = "SDXL 1.0",
    site: str = "https://civitai.com",
    **meta: Any,
) -> str:
    """A model that holds Civitai version ``version_id`` of model ``model_id``."""
    civitai = {
        "model_id": model_id,
        "version_id": version_id,
        "version_name": f"v{version_id}",
        "url": f"{site}/models/{model_id}?modelVersionId={version_id}",
        "base_model": base,
    }
    return seed_model(svc, label, meta={"civitai": civitai, **meta})


def meta_of(svc: Services, sha: str) -> dict[str, Any]:
    return svc.db.models.get(sha)["meta"]


def update_of(svc: Services, sha: str) -> dict[str, Any] | None:
    return meta_of(svc, sha).get("update")


# ---------------------------------------------------------------- choosing the version
def test_versions_rank_by_time_then_civitais_order() -> None:
    v = [
        RemoteVersion(5, "e", "SDXL", None),  # no time, listed first: the newest
        RemoteVersion(4, "d", "SDXL", FEB),
        RemoteVersion(3, "c", "SDXL", MAR),  # published later than 4, listed after it
        RemoteVersion(2, "b", "SDXL", FEB),  # same time as 4: the list's order decides
        RemoteVersion(1, "a", "SDXL", JAN),
    ]
    assert [x.id for x in ranked(v)] == [5, 3, 4, 2, 1]
    assert pick_update(v, 4, "SDXL").id == 5
    assert pick_update(v[1:], 4, "SDXL").id == 3  # newer by time though listed after
    assert pick_update(v[1:], 3, "SDXL") is None  # held is the newest
    assert pick_update(v[1:], 99, "SDXL") is None  # held not listed: only greater ids are newer
    assert pick_update(v[1:], 2, "SDXL", ignored=[3]) is None  # the newest was ignored
    assert pick_update(v[1:], 2, "SDXL", in_library=[3]) is None  # already in the library


def test_same_base_by_default_any_base_when_asked() -> None:
    v = [
        RemoteVersion(3, "pony", "Pony", MAR),
        RemoteVersion(2, "xl 2", "SDXL 1.0", FEB),
        RemoteVersion(1, "xl 1", "SDXL 1.0", JAN),
    ]
    assert pick_update(v, 1, None).id == 2  # the held version's base, from the list
    assert pick_update(v, 1, "sdxl 1.0", any_base=True).id == 3
    assert pick_update(v[:1], 1, "SDXL 1.0") is None  # only another base is newer
    assert pick_update(v, 9, None) is None and pick_update(v, 0, None).id == 3  # base unknown


# ---------------------------------------------------------------- the job
def test_250_models_in_three_requests(svc: Services, fake: FakeCivitai) -> None:
    shas = []
    for i in range(250):
        shas.append(holding(svc, f"model {i}", 1 + i, 1000 + i))
        versions = [model_version_item(1000 + i, "v1", published_at=JAN)]
        if i % 2 == 0:  # even models have a newer version
            versions.insert(0, model_version_item(5000 + i, f"v2 of {i}", published_at=FEB))
        fake.civitai_models[1 + i] = model_item(1 + i, versions)
    seen: list[int] = []
    report = svc.updates.run(on_progress=lambda s: seen.append(s["progress"]["done"]))
    assert [len(ids) for ids, _ in fake.models_asked] == [100, 100, 50]
    assert all(nsfw == "true" for _, nsfw in fake.models_asked)
    assert sorted(i for ids, _ in fake.models_asked for i in ids) == list(range(1, 251))
    assert report["error"] is None and report["requests"] == 3 and report["done"] == 250
    assert report["counts"] == {"updates": 125, "newest": 125, "not_found": 0, "failed": 0}
    assert seen == [100, 200, 250]
    update = update_of(svc, shas[4])
    assert {k: update[k] for k in ("version_id", "version_name", "base_model", "published_at")} == {
        "version_id": 5004,
        "version_name": "v2 of 4",
        "base_model": "SDXL 1.0",
        "published_at": FEB,
    }
    assert isinstance(update["checked_at"], int)
    assert update_of(svc, shas[5]) is None
    assert meta_of(svc, shas[5])["update_checked_at"] == update["checked_at"]
    assert svc.jobs.snapshot("updates")["last_report"]["counts"]["updates"] == 125


def test_the_same_base_by_default_and_any_base(svc: Services, fake: FakeCivitai) -> None:
    sha = holding(svc, "xl", 7, 71)
    fake.civitai_models[7] = model_item(
        7,
        [
            model_version_item(74, "pony v4", "Pony", APR),
            model_version_item(73, "xl v3", "SDXL 1.0", MAR),
            model_version_item(72, "xl v2", "SDXL 1.0", FEB),
            model_version_item(71, "xl v1", "SDXL 1.0", JAN),
        ],
    )
    svc.updates.run()
    assert update_of(svc, sha)["version_id"] == 73
    svc.updates.run(any_base=True)
    assert update_of(svc, sha)["version_id"] == 74
    assert update_of(svc, sha)["base_model"] == "Pony"


def test_a_model_at_its_newest_loses_a_stale_update(svc: Services, fake: FakeCivitai) -> None:
    stale = {"version_id": 12, "version_name": "old news", "checked_at": 1}
    sha = holding(svc, "newest", 1, 13, update=stale)
    fake.civitai_models[1] = model_item(
        1, [model_version_item(13, "v3", published_at=MAR), model_version_item(12, "v2")]
    )
    report = svc.updates.run()
    assert report["counts"]["newest"] == 1
    assert "update" not in meta_of(svc, sha) and meta_of(svc, sha)["update_checked_at"] > 1


def test_a_version_in_the_library_is_no_update(svc: Services, fake: FakeCivitai) -> None:
    """Two files of one Civitai model: the older one's update is the newer one's version,
    which the library holds already (the downloaded update beside the old file)."""
    old = holding(svc, "old", 2, 21)
    new = holding(svc, "new", 2, 22)
    fake.civitai_models[2] = model_item(
        2, [model_version_item(22, "v2", published_at=FEB), model_version_item(21, "v1")]
    )
    svc.updates.run()
    assert update_of(svc, old) is None and update_of(svc, new) is None
    assert fake.models_asked == [([2], "true")]  # one id, asked once


def test_ignoring_a_version(svc: Services, fake: FakeCivitai) -> None:
    sha = holding(svc, "lora", 3, 31)
    versions = [model_version_item(32, "v2", published_at=FEB), model_version_item(31, "v1")]
    fake.civitai_models[3] = model_item(3, versions)
    svc.updates.run()
    assert update_of(svc, sha)["version_id"] == 32
    answer = svc.updates.ignore(sha, 32)
    assert answer == {"sha256": sha, "update_ignored": [32], "update": None}
    assert update_of(svc, sha) is None
    svc.updates.run()
    assert update_of(svc, sha) is None  # never offered again
    versions.insert(0, model_version_item(33, "v3", published_at=MAR))
    svc.updates.run()
    assert update_of(svc, sha)["version_id"] == 33  # a newer one still is
    assert svc.updates.ignore(sha, 32)["update_ignored"] == [32]  # once


def test_the_nsfw_site(config: Config, fake: FakeCivitai, red: FakeCivitai) -> None:
    """A model linked to the NSFW site is asked there only; one the first site does not
    list is asked there next; one neither lists keeps its meta."""
    settings = fake.settings(nsfw_url=red.url)
    svc = Services.open(dataclasses.replace(config, civitai=settings))
    try:
        on_red = holding(svc, "red", 4, 41, site=red.url)
        moved = holding(svc, "moved", 5, 51)
        main = holding(svc, "main", 6, 61, site=fake.url)
        gone = holding(svc, "gone", 8, 81, update={"version_id": 82})
        newer = [model_version_item(42, "v2", published_at=FEB), model_version_item(41, "v1")]
        red.civitai_models[4] = model_item(4, newer)
        red.civitai_models[5] = model_item(5, [model_version_item(52, "v2", published_at=FEB)])
        fake.civitai_models[4] = model_item(4, [model_version_item(49, "wrong site", "SDXL 1.0")])
        fake.civitai_models[6] = model_item(6, [model_version_item(61, "v1")])
        report = svc.updates.run()
    finally:
        svc.close()
    assert fake.models_asked == [([5, 6, 8], "true")]
    assert red.models_asked == [([4, 5, 8], "true")]
    assert report["counts"] == {"updates": 2, "newest": 1, "not_found": 1, "failed": 0}
    svc = Services.open(config)
    try:
        assert update_of(svc, on_red)["version_id"] == 42
        assert update_of(svc, moved)["version_id"] == 52  # held 51 is not listed: 52 > 51
        assert update_of(svc, main) is None
        assert update_of(svc, gone) == {"version_id": 82}  # not listed anywhere: as it was
        assert "update_checked_at" not in meta_of(svc, gone)
    finally:
        svc.close()


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body={"metadata": {}}),  # no items
        Reply(body=[1, 2]),
        Reply(raw=b"<html>oops</html>", content_type="text/html"),
        Reply(400, {"error": "bad"}),
    ],
    ids=["no items", "an array", "not json", "400"],
)
def test_a_malformed_answer_fails_its_models(svc: Services, fake: FakeCivitai, reply) -> None:
    stale = {"version_id": 99}
    sha = holding(svc, "lora", 3, 31, update=stale)
    fake.models_script = [reply]
    report = svc.updates.run()
    assert report["counts"] == {"updates": 0, "newest": 0, "not_found": 0, "failed": 1}
    assert report["problems"] and report["error"] is None
    assert update_of(svc, sha) == stale and "update_checked_at" not in meta_of(svc, sha)


def test_a_malformed_item_spares_the_others(svc: Services, fake: FakeCivitai) -> None:
    good = holding(svc, "good", 1, 11)
    bad = holding(svc, "bad", 2, 21, update={"version_id": 29})
    item = model_item(1, [model_version_item(12, "v2", published_at=FEB), {"id": "x"}])
    fake.models_script = [Reply(body={"items": [item, {"name": "no id"}], "metadata": {}})]
    report = svc.updates.run()
    assert update_of(svc, good)["version_id"] == 12
    assert update_of(svc, bad) == {"version_id": 29}  # not listed: as it was
    assert any("malformed versions" in p for p in report["problems"])
    assert any("no id" in p for p in report["problems"])


def test_an_unreachable_civitai_ends_the_check(config: Config) -> None:
    settings = dataclasses.replace(
        Config.load(data_dir=config.data_dir).civitai, url=free_port_url(), nsfw_url=""
    )
    svc = Services.open(dataclasses.replace(config, civitai=settings))
    try:
        holding(svc, "lora", 1, 11)
        report = svc.updates.run()
    finally:
        svc.close()
    assert report["error"].startswith("Civitai unreachable: cannot connect")


def test_a_shared_token_bucket(svc: Services) -> None:
    assert svc.updates.client.bucket is svc.civitai.bucket
    assert isinstance(svc.updates, UpdateService)


# ---------------------------------------------------------------- the API
@pytest.fixture
async def client_for(aiohttp_client, config: Config, fake: FakeCivitai):
    """A real server on the library of ``svc`` (opened shared, with the stand-in)."""
    services = Services.open(dataclasses.replace(config, civitai=fake.settings()))
    return await aiohttp_client(create_app(services))


async def test_api_check_list_filter_and_ignore(client_for, fake: FakeCivitai) -> None:
    svc = services_of(client_for)
    sha = holding(svc, "lora", 3, 31)
    up_to_date = holding(svc, "current", 4, 41)
    fake.civitai_models[3] = model_item(
        3, [model_version_item(32, "v2 ✨", published_at=FEB), model_version_item(31, "v1")]
    )
    fake.civitai_models[4] = model_item(4, [model_version_item(41, "v1")])
    fake.models_script = [Reply(hold=True, body={"items": list(fake.civitai_models.values())})]
    resp = await client_for.post("/api/updates/check", json={})
    assert resp.status == 202 and (await resp.json())["running"] is True
    again = await client_for.post("/api/updates/check")
    assert again.status == 409 and "already running" in (await again.json())["detail"]
    jobs = await (await client_for.get("/api/jobs/updates")).json()
    assert jobs["name"] == "updates" and jobs["running"] is True
    fake.release.set()
    wait_until(lambda: not svc.updates.job.running, timeout=30, message="the check to end")
    listed = await (await client_for.get("/api/updates")).json()
    assert listed["total"] == 1
    (item,) = listed["items"]
    assert item["sha256"] == sha and item["name"] == "lora" and item["type"] == "loras"
    assert item["held"] == {"model_id": 3, "version_id": 31, "version_name": "v31"}
    assert item["update"]["version_id"] == 32 and item["update"]["version_name"] == "v2 ✨"
    page = await (await client_for.get("/api/models?update=available")).json()
    assert [i["sha256"] for i in page["items"]] == [sha]
    assert page["items"][0]["update"] == {"version_id": 32, "version_name": "v2 ✨"}
    every = await (await client_for.get("/api/models")).json()
    assert {i["sha256"]: i["update"] for i in every["items"]}[up_to_date] is None
    resp = await client_for.post(f"/api/models/{sha}/update/ignore", json={"version_id": 32})
    assert resp.status == 200 and (await resp.json())["update_ignored"] == [32]
    assert (await (await client_for.get("/api/updates")).json())["items"] == []
    page = await (await client_for.get("/api/models?update=available")).json()
    assert page["total"] == 0


async def test_api_any_base_and_status(client_for, fake: FakeCivitai) -> None:
    svc = services_of(client_for)
    sha = holding(svc, "xl", 7, 71)
    fake.civitai_models[7] = model_item(
        7, [model_version_item(72, "pony", "Pony", FEB), model_version_item(71, "xl", "SDXL 1.0")]
    )
    resp = await client_for.post("/api/updates/check", json={"any_base": True})
    assert resp.status == 202
    wait_until(lambda: not svc.updates.job.running, timeout=30, message="the check to end")
    status = await (await client_for.get("/api/updates/status")).json()
    assert status["running"] is False and status["progress"] == {"done": 1, "total": 1}
    assert status["last_report"]["any_base"] is True and status["last_report"]["requests"] == 1
    assert update_of(svc, sha)["version_id"] == 72
    resp = await client_for.post("/api/updates/check")  # no body: the same base only
    assert resp.status == 202
    wait_until(lambda: not svc.updates.job.running, timeout=30, message="the check to end")
    assert update_of(svc, sha) is None


@pytest.mark.parametrize(
    "path, body, status",
    [
        ("/api/updates/check", {"any_base": "yes"}, 400),
        ("/api/updates/check", {"every": True}, 400),
        (f"/api/models/{'a' * 64}/update/ignore", {"version_id": 5}, 404),
        (f"/api/models/{'a' * 64}/update/ignore", {"version_id": 0}, 400),
        (f"/api/models/{'a' * 64}/update/ignore", {"version_id": True}, 400),
        (f"/api/models/{'a' * 64}/update/ignore", {}, 400),
        ("/api/models/nothex/update/ignore", {"version_id": 5}, 400),
    ],
)
async def test_api_bad_input(client_for, path: str, body: dict, status: int) -> None:
    resp = await client_for.post(path, json=body)
    answer = await resp.json()
    assert resp.status == status and set(answer) == {"error", "detail"}, answer
    assert not services_of(client_for).updates.job.running


# ---------------------------------------------------------------- the CLI
def _seed_library(config: Config, fake: FakeCivitai) -> str:
    svc = Services.open(config)
    try:
        sha = holding(svc, "cli lora", 3, 31)
        holding(svc, "cli other", 4, 41)
    finally:
        svc.close()
    fake.civitai_models[3] = model_item(
        3, [model_version_item(32, "v2", published_at=FEB), model_version_item(31, "v1")]
    )
    fake.civitai_models[4] = model_item(4, [model_version_item(41, "v1")])
    return sha


@sqlite_only
def test_cli_check_then_list(config: Config, fake: FakeCivitai) -> None:
    sha = _seed_library(config, fake)
    env = {"HIKAZE_CIVITAI_URL": fake.url}
    data = ["--data-dir", str(config.data_dir)]
    before = run_cli("updates", *data, env_extra=env)
    assert before.returncode == 0, before.stderr
    assert before.stdout.strip() == "0 models with an update" and fake.models_asked == []
    checked = run_cli("updates", "--check", *data, env_extra=env)
    assert checked.returncode == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert lines[0].startswith("checked 2 models of 2 in 1 request: 1 with an update, 1 up to")
    assert lines[1] == f"{sha[:10]}  cli lora  v31 -> v2 (SDXL 1.0, 2024-02-01)"
    assert lines[-1] == "1 model with an update"
    listed = run_cli("updates", "--json", *data, env_extra=env)
    body = json.loads(listed.stdout)
    assert body["check"] is None and [i["sha256"] for i in body["items"]] == [sha]
    wrong = run_cli("updates", "--any-base", *data, env_extra=env)
    assert wrong.returncode == 2 and "--any-base goes with --check" in wrong.stderr


@sqlite_only
def test_cli_list_update(config: Config, fake: FakeCivitai) -> None:
    """``hikaze-mm list --update``: only the models with an update (none before a check)."""
    sha = _seed_library(config, fake)
    env = {"HIKAZE_CIVITAI_URL": fake.url}
    data = ["--data-dir", str(config.data_dir)]
    before = run_cli("list", "--update", *data, env_extra=env)
    assert before.returncode == 0, before.stderr
    assert before.stdout == "" and "0 of 0 models" in before.stderr
    assert run_cli("updates", "--check", *data, env_extra=env).returncode == 0
    listed = run_cli("list", "--update", *data, env_extra=env)
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    assert line.startswith(sha[:10]) and "cli lora" in line and line.endswith("(update: v2)")
    assert "1 of 1 model" in listed.stderr
    body = json.loads(run_cli("list", "--update", "--json", *data, env_extra=env).stdout)
    assert [i["sha256"] for i in body["items"]] == [sha] and body["total"] == 1
    assert body["items"][0]["update"] == {"version_id": 32, "version_name": "v2"}
    every = run_cli("list", *data, env_extra=env)
    assert len(every.stdout.splitlines()) == 2 and "2 of 2 models" in every.stderr


@sqlite_only
def test_cli_check_runs_in_the_server(config: Config, fake: FakeCivitai, tmp_path: Path) -> None:
    sha = _seed_library(config, fake)
    env = {"HIKAZE_CIVITAI_URL": fake.url}
    server = start_server(config.data_dir, tmp_path, env=env)
    try:
        checked = run_cli("updates", "--check", "--data-dir", str(config.data_dir), env_extra=env)
        assert checked.returncode == 0, checked.stderr
        assert "checking for updates there" in checked.stderr
        assert f"{sha[:10]}  cli lora  v31 -> v2" in checked.stdout
        assert server_json(server, "api/updates")["total"] == 1
        assert server_json(server, "api/jobs/updates")["last_report"]["requests"] == 1
    finally:
        assert stop(server) == 0
