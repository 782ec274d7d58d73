"""Images API: sample lists, tier serving with ETags, uploads, deletes, order, pending
originals.

Declaration order matters: ``POST /api/images/get_sample_imgs`` comes before
``POST /api/images/{hash}``, and ``/api/images/pending/{id}`` before the one-segment
``/api/images/{filename}``. User input never becomes a path directly: public names are
checked against ``[0-9a-f]{64}(_\\d+)?\\.webp`` by ``images.parse_public_name``.
"""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from hikaze_mm.credits.containers import MAX_INSPECT_BYTES
from hikaze_mm.errors import TooLargeError, ValidationError
from hikaze_mm.library.images_service import ImageFile, parse_seq
from hikaze_mm.params import parse_index
from hikaze_mm.policy import MAX_IMAGE_SEQ
from hikaze_mm.server.http import (
    int_param,
    json_response,
    read_body,
    read_json,
    reading_body,
    run_sync,
    services,
)
from hikaze_mm.server.requests.edits import image_order

routes = web.RouteTableDef()

# A tier file changes only when an image is replaced (promotion "override") or a deleted
# last seq is reused, so browsers may keep tiers a week; a client that just changed images
# can add any extra query parameter (e.g. ``&v=<etag>``) to fetch afresh, and the ETag
# makes every revalidation cheap (304).
TIER_CACHE_CONTROL = "private, max-age=604800"
PENDING_CACHE_CONTROL = "no-cache"
MULTIPART_OVERHEAD = 64 * 1024
UPLOAD_FIELDS = ("image", "file")


def file_response(found: ImageFile, cache_control: str) -> web.Response:
    headers = {
        "ETag": found.etag,
        "Cache-Control": cache_control,
        "X-Content-Type-Options": "nosniff",
    }
    if found.data is None:
        return web.Response(status=304, headers=headers)
    return web.Response(body=found.data, content_type=found.content_type, headers=headers)


async def _read_part(part: BodyPartReader, cap: int) -> bytes:
    """Read a whole multipart part, failing with 413 past ``cap`` bytes."""
    data = bytearray()
    while chunk := await part.read_chunk(256 * 1024):
        data += chunk
        if len(data) > cap:
            raise TooLargeError(f"image over the {cap} byte limit")
    return bytes(data)


async def read_upload(request: web.Request, cap: int) -> bytes:
    """The uploaded image: the ``image``/``file`` part (or first file) of a multipart
    body, or the raw body otherwise."""
    if request.content_length is not None and request.content_length > cap + MULTIPART_OVERHEAD:
        raise TooLargeError(f"image over the {cap} byte limit")
    if not request.content_type.startswith("multipart/"):
        return await read_body(request, cap)
    try:
        async with reading_body():
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if isinstance(part, BodyPartReader) and (
                    part.name in UPLOAD_FIELDS or part.filename is not None
                ):
                    return await _read_part(part, cap)
    except (ValueError, AssertionError) as exc:  # aiohttp's errors for a malformed body
        raise ValidationError(f"malformed multipart body: {exc}") from None
    raise ValidationError("the multipart body has no 'image' or 'file' part")


@routes.post("/api/images/get_sample_imgs")
async def get_sample_imgs(request: web.Request) -> web.Response:
    """``{"hash": str}`` -> ``["<hash>_0.webp", ...]`` from the files on disk."""
    body = await read_json(request)
    if set(body) != {"hash"} or not isinstance(body["hash"], str):
        raise ValidationError('body must be {"hash": "<sha256>"}')
    gallery = services(request).model_images
    return json_response(await run_sync(gallery.sample_names, body["hash"]))


@routes.get("/api/images/pending/{pending_id}")
async def get_pending_image(request: web.Request) -> web.Response:
    """The pending model's original image ``?n=`` (default 0), in its own format."""
    pending_id = parse_index(request.match_info["pending_id"], "pending id")
    n = int_param(request, "n", 0, maximum=MAX_IMAGE_SEQ)
    found = await run_sync(
        services(request).model_images.read_pending,
        pending_id,
        n,
        request.headers.get("If-None-Match"),
    )
    return file_response(found, PENDING_CACHE_CONTROL)


@routes.get("/api/images/{filename}")
async def get_image(request: web.Request) -> web.Response:
    """``<hash>_<seq>.webp`` (or ``<hash>.webp``: seq 0) at ``?quality=high|medium|low``."""
    quality = request.query.get("quality") or "high"
    found = await run_sync(
        services(request).model_images.read_tier,
        request.match_info["filename"],
        quality,
        request.headers.get("If-None-Match"),
    )
    return file_response(found, TIER_CACHE_CONTROL)


@routes.post("/api/images/inspect")
async def inspect_image(request: web.Request) -> web.Response:
    """Any image (raw body or multipart, at most 32 MiB): its parameters and the models
    it names, matched against the library."""
    data = await read_upload(request, MAX_INSPECT_BYTES)
    return json_response(await run_sync(services(request).inspect.inspect, data))


@routes.post("/api/images/{sha256}")
async def upload_image(request: web.Request) -> web.Response:
    """Add an image (multipart or raw body) as the model's next seq; 201 with its name."""
    svc = services(request)
    sha = await run_sync(svc.model_images.require_model, request.match_info["sha256"])
    data = await read_upload(request, svc.config.max_image_bytes)
    result = await run_sync(svc.model_images.upload, sha, data)
    return json_response(result, status=201)


@routes.put("/api/images/{sha256}/order")
async def set_image_order(request: web.Request) -> web.Response:
    """``{"order": [seq, ...]}``, a permutation of the model's images; the first is its cover."""
    order = image_order(await read_json(request))
    gallery = services(request).model_images
    return json_response(await run_sync(gallery.set_order, request.match_info["sha256"], order))


@routes.delete("/api/images/{sha256}/{seq}")
async def delete_image(request: web.Request) -> web.Response:
    seq = parse_seq(request.match_info["seq"])
    gallery = services(request).model_images
    return json_response(await run_sync(gallery.delete, request.match_info["sha256"], seq))
