"""The save node's library lookups (hikaze_mm.comfy.credit_lookup) on a real library: a
model by hash, by its path, by another file the hash cache knows, and files the library
does not know; and ComfyUI's name lookup for a name with or without extension."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import SimpleNamespace

from hikaze_mm.comfy.credit_lookup import KnownModel, LibraryCredits, civitai_ids
from hikaze_mm.comfy.plugin import name_lookup
from hikaze_mm.services import Services
from tests.helpers import write_model

CIVITAI = {"model_id": 11, "version_id": 22, "model_name": "Dream", "version_name": "v2"}


def test_a_model_by_hash_by_path_and_by_a_cached_copy(
    services: Services, models_root: Path, tmp_path: Path
) -> None:
    folder = models_root / "checkpoints"
    folder.mkdir()
    known = folder / "dream_v2.safetensors"
    sha = write_model(known, 4096, seed=1)
    services.scanner.scan(immediate_hashing=True)
    services.db.models.update(sha, meta={"civitai": CIVITAI})
    credits = LibraryCredits(services.db, services.hashes)
    want = KnownModel(sha, "dream_v2", CIVITAI)
    assert credits.by_sha(sha) == want
    assert credits.by_sha(sha.upper()) == want
    assert credits.by_path(str(known)) == want
    # A copy outside the roots that was hashed once: the hash cache knows it.
    copy = tmp_path / "elsewhere" / "copy.safetensors"
    copy.parent.mkdir()
    shutil.copyfile(known, copy)
    services.hashes.hash_file(copy)
    assert credits.by_path(str(copy)) == want
    # Changed since it was hashed: the cache no longer vouches for it (and it is not read).
    with open(copy, "ab") as f:
        f.write(b"more")
    assert credits.by_path(str(copy)) is None


def test_files_and_hashes_the_library_does_not_know(services: Services, tmp_path: Path) -> None:
    credits = LibraryCredits(services.db, services.hashes)
    stranger = tmp_path / "stranger.safetensors"
    write_model(stranger, 1024, seed=3)
    assert credits.by_path(str(stranger)) is None
    assert credits.by_path(str(tmp_path / "gone.safetensors")) is None
    assert credits.by_sha("cd" * 32) is None
    assert credits.by_sha("not a hash") is None


def test_civitai_ids_only_when_both_ids_are_positive_integers() -> None:
    assert civitai_ids({"civitai": CIVITAI}) == CIVITAI
    assert civitai_ids({"civitai": {"model_id": 1}}) is None
    assert civitai_ids({"civitai": {"model_id": "1", "version_id": 2}}) is None
    assert civitai_ids({"civitai": {"model_id": True, "version_id": 2}}) is None
    assert civitai_ids({"civitai": {"model_id": 0, "version_id": 2}}) is None
    assert civitai_ids({"civitai": []}) is None
    assert civitai_ids(None) is None


def test_comfyuis_name_lookup_with_or_without_extension(tmp_path: Path) -> None:
    """``folder_paths`` stands in for ComfyUI's module over one plain folder."""
    folder = tmp_path / "embeddings"
    (folder / "sub").mkdir(parents=True)
    for name in ("easyneg.safetensors", "sub/good_style.pt"):
        (folder / name).write_bytes(b"x")

    def full_path(kind: str, name: str) -> str | None:
        path = folder / name
        return str(path) if kind == "embeddings" and path.is_file() else None

    def names(kind: str) -> list[str]:
        return ["easyneg.safetensors", os.path.join("sub", "good_style.pt")]

    find = name_lookup(SimpleNamespace(get_full_path=full_path, get_filename_list=names))
    for name, want in [
        ("easyneg", "easyneg.safetensors"),
        ("easyneg.safetensors", "easyneg.safetensors"),
        ("sub/good_style", "sub/good_style.pt"),
        ("good_style", "sub/good_style.pt"),
        ("sub/good_style.pt", "sub/good_style.pt"),
    ]:
        assert find("embeddings", name) == str(folder / want), name
    assert find("embeddings", "missing") is None
