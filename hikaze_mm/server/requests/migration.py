"""The migration's JSON bodies as typed requests: promotions, hashing a model file,
starting Stage 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hikaze_mm.errors import ValidationError
from hikaze_mm.params import check_pending_id, parse_path
from hikaze_mm.pending.requests import HashFile, MigrationStart, PromoteMany, PromoteOne
from hikaze_mm.policy import API_STRATEGIES, MAX_PROMOTE_BATCH, WORKER_STRATEGIES
from hikaze_mm.server.requests.strategy import strategy_of

HASH_MODES = ("pending", "ignore")
# POST /api/migration/start: the strategy's older name there.
START_STRATEGY_ALIAS = "conflict_policy"


def promote_one(body: dict[str, Any]) -> PromoteOne:
    """``{"id", "conf_strategy": null | "override" | "merge" | "delete"}``."""
    if "id" not in body:
        raise ValidationError("id is required")
    strategy = strategy_of(body, API_STRATEGIES)
    return PromoteOne(pending_id=check_pending_id(body["id"]), conf_strategy=strategy)


def promote_many(body: dict[str, Any]) -> PromoteMany:
    """``{"ids": [...], "conf_strategy"}``: 1 to MAX_PROMOTE_BATCH pending ids."""
    value = body.get("ids")
    if not isinstance(value, list) or not value:
        raise ValidationError("ids must be a non-empty list of pending ids")
    if len(value) > MAX_PROMOTE_BATCH:
        raise ValidationError(f"at most {MAX_PROMOTE_BATCH} ids per batch")
    ids = tuple(dict.fromkeys(check_pending_id(v) for v in value))
    return PromoteMany(ids=ids, conf_strategy=strategy_of(body, API_STRATEGIES))


def hash_file(body: dict[str, Any]) -> HashFile:
    """``{"path": absolute path, "pending_status": "pending" | "ignore"}``."""
    mode = body.get("pending_status", "ignore")
    if mode not in HASH_MODES:
        raise ValidationError('pending_status must be "pending" or "ignore"')
    path = parse_path(body.get("path"), "path")
    if not path.is_absolute():
        raise ValidationError("path must be absolute")
    return HashFile(path=path, promote=mode == "pending")


def _optional_path(body: dict[str, Any], name: str) -> Path | None:
    value = body.get(name)
    return None if value is None or value == "" else parse_path(value, name)


def migration_start(body: dict[str, Any]) -> MigrationStart:
    """``{legacy_db_path?, legacy_images_dir?, conf_strategy?}`` (``conflict_policy`` is
    the strategy's older name here); the worker may also ``skip``."""
    strategy = strategy_of(body, WORKER_STRATEGIES, alias=START_STRATEGY_ALIAS)
    return MigrationStart(
        legacy_db_path=_optional_path(body, "legacy_db_path"),
        legacy_images_dir=_optional_path(body, "legacy_images_dir"),
        conf_strategy=strategy,
    )
