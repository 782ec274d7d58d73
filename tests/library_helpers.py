"""Builders for the library API tests: models seeded through the real DatabaseManager."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from PIL import Image

from hikaze_mm.server.http import SERVICES_KEY
from hikaze_mm.services import Services


def sha_for(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def services_of(client) -> Services:
    """The Services behind the ``client`` fixture's real server."""
    return client.server.app[SERVICES_KEY]


def seed_model(svc: Services, label: str, tags: tuple[str, ...] = (), **fields: Any) -> str:
    """Add a model named ``label`` (path under the first model root); return its sha256."""
    sha = fields.pop("sha256", None) or sha_for(label)
    root = svc.config.model_roots[0].path if svc.config.model_roots else "/nowhere"
    data: dict[str, Any] = {
        "sha256": sha,
        "path": str(
            fields.pop("path", f"{root}/{fields.get('type', 'loras')}/{label}.safetensors")
        ),
        "name": label,
        "type": "loras",
        "size_bytes": 1000,
        "created_at": 1_000,
    }
    missing = fields.pop("missing", False)
    meta = fields.pop("meta", None)
    data.update(fields)
    if meta is not None:
        data["meta"] = meta
    svc.db.models.upsert(data, tags=tags)[0]
    if missing:
        svc.db.models.update(sha, missing=True)
    return sha


async def assert_error(resp, status: int) -> dict:
    """The API's error body: status ``status``, ``{"error", "detail"}`` with a detail."""
    body = await resp.json()
    assert resp.status == status, body
    assert set(body) == {"error", "detail"} and body["detail"]
    return body


def png_bytes(
    size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 10, 10)
) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def jpeg_bytes(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (1, 200, 3)).save(out, "JPEG")
    return out.getvalue()


def insert_models(conn: Any, count: int, *, stem: str = "model", folder: str = "/models/loras"):
    """``count`` LoRAs named "<stem> 00000"... (newest first by ``created_at``) inserted
    straight into ``models`` through ``conn`` (a library transaction's connection, or a
    plain one): a fixture for tens of thousands of models, not the code under test."""
    created = 1_700_000_000_000
    rows = [
        (f"{i:064x}", f"{folder}/{stem}{i:05d}.safetensors", f"{stem} {i:05d}", created - i)
        for i in range(count)
    ]
    conn.executemany(
        "INSERT INTO models (sha256, path, name, type, created_at) VALUES (?, ?, ?, 'loras', ?)",
        rows,
    )
