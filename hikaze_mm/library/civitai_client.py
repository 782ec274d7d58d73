"""Talking to Civitai: one model version by hash, and its preview images.

``GET {base}/api/v1/model-versions/by-hash/{sha256}`` answers a model version (``id``,
``modelId``, ``name``, ``model.name``, ``model.nsfw``, ``baseModel``, ``trainedWords``,
``description``, ``images[]`` with ``url``, ``nsfwLevel``, ``width``, ``height``) or 404
for a hash Civitai does not know. ``POST {base}/api/v1/model-versions/by-hash`` with a
JSON array of up to ``BATCH_SIZE`` (100) hashes answers a JSON array of such versions, each
matched back to the hashes asked by its ``files[].hashes.SHA256``; a hash with no version
in it is not known. ``civitai_schema`` reads both answers (sidecars hold the same JSON, so
the schema lives apart from this HTTP client).

The client is a good citizen:

* every request (a lookup, a batch of lookups, an image download) first takes a token from one
  ``TokenBucket`` (2 a second by default), shared by everything one service sends;
* a 429 holds the bucket for its ``Retry-After`` (capped), a 5xx for an exponential
  backoff, and the lookup is tried again, a few times in all;
* every request has a connect timeout and a total one (body included), and bodies are
  read in chunks up to a cap (a JSON answer, an image), so nothing can stall or flood it;
* a connection that cannot be made is ``CivitaiUnreachable`` with ``fatal`` set: a job
  stops there instead of trying every other hash against a network that is down.

It runs on an event loop of its own thread (``asyncio.run`` in a job's thread or a
request's worker thread), never on the server's loop. The token (``HIKAZE_CIVITAI_TOKEN``)
goes to the API only, never to image hosts.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from typing import TypeVar
from urllib.parse import quote, urlsplit

import aiohttp

from hikaze_mm import __version__
from hikaze_mm.config import CivitaiSettings, is_loopback_name
from hikaze_mm.jobs import JobCancelled
from hikaze_mm.library.civitai_schema import (
    BatchAnswer,
    CivitaiBadResponse,
    CivitaiError,
    CivitaiVersion,
    parse_version,
    parse_versions,
)

# What a Civitai lookup and an update check hold across the catalog: one of them at a
# time on all its hosts keeps the studio within Civitai's rate (``Library.hold``).
CIVITAI_HOLD = "civitai"

USER_AGENT = f"hikaze-mm/{__version__} (+https://github.com/hikaze/hikaze-model-manager)"
CHUNK = 64 * 1024
WAIT_SLICE = 0.1  # a wait checks for cancellation this often
BATCH_SIZE = 100  # hashes in one POST .../by-hash
BATCH_CAP_FACTOR = 4  # a batch answer may be this many times a single one's cap

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")
# A connect timeout is its own class from aiohttp 3.10 on (before, a ServerTimeoutError).
_CONNECT_TIMEOUT = getattr(aiohttp, "ConnectionTimeoutError", aiohttp.ClientConnectorError)
_CONNECT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError, _CONNECT_TIMEOUT)


# ---------------------------------------------------------------- errors
class CivitaiUnreachable(CivitaiError):
    """No answer: no connection, a timeout, or 429/5xx answers until the tries ran out."""


class DownloadError(Exception):
    """An image that could not be downloaded (the reason is the message)."""


# ---------------------------------------------------------------- the token bucket
class TokenBucket:
    """At most ``rate`` requests a second, in bursts of at most ``capacity``.

    ``reserve()`` takes a token and says how long to wait before sending; tokens may go
    into debt, so callers in several threads queue up in order. ``hold(seconds)`` makes
    the next request wait at least that long (a 429's ``Retry-After``, a backoff).
    ``clock`` is injectable so its decisions can be tested without waiting.
    """

    def __init__(
        self, rate: float, capacity: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self._tokens = capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def reserve(self) -> float:
        """Take a token; the seconds to wait before the request may go (0: at once)."""
        with self._lock:
            self._refill()
            self._tokens -= 1
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def hold(self, seconds: float) -> None:
        """The next request waits at least ``seconds`` from now."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, 1 - seconds * self.rate)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# ---------------------------------------------------------------- HTTP
def proxy_for(url: str) -> str | None:
    """The environment's HTTP proxy for ``url`` (none for loopback or ``no_proxy`` hosts)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback_name(host) or urllib.request.proxy_bypass(host):
        return None
    proxy = urllib.request.getproxies().get(parts.scheme)
    return proxy if proxy and proxy.startswith(("http://", "https://")) else None


async def cancellable_sleep(seconds: float, cancelled: Callable[[], bool]) -> None:
    """Sleep, raising JobCancelled within WAIT_SLICE of a cancel."""
    deadline = time.monotonic() + seconds
    while True:
        if cancelled():
            raise JobCancelled()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        await asyncio.sleep(min(WAIT_SLICE, left))


async def until_cancelled(coro: Awaitable[T], cancelled: Callable[[], bool]) -> T:
    """Await ``coro``, abandoning it (JobCancelled) within WAIT_SLICE of a cancel, even in
    the middle of a request."""
    task = asyncio.ensure_future(coro)
    while True:
        done, _ = await asyncio.wait({task}, timeout=WAIT_SLICE)
        if done:
            return task.result()
        if cancelled():
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
            raise JobCancelled()


class CivitaiClient:
    """Requests to one Civitai (``settings.url``), paced by ``bucket``.

    ``sleep(seconds)`` does the waiting (injectable: tests record the waits instead);
    ``cancelled()`` is checked before every request and during waits.
    """

    def __init__(
        self,
        settings: CivitaiSettings,
        bucket: TokenBucket,
        *,
        sleep: Sleep | None = None,
    ) -> None:
        self.settings = settings
        self.bucket = bucket
        self._sleep = sleep

    @asynccontextmanager
    async def session(self) -> AsyncIterator[aiohttp.ClientSession]:
        timeout = aiohttp.ClientTimeout(
            total=self.settings.timeout, sock_connect=self.settings.connect_timeout
        )
        async with aiohttp.ClientSession(
            timeout=timeout, headers={"User-Agent": USER_AGENT}, trust_env=False
        ) as session:
            yield session

    async def _wait(self, seconds: float, cancelled: Callable[[], bool]) -> None:
        if cancelled():
            raise JobCancelled()
        if seconds <= 0:
            return
        if self._sleep is not None:
            await self._sleep(seconds)
        else:
            await cancellable_sleep(seconds, cancelled)

    async def _paced(self, cancelled: Callable[[], bool]) -> None:
        await self._wait(self.bucket.reserve(), cancelled)

    def _backoff(self, attempt: int) -> float:
        return self.settings.backoff_seconds * (2**attempt)

    async def lookup(
        self, session: aiohttp.ClientSession, sha256: str, cancelled: Callable[[], bool]
    ) -> CivitaiVersion | None:
        """The model version of this hash, or None when Civitai does not know it (404)."""
        url = f"{self.settings.url}/api/v1/model-versions/by-hash/{quote(sha256)}"
        status, data = await self._api_json(session, "GET", url, cancelled, absent=(404,))
        return None if status == 404 else parse_version(data)

    async def lookup_batch(
        self, session: aiohttp.ClientSession, sha256s: list[str], cancelled: Callable[[], bool]
    ) -> BatchAnswer | None:
        """The model versions of up to ``BATCH_SIZE`` hashes in one request
        (``POST .../by-hash`` with a JSON array, sent in upper case as Civitai stores
        them), matched back to the hashes; None when Civitai has no such endpoint (404 or
        405): then ask one hash at a time."""
        if not 0 < len(sha256s) <= BATCH_SIZE:
            raise ValueError(f"a batch holds 1 to {BATCH_SIZE} hashes")
        url = f"{self.settings.url}/api/v1/model-versions/by-hash"
        body = [sha.upper() for sha in sha256s]
        status, data = await self._api_json(
            session, "POST", url, cancelled, body=body, absent=(404, 405)
        )
        return None if status in (404, 405) else parse_versions(data, sha256s)

    async def models(
        self, session: aiohttp.ClientSession, ids: list[int], cancelled: Callable[[], bool]
    ) -> object:
        """Up to ``BATCH_SIZE`` models with every version, in one request: ``GET
        .../api/v1/models?ids=1,2,...&nsfw=true`` (the JSON answer as it is; ``update_versions``
        reads it). A 404 answers ``{"items": []}``: none of them is on this site."""
        if not 0 < len(ids) <= BATCH_SIZE:
            raise ValueError(f"a batch holds 1 to {BATCH_SIZE} model ids")
        query = ",".join(str(int(i)) for i in ids)
        url = f"{self.settings.url}/api/v1/models?ids={query}&nsfw=true"
        status, data = await self._api_json(
            session, "GET", url, cancelled, absent=(404,), batch=True
        )
        return {"items": []} if status == 404 else data

    async def _api_json(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        cancelled: Callable[[], bool],
        *,
        body: list[str] | None = None,
        absent: tuple[int, ...] = (),
        batch: bool = False,
    ) -> tuple[int, object]:
        """One API request, paced and tried again on 429, 5xx and dropped connections:
        ``(200, the JSON)``, or ``(status, None)`` for a status in ``absent``. A batch (a
        body, or ``batch``) may answer ``BATCH_CAP_FACTOR`` times the usual cap."""
        headers = {"Accept": "application/json"}
        if self.settings.token:
            headers["Authorization"] = f"Bearer {self.settings.token}"
        cap = self.settings.max_response_bytes * (BATCH_CAP_FACTOR if body or batch else 1)
        tries = max(1, self.settings.tries)
        last = ""
        for attempt in range(tries):
            await self._paced(cancelled)
            try:
                async with session.request(
                    method, url, json=body, headers=headers, proxy=proxy_for(url), max_redirects=3
                ) as resp:
                    if resp.status == 200:
                        return 200, await _read_json(resp, cap)
                    if resp.status in absent:
                        return resp.status, None
                    last = self._refused(resp, attempt)
            except _CONNECT_ERRORS as exc:
                raise CivitaiUnreachable(
                    f"cannot connect to {self.settings.url}: {_reason(exc)}", fatal=True
                ) from None
            except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
                raise CivitaiUnreachable(
                    f"no answer from {self.settings.url} within {self.settings.timeout:g}s"
                ) from None
            except aiohttp.TooManyRedirects:
                raise CivitaiBadResponse("too many redirects") from None
            except (aiohttp.ClientError, OSError) as exc:
                last = _reason(exc)  # a dropped connection: tried again like a 5xx
                self.bucket.hold(self._backoff(attempt))
        raise CivitaiUnreachable(f"{last} after {tries} tries")

    def _refused(self, resp: aiohttp.ClientResponse, attempt: int) -> str:
        """A status other than 200: the reason to try again (429 holds the bucket for its
        Retry-After, a 5xx for a backoff), or the CivitaiError that ends the lookup."""
        if resp.status == 429:
            wait = retry_after_seconds(resp.headers.get("Retry-After"))
            wait = self._backoff(attempt) if wait is None else wait
            self.bucket.hold(min(wait, self.settings.max_retry_after))
            return "rate limited (HTTP 429)"
        if resp.status >= 500:
            self.bucket.hold(self._backoff(attempt))
            return f"HTTP {resp.status}"
        if resp.status in (401, 403):
            raise CivitaiUnreachable(
                f"Civitai refused the request (HTTP {resp.status}); check HIKAZE_CIVITAI_TOKEN",
                fatal=True,
            )
        raise CivitaiBadResponse(f"Civitai answered HTTP {resp.status}")

    async def download(
        self,
        session: aiohttp.ClientSession,
        url: str,
        max_bytes: int,
        cancelled: Callable[[], bool],
    ) -> bytes:
        """An image's bytes (at most ``max_bytes``); DownloadError with the reason."""
        try:
            scheme = urlsplit(url).scheme
        except ValueError:
            scheme = ""
        if scheme not in ("http", "https"):
            raise DownloadError(f"not an http(s) address: {url[:80]!r}")
        await self._paced(cancelled)
        try:
            async with session.get(url, proxy=proxy_for(url), max_redirects=3) as resp:
                if resp.status != 200:
                    raise DownloadError(f"HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > max_bytes:
                    raise DownloadError(f"{resp.content_length} bytes, over {max_bytes}")
                body = await _read_capped(resp, max_bytes)
                if body is None:
                    raise DownloadError(f"over {max_bytes} bytes")
                return body
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise DownloadError(f"no answer within {self.settings.timeout:g}s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise DownloadError(_reason(exc)) from None


async def _read_json(resp: aiohttp.ClientResponse, cap: int) -> object:
    """A JSON answer of at most ``cap`` bytes; CivitaiBadResponse otherwise."""
    body = await _read_capped(resp, cap)
    if body is None:
        raise CivitaiBadResponse(f"the answer is over {cap} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise CivitaiBadResponse("the answer is not JSON") from None


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes | None:
    """The body, or None as soon as it passes ``cap`` bytes (the rest is never read)."""
    body = bytearray()
    async for chunk in resp.content.iter_chunked(CHUNK):
        body += chunk
        if len(body) > cap:
            resp.close()
            return None
    return bytes(body)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]


def site_clients(
    settings: CivitaiSettings, bucket: TokenBucket, *, sleep: Sleep | None = None
) -> tuple[CivitaiClient, CivitaiClient | None]:
    """A client of Civitai's site, and one of its NSFW site (asked about what the first
    does not know) when one is configured; both share ``bucket``'s pace."""
    client = CivitaiClient(settings, bucket, sleep=sleep)
    nsfw = settings.nsfw_site
    if not nsfw or nsfw == settings.url:
        return client, None
    return client, CivitaiClient(replace(settings, url=nsfw, nsfw_url=""), bucket, sleep=sleep)
