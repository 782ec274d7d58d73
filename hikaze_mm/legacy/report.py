"""The report of one Stage 1 import: counts, warnings and per-item errors.

Counts (all for THIS run; a second run over the same legacy DB reports its models under
``already_imported`` and changes nothing):

* ``tags``: legacy tags mapped to a v3 tag, of which ``tags_created`` are new and
  ``tags_reused`` matched an existing v3 tag by name (case-insensitive).
* ``active_models``: v3 models that received legacy rows (created, or merged into a model
  that was in v3 already: ``merged_into_existing``).
* ``pending_models``: legacy models queued in ``pending_import`` (no valid hash).
* ``merged_duplicates``: legacy rows merged into a model another legacy row created (same
  file at two paths: same hash); their tags are the union.
* ``links``: legacy tag links applied; ``dangling_links``: links to a model or tag that does
  not exist in the legacy DB (or a tag that could not be imported), skipped.
* ``images_encoded`` (WebP tiers for active models), ``images_copied`` (originals kept for
  pending models), ``images_skipped`` (already imported for that model), ``image_errors``.
* ``images_recovered_by_name``: of the images encoded or copied, those found by their file
  name (``model_<legacy id>_...``) for a row whose ``extra_json`` was not a JSON object.
* ``images_unreferenced``: files in the legacy images folder that no legacy row claims
  (by an image key of its metadata, or by that name rule); counted, never imported. It
  describes the folder, so a second run reports it again.
* ``model_errors``: legacy models that could not be imported at all; ``meta_errors``:
  metadata that was not a JSON object (kept as text, so nothing is lost).

``errors`` lists each problem as ``{kind, legacy_id, path, reason}`` (kind ``model``,
``image``, ``meta`` or ``tag``; for an image, ``path`` is the image file), capped at
``MAX_ERRORS`` entries (``errors_omitted`` counts the rest).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_ERRORS = 1000  # keeps the report (also polled in the status) small


@dataclass
class ImportReport:
    legacy_db_path: str
    legacy_images_dir: str | None
    tags: int = 0
    tags_created: int = 0
    tags_reused: int = 0
    active_models: int = 0
    pending_models: int = 0
    merged_duplicates: int = 0
    merged_into_existing: int = 0
    already_imported: int = 0
    links: int = 0
    dangling_links: int = 0
    images_encoded: int = 0
    images_copied: int = 0
    images_skipped: int = 0
    image_errors: int = 0
    images_recovered_by_name: int = 0
    images_unreferenced: int = 0
    model_errors: int = 0
    meta_errors: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    errors_omitted: int = 0
    warnings: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    seconds: float = 0.0

    def add_error(self, kind: str, legacy_id: int | None, path: str | None, reason: str) -> None:
        """Record one problem and bump its counter (``image_errors`` for kind ``image``...)."""
        counter = {"image": "image_errors", "model": "model_errors", "meta": "meta_errors"}
        if kind in counter:
            setattr(self, counter[kind], getattr(self, counter[kind]) + 1)
        if len(self.errors) >= MAX_ERRORS:
            self.errors_omitted += 1
            return
        self.errors.append({"kind": kind, "legacy_id": legacy_id, "path": path, "reason": reason})

    def finish(self) -> None:
        self.seconds = round(time.time() - self.started_at, 3)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return summarize(self.to_dict())


def summarize(report: dict[str, Any], *, max_errors: int = 20) -> str:
    """A few human-readable lines for a report dict (the CLI prints them without --json)."""
    r = report
    lines = [
        f"Imported {r['legacy_db_path']} in {r['seconds']:.1f}s",
        f"  tags: {r['tags']} ({r['tags_created']} new, {r['tags_reused']} reused)",
        f"  active models: {r['active_models']} (merged duplicates: {r['merged_duplicates']}, "
        f"into existing models: {r['merged_into_existing']})",
        f"  pending models: {r['pending_models']}",
        f"  already imported: {r['already_imported']}",
        f"  links: {r['links']} (dangling skipped: {r['dangling_links']})",
        f"  images: {r['images_encoded']} encoded, {r['images_copied']} copied, "
        f"{r['images_skipped']} already there, {r['image_errors']} "
        + ("error" if r["image_errors"] == 1 else "errors"),
    ]
    recovered, unreferenced = r.get("images_recovered_by_name"), r.get("images_unreferenced")
    if recovered or unreferenced:  # absent from reports stored by earlier releases
        lines.append(
            f"  legacy images: {recovered or 0} recovered by file name, "
            f"{unreferenced or 0} unreferenced (not imported)"
        )
    if r["model_errors"] or r["meta_errors"]:
        lines.append(
            f"  model errors: {r['model_errors']}, metadata kept as text: {r['meta_errors']}"
        )
    lines += [f"  warning: {w}" for w in r["warnings"]]
    shown = r["errors"][:max_errors]
    for err in shown:
        where = f"{err['path']}: " if err["path"] else ""
        lines.append(f"  {err['kind']} #{err['legacy_id']}: {where}{err['reason']}")
    more = len(r["errors"]) - len(shown) + r["errors_omitted"]
    if more:
        lines.append(f"  ... and {more} more (see --json)")
    return "\n".join(lines)
