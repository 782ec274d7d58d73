"""DownloadService: the download queue, verified while written, promoted at once.

``enqueue(source, ...)`` checks the request and stores it (``queued``); at most
``config.downloads.concurrency`` downloads run at once, each an asyncio task on the
service's own loop thread (the server's event loop never waits on one). A download:

1. resolves its source (``download_sources.resolve``; a plain URL needs nobody);
2. is ``done`` at once when the library holds its expected SHA-256 (no byte fetched);
3. picks its folder (``download_place``) and refuses when the disk lacks its size + 1 GiB;
4. streams into ``<final>.part``, hashing as bytes arrive (``download_fetch``): a part file
   left by a pause, a dropped connection or a killed process is continued with Range;
5. verifies (``verifying``): a SHA-256 mismatch deletes the part file and fails, naming both;
6. is renamed into place (never over a file) and promoted into the library at once: the
   hash cache gets the streamed hash, so the promoter reads nothing again.

Pause and cancel stop a running download within a chunk (cancel deletes its part file).
On start, ``recover()`` queues again what was running when the last process ended.
Listeners (``add_listener``) get each download's view as it moves (the API, ComfyUI's
toasts, the CLI bar). Tokens live only in a resolved source's headers: never stored,
shown or logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from hikaze_mm.config import Config
from hikaze_mm.database.errors import StorageConflictError
from hikaze_mm.database.interfaces import Library
from hikaze_mm.database.values import normalize_sha256
from hikaze_mm.errors import ConflictError, HikazeError, NotFoundError, ValidationError
from hikaze_mm.hashing import HashService
from hikaze_mm.library import download_place as place
from hikaze_mm.library.download_fetch import (
    READ_BUFFER,
    DownloadError,
    DownloadStopped,
    FetchTarget,
    PartWriter,
    Progress,
    fetch,
    redact,
)
from hikaze_mm.library.download_sources import (
    Resolved,
    SourceSettings,
    file_name_of,
    parse_source,
    resolve,
)
from hikaze_mm.model_types import AUTOV3_TYPES, canonical_type
from hikaze_mm.pending.promotion import Promoter

log = logging.getLogger("hikaze_mm.downloads")

FINISHED = ("done", "failed", "cancelled")
RETRIES = 4  # connection drops continued with Range before the download fails
SPEED_WINDOW = 5.0  # seconds of progress the speed is measured over
SAVE_EVERY = 1.0  # seconds between two writes of a running download's bytes
NOTIFY_EVERY = 0.25
Listener = Callable[[dict[str, Any]], None]


@dataclass
class _Active:
    """A download running in this process."""

    id: int
    progress: Progress = field(default_factory=Progress)
    stop: str | None = None  # "pause", "cancel" or "shutdown"
    window: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))
    saved_at: float = 0.0
    notified_at: float = 0.0

    def sample(self) -> None:
        now = time.monotonic()
        self.window.append((now, self.progress.bytes_done))
        while len(self.window) > 2 and now - self.window[0][0] > SPEED_WINDOW:
            self.window.popleft()

    def speed(self) -> float:
        if len(self.window) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self.window[0], self.window[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


class DownloadService:
    def __init__(
        self, db: Library, config: Config, hashes: HashService, promoter: Promoter
    ) -> None:
        self.db = db
        self.config = config
        self.hashes = hashes
        self.promoter = promoter
        self._active: dict[int, _Active] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    # ------------------------------------------------------------------ requests
    def enqueue(
        self,
        source: str,
        type: str | None = None,
        folder: str | None = None,
        file_id: int | None = None,
        sha256: str | None = None,
        *,
        file_name: str | None = None,
    ) -> dict[str, Any]:
        """Queue a download; ``{id, status}`` (``done`` at once when the library holds the
        expected hash). ``file_name`` (``name.ext`` or ``sub/name.ext``, below the type's
        folder: a workflow's loader names the file so) replaces the source's name. Bad
        input is a ValidationError and queues nothing."""
        request = self._check_request(source, type, folder, file_id, sha256)
        if file_name:
            parts = file_name.replace("\\", "/").split("/")
            request["file_name"] = "/".join(file_name_of(part) for part in parts)
        known = self._in_library(request.get("sha256"))
        if known is not None:
            new_id = self.db.downloads.add(
                request["source"], status="done", request=request, path=known,
                sha256=request["sha256"], expected_sha256=request["sha256"],
            )  # fmt: skip
            return {"id": new_id, "status": "done"}
        new_id = self.db.downloads.add(
            request["source"],
            request=request,
            type=request.get("type"),
            folder=request.get("folder"),
            expected_sha256=request.get("sha256"),
        )
        self._kick()
        return {"id": new_id, "status": "queued"}

    def _check_request(
        self,
        source: str,
        type_key: str | None,
        folder: str | None,
        file_id: int | None,
        sha256: str | None,
    ) -> dict[str, Any]:
        source = source.strip()
        if not source or len(source) > 4096:
            raise ValidationError("source must be a URL, a hash or a model id")
        request: dict[str, Any] = {"source": source}
        if type_key:
            request["type"] = canonical_type(type_key)
        if folder:
            path, root_type = place.check_folder(self.config, folder)
            request["folder"], request["type"] = str(path), root_type
        if file_id is not None:
            if file_id < 1:
                raise ValidationError("file_id must be a positive integer")
            request["file_id"] = file_id
        if sha256:
            request["sha256"] = normalize_sha256(sha256)
        self._check_source(request)
        return request

    def _check_source(self, request: dict[str, Any]) -> None:
        """The source's form is one we read (no network); a plain URL needs a type."""
        parsed = parse_source(request["source"], self._source_settings())
        if parsed.kind in ("url", "hf") and "type" not in request:
            where = "a URL" if parsed.kind == "url" else "Hugging Face"
            raise ValidationError(f"a download from {where} needs a type or a folder")
        if not self.config.model_roots:
            raise ValidationError("no model roots are configured: set HIKAZE_MODEL_ROOTS")

    def _source_settings(self) -> SourceSettings:
        return SourceSettings.from_config(self.config)

    def _in_library(self, sha256: str | None) -> str | None:
        if not sha256:
            return None
        model = self.db.models.get(sha256)
        if model is None or model.get("missing"):
            return None
        return str(model["path"])

    def list(self) -> list[dict[str, Any]]:
        return [self._view(r) for r in self.db.downloads.list()]

    def get(self, download_id: int) -> dict[str, Any]:
        return self._view(self._record(download_id))

    def _record(self, download_id: int) -> dict[str, Any]:
        record = self.db.downloads.get(download_id)
        if record is None:
            raise NotFoundError(f"no download {download_id}")
        return record

    # ------------------------------------------------------------------ controls
    def pause(self, download_id: int) -> dict[str, Any]:
        with self._lock:
            record = self._record(download_id)
            active = self._active.get(download_id)
            if active is not None:
                active.stop = "pause"
                return {**self._view(record), "status": "running"}
            if record["status"] != "queued":
                raise ConflictError(f"download {download_id} is {record['status']}: cannot pause")
            return self._set(download_id, status="paused")

    def resume(self, download_id: int) -> dict[str, Any]:
        with self._lock:
            record = self._record(download_id)
            active = self._active.get(download_id)
            if active is not None and active.stop == "pause":  # not stopped yet: go on
                active.stop = None
                return self._view(record)
            if record["status"] not in ("paused", "failed"):
                raise ConflictError(f"download {download_id} is {record['status']}: cannot resume")
            view = self._set(download_id, status="queued", error=None)
        self._kick()
        return view

    def cancel(self, download_id: int) -> dict[str, Any]:
        with self._lock:
            record = self._record(download_id)
            active = self._active.get(download_id)
            if active is not None:
                active.stop = "cancel"
                return {**self._view(record), "status": "running"}
            if record["status"] in ("done", "cancelled"):
                raise ConflictError(f"download {download_id} is {record['status']}: cannot cancel")
            _remove(record.get("part_path"))
            return self._set(download_id, status="cancelled", part_path=None)

    def delete(self, download_id: int) -> None:
        """Drop a finished download (done, failed, cancelled) from the history."""
        with self._lock:
            record = self._record(download_id)
            if record["status"] not in FINISHED:
                raise ConflictError(
                    f"download {download_id} is {record['status']}: cancel it first"
                )
            if record["status"] == "failed":
                _remove(record.get("part_path"))
            self.db.downloads.delete(download_id)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(view)`` as downloads move (in the download thread); returns
        the function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def recover(self) -> int:
        """Queue again what was running or verifying when the last process ended, and
        start the queue; how many downloads are waiting."""
        waiting = 0
        for record in self.db.downloads.unfinished():
            if record["status"] in ("running", "verifying"):
                self.db.downloads.update(record["id"], status="queued")
            waiting += record["status"] != "paused"
        if waiting:
            self._kick()
        return waiting

    def close(self, timeout: float = 10.0) -> None:
        """Stop the running downloads (they stay queued, to resume on the next start)."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        with self._lock:
            for active in self._active.values():
                active.stop = active.stop or "shutdown"
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(timeout)
        except Exception as exc:
            log.warning("downloads did not stop in time: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()

    async def _shutdown(self) -> None:
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if tasks:
            await asyncio.wait(tasks, timeout=8)
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------------ views
    def _set(self, download_id: int, **fields: Any) -> dict[str, Any]:
        view = self._view(self.db.downloads.update(download_id, **fields))
        self._notify(view, force=True)
        return view

    def _view(self, record: Mapping[str, Any]) -> dict[str, Any]:
        active = self._active.get(record["id"])
        done, total = record["bytes_done"], record["bytes_total"]
        speed, eta = None, None
        if active is not None and record["status"] == "running":
            done = active.progress.bytes_done
            total = active.progress.bytes_total or total
            speed = round(active.speed(), 1)
            eta = round((total - done) / speed, 1) if total and speed else None
        return {
            "id": record["id"],
            "source": redact(record["source"]),
            "status": record["status"],
            "type": record["type"],
            "file_name": record["file_name"],
            "bytes_done": done,
            "bytes_total": total,
            "speed": speed,
            "eta_s": eta,
            "path": record["path"],
            "sha256": record["sha256"],
            "expected_sha256": record["expected_sha256"],
            "error": record["error"],
            "created_at": record["created_at"],
            "updated_at": record["updated_at"],
        }

    def _notify(self, view: dict[str, Any], *, force: bool = False) -> None:
        active = self._active.get(view["id"])
        if active is not None and not force:
            now = time.monotonic()
            if now - active.notified_at < NOTIFY_EVERY:
                return
            active.notified_at = now
        for listener in list(self._listeners):
            try:
                listener(view)
            except Exception:
                log.exception("a download listener failed")

    # ------------------------------------------------------------------ the loop
    def _kick(self) -> None:
        """Start what the queue allows (on the download thread, started the first time)."""
        with self._lock:
            if self._closed:
                return
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="hikaze-downloads", daemon=True
                )
                self._thread.start()
            loop = self._loop
        loop.call_soon_threadsafe(self._pump)

    def _pump(self) -> None:
        if self._closed:
            return
        with self._lock:
            free = self.config.downloads.concurrency - len(self._active)
            if free <= 0:
                return
            for record in self.db.downloads.unfinished():
                if free <= 0:
                    break
                if record["status"] == "queued" and record["id"] not in self._active:
                    active = _Active(record["id"])
                    self._active[record["id"]] = active
                    asyncio.get_running_loop().create_task(self._run(active))
                    free -= 1

    async def _run(self, active: _Active) -> None:
        try:
            await self._download(active)
        except DownloadStopped:
            self._stopped(active)
        except HikazeError as exc:
            self._fail(active.id, exc.detail)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self._fail(active.id, f"the download failed: {_reason(exc)}")
        except Exception as exc:
            log.exception("download %s failed", active.id)
            self._fail(active.id, f"the download failed: {type(exc).__name__}")
        finally:
            with self._lock:
                self._active.pop(active.id, None)
            self.db.release_thread()
            if not self._closed:
                self._pump()

    def _stopped(self, active: _Active) -> None:
        record = self._record(active.id)
        if active.stop == "cancel":
            _remove(record.get("part_path"))
            self._set(active.id, status="cancelled", part_path=None)
        elif active.stop == "pause":
            self._set(active.id, status="paused", bytes_done=active.progress.bytes_done)
        else:
            self.db.downloads.update(active.id, status="queued")

    def _fail(self, download_id: int, detail: str) -> None:
        """Failed: an empty part file goes (one with bytes stays, for a resume)."""
        log.info("download %s failed: %s", download_id, detail)
        part = self._record(download_id).get("part_path")
        fields: dict[str, Any] = {}
        if part and (not os.path.exists(part) or os.path.getsize(part) == 0):
            _remove(part)
            fields["part_path"] = None
        self._set(download_id, status="failed", error=detail, **fields)

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
            self._session = aiohttp.ClientSession(
                timeout=timeout, auto_decompress=False, read_bufsize=READ_BUFFER
            )
        return self._session

    # ------------------------------------------------------------------ one download
    async def _download(self, active: _Active) -> None:
        record = self._record(active.id)
        request = record["request"]
        resolved = await self._resolve(request)
        expected = request.get("sha256") or resolved.sha256
        known = await asyncio.to_thread(self._in_library, expected)
        if known is not None:
            _remove(record.get("part_path"))
            self._set(active.id, status="done", path=known, sha256=expected, part_path=None)
            return
        part = self._prepare(active.id, record, resolved, expected)
        kind = self._record(active.id)["type"]
        writer = PartWriter(str(part), autov3=kind in AUTOV3_TYPES)
        await asyncio.to_thread(writer.rehash)
        if resolved.size:
            place.free_space_check(part.parent, resolved.size - writer.size)
        await self._transfer(active, resolved, writer)
        sha = writer.sha.hexdigest()
        self._set(active.id, status="verifying", bytes_done=writer.size, sha256=sha)
        if expected and sha != expected:
            _remove(str(part))
            raise DownloadError(
                f"SHA-256 mismatch: expected {expected}, got {sha}; the part file was deleted"
            )
        final = await asyncio.to_thread(self._finish, active.id, part, writer, resolved)
        self._set(active.id, status="done", path=str(final), part_path=None, error=None)

    async def _resolve(self, request: Mapping[str, Any]) -> Resolved:
        return await resolve(
            request["source"],
            self._session_for_loop(),
            self._source_settings(),
            file_id=request.get("file_id"),
            sha256=request.get("sha256"),
        )

    def _prepare(
        self,
        download_id: int,
        record: Mapping[str, Any],
        resolved: Resolved,
        expected: str | None,
    ) -> Path:
        """The part file (the one already begun, else a new one in the target folder);
        records what the source resolved to."""
        type_key = record["request"].get("type") or canonical_type(resolved.model_type or None)
        if not record["request"].get("type") and not resolved.model_type:
            raise ValidationError("the source does not say its type: give a type or a folder")
        if record.get("part_path"):
            part = Path(record["part_path"])
        else:
            part = self._new_part(record, type_key, resolved)
        part.parent.mkdir(parents=True, exist_ok=True)
        part.touch()  # the part file shows the download's place from its start
        meta = {"kind": resolved.kind, "civitai": resolved.civitai, "values": dict(resolved.values)}
        self._set(
            download_id, status="running", type=type_key, folder=str(part.parent),
            url=redact(resolved.url), file_name=part.name[: -len(".part")],
            expected_sha256=expected, part_path=str(part), meta=meta, error=None,
            bytes_total=resolved.size,
        )  # fmt: skip
        return part

    def _new_part(self, record: Mapping[str, Any], type_key: str, resolved: Resolved) -> Path:
        """``<folder>/<name>.part``: the folder asked for, else the type's folder with the
        template below it; a name the request gives (``sub/name.ext``, as a workflow's
        loader names it: relative to the type's folder, no template) wins."""
        given = record["request"].get("file_name")
        if record.get("folder"):
            folder = Path(record["folder"])
        elif given:
            folder = place.type_folder(self.config, type_key)
        else:
            folder = place.target_folder(self.config, type_key, resolved.values)
        if given:
            *subfolders, name = given.split("/")
            return folder.joinpath(*subfolders) / f"{name}.part"
        return folder / f"{place.clean_file_name(resolved.file_name)}.part"

    async def _transfer(self, active: _Active, resolved: Resolved, writer: PartWriter) -> None:
        """Fetch the rest, continuing with Range after a dropped connection."""
        target = FetchTarget(
            url=resolved.url,
            kind=resolved.kind,
            auth_host=resolved.auth_host,
            headers=dict(resolved.headers),
        )
        folder = Path(writer.path).parent

        def before_write(progress: Progress) -> None:
            if progress.bytes_total is not None:
                place.free_space_check(folder, progress.bytes_total - writer.size)
                self.db.downloads.update(active.id, bytes_total=progress.bytes_total)

        for attempt in range(RETRIES + 1):
            try:
                await fetch(
                    self._session_for_loop(), target, writer, active.progress,
                    before_write=before_write, stopped=lambda: active.stop is not None,
                    on_bytes=lambda _p: self._progress(active),
                )  # fmt: skip
                return
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                if attempt == RETRIES or active.stop is not None:
                    raise DownloadError(f"the connection failed: {_reason(exc)}") from None
                log.info("download %s: %s; continuing from byte %s", active.id, exc, writer.size)
                await asyncio.sleep(0.2 * 2**attempt)

    def _progress(self, active: _Active) -> None:
        active.sample()
        now = time.monotonic()
        if now - active.saved_at >= SAVE_EVERY:
            active.saved_at = now
            self.db.downloads.update(active.id, bytes_done=active.progress.bytes_done)
        if now - active.notified_at >= NOTIFY_EVERY:
            self._notify(self._view(self._record(active.id)))

    # ------------------------------------------------------------------ into the library
    def _finish(self, download_id: int, part: Path, writer: PartWriter, resolved: Resolved) -> Path:
        sha = writer.sha.hexdigest()
        final = part.with_name(part.name[: -len(".part")])

        def same_content(path: Path) -> bool:
            if path.stat().st_size != writer.size:
                return False
            return self.hashes.hash_file(path).sha256 == sha

        placed = place.place(part, final, same_content)
        record = self._record(download_id)
        autov3 = writer.tail.autov3(writer.size) if writer.tail is not None else None
        try:
            self._promote(placed, sha, autov3, record["type"], resolved.civitai)
        except (HikazeError, OSError) as exc:  # the verified file is in place: it stays
            log.warning("download %s: %s is saved; the next scan takes it in (%s)",
                        download_id, placed, getattr(exc, "detail", exc))  # fmt: skip
        self.db.release_thread()
        return placed

    def _promote(
        self,
        path: Path,
        sha: str,
        autov3: str | None,
        type_key: str,
        civitai: dict[str, Any] | None,
    ) -> None:
        """The file's hash into the hash cache (from the stream), then its pending row
        promoted: the promoter's hash is a cache hit."""
        st = os.stat(path)
        self.db.hash_cache.store(str(path), st.st_size, st.st_mtime_ns, st.st_ino, sha, autov3)
        if self.db.models.get_by_path(path) is not None:
            return  # the watcher's scan was quicker
        row: dict[str, Any] = {
            "path": str(path),
            "name": path.stem,
            "type": type_key,
            "size_bytes": st.st_size,
            "source": "download",
            "status": "new",
        }
        if civitai:
            row["meta"] = {"civitai": civitai}
        try:
            pending_id = self.db.pending.add(row)
        except (StorageConflictError, ConflictError):
            pending = self.db.pending.get_by_path(path)  # queued by the watcher meanwhile
            if pending is None:
                return
            pending_id = pending["id"]
        self.promoter.promote(pending_id, "merge")


def _remove(path: str | None) -> None:
    if path:
        with suppress(FileNotFoundError):
            os.unlink(path)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
