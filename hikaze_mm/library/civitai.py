"""``CivitaiService``: models' metadata and previews from Civitai, looked up by SHA-256.

A lookup of one model (``civitai_client`` does the HTTP) fills only what is empty, and
never a field a user edited (``meta.sources[field] == "user"``), recording
``meta.sources[field] = "civitai"`` for what it fills:

* ``meta.trigger_words`` from ``trainedWords``, ``meta.description`` (the HTML as text);
* ``meta.civitai``: ``{model_id, version_id, model_name, version_name, url, base_model,
  nsfw, nsfw_level, air, hashes}`` (``air`` Civitai's AIR of the version, ``hashes`` the
  matched file's hashes as Civitai gives them: SHA256, AutoV2, AutoV3, BLAKE3, CRC32...);
* the ``base`` column (Civitai's name wins over a probed one, never over a user's);
* up to ``max_images`` previews, when the model has no image yet, stored as WebP tiers;
  images above the NSFW setting (``nsfwLevel`` > ``max_nsfw``; unrated ones included),
  videos and oversized ones are not downloaded, and a download that is not an image or
  passes the byte cap is reported and skipped.

A hash Civitai does not know (404) is remembered in the model's meta
(``meta.civitai_not_found = {checked_at, until}``) and not asked again before ``until``
(7 days) unless forced; a later match clears it.

Lookups leave this machine, so nothing is sent unless asked: ``start``/``run`` (the API,
the CLI) and ``lookup_one`` (a model's button) are explicit requests; ``maybe_auto``, the
hook for newly added models, does nothing unless ``HIKAZE_CIVITAI_AUTO`` is on.

One job at a time (a ``BackgroundJob``: 409 while one runs) works through its hashes in
its own thread, on an event loop of its own. It asks about up to 100 hashes in one request
(``POST .../by-hash``), and one hash per request (``GET .../by-hash/{sha256}``) for the rest
of the run once Civitai answers that endpoint with 404 or 405; a model's button
(``lookup_one``) asks with one GET. A connection that cannot be made, a refused token, or
three requests in a row that got no answer end the job with one error ("Civitai
unreachable: ..."), keeping what was done; a request that gets no usable answer fails each
model it asked about.

Civitai serves NSFW models from a second site (``settings.nsfw_site``, civitai.red): the
hashes the first does not know are asked there, by the job in full batches of their own
(the rest at the end of the run), by ``lookup_one`` after the first site's 404. A model
found there links to that site; a hash neither knows is remembered as unknown.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from hikaze_mm.config import CivitaiSettings
from hikaze_mm.database import normalize_sha256, now_ms
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import ConflictError, NotFoundError
from hikaze_mm.images import ImageError, ImageStore
from hikaze_mm.jobs import BackgroundJob, JobCancelled, JobProgress, JobRun, tidy_search_index
from hikaze_mm.library.civitai_client import (
    BATCH_SIZE,
    CIVITAI_HOLD,
    CivitaiClient,
    CivitaiUnreachable,
    DownloadError,
    Sleep,
    TokenBucket,
    site_clients,
    until_cancelled,
)
from hikaze_mm.library.civitai_schema import CivitaiBadResponse, CivitaiError, CivitaiVersion
from hikaze_mm.library.fill import fill_empty, replaces_base
from hikaze_mm.library.models_service import ModelsService
from hikaze_mm.meta import is_empty, sources_of

SOURCE = "civitai"
NOT_FOUND_KEY = "civitai_not_found"
MAX_CONSECUTIVE_FAILURES = 3  # lookups in a row without an answer end a job
STATUS_RESULTS = 100  # the last report in ``status()`` lists at most this many results
DAY_MS = 86_400_000


@dataclass
class LookupResult:
    """What one lookup did: ``status`` found, not_found, failed or skipped."""

    sha256: str
    status: str
    detail: str | None = None
    remembered: bool = False  # not found earlier: no request was made
    filled: list[str] = field(default_factory=list)
    images: int = 0
    images_skipped_nsfw: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Outcome = CivitaiVersion | None | CivitaiError  # a hash's answer: found, not known, failed


@dataclass
class _Asking:
    """How a run asks: the sites without the batch endpoint (asked one hash at a time),
    the requests in a row that got no answer, and the error that stops the run."""

    no_batch: set[str] = field(default_factory=set)
    failures: int = 0
    stop: str | None = None

    def batch_size(self, client: CivitaiClient) -> int:
        return 1 if client.settings.url in self.no_batch else BATCH_SIZE


@dataclass
class _Run:
    """The progress of one job run (guarded by the service's lock)."""

    mode: str
    force: bool
    items: list[str]
    taken: int = 0  # items[:taken] have been taken for asking
    started_at: int = field(default_factory=now_ms)
    finished_at: int | None = None
    done: int = 0
    current: str | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("found", "not_found", "failed", "skipped", "images"), 0
        )
    )
    results: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def report(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "force": self.force,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "total": len(self.items),
            "done": self.done,
            "counts": dict(self.counts),
            "error": self.error,
            "results": list(self.results),
        }


def _shown(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """A report as a status shows it: its last ``STATUS_RESULTS`` results."""
    if report is None or len(report["results"]) <= STATUS_RESULTS:
        return report
    return {**report, "results": report["results"][-STATUS_RESULTS:], "results_truncated": True}


class CivitaiService:
    """Civitai lookups for one library. ``bucket``, ``sleep`` and ``now`` (ms) are
    injectable for tests; by default a bucket of ``settings.requests_per_second``."""

    def __init__(
        self,
        db: Library,
        images: ImageStore,
        models: ModelsService,
        settings: CivitaiSettings,
        *,
        bucket: TokenBucket | None = None,
        sleep: Sleep | None = None,
        now: Callable[[], int] = now_ms,
    ) -> None:
        self.db = db
        self.images = images
        self.models = models
        self.settings = settings
        self.now = now
        self.bucket = bucket or TokenBucket(settings.requests_per_second)
        self.client, self.nsfw_client = site_clients(settings, self.bucket, sleep=sleep)
        self.job = BackgroundJob(
            "civitai",
            title="Civitai lookup",
            progress=self._job_progress,
            view=_shown,
            after_run=tidy_search_index(db.listing),
            release=db.release_thread,
            hold=lambda: db.hold(CIVITAI_HOLD),
        )
        self._lock = threading.Lock()
        self._run: _Run | None = None
        self._last_report: dict[str, Any] | None = None
        self._queue: dict[str, None] = {}  # hashes for the running run (auto lookups)
        self._accepting = False  # the running run still takes queued hashes
        self._closing = threading.Event()

    # ------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        """``{running, mode, force, started_at, finished_at, progress: {done, total},
        current, counts, error, last_report}`` of the running or last run."""
        job = self.job.status()
        with self._lock:
            run = self._run
            data: dict[str, Any] = {"running": job["running"]}
            if run is None:
                data.update(
                    mode=None,
                    force=False,
                    started_at=None,
                    finished_at=None,
                    progress={"done": 0, "total": 0},
                    current=None,
                    counts=_Run("", False, []).counts,
                    error=None,
                )
            else:
                data.update(
                    mode=run.mode,
                    force=run.force,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    progress={"done": run.done, "total": len(run.items)},
                    current=run.current,
                    counts=dict(run.counts),
                    error=run.error or job["error"],
                )
            report = self._last_report
        data["last_report"] = _shown(report)
        return data

    def _job_progress(self) -> JobProgress:
        with self._lock:
            run = self._run
            if run is None:
                return JobProgress(unit="models")
            return JobProgress(run.done, len(run.items), "models")

    # ------------------------------------------------------------ jobs
    def targets(self, sha256s: Sequence[str] | None, *, missing: bool, force: bool) -> list[str]:
        """The hashes a run works through: those given (each once), or with ``missing``
        every model without ``meta.civitai`` and, unless ``force``, not remembered as
        unknown to Civitai."""
        if missing:
            retry = None if force else f"{NOT_FOUND_KEY}.until"
            return self.db.models.without_meta(SOURCE, unless_after=retry, now=self.now())
        return list(dict.fromkeys(normalize_sha256(s) for s in sha256s or ()))

    def _claim(self, items: list[str], mode: str, force: bool) -> tuple[JobRun, _Run]:
        job_run = self.job.begin()
        run = _Run(mode, force, items, started_at=job_run.started_at)
        with self._lock:
            self._run = run
            self._accepting = True
        return job_run, run

    def start(
        self,
        *,
        sha256s: Sequence[str] | None = None,
        missing: bool = False,
        force: bool = False,
        mode: str | None = None,
    ) -> dict[str, Any]:
        """Start a run in the background; the status as started. ConflictError (409) while
        one runs."""
        items = self.targets(sha256s, missing=missing, force=force)
        job_run, run = self._claim(items, mode or ("missing" if missing else "sha256s"), force)
        self.job.start(lambda jr: self._execute(jr, run, None), job_run)
        return self.status()

    def run(
        self,
        *,
        sha256s: Sequence[str] | None = None,
        missing: bool = False,
        force: bool = False,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """A run in this thread (the CLI); returns its report. ``on_progress`` gets the
        status after each model."""
        items = self.targets(sha256s, missing=missing, force=force)
        job_run, run = self._claim(items, "missing" if missing else "sha256s", force)
        return self.job.run(lambda jr: self._execute(jr, run, on_progress), job_run)

    def maybe_auto(self, sha256s: Iterable[str]) -> dict[str, Any] | None:
        """The hook for newly added models (the scanner's, the promoter's): unless
        ``HIKAZE_CIVITAI_AUTO`` is on, nothing at all (None). Otherwise those of them
        without Civitai data are looked up in the background: by the running run, or a
        new one. Returns the status."""
        if not self.settings.auto:
            return None
        shas = list(dict.fromkeys(normalize_sha256(s) for s in sha256s))
        known = self.db.models.meta_values(shas, SOURCE) if shas else {}
        shas = [s for s in shas if s not in known]
        if not shas:
            return self.status()
        for _ in range(3):
            with self._lock:
                queued = self._accepting
                if queued:
                    self._queue.update(dict.fromkeys(shas))
            if queued:
                return self.status()
            try:
                return self.start(sha256s=shas, mode="auto")
            except ConflictError:  # a run is ending and takes no more hashes: wait for it
                self.job.wait(10)
        return None

    def wait(self, timeout: float | None = None) -> bool:
        return self.job.wait(timeout)

    def close_lookups(self) -> None:
        """Cancel any single lookup (``lookup_one``) and refuse new ones; the job itself is
        closed with the others (``JobRegistry.close``)."""
        self._closing.set()

    def close(self) -> None:
        """Cancel the running run and any single lookup, and wait for the run."""
        self.close_lookups()
        self.job.close()

    def _take(self, run: _Run, size: int, *, final: bool) -> list[str]:
        """The run's next hashes (at most ``size``; hashes queued by ``maybe_auto`` join
        the run first), or [] when none is left (with ``final``, the run then takes no
        more queued hashes)."""
        with self._lock:
            if self._queue:
                held = set(run.items)
                run.items.extend(s for s in self._queue if s not in held)
                self._queue.clear()
            batch = run.items[run.taken : run.taken + size]
            if not batch:
                if final:
                    self._accepting = False  # from here, maybe_auto starts a new run
                    run.current = None
                return []
            run.taken += len(batch)
            run.current = batch[0]
            return batch

    def _untake(self, run: _Run, count: int) -> None:
        with self._lock:
            run.taken -= count

    def _execute(
        self,
        job_run: JobRun,
        run: _Run,
        on_progress: Callable[[dict[str, Any]], None] | None,
    ) -> dict[str, Any]:
        try:
            asyncio.run(self._work(job_run, run, on_progress))
        except JobCancelled:
            with self._lock:
                run.error = "cancelled"
            raise
        finally:
            with self._lock:
                self._accepting = False
                self._queue.clear()
                run.finished_at = now_ms()
                run.current = None
                self._last_report = run.report()
        return run.report()

    async def _work(
        self,
        job_run: JobRun,
        run: _Run,
        on_progress: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        """Ask Civitai about the run's hashes, a batch of up to ``BATCH_SIZE`` per request
        (one at a time once the batch endpoint answered 404 or 405), then settle each
        model of the batch (previews, fill) in order. Hashes the first site does not know
        wait for the NSFW site, asked in batches of their own."""

        def cancelled() -> bool:
            return job_run.cancelled or self._closing.is_set()

        state, later = _Asking(), list[str]()
        async with self.client.session() as session:
            while not state.stop:
                size = state.batch_size(self.client)
                batch = self._take(run, size, final=not later)
                if cancelled():
                    raise JobCancelled()
                if not batch and not later:
                    return
                if batch:
                    early = {sha: r for sha in batch if (r := self._precheck(sha, run.force))}
                    ask = [sha for sha in batch if sha not in early]
                    outcomes = await self._asked(session, self.client, ask, state, cancelled)
                    if outcomes is None:
                        self._untake(run, len(batch))  # again, one hash at a time
                        continue
                    for sha in batch:
                        if sha not in early and outcomes[sha] is None and self.nsfw_client:
                            later.append(sha)
                            continue
                        result = early.get(sha) or await self._settled(
                            session, run, self.client, sha, outcomes[sha], cancelled
                        )
                        self._record(run, sha, result, state.stop, on_progress)
                if later and not state.stop:
                    final = not batch  # the last ones; else full batches only
                    await self._ask_nsfw(session, run, later, final, state, cancelled, on_progress)

    async def _ask_nsfw(
        self,
        session: aiohttp.ClientSession,
        run: _Run,
        later: list[str],
        final: bool,
        state: _Asking,
        cancelled: Callable[[], bool],
        on_progress: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        """Ask the NSFW site about ``later``, a full batch at a time (with ``final``, the
        rest too), settling each model; what was asked leaves ``later``."""
        client = self.nsfw_client
        assert client is not None
        while later and not state.stop:
            size = state.batch_size(client)
            if len(later) < size and not final:
                return
            ask = later[:size]
            outcomes = await self._asked(session, client, ask, state, cancelled)
            if outcomes is None:
                continue  # no batch endpoint there: one at a time
            del later[: len(ask)]
            for sha in ask:
                result = await self._settled(session, run, client, sha, outcomes[sha], cancelled)
                self._record(run, sha, result, state.stop, on_progress)

    async def _asked(  # _ask, abandoned within WAIT_SLICE of a cancel
        self,
        session: aiohttp.ClientSession,
        client: CivitaiClient,
        ask: list[str],
        state: _Asking,
        cancelled: Callable[[], bool],
    ) -> dict[str, Outcome] | None:
        if not ask:
            return {}
        return await until_cancelled(self._ask(session, client, ask, state, cancelled), cancelled)

    async def _settled(
        self,
        session: aiohttp.ClientSession,
        run: _Run,
        client: CivitaiClient,
        sha: str,
        outcome: Outcome,
        cancelled: Callable[[], bool],
    ) -> LookupResult:
        """``_settle`` for a run: the model is its ``current`` meanwhile."""
        with self._lock:
            run.current = sha
        site = client.settings.url
        return await until_cancelled(
            self._settle(session, sha, outcome, site, cancelled), cancelled
        )

    async def _ask(
        self,
        session: aiohttp.ClientSession,
        client: CivitaiClient,
        ask: list[str],
        state: _Asking,
        cancelled: Callable[[], bool],
    ) -> dict[str, Outcome] | None:
        """One request to ``client``'s site about ``ask``: each hash's version, None (not
        known) or the error; None when the site has no batch endpoint (it is then asked
        one hash at a time). Counts the requests in a row that got no answer."""
        try:
            if state.batch_size(client) == 1:
                (sha,) = ask
                outcomes: dict[str, Outcome] = {sha: await client.lookup(session, sha, cancelled)}
            else:
                answer = await client.lookup_batch(session, ask, cancelled)
                if answer is None:
                    state.no_batch.add(client.settings.url)
                    return None
                problem = CivitaiBadResponse(answer.problem) if answer.problem else None
                outcomes = {sha: answer.found.get(sha, problem) for sha in ask}
        except CivitaiError as exc:
            unanswered = isinstance(exc, CivitaiUnreachable)
            state.failures = state.failures + 1 if unanswered else 0
            if exc.fatal or state.failures >= MAX_CONSECUTIVE_FAILURES:
                state.stop = f"{exc.error}: {exc.detail}"
            return dict.fromkeys(ask, exc)
        state.failures = 0
        return outcomes

    def _record(
        self,
        run: _Run,
        sha: str,
        result: LookupResult,
        stop: str | None,
        on_progress: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        with self._lock:
            run.current = sha
            run.done += 1
            run.counts[result.status] += 1
            run.counts["images"] += result.images
            run.results.append(result.to_dict())
            if stop:
                run.error = stop
        if on_progress is not None:
            on_progress(self.status())

    # ------------------------------------------------------------ one model
    def lookup_one(self, sha256: str, *, force: bool = False) -> dict[str, Any]:
        """Look one model up now (a button's request) and return its detail with
        ``civitai``: this lookup's result (``status`` found or not_found). NotFoundError
        for a model not in the library; a CivitaiError (502) when Civitai does not answer."""
        sha = normalize_sha256(sha256)
        if not self.db.models.exists(sha):
            raise NotFoundError(f"no model {sha}")

        async def one() -> LookupResult:
            early = self._precheck(sha, force)
            if early is not None:
                return early
            closing = self._closing.is_set
            async with self.client.session() as session:
                client = self.client
                version = await client.lookup(session, sha, closing)
                if version is None and self.nsfw_client is not None:
                    client = self.nsfw_client
                    version = await client.lookup(session, sha, closing)
                return await self._settle(session, sha, version, client.settings.url, closing)

        try:
            result = asyncio.run(one())
        except JobCancelled:
            raise ConflictError("the Civitai service is shutting down") from None
        detail = self.models.detail(sha)
        detail["civitai"] = result.to_dict()
        return detail

    def _precheck(self, sha: str, force: bool) -> LookupResult | None:
        """The result of a model that needs no request (not in the library, remembered as
        unknown to Civitai), or None."""
        record = self.db.models.get(sha)
        if record is None:
            return LookupResult(sha, "skipped", "not in the library")
        memo = record["meta"].get(NOT_FOUND_KEY)
        until = memo.get("until") if isinstance(memo, dict) else None
        if not force and isinstance(until, int) and until > self.now():
            return LookupResult(sha, "not_found", "not on Civitai (remembered)", remembered=True)
        return None

    async def _settle(
        self,
        session: aiohttp.ClientSession,
        sha: str,
        outcome: Outcome,
        site: str,
        cancelled: Callable[[], bool],
    ) -> LookupResult:
        """What Civitai's answer about one model does: a version (from ``site``) fills it
        (previews first), None is remembered as unknown, an error fails it."""
        if isinstance(outcome, CivitaiError):
            return LookupResult(sha, "failed", outcome.detail)
        if outcome is None:
            self._remember_not_found(sha)
            return LookupResult(sha, "not_found", "not on Civitai")
        result = LookupResult(sha, "found")
        stored = await self._previews(session, sha, outcome, result, cancelled)
        filled = self._apply(sha, outcome, stored, site)
        if filled is None:
            return LookupResult(sha, "skipped", "deleted from the library meanwhile")
        result.filled = filled
        return result

    async def _previews(
        self,
        session: aiohttp.ClientSession,
        sha: str,
        version: CivitaiVersion,
        result: LookupResult,
        cancelled: Callable[[], bool],
    ) -> list[int]:
        """Download and store up to ``max_images`` previews, if the model has none yet."""
        if self.images.list_seqs(sha):
            return []
        wanted = []
        for image in version.images:
            level = image.nsfw_level
            if image.kind not in (None, "image"):
                continue  # a video
            if level is None or not 1 <= level <= self.settings.max_nsfw:
                result.images_skipped_nsfw += 1
            elif (
                image.width and image.height and image.width * image.height > self.images.max_pixels
            ):
                result.problems.append(
                    f"image {image.url}: {image.width}x{image.height} is too large"
                )
            else:
                wanted.append(image)
        cap = min(self.settings.max_image_bytes, self.images.max_bytes)
        stored: list[int] = []
        for image in wanted[: 2 * self.settings.max_images]:  # some may fail: a few spares
            if len(stored) >= self.settings.max_images:
                break
            try:
                data = await self.client.download(session, image.url, cap, cancelled)
                stored.append(self.images.add_image(sha, data))
            except DownloadError as exc:
                result.problems.append(f"image {image.url}: {exc}")
            except ImageError as exc:
                result.problems.append(f"image {image.url}: {exc.detail}")
        result.images = len(stored)
        return stored

    def _apply(
        self, sha: str, version: CivitaiVersion, stored: list[int], site: str
    ) -> list[str] | None:
        """Fill the model's empty fields from ``version`` (one transaction); the fields
        filled, or None for a model deleted meanwhile (the images just stored go too)."""
        with self.db.transaction():
            record = self.db.models.get(sha)
            if record is None:
                for seq in stored:
                    self.images.delete_image(sha, seq)
                return None
            meta = copy.deepcopy(record["meta"])
            sources = sources_of(meta)
            filled = fill_empty(
                meta,
                sources,
                (("trigger_words", version.trained_words), ("description", version.description)),
                SOURCE,
            )
            if is_empty(meta.get(SOURCE)):
                meta[SOURCE] = version.meta_block(site, sha)
                filled.append(SOURCE)
            columns: dict[str, Any] = {}
            base = version.base_model
            if replaces_base(record["base"], sources, base):
                columns["base"] = base
                sources["base"] = SOURCE
                filled.append("base")
            if stored:
                sources["images"] = SOURCE
                filled.append("images")
            meta.pop(NOT_FOUND_KEY, None)
            if sources:
                meta["sources"] = sources
            self.db.models.update(sha, meta=meta, **columns)
        return filled

    def _remember_not_found(self, sha: str) -> None:
        now = self.now()
        until = now + int(self.settings.not_found_days * DAY_MS)
        with self.db.transaction():
            record = self.db.models.get(sha)
            if record is not None:
                meta = {**record["meta"], NOT_FOUND_KEY: {"checked_at": now, "until": until}}
                self.db.models.update(sha, meta=meta)
