"""Civitai lookups against our own Civitai on 127.0.0.1 (``tests/civitai_fake.py``): what
a lookup fills and never overwrites, previews (NSFW filter, caps, bad images), a 404
remembered, 429/5xx backoff, timeouts, malformed answers, an unreachable Civitai, the
token bucket's decisions (an injected clock), and the automatic-lookup hook."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from hikaze_mm.config import CivitaiSettings, Config
from hikaze_mm.errors import ValidationError
from hikaze_mm.library.civitai import (
    DAY_MS,
    NOT_FOUND_KEY,
    CivitaiService,
)
from hikaze_mm.library.civitai_client import TokenBucket, retry_after_seconds
from hikaze_mm.library.civitai_schema import CivitaiBadResponse, html_to_text, parse_version
from hikaze_mm.library.requests import CivitaiFetch, MetaEdit, ModelPatch
from hikaze_mm.server.requests.jobs import civitai_fetch
from hikaze_mm.services import Services
from tests.civitai_fake import (
    FakeCivitai,
    Reply,
    file_json,
    free_port_url,
    image,
)
from tests.conftest import on_each_backend
from tests.library_helpers import png_bytes, seed_model, sha_for

config = on_each_backend()

A, B, C, D = (sha_for(x) for x in ("alpha", "beta", "gamma", "delta"))
BATCH = "/api/v1/model-versions/by-hash"  # the POST of a batch; a GET adds /{sha256}
NO_BATCH = Reply(405, {"error": "Method not allowed"})  # a Civitai without the POST


class Clock:
    """Milliseconds, moved by hand (the not-found memory's clock)."""

    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


def open_services(config: Config, settings: CivitaiSettings) -> Services:
    return Services.open(dataclasses.replace(config, civitai=settings))


@pytest.fixture
def svc(config: Config, fake: FakeCivitai) -> Iterator[Services]:
    services = open_services(config, fake.settings())
    for label in ("alpha", "beta", "gamma", "delta"):
        seed_model(services, label)
    yield services
    services.close()


def service(svc: Services, settings: CivitaiSettings, **kwargs: Any) -> CivitaiService:
    """A CivitaiService on the same library with other settings or injected parts."""
    return CivitaiService(svc.db, svc.images, svc.models, settings, **kwargs)


def result_of(report: dict[str, Any], sha: str) -> dict[str, Any]:
    return next(r for r in report["results"] if r["sha256"] == sha)


# ---------------------------------------------------------------- found
def test_a_found_model_gets_its_empty_fields_and_previews(svc: Services, fake: FakeCivitai) -> None:
    fake.found(A, images=[image(fake.url, "a.png", 1), image(fake.url, "b.png", 2)])
    fake.serve_png("a.png")
    fake.serve_png("b.png", (30, 20))
    report = svc.civitai.run(sha256s=[A])
    assert report["error"] is None and report["counts"]["found"] == 1
    assert report["counts"]["images"] == 2
    result = result_of(report, A)
    assert result["status"] == "found" and result["problems"] == []
    assert set(result["filled"]) == {"trigger_words", "description", "civitai", "base", "images"}
    record = svc.models.detail(A)
    meta = record["meta"]
    assert record["trigger_words"] == ["alpha style", "alpha"]  # trimmed, deduplicated
    assert meta["description"] == "A fine LoRA & more.\n\nSecond."  # the HTML as text
    assert meta["civitai"] == {
        "model_id": 11,
        "version_id": 101,
        "model_name": "Alpha LoRA",
        "version_name": "v1.0",
        "url": f"{fake.url}/models/11?modelVersionId=101",
        "base_model": "SDXL 1.0",
        "nsfw": False,
        "nsfw_level": None,
        "air": "urn:air:sdxl:lora:civitai:11@101",
        "hashes": file_json(A)["hashes"],
    }
    assert meta["civitai"]["hashes"]["SHA256"] == A.upper()
    assert record["base"] == "SDXL 1.0"
    assert meta["sources"] == {
        "trigger_words": "civitai",
        "description": "civitai",
        "base": "civitai",
        "images": "civitai",
    }
    assert record["image_count"] == 2
    paths = [p for p, _ in fake.requests]
    assert paths == [BATCH, "/img/a.png", "/img/b.png"] and fake.posted == [[A.upper()]]
    assert all("Authorization" not in h for _, h in fake.requests)  # no token configured


def test_the_token_goes_to_the_api_only(svc: Services, fake: FakeCivitai) -> None:
    fake.found(A)
    fake.serve_png("a.png")
    civitai = service(svc, fake.settings(token="s3cret"))
    assert civitai.run(sha256s=[A])["counts"]["found"] == 1
    (api_path, api_headers), (img_path, img_headers) = fake.requests
    assert api_path == BATCH
    assert api_headers["Authorization"] == "Bearer s3cret"
    assert img_path == "/img/a.png" and "Authorization" not in img_headers
    assert "s3cret" not in repr(civitai.settings)


def test_user_fields_and_base_are_never_overwritten(svc: Services, fake: FakeCivitai) -> None:
    svc.models.patch(A, ModelPatch(trigger_words=("mine",), base="Pony", preferred_weight=0.7))
    svc.models.patch(B, ModelPatch(meta=MetaEdit("merge", {"description": "my words"})))
    svc.models.patch(C, ModelPatch(trigger_words=()))  # a user emptied them: stays empty
    svc.images.add_image(B, png_bytes())  # B has an image: no previews downloaded
    for sha in (A, B, C):
        fake.found(sha)
    fake.serve_png("a.png")
    report = svc.civitai.run(sha256s=[A, B, C])
    assert report["counts"]["found"] == 3
    a, b, c = (svc.models.detail(s) for s in (A, B, C))
    assert a["trigger_words"] == ["mine"] and a["base"] == "Pony"
    assert a["preferred_weight"] == 0.7
    assert a["meta"]["description"].startswith("A fine LoRA")
    assert a["meta"]["sources"]["base"] == "user"
    assert a["meta"]["sources"]["trigger_words"] == "user"
    assert b["meta"]["description"] == "my words" and b["image_count"] == 1
    assert b["meta"]["sources"]["description"] == "user"
    assert b["trigger_words"] == ["alpha style", "alpha"]
    assert c["trigger_words"] == [] and c["meta"]["sources"]["trigger_words"] == "user"
    assert "images" not in result_of(report, B)["filled"]
    assert [p for p, _ in fake.requests].count("/img/a.png") == 2  # for A and C, not B
    # A second lookup finds nothing empty left to fill.
    again = svc.civitai.run(sha256s=[A], force=True)
    assert result_of(again, A)["filled"] == []


def test_civitai_base_replaces_an_unclaimed_one(svc: Services, fake: FakeCivitai) -> None:
    svc.db.models.update(A, base="SDXL")  # as a scan's probe writes it: no source
    fake.found(A, images=[])
    svc.civitai.run(sha256s=[A])
    record = svc.models.detail(A)
    assert record["base"] == "SDXL 1.0" and record["meta"]["sources"]["base"] == "civitai"


# ---------------------------------------------------------------- not found
def test_a_404_is_remembered_for_7_days(svc: Services, fake: FakeCivitai) -> None:
    clock = Clock()
    civitai = service(svc, fake.settings(), now=clock)
    report = civitai.run(sha256s=[A])
    assert result_of(report, A)["status"] == "not_found" and len(fake.lookup_paths()) == 1
    memo = svc.db.models.get(A)["meta"][NOT_FOUND_KEY]
    assert memo == {"checked_at": clock.ms, "until": clock.ms + 7 * DAY_MS}
    clock.ms += 6 * DAY_MS
    report = civitai.run(sha256s=[A])
    assert result_of(report, A)["remembered"] is True
    assert report["counts"]["not_found"] == 1 and len(fake.lookup_paths()) == 1  # not asked
    assert A not in civitai.targets(None, missing=True, force=False)
    assert A in civitai.targets(None, missing=True, force=True)
    civitai.run(sha256s=[A], force=True)  # forced: asked again
    assert len(fake.lookup_paths()) == 2
    clock.ms += 8 * DAY_MS  # the memory is over
    fake.found(A, images=[])
    report = civitai.run(sha256s=[A])
    assert result_of(report, A)["status"] == "found" and len(fake.lookup_paths()) == 3
    assert NOT_FOUND_KEY not in svc.db.models.get(A)["meta"]  # a match clears it


def test_missing_means_without_civitai_data(svc: Services, fake: FakeCivitai) -> None:
    fake.found(A, images=[])
    svc.civitai.run(sha256s=[A, B])  # A found, B not found (remembered)
    assert svc.civitai.targets(None, missing=True, force=False) == sorted([C, D])
    fake.requests.clear()
    report = svc.civitai.run(missing=True)
    assert report["total"] == 2 and report["mode"] == "missing"
    assert fake.lookup_paths() == [BATCH] and sorted(fake.posted[-1]) == sorted(
        [C.upper(), D.upper()]
    )


# ---------------------------------------------------------------- a good citizen
def test_429_honours_retry_after_then_succeeds(svc: Services, fake: FakeCivitai) -> None:
    body = fake.found(A, images=[])
    fake.lookups[A] = [Reply(429, {"error": "slow down"}, headers={"Retry-After": "1"})]
    fake.lookups[A].append(Reply(body=body))
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    civitai = service(svc, fake.settings(), sleep=record)
    report = civitai.run(sha256s=[A])
    assert result_of(report, A)["status"] == "found" and len(fake.lookup_paths()) == 2
    assert max(waits) > 0.9  # the retry waited for Retry-After (1 s), not the 1 ms pace


def test_429_with_retry_after_0_and_5xx_backoff(svc: Services, fake: FakeCivitai) -> None:
    """A batch answered 429, then 503, is tried again as a whole: three requests."""
    body = fake.found(A, images=[])
    fake.lookups[A] = [Reply(429, {}, headers={"Retry-After": "0"}), Reply(body=body)]
    body = fake.found(B, images=[])
    fake.lookups[B] = [Reply(500, {}), Reply(503, {}), Reply(body=body)]
    report = svc.civitai.run(sha256s=[A, B])
    assert report["counts"]["found"] == 2
    assert fake.lookup_paths() == [BATCH] * 3


def test_5xx_until_the_tries_run_out_fails_the_batch(svc: Services, fake: FakeCivitai) -> None:
    fake.lookups[A] = [Reply(502, {})]
    fake.found(B, images=[])
    report = service(svc, fake.settings(tries=3)).run(sha256s=[A, B])
    for sha in (A, B):  # one request asked about both: both failed, neither remembered
        result = result_of(report, sha)
        assert result["status"] == "failed" and "HTTP 502 after 3 tries" in result["detail"]
        assert svc.db.models.get(sha)["meta"] == {}
    assert fake.lookup_paths() == [BATCH] * 3 and report["error"] is None
    fake.batch_script = [NO_BATCH]  # one hash a time: three tries for A, then B
    report = service(svc, fake.settings(tries=3)).run(sha256s=[A, B])
    assert result_of(report, A)["status"] == "failed"
    assert result_of(report, B)["status"] == "found" and report["error"] is None
    assert fake.lookup_paths()[3:] == [BATCH, *[f"{BATCH}/{A}"] * 3, f"{BATCH}/{B}"]


def test_three_unanswered_requests_in_a_row_end_the_job(svc: Services, fake: FakeCivitai) -> None:
    fake.batch_script = [NO_BATCH]
    for sha in (A, B, C, D):
        fake.lookups[sha] = [Reply(500, {})]
    report = service(svc, fake.settings(tries=2)).run(sha256s=[A, B, C, D])
    assert report["done"] == 3 and report["counts"]["failed"] == 3
    assert report["error"].startswith("Civitai unreachable: HTTP 500 after 2 tries")
    assert fake.lookup_paths() == [BATCH, *(f"{BATCH}/{s}" for s in (A, A, B, B, C, C))]


def test_a_timeout_fails_its_request_and_the_job_goes_on(svc: Services, fake: FakeCivitai) -> None:
    fake.lookups[A] = [Reply(body={}, sleep=5)]
    fake.found(B, images=[])
    report = service(svc, fake.settings(timeout=0.3)).run(sha256s=[A, B])
    for sha in (A, B):  # asked in one request
        result = result_of(report, sha)
        assert result["status"] == "failed" and "no answer" in result["detail"]
        assert "0.3s" in result["detail"]
    fake.batch_script = [NO_BATCH]
    report = service(svc, fake.settings(timeout=0.3)).run(sha256s=[A, B])
    a = result_of(report, A)
    assert a["status"] == "failed" and "no answer" in a["detail"] and "0.3s" in a["detail"]
    assert result_of(report, B)["status"] == "found"


@pytest.mark.parametrize(
    "reply, reason",
    [
        (Reply(raw=b"<html>oops</html>", content_type="text/html"), "not JSON"),
        (Reply(body={"items": []}), "no model and version id"),
        (Reply(body=[1, 2]), "not a JSON object"),
        (Reply(body={"id": "7", "modelId": 3}), "no model and version id"),
        (Reply(400, {"error": "bad"}), "HTTP 400"),
    ],
)
def test_a_malformed_answer_fails_that_model(
    svc: Services, fake: FakeCivitai, reply: Reply, reason: str
) -> None:
    fake.batch_script = [NO_BATCH]  # the single lookup's answer
    fake.lookups[A] = [reply]
    report = svc.civitai.run(sha256s=[A])
    a = result_of(report, A)
    assert a["status"] == "failed" and reason in a["detail"]
    assert fake.lookup_paths() == [BATCH, f"{BATCH}/{A}"]  # not retried
    assert report["error"] is None
    assert svc.db.models.get(A)["meta"] == {}


def test_an_answer_over_the_cap_is_malformed(svc: Services, fake: FakeCivitai) -> None:
    fake.found(A, description="x" * 5000)
    report = service(svc, fake.settings(max_response_bytes=1000)).run(sha256s=[A])
    assert "over 4000 bytes" in result_of(report, A)["detail"]  # a batch's cap: 4 times
    fake.batch_script = [NO_BATCH]
    report = service(svc, fake.settings(max_response_bytes=1000)).run(sha256s=[A])
    assert "over 1000 bytes" in result_of(report, A)["detail"]


def test_offline_says_unreachable_once_and_stops(svc: Services) -> None:
    settings = CivitaiSettings(url=free_port_url(), requests_per_second=1000.0)
    report = service(svc, settings).run(sha256s=[A, B, C])  # one batch: all three failed
    assert report["done"] == 3 and report["total"] == 3
    assert report["error"].startswith("Civitai unreachable: cannot connect to http://127.0.0.1:")
    assert report["counts"] == {"found": 0, "not_found": 0, "failed": 3, "skipped": 0, "images": 0}


def test_the_job_paces_every_request_through_one_bucket(svc: Services, fake: FakeCivitai) -> None:
    """With a clock that never moves, a bucket of 2/s makes each request wait 0.5 s more."""
    for sha in (A, B):
        fake.found(sha)
    fake.serve_png("a.png")
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    bucket = TokenBucket(2.0, clock=lambda: 100.0)
    civitai = service(svc, fake.settings(), bucket=bucket, sleep=record)
    civitai.run(sha256s=[A, B])
    assert len(fake.requests) == 3  # one batch of two lookups, two images
    assert waits == [0.5, 1.0]  # the first went at once


def test_token_bucket_decisions() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.5, 1.0]  # queued in order
    now[0] = 1.0  # the debt is paid: -2 + 2 tokens
    assert bucket.reserve() == 0.5
    now[0] = 10.0  # idle: refilled up to its capacity (1), no more
    assert bucket.reserve() == 0.0 and bucket.reserve() == 0.5
    now[0] = 20.0
    bucket.hold(3.0)  # a 429 with Retry-After: 3
    assert bucket.reserve() == 3.0
    now[0] = 23.0
    assert bucket.reserve() == 0.5
    burst = TokenBucket(1.0, capacity=3, clock=lambda: 0.0)
    assert [burst.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_retry_after_values() -> None:
    assert retry_after_seconds("0") == 0.0 and retry_after_seconds(" 7 ") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412500.0) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


# ---------------------------------------------------------------- previews
def test_previews_above_the_nsfw_setting_are_not_downloaded(
    svc: Services, fake: FakeCivitai
) -> None:
    levels = {"l1.png": 1, "l4.png": 4, "l8.png": 8, "unrated.png": None, "l2.png": 2}
    for name in levels:
        fake.serve_png(name)
    fake.found(A, images=[image(fake.url, n, lv) for n, lv in levels.items()])
    fake.found(B, images=[image(fake.url, n, lv) for n, lv in levels.items()])
    report = svc.civitai.run(sha256s=[A])
    a = result_of(report, A)
    assert a["images"] == 2 and a["images_skipped_nsfw"] == 3
    assert [p for p, _ in fake.requests if p.startswith("/img/")] == ["/img/l1.png", "/img/l2.png"]
    fake.requests.clear()
    report = service(svc, fake.settings(max_nsfw=4)).run(sha256s=[B])
    assert result_of(report, B)["images"] == 3
    assert [p for p, _ in fake.requests if p.startswith("/img/")] == [
        "/img/l1.png",
        "/img/l4.png",
        "/img/l2.png",
    ]


def test_at_most_four_previews_and_bad_ones_are_skipped(svc: Services, fake: FakeCivitai) -> None:
    names = ["text.png", "gone.png", "ok1.png", "ok2.png", "ok3.png", "ok4.png", "ok5.png"]
    for name in names[2:]:
        fake.serve_png(name)
    fake.images["text.png"] = Reply(raw=b"this is no image", content_type="image/png")
    extra = [
        image(fake.url, "video.mp4", 1, type="video"),
        {"url": "file:///etc/passwd", "nsfwLevel": 1},
        image(fake.url, "huge.png", 1, width=20_000, height=20_000),
    ]
    fake.found(A, images=[*extra, *(image(fake.url, n, 1) for n in names)])
    report = svc.civitai.run(sha256s=[A])
    a = result_of(report, A)
    assert a["status"] == "found" and a["images"] == 4
    assert svc.models.detail(A)["image_count"] == 4
    problems = "\n".join(a["problems"])
    assert "text.png: not an image" in problems
    assert "gone.png: HTTP 404" in problems
    assert "file:///etc/passwd" in problems and "not an http(s) address" in problems
    assert "20000x20000 is too large" in problems
    fetched = [p for p, _ in fake.requests if p.startswith("/img/")]
    assert "/img/video.mp4" not in fetched and "/img/huge.png" not in fetched
    assert "/img/ok5.png" not in fetched  # four stored: no fifth download


def test_an_oversized_preview_is_cut_off_at_the_cap(svc: Services, fake: FakeCivitai) -> None:
    fake.images["stream.png"] = Reply(stream=256 * 1024 * 1024)  # no Content-Length
    fake.images["big.png"] = Reply(raw=b"\x89PNG" + b"\0" * 300_000)  # a Content-Length
    fake.serve_png("small.png")
    names = ("stream.png", "big.png", "small.png")
    fake.found(A, images=[image(fake.url, n, 1) for n in names])
    report = service(svc, fake.settings(max_image_bytes=200_000)).run(sha256s=[A])
    a = result_of(report, A)
    assert a["images"] == 1
    assert any("stream.png: over 200000 bytes" in p for p in a["problems"])
    assert any("big.png: 300004 bytes, over 200000" in p for p in a["problems"])
    assert fake.streamed < 64 * 1024 * 1024  # stopped reading long before the end


# ---------------------------------------------------------------- jobs
def test_start_runs_in_the_background_and_cancels(svc: Services, fake: FakeCivitai) -> None:
    fake.lookups[A] = [Reply(body={}, hold=True)]
    status = svc.civitai.start(sha256s=[A, B])
    assert status["running"] is True and status["progress"] == {"done": 0, "total": 2}
    with pytest.raises(Exception) as busy:
        svc.civitai.start(sha256s=[C])
    assert getattr(busy.value, "status", None) == 409
    svc.civitai.close()  # cancels the held lookup within its next wait
    fake.release.set()
    assert svc.civitai.wait(10)
    assert svc.civitai.status()["error"] == "cancelled"


def test_maybe_auto_does_nothing_unless_on(svc: Services, fake: FakeCivitai) -> None:
    assert svc.civitai.maybe_auto([A, B]) is None
    assert fake.requests == [] and svc.civitai.status()["started_at"] is None
    fake.found(A, images=[])
    civitai = service(svc, fake.settings(auto=True))
    civitai.maybe_auto([A])
    assert civitai.wait(10) and civitai.status()["counts"]["found"] == 1
    assert civitai.status()["mode"] == "auto"
    fake.requests.clear()
    assert civitai.maybe_auto([A])["running"] is False  # has Civitai data: not asked again
    assert fake.requests == []
    civitai.close()


def test_maybe_auto_joins_the_running_job(svc: Services, fake: FakeCivitai) -> None:
    fake.found(A, images=[])
    body = fake.lookups[A][0].body
    fake.lookups[A] = [Reply(body=body, hold=True)]
    fake.found(B, images=[])
    civitai = service(svc, fake.settings(auto=True))
    civitai.start(sha256s=[A])
    status = civitai.maybe_auto([B])  # queued for the running job
    assert status["running"] is True
    fake.release.set()
    assert civitai.wait(10)
    status = civitai.status()
    assert status["progress"] == {"done": 2, "total": 2}
    assert status["counts"]["found"] == 2
    civitai.close()


def test_a_model_deleted_during_the_lookup_is_skipped(svc: Services, fake: FakeCivitai) -> None:
    report = svc.civitai.run(sha256s=[sha_for("nowhere")])
    assert report["counts"]["skipped"] == 1 and fake.requests == []


# ---------------------------------------------------------------- parsing
def test_fetch_bodies() -> None:
    assert civitai_fetch({"missing": True}) == CivitaiFetch(sha256s=None, missing=True)
    assert civitai_fetch({"sha256s": [A.upper()], "force": True}) == CivitaiFetch(
        sha256s=(A,), force=True
    )
    for bad in (
        {},
        {"missing": True, "sha256s": [A]},
        {"missing": False},
        {"missing": "yes"},
        {"sha256s": []},
        {"sha256s": A},
        {"sha256s": ["xyz"]},
        {"sha256s": [A] * 1001},
        {"sha256s": [A], "force": 1},
        {"sha256s": [A], "extra": 1},
    ):
        with pytest.raises(ValidationError):
            civitai_fetch(bad)


def test_parse_version_and_descriptions() -> None:
    version = parse_version(
        {
            "id": 5,
            "modelId": 4,
            "trainedWords": ["a", 3, "", "a", "b" * 201, "c"],
            "images": [{"url": "http://x/1.png", "nsfwLevel": True}, {"nope": 1}, "x"],
            "model": "not a dict",
            "nsfwLevel": 2,
        }
    )
    assert version.trained_words == ["a", "c"]
    assert version.model_name is None and version.description is None
    assert [i.url for i in version.images] == ["http://x/1.png"]
    assert version.images[0].nsfw_level is None and version.nsfw_level == 2
    with pytest.raises(CivitaiBadResponse):
        parse_version({"id": True, "modelId": 1})
    text = html_to_text("<h1>Title</h1><ul><li>one</li><li>two &lt;3</li></ul>line<br>next")
    assert text == "Title\n\n- one\n\n- two <3\n\nline\nnext"


def test_settings_from_the_environment() -> None:
    assert CivitaiSettings.from_env({}) == CivitaiSettings()
    s = CivitaiSettings.from_env(
        {
            "HIKAZE_CIVITAI_URL": "http://127.0.0.1:9/",
            "HIKAZE_CIVITAI_TOKEN": " t ",
            "HIKAZE_CIVITAI_AUTO": "1",
            "HIKAZE_CIVITAI_MAX_NSFW": "4",
        }
    )
    assert (s.url, s.token, s.auto, s.max_nsfw) == ("http://127.0.0.1:9", "t", True, 4)
    for key, value in (
        ("HIKAZE_CIVITAI_URL", "ftp://x"),
        ("HIKAZE_CIVITAI_URL", "civitai.com"),
        ("HIKAZE_CIVITAI_AUTO", "maybe"),
        ("HIKAZE_CIVITAI_MAX_NSFW", "0"),
        ("HIKAZE_CIVITAI_MAX_NSFW", "x"),
    ):
        with pytest.raises(ValueError, match=key):
            Config.load(data_dir="/tmp/x", env={key: value})


def test_store_meta_values_and_without_meta(svc: Services) -> None:
    db = svc.db
    db.models.update(A, meta={"trigger_words": ["x"], "civitai": {"model_id": 1}, "w": 0.5})
    db.models.update(B, meta={"trigger_words": "one", "flag": True, "civitai": None})
    db.models.update(C, meta={"civitai_not_found": {"until": 2_000}})
    assert db.models.meta_values([A, B, C, D], "trigger_words") == {A: ["x"], B: "one"}
    assert db.models.meta_values([A, B], "civitai.model_id") == {A: 1}
    assert db.models.meta_values([A, B], "flag") == {B: True}
    assert db.models.meta_values([A], "w") == {A: 0.5}
    assert db.models.without_meta("civitai") == sorted([B, C, D])
    assert db.models.without_meta("civitai", unless_after="civitai_not_found.until", now=1_000) == (
        sorted([B, D])
    )
    assert db.models.without_meta("civitai", unless_after="civitai_not_found.until", now=2_000) == (
        sorted([B, C, D])
    )
    with pytest.raises(ValueError):
        db.models.meta_values([A], "a') OR 1=1 --")


def test_a_lookup_waits_for_nothing_on_the_servers_loop(svc: Services, fake: FakeCivitai) -> None:
    """``lookup_one`` runs its own loop in the calling (worker) thread."""
    fake.found(A, images=[])
    results: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: results.append(svc.civitai.lookup_one(A)))
    thread.start()
    thread.join(20)
    assert results and results[0]["civitai"]["status"] == "found"
    assert results[0]["trigger_words"] == ["alpha style", "alpha"]
