"""The background jobs' JSON bodies as typed requests: a scan, a base probe, a Civitai
lookup."""

from __future__ import annotations

from typing import Any

from hikaze_mm.database import normalize_sha256
from hikaze_mm.errors import ValidationError
from hikaze_mm.library.requests import CivitaiFetch, ScanRequest
from hikaze_mm.policy import API_STRATEGIES, MAX_CIVITAI_BATCH
from hikaze_mm.server.requests.strategy import strategy_of

# POST /api/scan: its options, and the strategy's older name there.
SCAN_OPTIONS = ("immediate_hashing", "conf_strategy", "conflict_strategy")
SCAN_STRATEGY_ALIAS = "conflict_strategy"


def scan_request(body: dict[str, Any]) -> ScanRequest:
    """``POST /api/scan``: ``{"immediate_hashing": bool, "conf_strategy": str|null}``, both
    optional (``conflict_strategy`` is the strategy's older name here)."""
    unknown = sorted(set(body) - set(SCAN_OPTIONS))
    if unknown:
        raise ValidationError(f"unknown scan options: {', '.join(unknown)}")
    immediate = body.get("immediate_hashing", False)
    if not isinstance(immediate, bool):
        raise ValidationError("immediate_hashing must be true or false")
    strategy = strategy_of(body, API_STRATEGIES, alias=SCAN_STRATEGY_ALIAS)
    return ScanRequest(immediate_hashing=immediate, conf_strategy=strategy)


def probe_every(body: dict[str, Any] | None) -> bool:
    """``POST /api/models/probe``: ``{"all": bool}`` (optional; no body: False)."""
    if body is None:
        return False
    unknown = sorted(set(body) - {"all"})
    if unknown:
        raise ValidationError(f'unknown field {unknown[0]!r}; the body is {{"all": true|false}}')
    every = body.get("all", False)
    if not isinstance(every, bool):
        raise ValidationError("all must be true or false")
    return every


def civitai_force(body: dict[str, Any]) -> bool:
    """``POST /api/models/{sha256}/civitai``: the optional ``{"force": true|false}``."""
    unknown = sorted(set(body) - {"force"})
    if unknown or not isinstance(body.get("force", False), bool):
        raise ValidationError('the body is optional: {"force": true|false}')
    return body.get("force", False)


def civitai_fetch(body: dict[str, Any]) -> CivitaiFetch:
    """``POST /api/civitai/fetch``: ``{"sha256s": [...]}`` (at most MAX_CIVITAI_BATCH) or
    ``{"missing": true}``, and an optional ``"force": true``."""
    unknown = sorted(set(body) - {"sha256s", "missing", "force"})
    if unknown:
        raise ValidationError(f"unknown fields: {', '.join(unknown)} (allowed: sha256s, missing)")
    force, missing = body.get("force", False), body.get("missing", False)
    if not isinstance(force, bool) or not isinstance(missing, bool):
        raise ValidationError("missing and force must be true or false")
    shas = body.get("sha256s")
    if missing == (shas is not None):
        raise ValidationError('give either "sha256s": [...] or "missing": true')
    if shas is None:
        return CivitaiFetch(missing=True, force=force)
    if not isinstance(shas, list) or not shas:
        raise ValidationError("sha256s must be a non-empty list of hashes")
    if len(shas) > MAX_CIVITAI_BATCH:
        raise ValidationError(f"sha256s holds at most {MAX_CIVITAI_BATCH} hashes")
    return CivitaiFetch(sha256s=tuple(normalize_sha256(s) for s in shas), force=force)


def update_check_any_base(body: dict[str, Any] | None) -> bool:
    """``POST /api/updates/check``: the optional ``{"any_base": true|false}`` (no body:
    False, updates of the held version's base model only)."""
    if body is None:
        return False
    unknown = sorted(set(body) - {"any_base"})
    if unknown or not isinstance(body.get("any_base", False), bool):
        raise ValidationError('the body is optional: {"any_base": true|false}')
    return body.get("any_base", False)


def ignored_version(body: dict[str, Any]) -> int:
    """``POST /api/models/{sha256}/update/ignore``: ``{"version_id": <positive int>}``."""
    unknown = sorted(set(body) - {"version_id"})
    version_id = body.get("version_id")
    valid = isinstance(version_id, int) and not isinstance(version_id, bool) and version_id > 0
    if unknown or not valid:
        raise ValidationError('the body is {"version_id": <a Civitai version id>}')
    return version_id
