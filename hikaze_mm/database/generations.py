"""GenerationStore: the images the HikazeSaveImage node saved, and the models each used.

A generation is its file (relative to ComfyUI's output folder), when it was saved and what
the sampler did; its resources are the library's models it used, by hash, with their role
(``model``, ``lora``, ``embedding``), name and weight. A resource whose model is not in the
library is left out; a model's resources go with it, its generations stay.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hikaze_mm.database.sql import chunks
from hikaze_mm.database.sqlite_errors import translate_errors
from hikaze_mm.database.values import normalize_sha256, now_ms
from hikaze_mm.errors import ValidationError
from hikaze_mm.meta import parse_meta

if TYPE_CHECKING:
    from hikaze_mm.database.manager import DatabaseManager

# The columns a generation record carries besides ``id``, ``created_at`` and ``params``.
GENERATION_FIELDS = (
    "file",
    "prompt",
    "negative_prompt",
    "seed",
    "steps",
    "sampler",
    "cfg",
    "width",
    "height",
)
_SELECT = (
    "SELECT id, file, created_at, prompt, negative_prompt, seed, steps, sampler, cfg, "
    "width, height, params_json FROM generations"
)


def _record(row: Sequence[Any]) -> dict[str, Any]:
    record = dict(zip(("id", "created_at"), (row[0], row[2]), strict=True))
    for name, value in zip(GENERATION_FIELDS, (row[1], *row[3:11]), strict=True):
        record[name] = value
    record["seed"] = int(row[5]) if row[5] is not None else None
    record["params"] = parse_meta(row[11])
    record["resources"] = []
    return record


@translate_errors()
class GenerationStore:
    def __init__(self, db: DatabaseManager) -> None:
        self.db = db

    def add(self, record: dict[str, Any], resources: Sequence[dict[str, Any]]) -> int:
        """Record one saved image and its resources (``{sha256, role, name, weight}``);
        returns its id. Resources whose model is not in the library are left out."""
        if not isinstance(record.get("file"), str) or not record["file"]:
            raise ValidationError("a generation needs its file")
        seed = record.get("seed")
        values = [record.get(name) for name in GENERATION_FIELDS]
        values[GENERATION_FIELDS.index("seed")] = str(int(seed)) if seed is not None else None
        params = json.dumps(record.get("params") or {}, sort_keys=True)
        with self.db.transaction() as conn:
            gid = int(
                conn.execute(
                    "INSERT INTO generations (file, prompt, negative_prompt, seed, steps, "
                    "sampler, cfg, width, height, created_at, params_json) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    [*values, record.get("created_at") or now_ms(), params],
                ).fetchone()[0]
            )
            conn.executemany(
                "INSERT INTO generation_resources (generation_id, sha256, role, name, weight) "
                "SELECT ?, sha256, ?, ?, ? FROM models WHERE sha256 = ? ON CONFLICT DO NOTHING",
                [
                    (gid, r["role"], r.get("name"), r.get("weight"), normalize_sha256(r["sha256"]))
                    for r in resources
                ],
            )
        return gid

    def get(self, generation_id: int) -> dict[str, Any] | None:
        """One generation with its resources, or None."""
        row = self.db.conn.execute(f"{_SELECT} WHERE id = ?", (generation_id,)).fetchone()
        if row is None:
            return None
        found = [_record(row)]
        self._attach_resources(found)
        return found[0]

    def for_model(
        self, sha256: str, offset: int = 0, limit: int = 50
    ) -> tuple[int, list[dict[str, Any]]]:
        """``(total, page)``: the generations that used the model, newest first, each with
        its resources; three queries whatever the page size."""
        sha = normalize_sha256(sha256)
        total = self.db.conn.execute(
            "SELECT COUNT(DISTINCT generation_id) FROM generation_resources WHERE sha256 = ?",
            (sha,),
        ).fetchone()[0]
        rows = self.db.conn.execute(
            f"{_SELECT} WHERE id IN (SELECT generation_id FROM generation_resources "
            "WHERE sha256 = ?) ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
            (sha, limit, offset),
        ).fetchall()
        page = [_record(row) for row in rows]
        self._attach_resources(page)
        return int(total), page

    def _attach_resources(self, page: list[dict[str, Any]]) -> None:
        by_id = {record["id"]: record for record in page}
        for ids in chunks(list(by_id)):
            marks = ",".join("?" * len(ids))
            for gid, sha, role, name, weight in self.db.tuples(
                "SELECT generation_id, sha256, role, name, weight FROM generation_resources "
                f"WHERE generation_id IN ({marks}) ORDER BY generation_id, rowid",
                ids,
            ):
                resource = {"sha256": sha, "role": role, "name": name, "weight": weight}
                by_id[gid]["resources"].append(resource)
