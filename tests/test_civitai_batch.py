"""Batched Civitai lookups against our own Civitai on 127.0.0.1 (``tests/civitai_fake.py``):
up to 100 hashes per ``POST /api/v1/model-versions/by-hash``, matched back by the files'
SHA256; the fallback to one ``GET`` per hash on 404/405; unknown hashes in a batch; a
version with several files; hashes in any case; malformed batch answers; what
``meta.civitai`` keeps (the AIR, the matched file's hashes); and Civitai's NSFW site (a
second stand-in) asked about the hashes the first does not know."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from hikaze_mm.config import CivitaiSettings, Config
from hikaze_mm.library.civitai import NOT_FOUND_KEY, CivitaiService
from hikaze_mm.library.civitai_schema import air_type_of, ecosystem_of, parse_version
from hikaze_mm.services import Services
from tests.civitai_fake import (
    FakeCivitai,
    Reply,
    fake_civitai_server,
    file_json,
    free_port_url,
    version_json,
)
from tests.library_helpers import seed_model, sha_for

A, B, C, D = (sha_for(x) for x in ("alpha", "beta", "gamma", "delta"))
BATCH = "/api/v1/model-versions/by-hash"


@pytest.fixture
def svc(config: Config, fake: FakeCivitai) -> Iterator[Services]:
    services = Services.open(dataclasses.replace(config, civitai=fake.settings()))
    for label in ("alpha", "beta", "gamma", "delta"):
        seed_model(services, label)
    yield services
    services.close()


def result_of(report: dict[str, Any], sha: str) -> dict[str, Any]:
    return next(r for r in report["results"] if r["sha256"] == sha)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {r["sha256"]: r["status"] for r in report["results"]}


# ---------------------------------------------------------------- the target
def test_a_thousand_models_in_at_most_twelve_requests(svc: Services, fake: FakeCivitai) -> None:
    shas = [seed_model(svc, f"model {i}") for i in range(1000)]
    unknown = set(shas[::100])  # ten models Civitai does not know
    for i, sha in enumerate(shas):
        if sha not in unknown:
            fake.found(sha, model_id=1000 + i, version_id=5000 + i, images=[])
    done: list[int] = []
    report = svc.civitai.run(missing=True, on_progress=lambda s: done.append(s["progress"]["done"]))
    assert report["error"] is None and report["total"] == 1004  # with alpha..delta (unknown)
    assert report["counts"]["found"] == 990 and report["counts"]["not_found"] == 14
    requests = fake.lookup_paths()
    assert requests == [BATCH] * len(requests) and len(requests) <= 12
    assert len(requests) == 11  # 1004 hashes, 100 a request
    assert all(len(asked) <= 100 for asked in fake.posted)
    asked = [sha for batch in fake.posted for sha in batch]
    assert sorted(asked) == sorted(s.upper() for s in [*shas, A, B, C, D])  # each once
    assert done == list(range(1, 1005))  # progress counts each model
    record = svc.db.models.get(shas[1])["meta"]["civitai"]
    assert (record["model_id"], record["version_id"]) == (1001, 5001)
    assert record["hashes"]["SHA256"] == shas[1].upper()
    assert NOT_FOUND_KEY in svc.db.models.get(shas[100])["meta"]
    fake.requests.clear()
    again = svc.civitai.run(missing=True)  # found ones have data, unknown ones are remembered
    assert again["total"] == 0 and fake.requests == []


# ---------------------------------------------------------------- the fallback
@pytest.mark.parametrize("status", [404, 405])
def test_without_the_batch_endpoint_one_get_per_hash(
    svc: Services, fake: FakeCivitai, status: int
) -> None:
    fake.batch_script = [Reply(status, {"error": "no such route"})]
    fake.found(A, images=[])
    fake.found(C, model_id=12, version_id=102, images=[])
    report = svc.civitai.run(sha256s=[A, B, C])
    assert statuses(report) == {A: "found", B: "not_found", C: "found"}
    assert report["error"] is None and report["done"] == 3
    # The POST was asked once; the rest of the run asked one hash at a time.
    assert fake.lookup_paths() == [BATCH, f"{BATCH}/{A}", f"{BATCH}/{B}", f"{BATCH}/{C}"]
    assert svc.db.models.get(C)["meta"]["civitai"]["version_id"] == 102
    assert NOT_FOUND_KEY in svc.db.models.get(B)["meta"]


def test_a_single_models_lookup_stays_a_get(svc: Services, fake: FakeCivitai) -> None:
    fake.found(A, images=[])
    detail = svc.civitai.lookup_one(A)
    assert detail["civitai"]["status"] == "found"
    assert detail["meta"]["civitai"]["air"] == "urn:air:sdxl:lora:civitai:11@101"
    assert detail["meta"]["civitai"]["hashes"] == file_json(A)["hashes"]
    assert fake.lookup_paths() == [f"{BATCH}/{A}"] and fake.posted == []


# ---------------------------------------------------------------- answers
def test_a_batch_with_unknown_hashes(svc: Services, fake: FakeCivitai) -> None:
    fake.found(A, images=[])
    fake.found(C, model_id=12, version_id=102, images=[])
    report = svc.civitai.run(sha256s=[A, B, C, D])
    assert statuses(report) == {A: "found", B: "not_found", C: "found", D: "not_found"}
    assert fake.lookup_paths() == [BATCH]
    assert fake.posted == [[A.upper(), B.upper(), C.upper(), D.upper()]]
    for sha in (B, D):
        meta = svc.db.models.get(sha)["meta"]
        assert "civitai" not in meta and NOT_FOUND_KEY in meta
    assert svc.db.models.get(C)["meta"]["civitai"]["model_id"] == 12


def test_a_version_with_several_files(svc: Services, fake: FakeCivitai) -> None:
    other = sha_for("not in the library")
    files = [file_json(other, "other.safetensors"), file_json(A), file_json(B, "b.pt")]
    body = version_json(fake.url, files=files, images=[])
    fake.lookups[A] = fake.lookups[B] = [Reply(body=body)]  # one version, two of its files
    report = svc.civitai.run(sha256s=[A, B])
    assert statuses(report) == {A: "found", B: "found"}
    for sha in (A, B):  # each keeps the hashes of its own file only
        kept = svc.db.models.get(sha)["meta"]["civitai"]
        assert kept["hashes"] == file_json(sha)["hashes"] and kept["version_id"] == 101
        assert kept["hashes"]["SHA256"] == sha.upper()


def test_hashes_in_any_case(svc: Services, fake: FakeCivitai) -> None:
    lower = file_json(A)
    lower["hashes"] = {**lower["hashes"], "SHA256": A.lower()}
    mixed = file_json(B)
    mixed["hashes"] = {**mixed["hashes"], "SHA256": B[:32].upper() + B[32:].lower()}
    fake.lookups[A] = [Reply(body=version_json(fake.url, files=[lower], images=[]))]
    fake.lookups[B] = [Reply(body=version_json(fake.url, 12, 102, files=[mixed], images=[]))]
    report = svc.civitai.run(sha256s=[A.upper(), B])  # asked in upper case, too
    assert statuses(report) == {A: "found", B: "found"}
    assert svc.db.models.get(B)["meta"]["civitai"]["hashes"]["SHA256"] == mixed["hashes"]["SHA256"]
    assert fake.posted == [[A.upper(), B.upper()]]


def _version(fake: FakeCivitai, sha: str | None, **kwargs: Any) -> dict[str, Any]:
    return version_json(fake.url, sha=sha, images=[], **kwargs)


@pytest.mark.parametrize(
    "answer, failed, reason",
    [
        (Reply(raw=b"<html>oops</html>", content_type="text/html"), {A, B}, "not JSON"),
        (Reply(body={"items": []}), {A, B}, "not a JSON array"),
        (Reply(body=None), {A, B}, "not a JSON array"),
        (Reply(400, {"error": "bad"}), {A, B}, "HTTP 400"),
        ("A and one without files", {B}, "has no file SHA256"),
        ("A and one not a version", {B}, "malformed"),
    ],
)
def test_a_malformed_batch_answer(
    svc: Services, fake: FakeCivitai, answer: Reply | str, failed: set[str], reason: str
) -> None:
    if answer == "A and one without files":
        answer = Reply(body=[_version(fake, A), _version(fake, None, version_id=7, files=[])])
    elif answer == "A and one not a version":
        answer = Reply(body=[_version(fake, A), {"id": "7", "files": [file_json(B)]}, 3])
    assert isinstance(answer, Reply)
    fake.batch_script = [answer]
    report = svc.civitai.run(sha256s=[A, B])
    assert report["error"] is None and fake.lookup_paths() == [BATCH]  # not retried
    for sha in (A, B):
        result = result_of(report, sha)
        if sha in failed:  # failed, as a bad single answer fails: nothing changed
            assert result["status"] == "failed" and reason in result["detail"]
            assert svc.db.models.get(sha)["meta"] == {}
        else:
            assert result["status"] == "found"


# ---------------------------------------------------------------- meta.civitai
def test_the_air_is_civitais_or_derived(svc: Services, fake: FakeCivitai) -> None:
    fake.found(A, base_model="Pony", model_type="Checkpoint", images=[])
    body = fake.found(B, model_id=12, version_id=102, images=[])
    body["air"] = "urn:air:sdxl:lora:civitai:12@102"
    body["baseModel"] = "Illustrious"
    fake.found(C, model_id=13, version_id=103, base_model="Flux.1 D", model_type="LoCon")
    fake.lookups[C][0].body["images"] = []
    svc.civitai.run(sha256s=[A, B, C])
    airs = {s: svc.db.models.get(s)["meta"]["civitai"]["air"] for s in (A, B, C)}
    assert airs == {
        A: "urn:air:pony:checkpoint:civitai:11@101",
        B: "urn:air:sdxl:lora:civitai:12@102",  # the answer's own
        C: "urn:air:flux1:lycoris:civitai:13@103",
    }


def test_ecosystems_and_types() -> None:
    cases = {
        "SD 1.5": "sd1",
        "SD 1.5 LCM": "sd1",
        "SD 2.1 768": "sd2",
        "SDXL 1.0": "sdxl",
        "SDXL Turbo": "sdxl",
        "Pony": "pony",
        "Illustrious": "sdxl",
        "NoobAI": "sdxl",
        "Flux.1 D": "flux1",
        "SD 3.5 Large": "sd3",
        "Hunyuan Video": "hunyuanvideo",
        None: "other",
        "": "other",
    }
    assert {base: ecosystem_of(base) for base in cases} == cases
    types = {
        "LORA": "lora",
        "LoCon": "lycoris",
        "DoRA": "dora",
        "Checkpoint": "checkpoint",
        "TextualInversion": "embedding",
        "VAE": "vae",
        "Controlnet": "controlnet",
        "Upscaler": "upscaler",
        "Hypernetwork": "hypernet",
        "MotionModule": "motion",
        "Something New": "somethingnew",
        None: "other",
    }
    assert {t: air_type_of(t) for t in types} == types
    version = parse_version({"id": 5, "modelId": 4, "air": "not an air", "files": "x"})
    assert version.air_urn() == "urn:air:other:other:civitai:4@5" and version.files == []
    block = version.meta_block("https://civitai.com", A)
    assert block["hashes"] == {} and block["air"] == "urn:air:other:other:civitai:4@5"
    assert "air" not in version.meta_block("https://civitai.com")  # a sidecar's: as before


# ---------------------------------------------------------------- Civitai's NSFW site
@pytest.fixture
def red() -> Iterator[FakeCivitai]:
    """A second stand-in: the NSFW site (civitai.red)."""
    yield from fake_civitai_server()


def with_red(svc: Services, fake: FakeCivitai, red: FakeCivitai, **kwargs: Any) -> CivitaiService:
    settings = fake.settings(nsfw_url=red.url, **kwargs)
    return CivitaiService(svc.db, svc.images, svc.models, settings)


def test_hashes_the_first_site_does_not_know_are_asked_on_the_nsfw_site(
    svc: Services, fake: FakeCivitai, red: FakeCivitai
) -> None:
    fake.found(A, images=[])
    red.found(B, model_id=12, version_id=102, images=[])
    report = with_red(svc, fake, red, token="s3cret").run(sha256s=[A, B, C])
    assert statuses(report) == {A: "found", B: "found", C: "not_found"}
    assert report["done"] == 3 and report["error"] is None
    assert fake.posted == [[A.upper(), B.upper(), C.upper()]]
    assert red.posted == [[B.upper(), C.upper()]] and red.lookup_paths() == [BATCH]
    assert red.requests[0][1]["Authorization"] == "Bearer s3cret"  # Civitai's API, too
    urls = {s: svc.db.models.get(s)["meta"]["civitai"]["url"] for s in (A, B)}
    assert urls == {
        A: f"{fake.url}/models/11?modelVersionId=101",
        B: f"{red.url}/models/12?modelVersionId=102",
    }
    assert NOT_FOUND_KEY in svc.db.models.get(C)["meta"]  # known to neither


def test_the_nsfw_site_is_asked_in_full_batches(
    svc: Services, fake: FakeCivitai, red: FakeCivitai
) -> None:
    shas = [seed_model(svc, f"model {i}") for i in range(250)]
    for i, sha in enumerate(shas):
        (red if i % 2 else fake).found(sha, model_id=1000 + i, version_id=5000 + i, images=[])
    done: list[int] = []
    civitai = with_red(svc, fake, red)
    report = civitai.run(sha256s=shas, on_progress=lambda s: done.append(s["progress"]["done"]))
    assert report["counts"]["found"] == 250 and report["error"] is None
    assert len(fake.posted) == 3 and len(red.posted) == 2  # 125 unknown: 100 + 25
    assert [len(asked) for asked in red.posted] == [100, 25]
    assert done == list(range(1, 251))
    meta = svc.db.models.get(shas[1])["meta"]["civitai"]
    assert meta["url"].startswith(red.url) and meta["hashes"]["SHA256"] == shas[1].upper()


def test_the_nsfw_site_without_the_batch_endpoint(
    svc: Services, fake: FakeCivitai, red: FakeCivitai
) -> None:
    red.batch_script = [Reply(405, {})]
    red.found(B, images=[])
    report = with_red(svc, fake, red).run(sha256s=[A, B, C])
    assert statuses(report) == {A: "not_found", B: "found", C: "not_found"}
    assert fake.lookup_paths() == [BATCH]
    assert red.lookup_paths() == [BATCH, *(f"{BATCH}/{s}" for s in (A, B, C))]


def test_a_single_lookup_tries_the_nsfw_site_too(
    svc: Services, fake: FakeCivitai, red: FakeCivitai
) -> None:
    red.found(A, images=[])
    detail = with_red(svc, fake, red).lookup_one(A)
    assert detail["civitai"]["status"] == "found"
    assert detail["meta"]["civitai"]["url"] == f"{red.url}/models/11?modelVersionId=101"
    assert fake.lookup_paths() == [f"{BATCH}/{A}"] and red.lookup_paths() == [f"{BATCH}/{A}"]


def test_an_unreachable_nsfw_site_ends_the_job(svc: Services, fake: FakeCivitai) -> None:
    fake.found(A, images=[])
    offline = free_port_url()
    settings = fake.settings(nsfw_url=offline)
    report = CivitaiService(svc.db, svc.images, svc.models, settings).run(sha256s=[A, B])
    assert statuses(report) == {A: "found", B: "failed"}
    assert report["error"].startswith(f"Civitai unreachable: cannot connect to {offline}")
    assert "civitai_not_found" not in svc.db.models.get(B)["meta"]  # not known either way


def test_the_nsfw_sites_setting() -> None:
    assert CivitaiSettings().nsfw_site == "https://civitai.red"  # Civitai's own
    assert CivitaiSettings(url="http://127.0.0.1:9").nsfw_site is None  # a stand-in: none
    assert CivitaiSettings(nsfw_url="").nsfw_site is None
    env = {"HIKAZE_CIVITAI_NSFW_URL": "http://127.0.0.1:8/"}
    assert CivitaiSettings.from_env(env).nsfw_site == "http://127.0.0.1:8"
    assert CivitaiSettings.from_env({"HIKAZE_CIVITAI_NSFW_URL": "off"}).nsfw_site is None
    assert CivitaiSettings.from_env({}).nsfw_site == "https://civitai.red"
    for bad in ("ftp://x", "civitai.red", "http://x/?q=1"):
        with pytest.raises(ValueError, match="HIKAZE_CIVITAI_NSFW_URL"):
            CivitaiSettings.from_env({"HIKAZE_CIVITAI_NSFW_URL": bad})
