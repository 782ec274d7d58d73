"""The first scan of one large flat folder: each folder is listed a bounded number of
times whatever the number of models in it, and every model still gets its own sidecars.

The listings are counted by wrapping ``os.scandir`` and ``os.listdir`` (a probe on the
operating system's calls, not a stand-in for any of our components): the real scan runs.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from hikaze_mm.config import Config
from hikaze_mm.services import Services
from tests.helpers import write_model

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="listings by descriptor are resolved via /proc"
)


def png(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (n % 256, 40, 90)).save(out, "PNG")
    return out.getvalue()


def words_of(n: int) -> str:
    return f"word{n}, style{n}"


def build_folder(folder: Path, count: int) -> None:
    """``count`` models ``m<n>`` in one folder (so ``m1`` is a prefix of ``m10``..``m19``);
    every third has an A1111 ``.json`` with words of its own, every tenth a preview."""
    for n in range(count):
        write_model(folder / f"m{n}.safetensors", 64, seed=n)
        if n % 3 == 0:
            data = {"activation text": words_of(n), "preferred weight": 0.5}
            (folder / f"m{n}.json").write_text(json.dumps(data), encoding="utf-8")
        if n % 10 == 0:
            (folder / f"m{n}.preview.png").write_bytes(png(n))


def _folder_of(arg: Any) -> str:
    if isinstance(arg, int):
        return os.readlink(f"/proc/self/fd/{arg}")
    return os.path.realpath(os.fspath(arg if arg is not None else "."))


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """How many times each folder is listed (by its real path) while the test runs."""
    counts: Counter[str] = Counter()

    def counting(real: Callable[..., Any]) -> Callable[..., Any]:
        def listing(path: Any = None) -> Any:
            counts[_folder_of(path)] += 1
            return real(path) if path is not None else real()

        return listing

    monkeypatch.setattr(os, "scandir", counting(os.scandir))
    monkeypatch.setattr(os, "listdir", counting(os.listdir))
    yield counts


def first_scan(tmp_path: Path, count: int, listings: Counter[str]) -> tuple[Services, Counter[str]]:
    """A new library, one folder of ``count`` models, one scan with immediate hashing;
    returns the services (open) and how many times the scan listed each folder, named
    as in the smaller case (``models<count>`` and ``data<count>`` without the count)."""
    root = tmp_path / f"models{count}"
    build_folder(root / "loras", count)
    config = Config.load(data_dir=tmp_path / f"data{count}", model_roots=[str(root)], env={})
    svc = Services.open(config)
    listings.clear()
    report = svc.scanner.scan(immediate_hashing=True)
    base = os.path.realpath(tmp_path) + os.sep
    made: Counter[str] = Counter()
    for folder, n in listings.items():
        name = folder.removeprefix(base)
        made[name.replace(f"models{count}", "models").replace(f"data{count}", "data")] += n
    assert report.counts.promoted == count and report.problems == []
    return svc, made


def test_a_scan_lists_a_flat_folder_a_bounded_number_of_times(
    tmp_path: Path, listings: Counter[str]
) -> None:
    small, small_listings = first_scan(tmp_path, 30, listings)
    small.close()
    big, big_listings = first_scan(tmp_path, 300, listings)
    big.close()
    # The models' folder, the image folder and the pending originals' folder: listed once
    # or twice by a scan that promotes 300 models (and 30 previews), as for 30 models.
    for folder in ("models/loras", "data/images", "data/images/pending"):
        assert 1 <= big_listings[folder] <= 2, (folder, big_listings)
    assert big_listings == small_listings
    assert max(big_listings.values()) <= 2


def _words(svc: Services) -> dict[str, list[str]]:
    records = (svc.db.models.get(sha) for sha in svc.db.listing.all_sha256s())
    return {r["name"]: r["meta"].get("trigger_words", []) for r in records if r is not None}


def _expected(count: int) -> dict[str, list[str]]:
    return {f"m{n}": words_of(n).split(", ") if n % 3 == 0 else [] for n in range(count)}


def test_every_model_in_a_flat_folder_gets_its_own_sidecars(
    tmp_path: Path, listings: Counter[str]
) -> None:
    svc, _ = first_scan(tmp_path, 120, listings)
    try:
        assert _words(svc) == _expected(120)  # m1 did not take m10's .json, nor m10 m1's
        covers = {
            r["name"]: svc.images.image_counts([r["sha256"]])[r["sha256"]]
            for r in map(svc.db.models.get, svc.db.listing.all_sha256s())
            if r is not None
        }
        assert covers == {f"m{n}": 1 if n % 10 == 0 else 0 for n in range(120)}
        assert len(svc.db.sidecars.below([str(tmp_path / "models120")])) == 40 + 12
    finally:
        svc.close()


def test_a_promotion_outside_a_scan_reads_the_same_sidecars(
    tmp_path: Path, listings: Counter[str]
) -> None:
    """Queued by a plain scan, promoted one by one (as the API and the worker do): the
    folder is listed for the first promotion and reused while it is unchanged; a model
    and a sidecar added later (the folder changed) are found."""
    root = tmp_path / "models"
    folder = root / "loras"
    build_folder(folder, 60)
    svc = Services.open(Config.load(data_dir=tmp_path / "data", model_roots=[str(root)], env={}))
    try:
        assert svc.scanner.scan().counts.new == 60
        listings.clear()
        for pending in svc.db.pending.list():
            assert "sidecar_problems" not in svc.promoter.promote(pending["id"])
        assert listings[os.path.realpath(folder)] == 1
        assert _words(svc) == _expected(60)
        assert len(svc.db.sidecars.below([str(root)])) == 20 + 6

        write_model(folder / "late.safetensors", 64, seed=99)
        (folder / "late.json").write_text(json.dumps({"activation text": "late"}))
        assert svc.scanner.scan().counts.new == 1
        (late,) = [p for p in svc.db.pending.list() if p["name"] == "late"]
        svc.promoter.promote(late["id"])
        assert _words(svc)["late"] == ["late"]
        assert listings[os.path.realpath(folder)] == 3  # then the scan's walk, and ours
    finally:
        svc.close()


def test_a_scan_still_sweeps_the_orphan_images_of_a_new_model(
    services: Services, models_root: Path
) -> None:
    """The image folder is listed once for the scan's promotions; a hash that had image
    files then (a model deleted half way, say) still has them swept when it is created."""
    orphan_sha = write_model(models_root / "loras" / "orphan.safetensors", 64, seed=1)
    clean_sha = write_model(models_root / "loras" / "clean.safetensors", 64, seed=2)
    services.images.add_image(orphan_sha, png(1))
    assert len(services.images.image_names(orphan_sha)) == 1
    report = services.scanner.scan(immediate_hashing=True)
    assert report.counts.promoted == 2
    assert services.images.image_names(orphan_sha) == []
    assert services.images.image_names(clean_sha) == []
