"""The order of a model's images (its first is the cover): ``PUT /api/images/{sha}/order``
over real HTTP with real files, and ``ImageStore``'s order file (atomic, crash-safe)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hikaze_mm.images import ImageStore
from tests.conftest import on_each_backend
from tests.library_helpers import assert_error, png_bytes, seed_model, services_of, sha_for

config = on_each_backend()


@pytest.fixture
async def model(client) -> str:
    sha = seed_model(services_of(client), "ordered")
    for i in range(3):
        resp = await client.post(f"/api/images/{sha}", data=png_bytes(color=(40 * i, 10, 10)))
        assert resp.status == 201
    return sha


def names(sha: str, seqs: list[int]) -> list[str]:
    return [f"{sha}_{seq}.webp" for seq in seqs]


async def listing_cover(client, sha: str) -> str | None:
    body = await (await client.get("/api/models")).json()
    return next(item["cover_image"] for item in body["items"] if item["sha256"] == sha)


async def samples(client, sha: str) -> list[str]:
    return await (await client.post("/api/images/get_sample_imgs", json={"hash": sha})).json()


async def test_reorder_and_cover_follow_everywhere(client, model) -> None:
    sha = model
    svc = services_of(client)
    files_before = sorted(p.name for p in svc.images.images_dir.glob("*.webp"))
    bytes_of_2 = await (await client.get(f"/api/images/{sha}_2.webp?quality=low")).read()

    resp = await client.put(f"/api/images/{sha}/order", json={"order": [2, 0, 1]})
    assert resp.status == 200
    assert await resp.json() == {
        "sha256": sha,
        "images": names(sha, [2, 0, 1]),
        "cover_image": f"{sha}_2.webp",
    }
    detail = await (await client.get(f"/api/models/{sha}")).json()
    assert detail["images"] == names(sha, [2, 0, 1])
    assert await samples(client, sha) == names(sha, [2, 0, 1])
    assert await listing_cover(client, sha) == f"{sha}_2.webp"
    # No tier file moved: each name keeps its content (browsers cache tiers for days).
    assert sorted(p.name for p in svc.images.images_dir.glob("*.webp")) == files_before
    assert await (await client.get(f"/api/images/{sha}_2.webp?quality=low")).read() == bytes_of_2

    # "Make cover" is the same call with that image first.
    resp = await client.put(f"/api/images/{sha}/order", json={"order": [1, 2, 0]})
    assert (await resp.json())["cover_image"] == f"{sha}_1.webp"
    assert await listing_cover(client, sha) == f"{sha}_1.webp"

    # A new upload goes last; deleting the cover makes the next one the cover.
    resp = await client.post(f"/api/images/{sha}", data=png_bytes())
    assert (await resp.json())["seq"] == 3
    assert await samples(client, sha) == names(sha, [1, 2, 0, 3])
    assert (await client.delete(f"/api/images/{sha}/1")).status == 200
    assert await samples(client, sha) == names(sha, [2, 0, 3])
    assert await listing_cover(client, sha) == f"{sha}_2.webp"

    # Back to seq order: the order file goes away.
    resp = await client.put(f"/api/images/{sha}/order", json={"order": [0, 2, 3]})
    assert resp.status == 200
    assert not (svc.images.order_dir / f"{sha}.json").exists()
    assert await listing_cover(client, sha) == f"{sha}_0.webp"


async def test_deleted_last_seq_reused_goes_last(client, model) -> None:
    sha = model
    resp = await client.put(f"/api/images/{sha}/order", json={"order": [2, 1, 0]})
    assert resp.status == 200
    assert (await client.delete(f"/api/images/{sha}/2")).status == 200
    assert await samples(client, sha) == names(sha, [1, 0])
    resp = await client.post(f"/api/images/{sha}", data=png_bytes())
    # A machine's own library takes the freed seq; a shared catalog never gives a number
    # twice (another host, or a browser's cache, may still know the old image by it).
    seq = 3 if services_of(client).db.shared else 2
    assert (await resp.json())["seq"] == seq  # not the old first place either way
    assert await samples(client, sha) == names(sha, [1, 0, seq])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"order": [0, 1]}, 409),  # one missing
        ({"order": [0, 1, 2, 3]}, 409),  # one that does not exist
        ({"order": [0, 1, 7]}, 409),
        ({"order": [0, 0, 1]}, 400),  # twice
        ({"order": []}, 400),
        ({"order": [0, 1, "2"]}, 400),
        ({"order": [0, 1, 2.0]}, 400),
        ({"order": [0, 1, True]}, 400),
        ({"order": [0, 1, -2]}, 400),
        ({"order": "0,1,2"}, 400),
        ({"order": [0, 1, 2], "extra": 1}, 400),
        ({}, 400),
        ([0, 1, 2], 400),
    ],
)
async def test_bad_orders_change_nothing(client, model, body, status) -> None:
    sha = model
    assert (await client.put(f"/api/images/{sha}/order", json={"order": [1, 0, 2]})).status == 200
    await assert_error(await client.put(f"/api/images/{sha}/order", json=body), status)
    assert await samples(client, sha) == names(sha, [1, 0, 2])
    assert await listing_cover(client, sha) == f"{sha}_1.webp"


async def test_unknown_model_and_bad_hash(client, model) -> None:
    await assert_error(
        await client.put(f"/api/images/{sha_for('nobody')}/order", json={"order": [0]}), 404
    )
    await assert_error(await client.put("/api/images/not-a-hash/order", json={"order": [0]}), 400)
    resp = await client.put(
        f"/api/images/{model}/order", data=b"{not json", headers={"Content-Type": "text/plain"}
    )
    await assert_error(resp, 400)
    resp = await client.put(
        f"/api/images/{model}/order",
        json={"order": [2, 1, 0]},
        headers={"Origin": "http://evil.example"},
    )
    await assert_error(resp, 403)
    assert await samples(client, model) == names(model, [0, 1, 2])


async def test_model_without_images(client) -> None:
    sha = seed_model(services_of(client), "bare")
    await assert_error(await client.put(f"/api/images/{sha}/order", json={"order": [0]}), 409)


# ---------------------------------------------------------------------- the store itself
def store_with_images(tmp_path: Path, n: int = 3) -> tuple[ImageStore, str]:
    store = ImageStore(tmp_path / "images", tmp_path / "images" / "pending")
    sha = sha_for("store")
    for i in range(n):
        store.add_image(sha, png_bytes(color=(i * 50, 0, 0)))
    return store, sha


def test_a_crash_while_writing_keeps_the_old_order(tmp_path: Path, monkeypatch) -> None:
    store, sha = store_with_images(tmp_path)
    store.set_order(sha, [2, 0, 1])
    real_replace = os.replace

    def crash(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        store.set_order(sha, [1, 2, 0])
    monkeypatch.setattr(os, "replace", real_replace)
    assert store.list_seqs(sha) == [2, 0, 1]
    assert not list(store.order_dir.glob("*.tmp"))  # the failed write cleaned up after itself
    # A new process sees the same: the old order, every image.
    fresh = ImageStore(store.images_dir, store.pending_dir)
    assert fresh.list_seqs(sha) == [2, 0, 1]
    assert fresh.counts_and_covers([sha]) == {sha: (3, f"{sha}_2.webp")}


def test_leftovers_and_broken_order_files(tmp_path: Path) -> None:
    store, sha = store_with_images(tmp_path)
    store.set_order(sha, [1, 2, 0])
    # A process killed between writing and renaming leaves a temporary file.
    leftover = store.order_dir / f".{sha}.json.123.456.tmp"
    leftover.write_text("[0, 1, 2]")
    assert store.cleanup_partial() == 1
    assert not leftover.exists()
    other = ImageStore(store.images_dir, store.pending_dir)
    assert other.list_seqs(sha) == [1, 2, 0]
    # A damaged order file never hides an image: seq order is the fallback.
    (store.order_dir / f"{sha}.json").write_text("{oops")
    assert ImageStore(store.images_dir, store.pending_dir).list_seqs(sha) == [0, 1, 2]
    (store.order_dir / f"{sha}.json").write_text('[2, "x", 9, 2]')
    assert ImageStore(store.images_dir, store.pending_dir).list_seqs(sha) == [2, 0, 1]


def test_another_process_sees_a_new_order(tmp_path: Path) -> None:
    store, sha = store_with_images(tmp_path)
    reader = ImageStore(store.images_dir, store.pending_dir)
    assert reader.list_seqs(sha) == [0, 1, 2]
    store.set_order(sha, [2, 1, 0])
    assert reader.list_seqs(sha) == [2, 1, 0]


def test_delete_all_forgets_the_order(tmp_path: Path) -> None:
    store, sha = store_with_images(tmp_path)
    store.set_order(sha, [2, 1, 0])
    assert store.delete_all(sha) == 3
    assert not (store.order_dir / f"{sha}.json").exists()
    first = store.add_image(sha, png_bytes())
    second = store.add_image(sha, png_bytes())
    assert first < second and store.list_seqs(sha) == [first, second]
