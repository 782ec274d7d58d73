"""The whole flow in one call: a legacy v2 DB -> pending (Stage 1) -> active (Stage 2)."""

from __future__ import annotations

from pathlib import Path

from hikaze_mm.server.http import SERVICES_KEY
from hikaze_mm.services import Services
from tests.helpers import sha256_of
from tests.legacy_fixtures import build_sample_legacy
from tests.test_migration_api import migration_status
from tests.waiting import wait_until_async


async def test_legacy_db_to_pending_to_active(client, tmp_path: Path) -> None:
    services: Services = client.server.app[SERVICES_KEY]
    sample = build_sample_legacy(tmp_path / "legacy_install")
    resp = await client.post(
        "/api/migration/start",
        json={"legacy_db_path": str(sample.db.path), "legacy_images_dir": str(sample.images_dir)},
    )
    assert resp.status == 200
    first = await resp.json()
    assert first["status"] in ("RUNNING", "COMPLETED")
    status = await wait_until_async(
        lambda: migration_status(client),
        lambda status: status["status"] in ("COMPLETED", "ERROR"),
        timeout=60,
        interval=0.01,
        message="the migration to end",
    )
    assert status["status"] == "COMPLETED", status.get("error")
    assert status["phase"] == "promotion"
    last_report = status["legacy_import"]["last_report"]
    assert last_report is not None

    # Stage 1 made legacy 1 and 2 active and left 4, 5, 6 pending; Stage 2 hashed those.
    stats = status["stats"]
    assert stats["total_items"] == stats["processed_items"] == len(sample.pending_ids)
    assert stats["promoted"] == len(sample.pending_ids) and stats["errors"] == 0
    assert services.db.pending.count() == 0
    for legacy_id in sample.active_ids:
        assert services.db.models.get(sample.shas[legacy_id]) is not None
    four = sample.models_dir / "loras" / "four.safetensors"
    model = services.db.models.get(sha256_of(four))
    assert model is not None and model["path"] == str(four) and model["name"] == "four"
    assert model["type"] == "loras"
    assert [t["name"] for t in model["tags"]] == ["lora"]
    assert model["meta"].get("description") == "pending one"
    assert services.images.list_seqs(model["sha256"]) == [0]  # its legacy image, promoted
    for name in (("embeddings", "five.pt"), ("vae", "six.pt")):
        assert services.db.models.get(sha256_of(sample.models_dir.joinpath(*name))) is not None
    assert list(services.images.pending_dir.iterdir()) == []
