"""The fetcher: one file streamed into its ``.part`` file, hashed as the bytes arrive.

``fetch(session, target, ...)`` follows redirects itself (at most ``MAX_REDIRECTS``), and
sends the source's headers (a token) only to its ``auth_host``: never to the storage host
a download is redirected to. A part file already on disk is hashed first (it is local)
and continued with ``Range: bytes=N-``; a server that answers 200 instead starts over
from byte 0. An HTML page is never saved: it becomes a clear error (Civitai's login page:
it needs an API key; its 403: early access).

Receiving and writing overlap: the bytes gathered on the loop are written and hashed in
a thread while the next ones arrive.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp

from hikaze_mm.errors import HikazeError, UnprocessableError
from hikaze_mm.hashing import TailHash
from hikaze_mm.library.download_sources import host_port

MAX_REDIRECTS = 10
BUFFER_BYTES = 4 * 1024 * 1024
READ_BUFFER = 1024 * 1024  # aiohttp's read size: fewer, larger chunks than its 64 KiB
FLUSH_SECONDS = 0.5  # a slow download reaches its part file at least this often
REHASH_CHUNK = 4 * 1024 * 1024
CIVITAI_KEY_NEEDED = "Civitai needs an API key to download: set HIKAZE_CIVITAI_TOKEN"
CIVITAI_EARLY_ACCESS = (
    "this Civitai model is in early access: only its supporters can download it for now "
    "(with their API key in HIKAZE_CIVITAI_TOKEN)"
)
HTML_PAGE = "the server sent an HTML page, not a model"


class DownloadError(UnprocessableError):
    """A download that cannot go on; ``detail`` says why (never a token)."""

    error = "Download failed"


class DownloadStopped(HikazeError):
    """Paused or cancelled between two chunks."""


@dataclass
class FetchTarget:
    """What to fetch and how: ``url``, the ``headers`` for ``auth_host`` only, ``kind``
    ("civitai", "hf", "url") for its error messages."""

    url: str
    kind: str = "url"
    auth_host: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Progress:
    """The state of one transfer, read by the service for its speed and bytes."""

    bytes_done: int = 0
    bytes_total: int | None = None
    restarted: bool = False  # the server ignored Range: started over


_SECRET_KEYS = ("token", "key", "api_key", "apikey", "access_token", "sig", "signature")


def redact(url: str) -> str:
    """``url`` with the values of token-like query parameters and any user info hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.query and "@" not in parts.netloc:
        return url
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        key, sep, _value = pair.partition("=")
        pairs.append(f"{key}=***" if sep and key.lower() in _SECRET_KEYS else pair)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return parts._replace(netloc=netloc, query="&".join(pairs)).geturl()


async def _open(
    session: aiohttp.ClientSession, target: FetchTarget, offset: int
) -> tuple[aiohttp.ClientResponse, list[str]]:
    """The final response after redirects, and the URLs passed through."""
    url, seen = target.url, []
    for _ in range(MAX_REDIRECTS + 1):
        headers = {"Accept-Encoding": "identity"}
        if target.auth_host and host_port(url) == target.auth_host.lower():
            headers.update(target.headers)
        if offset:
            headers["Range"] = f"bytes={offset}-"
        resp = await session.get(url, headers=headers, allow_redirects=False)
        seen.append(url)
        if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
            resp.release()
            url = urljoin(url, resp.headers["Location"])
            continue
        return resp, seen
    raise DownloadError(f"more than {MAX_REDIRECTS} redirects")


def _refuse(resp: aiohttp.ClientResponse, target: FetchTarget) -> None:
    """Raise the clear error for an answer that is not the file."""
    html = resp.content_type == "text/html"
    if target.kind == "civitai":
        if resp.status == 403:
            raise DownloadError(CIVITAI_EARLY_ACCESS)
        if resp.status == 401 or (html and resp.status < 400):
            raise DownloadError(CIVITAI_KEY_NEEDED)
    if resp.status >= 400:
        raise DownloadError(f"the server answered {resp.status} {resp.reason or ''}".strip())
    if html:
        raise DownloadError(HTML_PAGE)


def _range_start(resp: aiohttp.ClientResponse) -> int | None:
    match = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _whole_size(resp: aiohttp.ClientResponse) -> int | None:
    """The file's size a 416 names (``Content-Range: bytes */N``), or None."""
    match = re.fullmatch(r"bytes \*/(\d+)", resp.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


class PartWriter:
    """Appends to a part file and hashes what it writes: the SHA-256, and with ``autov3``
    (LoRAs and embeddings) the AutoV3 tail, a second hash that other types do not pay for."""

    def __init__(self, path: str, *, autov3: bool = False) -> None:
        self.path = path
        self.sha = hashlib.sha256()
        self.tail = TailHash() if autov3 else None
        self.size = 0
        self._file = None

    def rehash(self) -> int:
        """Hash what the part file holds already; its size (0 when there is none)."""
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - read in chunks below
        except FileNotFoundError:
            return 0
        with f:
            while chunk := f.read(REHASH_CHUNK):
                self._hash(memoryview(chunk))
        return self.size

    def restart(self) -> None:
        self.close()
        self.sha, self.size = hashlib.sha256(), 0
        self.tail = TailHash() if self.tail is not None else None
        with open(self.path, "wb"):
            pass

    def _hash(self, data: memoryview) -> None:
        self.sha.update(data)
        if self.tail is not None:
            self.tail.update(data, self.size)
        self.size += len(data)

    def write(self, chunks: list[bytes]) -> None:
        """Append the chunks as they came from the socket (no copy into one buffer)."""
        if self._file is None:
            self._file = open(self.path, "ab")  # noqa: SIM115 - closed by close()
        self._file.writelines(chunks)
        for chunk in chunks:
            self._hash(memoryview(chunk))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def fetch(
    session: aiohttp.ClientSession,
    target: FetchTarget,
    writer: PartWriter,
    progress: Progress,
    *,
    before_write: Callable[[Progress], None] = lambda p: None,
    stopped: Callable[[], bool] = lambda: False,
    on_bytes: Callable[[Progress], None] = lambda p: None,
) -> None:
    """Stream the rest of the file into ``writer`` (which holds ``writer.size`` bytes);
    ``before_write`` may refuse (free space) once the size is known; ``stopped`` is
    polled between chunks (DownloadStopped)."""
    resp, _seen = await _open(session, target, writer.size)
    if resp.status == 416 and writer.size:  # the part may hold the whole file already
        whole = _whole_size(resp)
        resp.release()
        if whole == writer.size:
            progress.bytes_total = progress.bytes_done = writer.size
            return
        await asyncio.to_thread(writer.restart)
        progress.restarted = True
        resp, _seen = await _open(session, target, 0)
    try:
        _refuse(resp, target)
        if writer.size and (resp.status != 206 or _range_start(resp) != writer.size):
            await asyncio.to_thread(writer.restart)  # the range was ignored: start over
            progress.restarted = True
        length = resp.content_length
        progress.bytes_total = writer.size + length if length is not None else None
        progress.bytes_done = writer.size
        before_write(progress)
        await _stream(resp, writer, progress, stopped, on_bytes)
    finally:
        resp.release()


async def _stream(
    resp: aiohttp.ClientResponse,
    writer: PartWriter,
    progress: Progress,
    stopped: Callable[[], bool],
    on_bytes: Callable[[Progress], None],
) -> None:
    """Receive into a buffer; write and hash each full buffer in a thread while the next
    fills (one write in flight)."""
    loop = asyncio.get_running_loop()
    buffer: list[bytes] = []
    buffered = 0
    pending: asyncio.Future[None] | None = None
    first = writer.size == 0
    flushed_at = loop.time()
    try:
        async for chunk in resp.content.iter_any():
            if first and chunk.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
                raise DownloadError(HTML_PAGE)
            first = False
            buffer.append(chunk)
            buffered += len(chunk)
            progress.bytes_done += len(chunk)
            halt = stopped()
            now = loop.time()
            if buffered >= BUFFER_BYTES or halt or now - flushed_at >= FLUSH_SECONDS:
                flushed_at = now
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, writer.write, buffer)
                buffer, buffered = [], 0
            on_bytes(progress)
            if halt:
                raise DownloadStopped("stopped")
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError):
        await _flush(pending, writer, buffer)  # what arrived is kept: the rest comes by Range
        pending = None
        raise
    else:
        await _flush(pending, writer, buffer)
        pending = None
    finally:
        if pending is not None:
            await asyncio.wait([pending])
        writer.close()
    if progress.bytes_total is not None and writer.size < progress.bytes_total:
        raise aiohttp.ClientPayloadError("the connection closed before the end of the file")


async def _flush(
    pending: asyncio.Future[None] | None, writer: PartWriter, buffer: list[bytes]
) -> None:
    if pending is not None:
        await pending
    if buffer:
        await asyncio.to_thread(writer.write, list(buffer))
        buffer.clear()


def part_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
