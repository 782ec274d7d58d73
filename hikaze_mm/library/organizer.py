"""Organizing model files: "Move to template folder", a move to a chosen folder, and
``hikaze-mm organize`` for the whole library.

The library knows each model by its hash, so a move costs nothing to its metadata: tags,
images, meta and everything else keyed by the hash stay; only ``models.path`` changes,
the hash-cache row follows the file (so the moved file is never hashed again) and the
sidecar files next to it (``<stem>.civitai.info``, ``.json``, previews...) move with it,
their ``sidecar_files`` rows too.

A model goes to ``<its type's folder>/<rendered template>/<file name>`` (``file_moves.
type_folder``, ``path_template``) or to a given folder. Refused, as a ``failed`` result:
a source or target outside the model roots, an existing file at the target (a sidecar's
included; never overwritten), a model whose file is missing, a symlink, two models of one
request sent to the same path.

One move, crash-safe (``move_journal``):

1. ``begin``: the journal entry (phase ``planned``: the paths, the file's stat) is written,
   and on one file system, in the same transaction, the hash-cache row of the target
   (same stat: ``os.replace`` keeps inode and mtime; only when the cache vouches for the
   file's content). A scan that sees the file at the target before step 3 knows it by
   that row and relinks the model: no rehash, no pending duplicate.
2. ``transfer``: ``os.replace``; across file systems, a copy verified by SHA-256 (phase
   ``copied``, with the copy's stat and its cache row), renamed into place, then the
   source deleted.
3. ``converge``: the file at the target is ours when its stat is the journal's: then the
   sidecars follow, and the model is relinked, the old path's cache row dropped, the
   sidecar rows renamed and the entry dropped, in one transaction. Otherwise the move is
   rolled back (the old file is where it was): a leftover copy and the target's cache row
   go, and the entry is dropped.

A kill at any point leaves the old file or the new one; ``recover`` (when a library is
opened by the process that alone works on it) converges every entry of a dead process, so
the library follows whichever exists.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hikaze_mm.config import ModelRoot
from hikaze_mm.database.interfaces import Library
from hikaze_mm.database.values import normalize_sha256
from hikaze_mm.errors import ValidationError
from hikaze_mm.library.file_moves import (
    MoveRefused,
    Stat,
    copy_verified,
    move_plain,
    replace_new,
    same_device,
    sidecars_beside,
    stat_of,
    temp_path,
    type_folder,
    under_roots,
)
from hikaze_mm.library.move_journal import MoveJournal
from hikaze_mm.library.path_template import parse_template, render_template, template_values
from hikaze_mm.library.requests import ModelMove

log = logging.getLogger(__name__)

STATUSES = ("moved", "unchanged", "planned", "failed")
Target = Callable[[dict[str, Any]], Path]


@dataclass(frozen=True)
class MovePlan:
    sha256: str
    source: str
    target: str
    sidecars: tuple[tuple[str, str], ...] = ()


def _result(
    sha: str, source: str | None, target: str | None, status: str, error: str | None = None
) -> dict[str, Any]:
    return {"sha256": sha, "from": source, "to": target, "status": status, "error": error}


def _stat(path: str) -> Stat | None:
    try:
        return stat_of(os.stat(path))
    except OSError:
        return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {status: 0 for status in STATUSES}
    for result in results:
        counts[result["status"]] += 1
    return {"counts": counts, "results": results}


class Organizer:
    def __init__(
        self,
        db: Library,
        roots: Callable[[], Sequence[ModelRoot]],
        default_template: str | None = None,
    ) -> None:
        self.db = db
        self.roots = roots
        self.default_template = default_template
        self.journal = MoveJournal(db)
        self._lock = threading.Lock()  # one move at a time in this process

    # ------------------------------------------------------------ requests
    def template_for(self, template: str | None) -> str:
        """The template given, else ``HIKAZE_DOWNLOAD_TEMPLATE``, checked."""
        chosen = template if template is not None else self.default_template
        if not chosen or not chosen.strip():
            raise ValidationError(
                "no template: give one (template) or set HIKAZE_DOWNLOAD_TEMPLATE"
            )
        parse_template(chosen)
        return chosen

    def move(self, request: ModelMove) -> dict[str, Any]:
        """Move the models of ``request``: ``{counts, results: [{sha256, from, to,
        status, error}]}``; with ``dry_run`` nothing changes (status ``planned``)."""
        if request.folder is not None:
            folder = request.folder
            target: Target = lambda record: self._folder_target(record, folder)  # noqa: E731
        else:
            target = self._template_target(self.template_for(request.template))
        claimed: set[str] = set()
        results = [
            self._one(normalize_sha256(sha), target, request.dry_run, claimed)
            for sha in request.sha256s
        ]
        return summary(results)

    def organize(
        self,
        template: str | None = None,
        *,
        dry_run: bool = False,
        on_result: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Every present model to its template folder (``hikaze-mm organize``)."""
        target = self._template_target(self.template_for(template))
        shas = sorted({sha for _path, sha in self.db.models.paths(missing=False)})
        claimed: set[str] = set()
        results = []
        for sha in shas:
            result = self._one(sha, target, dry_run, claimed)
            results.append(result)
            if on_result is not None:
                on_result(result)
        return summary(results)

    # ------------------------------------------------------------ planning
    def _template_target(self, template: str) -> Target:
        def target(record: dict[str, Any]) -> Path:
            base = type_folder(record["path"], record.get("type"), self.roots())
            if base is None:
                raise MoveRefused(f"no model root holds models of type {record.get('type')}")
            return base / render_template(template, template_values(record))

        return target

    def _folder_target(self, record: dict[str, Any], folder: str) -> Path:
        """An absolute folder as given; a relative one below the model's type folder."""
        given = Path(folder).expanduser()
        if given.is_absolute():
            return Path(os.path.abspath(given))
        base = type_folder(record["path"], record.get("type"), self.roots())
        if base is None:
            raise MoveRefused(f"no model root holds models of type {record.get('type')}")
        return Path(os.path.abspath(base / given))

    def plan(self, record: dict[str, Any], folder: Path) -> MovePlan:
        """Where the model goes in ``folder``; MoveRefused when it must not."""
        source = record["path"]
        roots = self.roots()
        if record.get("missing") or not os.path.lexists(source):
            raise MoveRefused(f"the model's file is missing: {source}")
        if os.path.islink(source):
            raise MoveRefused(f"{source} is a symbolic link; not moving it")
        if not os.path.isfile(source):
            raise MoveRefused(f"{source} is not a regular file")
        target = os.path.join(os.path.abspath(folder), os.path.basename(source))
        if target == os.path.abspath(source):
            return MovePlan(record["sha256"], source, source)
        if not under_roots(source, roots):
            raise MoveRefused(f"{source} is not under a model root; not moving it")
        if not under_roots(target, roots):
            raise MoveRefused(f"{target} is outside the model roots")
        pairs = [
            (s, os.path.join(os.path.dirname(target), os.path.basename(s)))
            for s in sidecars_beside(source)
        ]
        for path in (target, *(dst for _, dst in pairs)):
            if os.path.lexists(path):
                raise MoveRefused(f"{path} exists; not overwriting it")
        return MovePlan(record["sha256"], source, target, tuple(pairs))

    def _one(self, sha: str, target: Target, dry_run: bool, claimed: set[str]) -> dict[str, Any]:
        record = self.db.models.get(sha)
        if record is None:
            return _result(sha, None, None, "failed", "no such model in the library")
        try:
            plan = self.plan(record, target(record))
        except (MoveRefused, ValidationError) as exc:
            return _result(sha, record["path"], None, "failed", str(exc))
        if plan.target == plan.source:
            return _result(sha, plan.source, plan.target, "unchanged")
        if plan.target in claimed:
            error = f"another model of this request goes to {plan.target}"
            return _result(sha, plan.source, plan.target, "failed", error)
        claimed.add(plan.target)
        if dry_run:
            return _result(sha, plan.source, plan.target, "planned")
        return self.run_move(plan)

    # ------------------------------------------------------------ one move
    def run_move(self, plan: MovePlan) -> dict[str, Any]:
        """Move one model (``begin``, ``transfer``, ``converge``)."""
        sha, source, target = plan.sha256, plan.source, plan.target
        with self._lock:
            try:
                self.recover_entry(sha)
                entry = self.begin(plan)
                self.transfer(plan, entry)
            except (OSError, MoveRefused) as exc:
                detail = _describe(exc)
                with contextlib.suppress(OSError, MoveRefused):
                    if self.converge(sha):  # the file moved after all (a failed delete)
                        return _result(sha, source, target, "moved", detail)
                return _result(sha, source, target, "failed", detail)
            if not self.converge(sha):
                return _result(sha, source, target, "failed", "the file did not reach its target")
        return _result(sha, source, target, "moved")

    def begin(self, plan: MovePlan) -> dict[str, Any]:
        """Step 1: the journal entry, and on one file system the target's cache row."""
        st = stat_of(os.stat(plan.source))
        cached = self.db.hash_cache.entry(plan.source, *st)
        if cached is not None and cached[0] != plan.sha256:
            raise MoveRefused(f"{plan.source} no longer holds this model (it changed)")
        cross = not same_device(plan.source, plan.target)
        entry = {
            "phase": "planned",
            "from": plan.source,
            "to": plan.target,
            "sidecars": [list(pair) for pair in plan.sidecars],
            "stat": list(st),
            "autov3": cached[1] if cached else None,
            "cross": cross,
        }
        with self.db.transaction():
            self.journal.put(plan.sha256, entry)
            if cached is not None and not cross:
                self.db.hash_cache.store(plan.target, *st, plan.sha256, cached[1])
        return entry

    def transfer(self, plan: MovePlan, entry: dict[str, Any]) -> None:
        """Step 2: the model's file to its target (a rename, or a verified copy)."""
        os.makedirs(os.path.dirname(plan.target), exist_ok=True)
        if not entry["cross"]:
            try:
                replace_new(plan.source, plan.target)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:  # another mount of the same device
                    raise
        temp = self.copy_across(plan, entry)
        replace_new(temp, plan.target)
        os.unlink(plan.source)

    def copy_across(self, plan: MovePlan, entry: dict[str, Any]) -> str:
        """Across file systems: the verified copy beside the target (returned), journaled
        (phase ``copied``) with the target's cache row in one transaction."""
        temp = temp_path(plan.target)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        copied = copy_verified(plan.source, temp, plan.sha256)
        with self.db.transaction():
            self.journal.put(plan.sha256, {**entry, "phase": "copied", "copy": list(copied)})
            self.db.hash_cache.store(plan.target, *copied, plan.sha256, entry.get("autov3"))
        return temp

    # ------------------------------------------------------------ convergence
    def converge(self, sha256: str) -> bool:
        """Step 3, and what ends a move a crash interrupted: True when the model now
        lies at its target (rolled forward), False when it stayed (rolled back)."""
        entry = self.journal.get(sha256)
        if entry is None:
            return False
        source, target = entry["from"], entry["to"]
        expected = tuple(entry["copy"] if entry.get("phase") == "copied" else entry["stat"])
        temp = temp_path(target)
        copied = entry.get("phase") == "copied"
        if copied and not os.path.lexists(target) and _stat(temp) == expected:
            os.replace(temp, target)
        if _stat(target) == expected:
            if entry.get("phase") == "copied" and os.path.lexists(source):
                try:
                    os.unlink(source)
                except OSError as exc:
                    log.warning("moved %s but could not delete it: %s", source, exc)
            self._forward(sha256, entry)
            return True
        self._rollback(sha256, entry, expected)
        return False

    def _forward(self, sha: str, entry: dict[str, Any]) -> None:
        moved: list[tuple[str, str]] = []
        for src, dst in entry.get("sidecars", []):
            if os.path.lexists(src) and not os.path.lexists(dst):
                try:
                    move_plain(src, dst)
                except (OSError, MoveRefused) as exc:
                    log.warning("sidecar %s stays where it is: %s", src, exc)
                    continue
            if os.path.lexists(dst) and not os.path.lexists(src):
                moved.append((src, dst))
        with self.db.transaction():
            self.db.models.relink(sha, entry["to"])
            self.db.hash_cache.forget(entry["from"])
            self.db.sidecars.rename(moved)
            self.journal.put(sha, None)

    def _rollback(self, sha: str, entry: dict[str, Any], expected: tuple[int, ...]) -> None:
        target = entry["to"]
        temp = temp_path(target)
        if os.path.lexists(temp):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        with self.db.transaction():
            row = self.db.hash_cache.rows([target]).get(target)
            if row is not None and tuple(row[1:4]) == expected and row[4] == sha:
                self.db.hash_cache.forget(target)  # our row, for a file that is not there
            self.journal.put(sha, None)

    def recover_entry(self, sha256: str) -> None:
        """Converge an entry an earlier attempt left (MoveRefused when a live process
        owns it)."""
        entry = self.journal.get(sha256)
        if entry is None:
            return
        if self.journal.owned_by_live_other(entry):
            who = self.journal.liveness.describe(entry)
            raise MoveRefused(f"the model is being moved by {who}")
        self.converge(sha256)

    def recover(self) -> int:
        """Converge the moves of dead processes (run when a library is opened)."""
        done = 0
        for sha, entry in self.journal.entries().items():
            if self.journal.is_ours(entry) or self.journal.owned_by_live_other(entry):
                continue
            try:
                self.converge(sha)
            except (OSError, MoveRefused) as exc:
                log.warning("could not finish the move of %s: %s", sha, exc)
                continue
            done += 1
        return done
