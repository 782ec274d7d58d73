"""Sidecar files of other tools, read by real scans and promotions into a real library."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hikaze_mm.library.sidecars import MAX_JSON_BYTES
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.helpers import write_model

config = on_each_backend()

CIVITAI_INFO = {
    "id": 101,
    "modelId": 11,
    "name": "v1.0",
    "model": {"name": "Alpha LoRA", "nsfw": False},
    "trainedWords": ["alpha", "beta"],
    "baseModel": "SDXL 1.0",
    "description": "<p>From <b>Civitai</b> Helper</p>",
    "nsfwLevel": 1,
}
LORA_MANAGER = {
    "file_name": "b",
    "base_model": "Flux.1 D",
    "notes": "Lora Manager notes",
    "usage_tips": json.dumps({"strength": 0.7}),
    "preview_url": "/elsewhere/b.webp",
    "civitai": {"id": 202, "modelId": 22, "name": "v2", "trainedWords": ["bee"]},
}
STABILITY_MATRIX = {
    "ModelName": "Cee",
    "VersionName": "v3",
    "ModelId": 33,
    "VersionId": 303,
    "BaseModel": "Pony",
    "TrainedWords": ["cee", "sea"],
    "Nsfw": True,
}
A1111 = {
    "description": "",
    "sd version": "SDXL",
    "activation text": "dee, dee style",
    "preferred weight": 0.8,
    "notes": "A1111 notes",
}


def png(color: tuple[int, int, int], fmt: str = "PNG", **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 32), color).save(out, fmt, **save)
    return out.getvalue()


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def touch_later(path: Path) -> None:
    """A second later than its mtime: a change the size alone may not show."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def scan(svc: Services, **kwargs: Any) -> dict[str, Any]:
    return svc.scanner.scan(**kwargs).to_dict()


def by_name(svc: Services) -> dict[str, dict[str, Any]]:
    records = (svc.db.models.get(sha) for sha in svc.db.listing.all_sha256s())
    return {r["name"]: r for r in records if r is not None}


def sidecar_rows(svc: Services) -> dict[str, tuple[int, int]]:
    return svc.db.sidecars.below([os.sep])


def sidecar_problems(report: dict[str, Any]) -> dict[str, str]:
    return {Path(p["path"]).name: p["detail"] for p in report["problems"] if p["kind"] == "sidecar"}


@pytest.fixture
def loras(models_root: Path) -> Path:
    folder = models_root / "loras"
    for n, name in enumerate("abcde"):
        write_model(folder / f"{name}.safetensors", 2000 + n, seed=n)
    write_json(folder / "a.civitai.info", CIVITAI_INFO)
    (folder / "a.preview.png").write_bytes(png((200, 10, 10)))
    write_json(folder / "b.metadata.json", LORA_MANAGER)
    write_json(folder / "c.cm-info.json", STABILITY_MATRIX)
    write_json(folder / "d.json", A1111)
    # e: the same picture twice (PNG and lossless WebP), and a different one
    (folder / "e.preview.png").write_bytes(png((10, 200, 10)))
    (folder / "e.webp").write_bytes(png((10, 200, 10), "WEBP", lossless=True))
    (folder / "e.jpg").write_bytes(png((10, 10, 200), "JPEG"))
    return folder


def test_each_kind_fills_its_fields_and_previews_become_tiers(
    services: Services, loras: Path
) -> None:
    report = scan(services, immediate_hashing=True)
    assert report["counts"]["promoted"] == 5
    assert sidecar_problems(report) == {}
    models = by_name(services)

    a = models["a"]
    assert a["meta"]["trigger_words"] == ["alpha", "beta"]
    assert a["meta"]["description"] == "From Civitai Helper"
    assert a["meta"]["civitai"]["model_id"] == 11 and a["meta"]["civitai"]["version_id"] == 101
    assert a["meta"]["civitai"]["model_name"] == "Alpha LoRA"
    assert a["meta"]["civitai"]["url"] == "https://civitai.com/models/11?modelVersionId=101"
    assert a["meta"]["civitai"]["nsfw_level"] == 1
    assert a["base"] == "SDXL 1.0"
    source = "sidecar:civitai.info"
    assert a["meta"]["sources"] == {
        "trigger_words": source,
        "description": source,
        "civitai": source,
        "base": source,
        "images": "sidecar:preview",
    }
    assert len(services.images.list_seqs(a["sha256"])) == 1

    b = models["b"]
    assert b["meta"]["trigger_words"] == ["bee"]
    assert b["meta"]["preferred_weight"] == 0.7
    assert b["meta"]["description"] == "Lora Manager notes"
    assert b["meta"]["civitai"]["version_id"] == 202 and b["base"] == "Flux.1 D"
    assert b["meta"]["sources"]["preferred_weight"] == "sidecar:metadata.json"
    assert services.images.list_seqs(b["sha256"]) == []  # preview_url elsewhere: not read

    c = models["c"]
    assert c["meta"]["trigger_words"] == ["cee", "sea"]
    assert c["meta"]["civitai"]["model_name"] == "Cee"
    assert c["meta"]["civitai"]["version_name"] == "v3"
    assert c["meta"]["civitai"]["url"] == "https://civitai.com/models/33?modelVersionId=303"
    assert c["meta"]["civitai"]["nsfw"] is True and c["base"] == "Pony"

    d = models["d"]
    assert d["meta"]["trigger_words"] == ["dee", "dee style"]
    assert d["meta"]["preferred_weight"] == 0.8
    assert d["meta"]["description"] == "A1111 notes"
    assert d["base"] == "SDXL" and d["meta"]["sources"]["base"] == "sidecar:json"

    # e: the WebP has the PNG's pixels, so only two of the three previews are stored
    assert len(services.images.list_seqs(models["e"]["sha256"])) == 2

    rows = sidecar_rows(services)
    assert len(rows) == 8
    for path, (size, mtime_ns) in rows.items():
        st = os.stat(path)
        assert (size, mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_a_rescan_reads_only_the_sidecars_that_changed(services: Services, loras: Path) -> None:
    scan(services, immediate_hashing=True)
    assert scan(services)["counts"]["sidecars"] == 0

    # Same size and mtime, other content: not read again.
    d_json = loras / "d.json"
    st = d_json.stat()
    write_json(d_json, {**A1111, "notes": "A1111 NOTES"})
    assert d_json.stat().st_size == st.st_size
    os.utime(d_json, ns=(st.st_atime_ns, st.st_mtime_ns))
    # Changed: read again; the sidecar replaces what it filled itself.
    write_json(loras / "c.cm-info.json", {**STABILITY_MATRIX, "TrainedWords": ["new"]})
    touch_later(loras / "c.cm-info.json")

    report = scan(services)
    assert report["counts"]["sidecars"] == 1
    models = by_name(services)
    assert models["d"]["meta"]["description"] == "A1111 notes"
    assert models["c"]["meta"]["trigger_words"] == ["new"]
    assert scan(services)["counts"]["sidecars"] == 0

    # A sidecar added later, to a model already in the library, is read by the rescan.
    write_json(loras / "a.json", {"preferred weight": 1.2})
    assert scan(services)["counts"]["sidecars"] == 1
    assert by_name(services)["a"]["meta"]["preferred_weight"] == 1.2


def test_user_fields_are_never_overwritten(services: Services, loras: Path) -> None:
    scan(services, immediate_hashing=True)
    d = by_name(services)["d"]
    meta = {
        "trigger_words": ["mine"],
        "sources": {"trigger_words": "user", "base": "user", "description": "user"},
    }
    services.db.models.update(d["sha256"], meta=meta, base="SD1.x")
    write_json(loras / "d.json", {**A1111, "notes": "other notes", "preferred weight": 0.5})
    touch_later(loras / "d.json")

    assert scan(services)["counts"]["sidecars"] == 1
    d = by_name(services)["d"]
    assert d["meta"]["trigger_words"] == ["mine"] and d["base"] == "SD1.x"
    assert "description" not in d["meta"]  # the user emptied it: stays empty
    assert d["meta"]["preferred_weight"] == 0.5  # empty, not the user's: filled


def test_a_duplicate_preview_is_not_stored_again(services: Services, loras: Path) -> None:
    scan(services, immediate_hashing=True)
    e = by_name(services)["e"]["sha256"]
    assert len(services.images.list_seqs(e)) == 2
    # The WebP, encoded again, still shows the stored green picture: read, not stored.
    (loras / "e.webp").write_bytes(png((10, 200, 10), "WEBP", lossless=True, method=0))
    touch_later(loras / "e.webp")
    (loras / "e.png").write_bytes(png((250, 250, 0)))  # a new picture: stored
    report = scan(services)
    assert report["counts"]["sidecars"] == 2
    assert len(services.images.list_seqs(e)) == 3


def test_moved_model_reads_its_sidecars_at_the_new_path(services: Services, loras: Path) -> None:
    scan(services, immediate_hashing=True)
    a = by_name(services)["a"]
    moved = loras / "moved"
    moved.mkdir()
    for name in ("a.safetensors", "a.civitai.info", "a.preview.png"):
        shutil.move(loras / name, moved / name)
    report = scan(services)
    assert report["counts"]["moved"] == 1 and report["counts"]["sidecars"] == 2
    assert len(services.images.list_seqs(a["sha256"])) == 1  # the same preview: skipped
    rows = sidecar_rows(services)
    assert str(moved / "a.civitai.info") in rows and str(loras / "a.civitai.info") not in rows


def test_bad_sidecars_are_reported_and_skipped(services: Services, models_root: Path) -> None:
    folder = models_root / "loras"
    for n, name in enumerate(("f", "g", "h", "i", "j", "k")):
        write_model(folder / f"{name}.safetensors", 3000 + n, seed=n)
    (folder / "f.civitai.info").write_text("{broken", encoding="utf-8")
    write_json(folder / "g.cm-info.json", {"ModelId": "33", "TrainedWords": ["ok"]})
    write_json(folder / "h.json", {"notes": "x" * MAX_JSON_BYTES})
    (folder / "i.png").write_bytes(b"not an image at all")
    write_json(folder / "j.metadata.json", ["a", "list"])
    write_json(folder / "k.json", {"notes": "fine"})

    report = scan(services, immediate_hashing=True)
    assert report["counts"]["promoted"] == 6
    problems = sidecar_problems(report)
    assert set(problems) == {
        "f.civitai.info",
        "g.cm-info.json",
        "h.json",
        "i.png",
        "j.metadata.json",
    }
    assert "JSON" in problems["f.civitai.info"]
    assert "wrong type" in problems["g.cm-info.json"]
    assert "larger than" in problems["h.json"]
    assert "not an image" in problems["i.png"]
    assert "object" in problems["j.metadata.json"]
    models = by_name(services)
    assert models["k"]["meta"]["description"] == "fine"
    assert "trigger_words" not in models["g"]["meta"]
    assert services.images.list_seqs(models["i"]["sha256"]) == []


def test_a_pending_model_gets_its_sidecars_when_promoted(services: Services, loras: Path) -> None:
    assert scan(services)["counts"]["new"] == 5
    assert scan(services)["counts"]["sidecars"] == 0  # no model yet: nothing to fill
    assert sidecar_rows(services) == {}
    for pending in services.db.pending.list():
        assert "sidecar_problems" not in services.promoter.promote(pending["id"])
    a = by_name(services)["a"]
    assert a["meta"]["trigger_words"] == ["alpha", "beta"] and a["base"] == "SDXL 1.0"
    assert len(sidecar_rows(services)) == 8
    assert scan(services)["counts"]["sidecars"] == 0
