"""Images API over real HTTP: sample lists, tiers with ETag/304, uploads (raw and
multipart, limits, bad images, concurrency), deletes, pending originals, and traversal."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from hikaze_mm.config import Config
from hikaze_mm.server import create_app
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.library_helpers import (
    assert_error,
    jpeg_bytes,
    png_bytes,
    seed_model,
    services_of,
    sha_for,
)

config = on_each_backend()


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


@pytest.fixture
async def model(client) -> str:
    return seed_model(services_of(client), "pictured")


async def upload(client, sha: str, data: bytes, status: int = 201) -> dict:
    resp = await client.post(f"/api/images/{sha}", data=data)
    body = await resp.json()
    assert resp.status == status, body
    return body


async def test_upload_list_and_serve_tiers(client, model) -> None:
    first = await upload(client, model, png_bytes((1600, 1200)))
    assert first == {"sha256": model, "seq": 0, "name": f"{model}_0.webp"}
    form = aiohttp.FormData()
    form.add_field("note", "ignored")
    form.add_field("image", jpeg_bytes(), filename="x.jpg", content_type="image/jpeg")
    resp = await client.post(f"/api/images/{model}", data=form)
    assert resp.status == 201 and (await resp.json())["seq"] == 1
    resp = await client.post("/api/images/get_sample_imgs", json={"hash": model})
    assert await resp.json() == [f"{model}_0.webp", f"{model}_1.webp"]
    sizes = {}
    for quality in ("high", "medium", "low"):
        resp = await client.get(f"/api/images/{model}_0.webp?quality={quality}")
        assert resp.status == 200 and resp.content_type == "image/webp"
        assert resp.headers["ETag"] and "max-age" in resp.headers["Cache-Control"]
        img = decode(await resp.read())
        assert img.format == "WEBP"
        sizes[quality] = img.size[0]
    assert sizes["high"] > sizes["medium"] > sizes["low"]
    default = await (await client.get(f"/api/images/{model}_0.webp")).read()
    seq0 = await (await client.get(f"/api/images/{model}.webp")).read()
    high = await (await client.get(f"/api/images/{model}_0.webp?quality=high")).read()
    assert default == seq0 == high
    second = decode(await (await client.get(f"/api/images/{model}_1.webp")).read())
    assert second.size == (40, 30)
    detail = await (await client.get(f"/api/models/{model}")).json()
    assert detail["images"] == [f"{model}_0.webp", f"{model}_1.webp"]
    listing = await (await client.get("/api/models")).json()
    assert listing["items"][0]["image_count"] == 2


async def test_etag_and_304(client, model) -> None:
    await upload(client, model, png_bytes())
    url = f"/api/images/{model}_0.webp?quality=low"
    resp = await client.get(url)
    etag = resp.headers["ETag"]
    body = await resp.read()
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        resp = await client.get(url, headers={"If-None-Match": header})
        assert resp.status == 304 and await resp.read() == b""
        assert resp.headers["ETag"] == etag
    resp = await client.get(url, headers={"If-None-Match": '"stale"'})
    assert resp.status == 200 and await resp.read() == body
    assert resp.headers["Cache-Control"] == "private, max-age=604800"
    busted = await client.get(f"{url}&v={etag.strip(chr(34))}")  # cache-busting parameter
    assert busted.status == 200 and await busted.read() == body
    # another tier is another file with its own tag
    other = await client.get(f"/api/images/{model}_0.webp?quality=medium")
    assert other.headers["ETag"] != etag
    # replacing the image changes the tag
    svc = services_of(client)
    svc.images.add_image(model, png_bytes(color=(1, 2, 3)), target_seq=0)
    resp = await client.get(url, headers={"If-None-Match": etag})
    assert resp.status == 200 and resp.headers["ETag"] != etag


@pytest.mark.parametrize(
    "path",
    [
        "/api/images/..%2F..%2Fetc%2Fpasswd",
        "/api/images/%2e%2e%2fhikaze_mm.db",
        "/api/images/..%5C..%5Chikaze_mm.db",
        "/api/images/*.webp",
        "/api/images/%2A.webp",
        "/api/images/{hash}_0_high.webp",
        "/api/images/{hash}_0.webp%00.png",
        "/api/images/{HASH}_0.webp",
        "/api/images/{hash}_0.png",
        "/api/images/{hash}_.webp",
        "/api/images/{hash}_-1.webp",
        "/api/images/{hash}_0.webp.webp",
        "/api/images/{short}_0.webp",
        "/api/images/pending%2F1_0.png",
        "/api/images/{hash}_0.webp?quality=original",
        "/api/images/{hash}_0.webp?quality=..%2F..%2Fx",
        "/api/images/{hash}_1234567.webp",
    ],
)
async def test_bad_names_are_rejected(client, model, path: str) -> None:
    await upload(client, model, png_bytes())
    url = path.format(hash=model, HASH=model.upper(), short=model[:10])
    resp = await client.get(url)
    assert resp.status in (400, 404), url
    body = await resp.json()
    assert set(body) == {"error", "detail"}
    assert resp.content_type == "application/json"


async def test_absent_images_are_404(client, model) -> None:
    await assert_error(await client.get(f"/api/images/{model}_0.webp"), 404)
    await assert_error(await client.get(f"/api/images/{sha_for('other')}.webp?quality=low"), 404)
    await upload(client, model, png_bytes())
    await assert_error(await client.get(f"/api/images/{model}_1.webp"), 404)
    # a claimed seq whose file is still being written (empty) is not served
    svc = services_of(client)
    svc.images.tier_path(model, 5, "high").write_bytes(b"")
    await assert_error(await client.get(f"/api/images/{model}_5.webp"), 404)


async def test_sample_imgs_bad_input(client, model) -> None:
    resp = await client.post("/api/images/get_sample_imgs", json={"hash": sha_for("nobody")})
    assert resp.status == 200 and await resp.json() == []
    for payload in ({}, {"hash": "abc"}, {"hash": 5}, {"hash": None}, {"hash": model, "x": 1}):
        await assert_error(await client.post("/api/images/get_sample_imgs", json=payload), 400)
    for raw in (b"{", b"[]", b""):
        resp = await client.post(
            "/api/images/get_sample_imgs", data=raw, headers={"Content-Type": "application/json"}
        )
        await assert_error(resp, 400)


async def test_upload_rejections_change_nothing(client, model) -> None:
    svc = services_of(client)
    await assert_error(
        await client.post(f"/api/images/{sha_for('no model')}", data=png_bytes()), 404
    )
    await assert_error(await client.post("/api/images/not-a-hash", data=png_bytes()), 400)
    await assert_error(await client.post(f"/api/images/{model}", data=b"not an image at all"), 400)
    await assert_error(await client.post(f"/api/images/{model}", data=b""), 400)
    await assert_error(await client.post(f"/api/images/{model}", data=png_bytes()[:60]), 400)
    form = aiohttp.FormData()
    form.add_field("other", "text only")
    await assert_error(await client.post(f"/api/images/{model}", data=form), 400)
    resp = await client.post(
        f"/api/images/{model}",
        data=b"--xx\r\ngarbage",
        headers={"Content-Type": "multipart/form-data; boundary=yy"},
    )
    assert resp.status == 400
    resp = await client.post(
        f"/api/images/{model}", data=png_bytes(), headers={"Origin": "http://evil.example"}
    )
    await assert_error(resp, 403)
    assert svc.images.image_names(model) == []
    assert not [p for p in svc.images.images_dir.iterdir() if p.is_file()]


@pytest.fixture
async def small_client(aiohttp_client, data_dir: Path, models_root: Path):
    config = Config.load(
        data_dir=data_dir, model_roots=[str(models_root)], env={}, max_image_bytes=20_000
    )
    return await aiohttp_client(create_app(Services.open(config)))


async def test_upload_over_the_limit_is_413(small_client) -> None:
    client = small_client
    sha = seed_model(services_of(client), "small")
    noisy = Image.effect_noise((200, 200), 80).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, "PNG")
    big = out.getvalue()
    assert len(big) > 20_000
    await assert_error(await client.post(f"/api/images/{sha}", data=big), 413)

    async def chunked():  # no Content-Length: the cap holds while streaming
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    await assert_error(await client.post(f"/api/images/{sha}", data=chunked()), 413)
    form = aiohttp.FormData()
    form.add_field("image", big, filename="big.png", content_type="image/png")
    await assert_error(await client.post(f"/api/images/{sha}", data=form), 413)
    huge = b"\0" * (5 * 1024 * 1024)
    await assert_error(await client.post(f"/api/images/{sha}", data=huge), 413)
    assert services_of(client).images.image_names(sha) == []
    await upload(client, sha, png_bytes((32, 32)))


async def test_concurrent_uploads_get_distinct_seqs(client, model) -> None:
    colors = [(i * 40, 255 - i * 30, 7) for i in range(6)]
    results = await asyncio.gather(
        *(client.post(f"/api/images/{model}", data=png_bytes((300, 200), c)) for c in colors)
    )
    seqs = []
    for resp in results:
        assert resp.status == 201
        seqs.append((await resp.json())["seq"])
    assert sorted(seqs) == list(range(6))
    names = await (await client.post("/api/images/get_sample_imgs", json={"hash": model})).json()
    assert names == [f"{model}_{i}.webp" for i in range(6)]
    for seq, color in zip(seqs, colors, strict=True):
        img = decode(await (await client.get(f"/api/images/{model}_{seq}.webp")).read())
        r, g, _ = img.convert("RGB").getpixel((10, 10))
        assert abs(r - color[0]) < 12 and abs(g - color[1]) < 12


async def test_delete_image(client, model) -> None:
    for _ in range(3):
        await upload(client, model, png_bytes())
    resp = await client.delete(f"/api/images/{model}/1")
    assert resp.status == 200 and (await resp.json())["deleted"] is True
    names = await (await client.post("/api/images/get_sample_imgs", json={"hash": model})).json()
    assert names == [f"{model}_0.webp", f"{model}_2.webp"]
    await assert_error(await client.get(f"/api/images/{model}_1.webp?quality=low"), 404)
    await assert_error(await client.delete(f"/api/images/{model}/1"), 404)
    for bad in ("x", "-1", "1.0", "1234567", "%2e%2e"):
        resp = await client.delete(f"/api/images/{model}/{bad}")
        assert resp.status in (400, 404) and "error" in await resp.json()
    await assert_error(await client.delete(f"/api/images/{model}/x"), 400)
    await assert_error(await client.delete("/api/images/abc/0"), 400)
    resp = await client.delete(f"/api/images/{model}/0", headers={"Origin": "http://evil.example"})
    await assert_error(resp, 403)
    assert (await (await client.get(f"/api/images/{model}_0.webp")).read())[:4] == b"RIFF"


async def test_pending_original_images(client, tmp_path: Path) -> None:
    svc = services_of(client)
    pid = svc.db.pending.add({"path": str(tmp_path / "p.safetensors")})
    png = tmp_path / "a.png"
    png.write_bytes(png_bytes())
    jpg = tmp_path / "b.jpeg"
    jpg.write_bytes(jpeg_bytes())
    svc.images.add_pending_image(pid, png)
    svc.images.add_pending_image(pid, jpg)
    resp = await client.get(f"/api/images/pending/{pid}")
    assert resp.status == 200 and resp.content_type == "image/png"
    assert await resp.read() == png.read_bytes()
    etag = resp.headers["ETag"]
    resp = await client.get(f"/api/images/pending/{pid}", headers={"If-None-Match": etag})
    assert resp.status == 304
    resp = await client.get(f"/api/images/pending/{pid}?n=1")
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    assert await resp.read() == jpg.read_bytes()
    await assert_error(await client.get(f"/api/images/pending/{pid}?n=2"), 404)
    await assert_error(await client.get("/api/images/pending/999"), 404)
    await assert_error(await client.get(f"/api/images/pending/{pid}?n=-1"), 400)
    await assert_error(await client.get(f"/api/images/pending/{pid}?n=x"), 400)
    for bad in ("abc", "1.png", "-3", "*"):
        await assert_error(await client.get(f"/api/images/pending/{bad}"), 400)
    resp = await client.get("/api/images/pending/..%2F..%2Fhikaze_mm.db")
    assert resp.status in (400, 404) and resp.content_type == "application/json"


async def test_deleting_model_removes_its_images(client, model) -> None:
    await upload(client, model, png_bytes())
    resp = await client.delete(f"/api/models/{model}")
    assert resp.status == 200
    await assert_error(await client.get(f"/api/images/{model}_0.webp"), 404)
    names = await (await client.post("/api/images/get_sample_imgs", json={"hash": model})).json()
    assert names == []
