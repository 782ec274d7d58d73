"""A download by every source form, end to end: our Civitai and Hugging Face stand-ins
resolve it, our storage host serves it (on another port, so a leaked token would show),
and the model lands in the library with its SHA-256 (and Civitai's ``meta.civitai``)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hikaze_mm.config import Config
from hikaze_mm.library.download_fetch import CIVITAI_EARLY_ACCESS, CIVITAI_KEY_NEEDED
from hikaze_mm.services import Services
from tests.civitai_fake import FakeCivitai, Reply, version_json
from tests.hf_fake import FakeHub
from tests.storage_fake import FakeStorage
from tests.test_downloads import MIB, finished, payload

TOKEN = "civ-download-secret-42"


def open_services(tmp_path: Path, models_root: Path, env: dict[str, str]) -> Iterator[Services]:
    config = Config.load(data_dir=tmp_path / "data", model_roots=[str(models_root)], env=env)
    svc = Services.open(config)
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def civitai_services(tmp_path: Path, models_root: Path, fake: FakeCivitai) -> Iterator[Services]:
    env = {"HIKAZE_CIVITAI_URL": fake.url, "HIKAZE_CIVITAI_TOKEN": TOKEN}
    yield from open_services(tmp_path, models_root, env)


def publish(fake: FakeCivitai, storage: FakeStorage, data: bytes, **kwargs: Any) -> str:
    sha = hashlib.sha256(data).hexdigest()
    storage.put("alpha.safetensors", data)
    version = version_json(fake.url, sha=sha, **kwargs)
    fake.publish(version, storage_url=storage.file_url("alpha.safetensors"))
    fake.found(sha, **kwargs)
    fake.lookups[sha[:10]] = [Reply(body=version)]  # by AutoV2
    return sha


def no_token_reached(storage: FakeStorage) -> bool:
    return bool(storage.requests) and all(
        "Authorization" not in h and TOKEN not in str(h) for h in storage.headers_seen()
    )


@pytest.mark.parametrize(
    "form",
    [
        "{site}/models/11?modelVersionId=101",
        "{site}/models/11",
        "civitai:101",
        "urn:air:sdxl:lora:civitai:11@101",
        "{site}/api/download/models/101",
        "sha256:{sha}",
        "{autov2}",
    ],
)
def test_every_civitai_form_downloads_into_the_library(
    civitai_services: Services,
    fake: FakeCivitai,
    storage: FakeStorage,
    models_root: Path,
    form: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    data = payload(MIB, seed=40)
    sha = publish(fake, storage, data)
    source = form.format(site=fake.url, sha=sha, autov2=sha[:10])
    queued = civitai_services.downloads.enqueue(source)
    view = finished(civitai_services, queued["id"])
    final = models_root / "loras" / "alpha.safetensors"
    assert view["status"] == "done", view
    assert view["path"] == str(final) and view["sha256"] == sha
    model = civitai_services.db.models.get(sha)
    assert model is not None and model["meta"]["civitai"]["version_id"] == 101
    downloads = [h for path, h in fake.requests if path.startswith("/api/download/")]
    assert downloads and all(h.get("Authorization") == f"Bearer {TOKEN}" for h in downloads)
    assert no_token_reached(storage)
    assert TOKEN not in str(civitai_services.downloads.list())
    assert caplog.records and TOKEN not in caplog.text  # nothing logged carries it


def test_a_civitai_download_without_a_token_names_the_setting(
    tmp_path: Path, models_root: Path, fake: FakeCivitai, storage: FakeStorage
) -> None:
    publish(fake, storage, payload(MIB, seed=41))
    for svc in open_services(tmp_path, models_root, {"HIKAZE_CIVITAI_URL": fake.url}):
        view = finished(svc, svc.downloads.enqueue("civitai:101")["id"])
        assert view["status"] == "failed" and view["error"] == CIVITAI_KEY_NEEDED
    assert storage.requests == []
    assert not any((models_root / "loras").iterdir())


def test_early_access_has_its_own_message(
    civitai_services: Services, fake: FakeCivitai, storage: FakeStorage, models_root: Path
) -> None:
    publish(fake, storage, payload(MIB, seed=42))
    fake.early_access.add(101)
    view = finished(civitai_services, civitai_services.downloads.enqueue("civitai:101")["id"])
    assert view["status"] == "failed" and view["error"] == CIVITAI_EARLY_ACCESS
    assert storage.requests == [] and not any((models_root / "loras").iterdir())


@pytest.mark.parametrize(
    "form",
    [
        "hf:acme/tools/loras/detail.safetensors",
        "{hf}/acme/tools/resolve/main/loras/detail.safetensors",
    ],
)
def test_hugging_face_forms_download_with_the_lfs_sha256(
    tmp_path: Path, models_root: Path, hf: FakeHub, form: str
) -> None:
    data = payload(MIB, seed=43)
    sha = hf.add_file("acme/tools", "loras/detail.safetensors", data)
    env = {"HIKAZE_HF_URL": hf.url, "HIKAZE_HF_TOKEN": "hf_secret_1"}
    for svc in open_services(tmp_path, models_root, env):
        queued = svc.downloads.enqueue(form.format(hf=hf.url), type="loras")
        view = finished(svc, queued["id"])
        assert view["status"] == "done", view
        assert view["expected_sha256"] == sha == view["sha256"]
        assert Path(view["path"]) == models_root / "loras" / "detail.safetensors"
        assert svc.db.models.get(sha) is not None
    storage = hf.storage_requests()
    assert storage and all("Authorization" not in h for _p, _q, h in storage)


def test_the_download_template_places_a_civitai_model(
    tmp_path: Path, models_root: Path, fake: FakeCivitai, storage: FakeStorage
) -> None:
    sha = publish(fake, storage, payload(MIB, seed=44))
    env = {
        "HIKAZE_CIVITAI_URL": fake.url,
        "HIKAZE_CIVITAI_TOKEN": TOKEN,
        "HIKAZE_DOWNLOAD_TEMPLATE": "{base_model}/{author}",
    }
    for svc in open_services(tmp_path, models_root, env):
        view = finished(svc, svc.downloads.enqueue("civitai:101")["id"])
        assert view["status"] == "done", view
        expected = models_root / "loras" / "SDXL 1.0" / "alice" / "alpha.safetensors"
        assert view["path"] == str(expected) and expected.is_file()
        assert svc.db.models.get(sha)["path"] == str(expected)
