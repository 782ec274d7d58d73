"""``UpdateService``: which models have a newer version on Civitai (the ``updates`` job).

A check covers every model with ``meta.civitai.model_id``. It asks Civitai ``GET
/api/v1/models?ids=1,2,...&nsfw=true`` about up to 100 model ids a request (each id once,
however many files hold it), paced, retried and capped by ``civitai_client`` and sharing
the Civitai lookups' token bucket. Models linked to the NSFW site (``meta.civitai.url`` on
``settings.nsfw_site``'s host), and those the first site does not list, are asked there.

For each model it records, by ``update_versions.pick_update``, the newest version newer
than the one held (``meta.civitai.version_id``), of the held version's base model unless
``any_base``: ``meta.update = {version_id, version_name, base_model, published_at,
checked_at}``. A model with no update (its version is the newest, the newer ones are of
another base, the newest was ignored or is in the library already) has ``meta.update``
removed: its presence means "an update is available". Every model Civitai answered about
gets ``meta.update_checked_at`` (ms). A model neither site lists, or whose request got no
usable answer, keeps its meta as it was.

``ignore(sha256, version_id)`` adds the version to ``meta.update_ignored`` (a list of
version ids) and drops ``meta.update`` if it names it: that version is never offered again
(a newer one still is). One check at a time (a ``BackgroundJob``, 409 while one runs).
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from hikaze_mm.config import CivitaiSettings
from hikaze_mm.database import normalize_sha256, now_ms
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import NotFoundError, ValidationError
from hikaze_mm.jobs import BackgroundJob, JobCancelled, JobProgress, JobRun
from hikaze_mm.library.civitai_client import (
    BATCH_SIZE,
    CIVITAI_HOLD,
    CivitaiClient,
    Sleep,
    TokenBucket,
    site_clients,
    until_cancelled,
)
from hikaze_mm.library.civitai_schema import CivitaiError
from hikaze_mm.library.update_versions import RemoteVersion, parse_models, pick_update

UPDATE_KEY = "update"
CHECKED_KEY = "update_checked_at"
IGNORED_KEY = "update_ignored"
MAX_IGNORED = 1000  # versions one model remembers as ignored
_FIELDS = ("civitai.model_id", "civitai.version_id", "civitai.url", "civitai.base_model")


@dataclass(frozen=True)
class Held:
    """A model with a Civitai version: what a check compares against."""

    sha256: str
    model_id: int
    version_id: int
    base_model: str | None
    nsfw_site: bool  # linked to the NSFW site: asked there first


def _int(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if ok else None


def _host(url: Any) -> str | None:
    """``host:port`` of a URL (lower case), or None."""
    if not isinstance(url, str):
        return None
    try:
        return urlsplit(url).netloc.lower() or None
    except ValueError:
        return None


def ignored_versions(meta: dict[str, Any]) -> list[int]:
    """``meta.update_ignored`` as version ids (anything else in it left out)."""
    raw = meta.get(IGNORED_KEY)
    return [v for v in raw if _int(v)] if isinstance(raw, list) else []


class _Run:
    """One check's counts and problems (guarded by the service's lock)."""

    def __init__(self, any_base: bool, total: int, checked_at: int = 0) -> None:
        self.any_base = any_base
        self.checked_at = checked_at  # the check's time (ms): every model's checked_at
        self.total = total
        self.done = 0
        self.requests = 0
        self.counts = dict.fromkeys(("updates", "newest", "not_found", "failed"), 0)
        self.problems: list[str] = []

    def report(self, error: str | None = None) -> dict[str, Any]:
        return {
            "any_base": self.any_base,
            "total": self.total,
            "done": self.done,
            "requests": self.requests,
            "counts": dict(self.counts),
            "problems": list(self.problems[:20]),
            "error": error,
        }


class UpdateService:
    """Update checks for one library; ``bucket`` (shared with the Civitai lookups),
    ``sleep`` and ``now`` (ms) are injectable."""

    def __init__(
        self,
        db: Library,
        settings: CivitaiSettings,
        *,
        bucket: TokenBucket | None = None,
        sleep: Sleep | None = None,
        now: Callable[[], int] = now_ms,
    ) -> None:
        self.db = db
        self.settings = settings
        self.now = now
        bucket = bucket or TokenBucket(settings.requests_per_second)
        self.client, self.nsfw_client = site_clients(settings, bucket, sleep=sleep)
        self.job = BackgroundJob(
            "updates",
            title="update check",
            progress=self._progress,
            release=db.release_thread,
            hold=lambda: db.hold(CIVITAI_HOLD),
        )
        self._lock = threading.Lock()
        self._run: _Run | None = None

    # ------------------------------------------------------------ status and control
    def _progress(self) -> JobProgress:
        with self._lock:
            run = self._run
            return JobProgress(run.done, run.total, "models") if run else JobProgress(unit="models")

    def status(self) -> dict[str, Any]:
        """``{running, started_at, finished_at, error, last_report, progress: {done,
        total}}`` of the running or last check."""
        progress = self._progress()
        return {**self.job.status(), "progress": {"done": progress.done, "total": progress.total}}

    def start(self, *, any_base: bool = False) -> dict[str, Any]:
        """Check in the background; the status as started (ConflictError while one runs)."""
        job_run = self.job.begin()
        self._begin(any_base)
        self.job.start(lambda jr: self._check(jr, any_base, None), job_run)
        return self.status()

    def run(
        self,
        *,
        any_base: bool = False,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Check in this thread (the CLI) and return the report; ``on_progress`` gets the
        status after each batch."""
        job_run = self.job.begin()
        self._begin(any_base)
        return self.job.run(lambda jr: self._check(jr, any_base, on_progress), job_run)

    def wait(self, timeout: float | None = None) -> bool:
        return self.job.wait(timeout)

    def _begin(self, any_base: bool) -> None:
        with self._lock:
            self._run = _Run(any_base, 0)

    # ------------------------------------------------------------ reading
    def targets(self) -> list[Held]:
        """Every model with a Civitai model and version id, in sha256 order."""
        shas = self.db.models.with_meta("civitai.model_id")
        fields = self.db.models.meta_fields(shas, _FIELDS)
        nsfw_host = _host(self.nsfw_client.settings.url) if self.nsfw_client else None
        held = []
        for sha in shas:
            got = fields.get(sha, {})
            model_id, version_id = (
                _int(got.get("civitai.model_id")),
                _int(got.get("civitai.version_id")),
            )
            if model_id is None or version_id is None:
                continue
            base = got.get("civitai.base_model")
            on_nsfw = nsfw_host is not None and _host(got.get("civitai.url")) == nsfw_host
            held.append(
                Held(sha, model_id, version_id, base if isinstance(base, str) else None, on_nsfw)
            )
        return held

    def list(self) -> list[dict[str, Any]]:
        """The models with an update: ``{sha256, name, type, base, path, missing, held:
        {model_id, version_id, version_name}, update}``, by name."""
        found = []
        for row in self.db.models.with_updates():
            civitai = row.pop("civitai") or {}
            row["held"] = {k: civitai.get(k) for k in ("model_id", "version_id", "version_name")}
            found.append(row)
        return found

    # ------------------------------------------------------------ ignoring
    def ignore(self, sha256: str, version_id: int) -> dict[str, Any]:
        """Never offer ``version_id`` for this model again: ``{sha256, update_ignored,
        update}`` after. NotFoundError for a model not in the library."""
        if _int(version_id) is None:
            raise ValidationError("version_id must be a positive integer")
        sha = normalize_sha256(sha256)
        with self.db.transaction():
            record = self.db.models.get(sha)
            if record is None:
                raise NotFoundError(f"no model {sha}")
            meta = copy.deepcopy(record["meta"])
            ignored = ignored_versions(meta)
            if version_id not in ignored:
                ignored = [*ignored, version_id][-MAX_IGNORED:]
            meta[IGNORED_KEY] = ignored
            update = meta.get(UPDATE_KEY)
            if isinstance(update, dict) and update.get("version_id") == version_id:
                del meta[UPDATE_KEY]
            self.db.models.update(sha, meta=meta)
        return {"sha256": sha, IGNORED_KEY: ignored, UPDATE_KEY: meta.get(UPDATE_KEY)}

    # ------------------------------------------------------------ the check
    def _check(
        self,
        job_run: JobRun,
        any_base: bool,
        on_progress: Callable[[dict[str, Any]], None] | None,
    ) -> dict[str, Any]:
        held = self.targets()
        with self._lock:
            run = self._run = _Run(any_base, len(held), self.now())
        try:
            asyncio.run(self._work(job_run, run, held, on_progress))
        except CivitaiError as exc:
            return run.report(f"{exc.error}: {exc.detail}")
        return run.report()

    async def _work(
        self,
        job_run: JobRun,
        run: _Run,
        held: list[Held],
        on_progress: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        """Ask the first site about the models not linked to the NSFW one, then the NSFW
        site about those and the ones the first did not list, settling each batch."""
        in_library = {h.version_id for h in held}
        by_model: dict[int, list[Held]] = {}
        for h in held:
            by_model.setdefault(h.model_id, []).append(h)
        nsfw = self.nsfw_client
        first = sorted(m for m, hs in by_model.items() if nsfw is None or not hs[0].nsfw_site)
        later = sorted(set(by_model) - set(first))
        async with self.client.session() as session:
            ask = _Asker(self, session, job_run, run, by_model, in_library, on_progress)
            unlisted = await ask.site(self.client, first, final=nsfw is None)
            if nsfw is not None:
                await ask.site(nsfw, sorted(later + unlisted), final=True)

    def settle(
        self,
        run: _Run,
        answered: list[tuple[list[Held], list[RemoteVersion]]],
        in_library: set[int],
    ) -> None:
        """Record the update (or none) of each model of a batch's answer (``answered``: the
        models holding one Civitai model, and its versions), in one transaction."""
        counts = {"updates": 0, "newest": 0, "not_found": 0}
        with self.db.transaction():
            for group, versions in answered:
                for h in group:
                    counts[self._settle_one(run, h, versions, in_library)] += 1
        with self._lock:
            for key, count in counts.items():
                run.counts[key] += count
                run.done += count

    def _settle_one(
        self, run: _Run, h: Held, versions: list[RemoteVersion], in_library: set[int]
    ) -> str:
        """Record one model's update (or none); the count it goes to."""
        record = self.db.models.get(h.sha256)
        if record is None:  # deleted meanwhile
            return "not_found"
        meta = copy.deepcopy(record["meta"])
        pick = pick_update(
            versions,
            h.version_id,
            h.base_model,
            any_base=run.any_base,
            ignored=ignored_versions(meta),
            in_library=in_library,
        )
        if pick is None:
            meta.pop(UPDATE_KEY, None)
        else:
            meta[UPDATE_KEY] = {
                "version_id": pick.id,
                "version_name": pick.name,
                "base_model": pick.base_model,
                "published_at": pick.published_at,
                "checked_at": run.checked_at,
            }
        meta[CHECKED_KEY] = run.checked_at
        self.db.models.update(h.sha256, meta=meta)
        return "newest" if pick is None else "updates"

    def tally(self, run: _Run, models: int, key: str, problem: str | None = None) -> None:
        with self._lock:
            run.counts[key] += models
            run.done += models
            if problem and problem not in run.problems:
                run.problems.append(problem)


class _Asker:
    """The requests of one check: a site's model ids, a batch of ``BATCH_SIZE`` a request."""

    def __init__(
        self,
        service: UpdateService,
        session: aiohttp.ClientSession,
        job_run: JobRun,
        run: _Run,
        by_model: dict[int, list[Held]],
        in_library: set[int],
        on_progress: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.service = service
        self.session = session
        self.job_run = job_run
        self.run = run
        self.by_model = by_model
        self.in_library = in_library
        self.on_progress = on_progress

    def cancelled(self) -> bool:
        return self.job_run.cancelled

    def _held(self, ids: list[int]) -> int:
        return sum(len(self.by_model[m]) for m in ids)

    async def site(self, client: CivitaiClient, ids: list[int], *, final: bool) -> list[int]:
        """Ask ``client``'s site about ``ids``; the ids it does not list (with ``final``,
        those are counted as not found instead)."""
        unlisted: list[int] = []
        for start in range(0, len(ids), BATCH_SIZE):
            if self.cancelled():
                raise JobCancelled()
            batch = ids[start : start + BATCH_SIZE]
            with self.service._lock:
                self.run.requests += 1
            try:
                data = await until_cancelled(
                    client.models(self.session, batch, self.cancelled), self.cancelled
                )
                answer = parse_models(data)
            except CivitaiError as exc:
                if exc.fatal:
                    raise
                self.service.tally(self.run, self._held(batch), "failed", exc.detail)
                continue
            for problem in answer.problems:
                self.service.tally(self.run, 0, "failed", problem)
            unlisted += [m for m in batch if m not in answer.models]
            answered = [(self.by_model[m], answer.models[m]) for m in batch if m in answer.models]
            self.service.settle(self.run, answered, self.in_library)
            if self.on_progress is not None:
                self.on_progress(self.service.status())
        if final:
            self.service.tally(self.run, self._held(unlisted), "not_found")
            return []
        return unlisted
