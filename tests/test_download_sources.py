"""Download sources (``library/download_sources.py``) resolved against our own Civitai and
Hugging Face on 127.0.0.1 (``tests/civitai_fake.py``, ``tests/hf_fake.py``): every source
form, the NSFW site asked about what the main one does not know, AIRs, the file of a
version, Hugging Face's LFS SHA-256, bad sources, 404s, unreachable sites, clean file
names, Civitai's types as folders, and the tokens (only in ``headers``, for the API host)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from hikaze_mm.config import Config, HfSettings
from hikaze_mm.library.civitai_schema import parse_model, parse_version
from hikaze_mm.library.download_sources import (
    CIVITAI_FOLDERS,
    TEMPLATE_KEYS,
    ParsedSource,
    Resolved,
    SourceError,
    SourceNotFound,
    SourceRefused,
    SourceSettings,
    SourceUnreachable,
    file_name_of,
    folder_of_civitai_type,
    host_port,
    parse_source,
    resolve,
)
from hikaze_mm.model_types import CANONICAL_TYPES
from tests.civitai_fake import (
    FakeCivitai,
    Reply,
    fake_civitai_server,
    file_json,
    free_port_url,
    version_json,
)
from tests.hf_fake import FakeHub
from tests.library_helpers import sha_for

A, B, C, D = (sha_for(x) for x in ("alpha", "beta", "gamma", "delta"))
TOKEN = "civ-secret-token-1234"
HF_TOKEN = "hf_secret_token_5678"
WEIGHTS = b"\x00safetensors weights " * 100


@pytest.fixture
def nsfw() -> Iterator[FakeCivitai]:
    """A second Civitai stand-in: the NSFW site."""
    yield from fake_civitai_server()


def settings_for(
    fake: FakeCivitai | None = None, hf: FakeHub | None = None, **kwargs: Any
) -> SourceSettings:
    return SourceSettings(
        civitai_url=fake.url if fake else "http://127.0.0.1:9",
        hf_url=hf.url if hf else "http://127.0.0.1:7",
        **kwargs,
    )


async def resolved(source: str, settings: SourceSettings, **kwargs: Any) -> Resolved:
    async with aiohttp.ClientSession() as session:
        return await resolve(source, session, settings, **kwargs)


def alpha_files() -> list[dict[str, Any]]:
    """Version 101's files: the primary, a second model file (fp32), training data."""
    fp32 = {"format": "SafeTensor", "fp": "fp32", "size": "full"}
    return [
        file_json(A, "alpha.safetensors"),
        file_json(B, "alpha-fp32.safetensors", primary=False, metadata=fp32),
        file_json(
            C, "alpha-data.zip", primary=False, type="Training Data", metadata={"format": "Other"}
        ),
    ]


def publish_alpha(fake: FakeCivitai) -> dict[str, Any]:
    """Model 11 with versions 102 (newest, ``v2.0``) and 101 (``v1.0``, three files),
    answered by id and by the hashes of 101's files."""
    old = version_json(fake.url, 11, 101, files=alpha_files(), images=[])
    new = version_json(fake.url, 11, 102, sha=D, images=[])
    new["name"] = "v2.0"
    for version in (old, new):
        fake.publish(version, versions=[new, old], author="alice", tags=["style", "anime"])
    for sha in (A, B, C):
        fake.lookups[sha] = [Reply(body=old)]
    return old


def expected_alpha(fake: FakeCivitai, **changes: Any) -> Resolved:
    """What version 101's primary file resolves to, on ``fake``, without a token."""
    block = {
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
    base = Resolved(
        kind="civitai",
        url=f"{fake.url}/api/download/models/101",
        file_name="alpha.safetensors",
        sha256=A,
        size=round(1024.5 * 1024),
        model_type="loras",
        auth_host=f"127.0.0.1:{fake.port}",
        headers={},
        civitai=block,
        values={
            "base_model": "SDXL 1.0",
            "model_name": "Alpha LoRA",
            "version_name": "v1.0",
            "author": "alice",
            "first_tag": "style",
        },
    )
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------- Civitai
@pytest.mark.parametrize(
    "form",
    [
        "{url}/models/11?modelVersionId=101",
        "{url}/models/11/alpha-lora?modelVersionId=101",
        "civitai:101",
        "urn:air:sdxl:lora:civitai:11@101",
        "URN:AIR:SDXL:LORA:CIVITAI:11@101.safetensors",
        "{url}/api/download/models/101",
        "sha256:{A}",
        "{A}",
        "{A_UPPER}",
        "autov2:{AUTOV2}",
        "{AUTOV2}",
    ],
)
async def test_every_civitai_form_resolves_version_101(fake: FakeCivitai, form: str) -> None:
    publish_alpha(fake)
    fake.lookups[A[:10]] = [Reply(body=fake.versions[101].body)]  # by AutoV2
    source = form.format(url=fake.url, A=A, A_UPPER=A.upper(), AUTOV2=A[:10].upper())
    assert await resolved(source, settings_for(fake)) == expected_alpha(fake)


async def test_a_model_page_or_air_without_a_version_is_the_latest_version(
    fake: FakeCivitai,
) -> None:
    publish_alpha(fake)
    for source in (f"{fake.url}/models/11", "urn:air:sdxl:lora:civitai:11"):
        got = await resolved(source, settings_for(fake))
        assert got.civitai is not None and got.civitai["version_id"] == 102
        assert (got.sha256, got.file_name, got.values["version_name"]) == (
            D,
            "alpha.safetensors",
            "v2.0",
        )
        assert got.url == f"{fake.url}/api/download/models/102"
    asked = [p for p, _ in fake.requests]
    assert "/api/v1/models/11?nsfw=true" in asked  # calls to /api/v1/models send nsfw=true


async def test_file_id_a_hash_or_a_download_links_query_picks_the_file(fake: FakeCivitai) -> None:
    publish_alpha(fake)
    settings = settings_for(fake)
    data_id = file_json(C)["id"]
    by_id = await resolved("civitai:101", settings, file_id=data_id)
    assert (by_id.file_name, by_id.sha256) == ("alpha-data.zip", C)
    assert by_id.url == f"{fake.url}/api/download/models/101?type=Training%20Data&format=Other"
    assert by_id.civitai is not None and by_id.civitai["hashes"] == file_json(C)["hashes"]
    by_hash = await resolved(f"sha256:{B}", settings)  # the file of that hash, not the primary
    assert (by_hash.file_name, by_hash.sha256) == ("alpha-fp32.safetensors", B)
    link = f"{fake.url}/api/download/models/101?type=Model&format=SafeTensor&fp=fp32"
    by_query = await resolved(link, settings)
    assert (by_query.file_name, by_query.sha256) == ("alpha-fp32.safetensors", B)
    with pytest.raises(SourceNotFound, match=f"no file 999 \\(its files: {file_json(A)['id']}"):
        await resolved("civitai:101", settings, file_id=999)
    with pytest.raises(SourceNotFound, match="no file of"):
        await resolved(f"{fake.url}/api/download/models/101?format=GGUF", settings)


async def test_without_a_primary_the_first_model_file_is_picked(fake: FakeCivitai) -> None:
    files = [
        file_json(C, "config.yaml", primary=False, type="Config"),
        file_json(A, "model.ckpt", primary=False),
    ]
    fake.publish(version_json(fake.url, 5, 50, files=files, model_type="Checkpoint", images=[]))
    got = await resolved("civitai:50", settings_for(fake))
    assert (got.file_name, got.sha256, got.model_type) == ("model.ckpt", A, "checkpoints")


async def test_hashes_and_ids_unknown_to_civitai_are_asked_on_the_nsfw_site(
    fake: FakeCivitai, nsfw: FakeCivitai
) -> None:
    publish_alpha(nsfw)
    settings = settings_for(fake, civitai_nsfw_url=nsfw.url)
    for source in (f"sha256:{A}", "civitai:101", "urn:air:sdxl:lora:civitai:11@101"):
        got = await resolved(source, settings)
        assert got == expected_alpha(nsfw), source  # linked to, and downloaded from, that site
    assert [p for p, _ in fake.requests] == [
        f"/api/v1/model-versions/by-hash/{A}",
        "/api/v1/model-versions/101",
        "/api/v1/model-versions/101",
    ]
    with pytest.raises(SourceNotFound, match=f"hash {D} .*asked {fake.url} and {nsfw.url}"):
        await resolved(f"sha256:{D}", settings)
    main_asked = len(fake.requests)
    page = await resolved(f"{nsfw.url}/models/11?modelVersionId=101", settings)
    assert page == expected_alpha(nsfw)  # a URL on the NSFW site is asked there only
    assert len(fake.requests) == main_asked
    on_main = await resolved(f"{fake.url}/models/11?modelVersionId=101", settings)
    assert on_main == expected_alpha(nsfw)  # a page on the main site it hides: the NSFW one
    assert fake.requests[-1][0] == "/api/v1/model-versions/101"
    plain = await resolved(f"{nsfw.url}/models/11", settings_for(fake))
    assert plain.kind == "url"  # a site that is not configured is any web address


async def test_civitai_404s_are_source_not_found(fake: FakeCivitai) -> None:
    settings = settings_for(fake)
    with pytest.raises(SourceNotFound, match="Civitai has no model version 999"):
        await resolved("civitai:999", settings)
    with pytest.raises(SourceNotFound, match="Civitai has no model 77"):
        await resolved(f"{fake.url}/models/77", settings)
    with pytest.raises(SourceNotFound, match=f"Civitai knows no file of hash {A}"):
        await resolved(f"sha256:{A}", settings)
    fake.publish(version_json(fake.url, 5, 50, files=[], images=[]))
    with pytest.raises(SourceNotFound, match="version 50 has no files"):
        await resolved("civitai:50", settings)


async def test_a_model_the_api_hides_still_resolves_without_author_and_tags(
    fake: FakeCivitai,
) -> None:
    publish_alpha(fake)
    del fake.models[11]
    got = await resolved("civitai:101", settings_for(fake))
    assert got.values == {**expected_alpha(fake).values, "author": "", "first_tag": ""}


async def test_the_civitai_token_is_only_in_headers_for_the_api_host(fake: FakeCivitai) -> None:
    publish_alpha(fake)
    settings = settings_for(fake, civitai_token=TOKEN)
    got = await resolved("civitai:101", settings)
    assert got == expected_alpha(fake, headers={"Authorization": f"Bearer {TOKEN}"})
    assert TOKEN not in got.url and TOKEN not in repr(got) and TOKEN not in repr(settings)
    assert all(h.get("Authorization") == f"Bearer {TOKEN}" for _, h in fake.requests)
    # A download link on another host is not followed with the key: the version's link on
    # Civitai is asked instead (its redirect to storage is the fetcher's, without the key).
    elsewhere = version_json(fake.url, 6, 60, sha=B, images=[])
    elsewhere["files"][0]["downloadUrl"] = "http://127.0.0.1:9/files/beta.safetensors"
    fake.publish(elsewhere)
    got = await resolved("civitai:60", settings)
    assert got.url == f"{fake.url}/api/download/models/60"
    assert got.auth_host == host_port(got.url) != host_port("http://127.0.0.1:9/")


async def test_a_sha256_given_must_agree_with_the_sources(fake: FakeCivitai) -> None:
    publish_alpha(fake)
    settings = settings_for(fake)
    same = await resolved("civitai:101", settings, sha256=A.upper())
    assert same.sha256 == A
    with pytest.raises(SourceError, match=f"sha256 given \\({B}\\) is not the one Civitai lists"):
        await resolved("civitai:101", settings, sha256=B)
    with pytest.raises(SourceError, match="64 hex digits"):
        await resolved("civitai:101", settings, sha256="abc")


async def test_an_unreachable_site_names_the_site_never_the_token() -> None:
    dead = free_port_url()
    settings = SourceSettings(civitai_url=dead, hf_url=dead, civitai_token=TOKEN, hf_token=HF_TOKEN)
    with pytest.raises(SourceUnreachable, match=f"cannot reach Civitai \\({dead}\\)") as civ:
        await resolved("civitai:101", settings)
    with pytest.raises(SourceUnreachable, match=f"cannot reach Hugging Face \\({dead}\\)") as hf:
        await resolved("hf:acme/x/a.safetensors", settings)
    for exc in (civ.value, hf.value):
        assert TOKEN not in str(exc.body()) and HF_TOKEN not in str(exc.body())
        assert exc.status == 502


async def test_an_api_redirect_elsewhere_is_followed_without_the_token(
    fake: FakeCivitai, nsfw: FakeCivitai
) -> None:
    publish_alpha(nsfw)
    fake.versions[101] = Reply(302, headers={"Location": f"{nsfw.url}/api/v1/model-versions/101"})
    fake.models[11] = Reply(301, headers={"Location": "/api/v1/models/12"})  # same host
    fake.models[12] = Reply(body=nsfw.models[11].body)
    got = await resolved("civitai:101", settings_for(fake, civitai_token=TOKEN))
    assert got.civitai is not None and got.civitai["version_id"] == 101
    assert got.values["author"] == "alice"
    asked = {path: headers.get("Authorization") for path, headers in fake.requests}
    assert asked == {
        "/api/v1/model-versions/101": f"Bearer {TOKEN}",
        "/api/v1/models/11?nsfw=true": f"Bearer {TOKEN}",
        "/api/v1/models/12": f"Bearer {TOKEN}",
    }
    assert [(p, "Authorization" in h) for p, h in nsfw.requests] == [
        ("/api/v1/model-versions/101", False)
    ]


async def test_a_site_that_does_not_answer_in_time(fake: FakeCivitai) -> None:
    fake.versions[1] = Reply(body={}, hold=True)
    timeout = aiohttp.ClientTimeout(total=0.5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        with pytest.raises(SourceUnreachable, match=f"no answer from Civitai \\({fake.url}\\)"):
            await resolve("civitai:1", session, settings_for(fake))


async def test_civitai_errors_and_malformed_answers(fake: FakeCivitai) -> None:
    fake.versions[1] = Reply(500, {"error": "boom"})
    fake.versions[2] = Reply(401, {"error": "unauthorized"})
    fake.versions[3] = Reply(raw=b"<html>not json</html>", content_type="text/html")
    fake.versions[4] = Reply(body={"id": 4})  # no modelId
    settings = settings_for(fake)
    with pytest.raises(SourceUnreachable, match="Civitai answered HTTP 500"):
        await resolved("civitai:1", settings)
    with pytest.raises(SourceRefused, match=r"HTTP 401.*HIKAZE_CIVITAI_TOKEN"):
        await resolved("civitai:2", settings)
    with pytest.raises(SourceUnreachable, match="not JSON"):
        await resolved("civitai:3", settings)
    with pytest.raises(SourceUnreachable, match="not a model version"):
        await resolved("civitai:4", settings)


async def test_the_civitai_stand_in_downloads_as_civitai_does(fake: FakeCivitai) -> None:
    publish_alpha(fake)
    fake.downloads[101] = "http://127.0.0.1:9/storage/alpha.safetensors"
    fake.early_access.add(102)
    link = f"{fake.url}/api/download/models/101"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(link, allow_redirects=False) as resp:  # no key: the login
            assert resp.status == 302
            assert resp.headers["Location"] == "/login?returnUrl=%2Fapi%2Fdownload%2Fmodels%2F101"
        async with session.get(link) as resp:
            assert resp.content_type == "text/html" and "Sign in" in await resp.text()
        async with session.get(link, headers=auth, allow_redirects=False) as resp:
            assert (resp.status, resp.headers["Location"]) == (302, fake.downloads[101])
        async with session.get(link.replace("101", "102"), headers=auth) as resp:
            assert resp.status == 403
        async with session.get(link.replace("101", "103"), headers=auth) as resp:
            assert resp.status == 404


# ---------------------------------------------------------------- Hugging Face
def expected_hf(hf: FakeHub, path: str = "loras/detail.safetensors", **changes: Any) -> Resolved:
    base = Resolved(
        kind="hf",
        url=f"{hf.url}/acme/flux-tools/resolve/main/{path}",
        file_name=path.rpartition("/")[2],
        sha256=hashlib.sha256(WEIGHTS).hexdigest(),
        size=len(WEIGHTS),
        model_type=None,
        auth_host=f"127.0.0.1:{hf.port}",
        headers={},
        civitai=None,
        values={**dict.fromkeys(TEMPLATE_KEYS, ""), "author": "acme", "model_name": "flux-tools"},
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    "form",
    [
        "{hf}/acme/flux-tools/resolve/main/loras/detail.safetensors",
        "{hf}/acme/flux-tools/resolve/main/loras/detail.safetensors?download=true",
        "{hf}/acme/flux-tools/blob/main/loras/detail.safetensors",
        "hf:acme/flux-tools/loras/detail.safetensors",
        "hf:acme/flux-tools@main/loras/detail.safetensors",
    ],
)
async def test_every_hugging_face_form_resolves_with_the_lfs_sha256(hf: FakeHub, form: str) -> None:
    sha = hf.add_file("acme/flux-tools", "loras/detail.safetensors", WEIGHTS)
    got = await resolved(form.format(hf=hf.url), settings_for(hf=hf))
    assert got == expected_hf(hf) and got.sha256 == sha
    port, path, _ = hf.requests[-1]
    assert (port, path) == (hf.port, "/api/models/acme/flux-tools/paths-info/main")


async def test_hugging_face_revisions_datasets_small_files_and_the_bytes(hf: FakeHub) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    hf.add_file("acme/flux-tools", "v.safetensors", WEIGHTS, rev=commit)
    hf.add_file("acme/pics", "data/x.safetensors", WEIGHTS, repo_type="datasets")
    hf.add_file("acme/flux-tools", "config.json", b"{}", lfs=False)
    settings = settings_for(hf=hf)
    at_commit = await resolved(f"{hf.url}/acme/flux-tools/resolve/{commit}/v.safetensors", settings)
    assert at_commit.url == f"{hf.url}/acme/flux-tools/resolve/{commit}/v.safetensors"
    assert at_commit.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    short = await resolved(f"hf:acme/flux-tools@{commit}/v.safetensors", settings)
    assert short == at_commit
    dataset = await resolved("hf:datasets/acme/pics/data/x.safetensors", settings)
    assert dataset.url == f"{hf.url}/datasets/acme/pics/resolve/main/data/x.safetensors"
    assert dataset == await resolved(
        f"{hf.url}/datasets/acme/pics/blob/main/data/x.safetensors", settings
    )
    hf.add_file("gpt2", "model.safetensors", WEIGHTS)
    legacy = await resolved(f"{hf.url}/gpt2/resolve/main/model.safetensors", settings)
    assert legacy.url == f"{hf.url}/gpt2/resolve/main/model.safetensors"
    assert (legacy.values["author"], legacy.values["model_name"]) == ("", "gpt2")
    small = await resolved("hf:acme/flux-tools/config.json", settings)
    assert (small.sha256, small.size) == (None, 2)  # not in LFS: the Hub lists no SHA-256
    given = await resolved("hf:acme/flux-tools/config.json", settings, sha256=A)
    assert given.sha256 == A
    async with aiohttp.ClientSession() as session, session.get(at_commit.url) as resp:
        assert resp.status == 200 and await resp.read() == WEIGHTS  # via the storage
    assert [p for _, p, _ in hf.storage_requests()] == [f"/lfs/{at_commit.sha256}"]


async def test_the_hf_token_is_only_in_headers_for_the_hub(hf: FakeHub) -> None:
    hf.add_file("acme/gated", "g.safetensors", WEIGHTS)
    hf.gated.add("acme/gated")
    hf.token = HF_TOKEN
    with pytest.raises(SourceRefused, match=r"gated repo.*HIKAZE_HF_TOKEN"):
        await resolved("hf:acme/gated/g.safetensors", settings_for(hf=hf))
    settings = settings_for(hf=hf, hf_token=HF_TOKEN)
    got = await resolved("hf:acme/gated/g.safetensors", settings)
    assert got.headers == {"Authorization": f"Bearer {HF_TOKEN}"}
    assert got.auth_host == f"127.0.0.1:{hf.port}" and got.auth_host == host_port(got.url)
    assert HF_TOKEN not in got.url and HF_TOKEN not in repr(got)
    assert host_port(f"{hf.storage_url}/lfs/x") != got.auth_host  # the storage gets none


async def test_hugging_face_404s_are_source_not_found(hf: FakeHub) -> None:
    hf.add_file("acme/flux-tools", "a.safetensors", WEIGHTS)
    settings = settings_for(hf=hf)
    cases = {
        "hf:acme/nothing/a.safetensors": "no file a.safetensors in acme/nothing at main",
        "hf:acme/flux-tools/b.safetensors": "no file b.safetensors in acme/flux-tools at main",
        "hf:acme/flux-tools@v9/a.safetensors": "no file a.safetensors in acme/flux-tools at v9",
    }
    for source, detail in cases.items():
        with pytest.raises(SourceNotFound, match=detail):
            await resolved(source, settings)


# ---------------------------------------------------------------- plain URLs
async def test_a_plain_url_keeps_its_name_and_the_callers_sha256() -> None:
    settings = settings_for()
    got = await resolved(
        "https://mirror.example/files/My%20Model.safetensors?dl=1#part", settings, sha256=A
    )
    assert got == Resolved(
        kind="url",
        url="https://mirror.example/files/My%20Model.safetensors?dl=1",
        file_name="My Model.safetensors",
        sha256=A,
        size=None,
        model_type=None,
        auth_host=None,
        headers={},
        civitai=None,
        values=dict.fromkeys(TEMPLATE_KEYS, ""),
    )
    local = await resolved("http://192.168.1.5:8000/m/.hidden.ckpt", settings)
    assert (local.kind, local.file_name, local.sha256) == ("url", "hidden.ckpt", None)


# ---------------------------------------------------------------- parsing
def test_parse_source_reads_each_form_on_the_configured_addresses() -> None:
    settings = SourceSettings(
        civitai_url="https://civitai.com",
        civitai_nsfw_url="https://civitai.red",
        hf_url="https://huggingface.co",
    )
    cases = {
        "https://civitai.com/models/11": ParsedSource(
            "civitai", "page", site="https://civitai.com", model_id=11
        ),
        "https://www.civitai.com/models/11/x?modelVersionId=5": ParsedSource(
            "civitai", "page", site="https://civitai.com", model_id=11, version_id=5
        ),
        "https://civitai.red/api/download/models/5?type=Model&format=SafeTensor&x=1": ParsedSource(
            "civitai",
            "download",
            site="https://civitai.red",
            version_id=5,
            query={"type": "Model", "format": "SafeTensor"},
        ),
        " civitai:42 ": ParsedSource("civitai", "version", version_id=42),
        "urn:air:flux1:checkpoint:civitai:618692@691639": ParsedSource(
            "civitai", "air", model_id=618692, version_id=691639
        ),
        f"SHA256:{A.upper()}": ParsedSource("civitai", "hash", hash=A),
        "ABCDEF0123": ParsedSource("civitai", "hash", hash="abcdef0123"),
        "https://huggingface.co/acme/m/resolve/refs%2Fpr%2F1/sub/a.safetensors": ParsedSource(
            "hf",
            "url",
            site="https://huggingface.co",
            repo="acme/m",
            revision="refs/pr/1",
            path="sub/a.safetensors",
        ),
        "https://huggingface.co/gpt2/resolve/main/model.safetensors": ParsedSource(
            "hf",
            "url",
            site="https://huggingface.co",
            repo="gpt2",
            revision="main",
            path="model.safetensors",
        ),
        "hf:acme/m/a.safetensors": ParsedSource(
            "hf", "short", repo="acme/m", revision="main", path="a.safetensors"
        ),
        "https://cdn.civitai.com/x/a.safetensors": ParsedSource(
            "url", "url", url="https://cdn.civitai.com/x/a.safetensors"
        ),
        "HTTP://Example.com/a.pt": ParsedSource("url", "url", url="http://Example.com/a.pt"),
    }
    assert {s: parse_source(s, settings) for s in cases} == cases


@pytest.mark.parametrize(
    "source,message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("nonsense", "unknown source"),
        ("ftp://example.com/a.bin", "ftp: sources are not supported"),
        ("file:///etc/passwd", "file: sources are not supported"),
        ("javascript:alert(1)", "javascript: sources are not supported"),
        ("C:\\models\\a.safetensors", "C: sources are not supported"),
        ("https://user:pw@example.com/a.bin", "user name or password"),
        ("https://example.com/a/..%2F..%2Fetc%2Fpasswd", "is a path"),
        ("https://example.com/a/..", "is a path"),
        ("https://example.com/", "no usable file name"),
        ("https://example.com:99999/a.bin", "malformed URL"),
        ("https://exa\x00mple.com/a.bin", "control characters"),
        ("civitai:abc", "positive number"),
        ("civitai:0", "positive number"),
        ("civitai:", "positive number"),
        ("sha256:1234", "64 hex digits"),
        ("autov2:zz", "10 hex digits"),
        ("urn:air:sdxl:lora:huggingface:1@2", "only Civitai AIRs"),
        ("urn:air:bogus", "malformed AIR"),
        ("hf:acme", "hf:<owner>/<name>/<path>"),
        ("hf:acme/x/../y.bin", "malformed Hugging Face file"),
        ("hf:acme/x/a//b.bin", "malformed Hugging Face file"),
        ("hf:ac me/x/y.bin", "malformed Hugging Face repo"),
        ("{hf}/acme/x/tree/main/a.bin", "must name a file"),
        ("{hf}/acme/x/resolve/main", "must name a file"),
        ("{hf}/spaces/a/b/resolve/main/x.bin", "Spaces"),
        ("{civitai}/images/123", "model page"),
        ("{civitai}/models/abc", "positive number"),
        ("{civitai}/models/1?modelVersionId=x", "positive number"),
        ("x" * 5000, "too long"),
    ],
)
async def test_bad_sources_are_refused_with_a_clear_message(source: str, message: str) -> None:
    settings = settings_for()
    text = source.format(hf=settings.hf_url, civitai=settings.civitai_url)
    with pytest.raises(SourceError, match=message) as caught:
        parse_source(text, settings)
    assert caught.value.status == 400
    with pytest.raises(SourceError):  # resolving refuses it before any request
        await resolved(text, settings)


async def test_file_id_is_for_civitai_sources_only() -> None:
    with pytest.raises(SourceError, match="file_id"):
        await resolved("https://example.com/a.bin", settings_for(), file_id=3)


# ---------------------------------------------------------------- names and types
def test_file_names_are_cleaned() -> None:
    cases = {
        "alpha.safetensors": "alpha.safetensors",
        "..hidden.safetensors": "hidden.safetensors",
        " spaced  name .ckpt": "spaced name .ckpt",
        "a\x01b.ckpt": "a_b.ckpt",
        'x<y>:z|"?*.pt': "x_y__z____.pt",
        "CON.safetensors": "_CON.safetensors",
        "nul": "_nul",
        "café.safetensors": "café.safetensors",
        "cafe\u0301.pt": "café.pt",  # NFC
        "evil\u202egpj.safetensors": "evil_gpj.safetensors",  # no right-to-left override
        "a\u2028b\x85c.pt": "a_b_c.pt",
    }
    assert {raw: file_name_of(raw) for raw in cases} == cases
    long = file_name_of("é" * 300 + ".safetensors")
    assert long.endswith("é.safetensors") and len(long.encode()) <= 200
    no_ext = file_name_of("a" * 300)
    assert no_ext == "a" * 200
    for bad in ("../x.pt", "a/b.pt", "a\\b.pt", "..", ".", "", "...", "  "):
        with pytest.raises(SourceError):
            file_name_of(bad)


def test_every_civitai_type_has_its_folder() -> None:
    expected = {
        "Checkpoint": "checkpoints",
        "LORA": "loras",
        "LoCon": "loras",
        "DoRA": "loras",
        "TextualInversion": "embeddings",
        "VAE": "vae",
        "Controlnet": "controlnet",
        "Upscaler": "upscale_models",
        "Hypernetwork": "hypernetworks",
        "MotionModule": "animatediff_models",
        "Detection": "ultralytics",
        "AestheticGradient": "other",
        "Poses": "other",
        "Wildcards": "other",
        "Workflows": "other",
        "Other": "other",
    }
    assert expected == CIVITAI_FOLDERS
    for civitai_type, folder in expected.items():
        assert folder_of_civitai_type(civitai_type) == folder
        assert folder_of_civitai_type(civitai_type.upper()) == folder
        assert folder in CANONICAL_TYPES or folder == "animatediff_models"
    assert folder_of_civitai_type("Something New") == "other"
    assert folder_of_civitai_type(None) == "other"


def test_host_port_is_explicit() -> None:
    assert host_port("https://Civitai.com/api") == "civitai.com:443"
    assert host_port("http://127.0.0.1:8080/x") == "127.0.0.1:8080"
    assert host_port("http://[::1]/x") == "[::1]:80"
    assert host_port("ftp://x/y") is None and host_port("http://:99999") is None


# ---------------------------------------------------------------- schema and settings
def test_the_schema_reads_a_files_download_fields_and_a_model() -> None:
    version = parse_version(version_json("https://civitai.com", 11, 101, files=alpha_files()))
    primary = version.files[0]
    assert (primary.id, primary.name, primary.size_kb, primary.type, primary.primary) == (
        file_json(A)["id"],
        "alpha.safetensors",
        1024.5,
        "Model",
        True,
    )
    assert primary.download_url == "https://civitai.com/api/download/models/101"
    assert primary.metadata == {"format": "SafeTensor", "fp": "fp16", "size": "pruned"}
    assert primary.autov2() == A[:10]
    bare = parse_version({"id": 2, "modelId": 1, "files": [{"id": 9, "name": "x.pt"}, "junk"]})
    assert [(f.id, f.sha256, f.hashes) for f in bare.files] == [(9, None, {})]
    model = parse_model(
        {
            "id": 1,
            "name": "M",
            "type": "LORA",
            "creator": {"username": "bob"},
            "tags": ["a", 3, "b"],
            "modelVersions": [{"id": 7}, {"id": "x"}, {"id": 5}],
        }
    )
    assert (model.author, model.tags, model.version_ids) == ("bob", ["a", "b"], [7, 5])


def test_hf_settings_come_from_the_environment_and_hide_the_token(tmp_path: Any) -> None:
    env = {"HIKAZE_HF_URL": "http://127.0.0.1:5/", "HIKAZE_HF_TOKEN": HF_TOKEN}
    config = Config.load(data_dir=tmp_path, env=env)
    assert config.hf == HfSettings(url="http://127.0.0.1:5", token=HF_TOKEN)
    assert HF_TOKEN not in repr(config)
    assert Config.load(data_dir=tmp_path, env={}).hf == HfSettings("https://huggingface.co")
    with pytest.raises(ValueError, match="HIKAZE_HF_URL"):
        Config.load(data_dir=tmp_path, env={"HIKAZE_HF_URL": "ftp://x"})
    civitai = {"HIKAZE_CIVITAI_TOKEN": TOKEN, **env}
    settings = SourceSettings.from_config(Config.load(data_dir=tmp_path, env=civitai))
    assert settings == SourceSettings(
        civitai_url="https://civitai.com",
        civitai_nsfw_url="https://civitai.red",
        civitai_token=TOKEN,
        hf_url="http://127.0.0.1:5",
        hf_token=HF_TOKEN,
    )
    assert TOKEN not in repr(settings) and HF_TOKEN not in repr(settings)
