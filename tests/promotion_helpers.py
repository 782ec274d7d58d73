"""Builders for promotion and worker tests: pending models with real files and images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from hikaze_mm.services import Services
from tests.helpers import write_model


def make_png(path: Path, color: tuple[int, int, int] = (200, 10, 10), size=(64, 48)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, "PNG")
    return path


def add_pending(
    services: Services,
    root: Path,
    name: str,
    content: bytes | int = 4096,
    *,
    seed: int = 0,
    tags: tuple[str, ...] = (),
    images: tuple[tuple[int, int, int], ...] = (),
    **data: Any,
) -> tuple[int, str]:
    """A model file under ``root`` queued as pending, with tags and images; (id, sha256)."""
    path = root / "checkpoints" / name
    sha = write_model(path, content, seed=seed)
    record = {"path": str(path), "name": Path(name).stem, "type": "checkpoints", **data}
    pending_id = services.db.pending.add(record, tags)
    for n, color in enumerate(images):
        png = make_png(root.parent / "src_images" / f"{name}_{n}.png", color)
        services.images.add_pending_image(pending_id, png, n)
    return pending_id, sha


def tier_bytes(services: Services, sha: str, seq: int) -> bytes:
    return services.images.tier_path(sha, seq, "high").read_bytes()


def library_snapshot(services: Services) -> dict[str, Any]:
    """Everything a promotion changes, in a comparable form."""
    db = services.db
    models = []
    for row in db.conn.execute("SELECT sha256 FROM models ORDER BY sha256"):
        model = db.models.get(row[0])
        assert model is not None
        model["tags"] = sorted(t["name"] for t in model["tags"])
        model["images"] = services.images.image_names(model["sha256"])
        models.append(model)
    pending = [
        {k: p[k] for k in ("id", "path", "status", "error", "sha256")} for p in db.pending.list()
    ]
    tier_files = sorted(p.name for p in services.images.images_dir.glob("*.webp"))
    pending_files = sorted(p.name for p in services.images.pending_dir.iterdir())
    return {
        "models": models,
        "pending": pending,
        "tier_files": tier_files,
        "pending_files": pending_files,
    }
