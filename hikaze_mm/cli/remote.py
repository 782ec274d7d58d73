"""Handing a command to the process that holds the library, when it serves HTTP.

The holder's lock file names its address (``hikaze_mm.process_lock``). Requests go to it
with the standard library's HTTP client, from this machine, without an ``Origin`` header
(the server's same-origin guard accepts them) and never through a proxy.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from hikaze_mm.cli.common import FAILURE, CliError
from hikaze_mm.process_lock import LockOwner

# Where a server bound to every address is reached from this machine.
WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}
POLL_SECONDS = 0.2


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 literal in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def base_url(address: str) -> str:
    """The URL (no trailing slash) this machine reaches the server at ``address`` by."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    host = WILDCARDS.get(host, host)
    return f"http://{format_address(host, int(port))}"


class Unreachable(CliError):
    """The holder does not answer (it may have just stopped)."""


class Remote:
    def __init__(self, owner: LockOwner, *, timeout: float = 30.0) -> None:
        if not owner.address:
            raise ValueError("the holder serves no HTTP")
        self.owner = owner
        self.base = base_url(owner.address)
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._request("POST", path, {} if body is None else body)

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            error, detail = self._error_body(exc)
            raise CliError(
                f"the server at {self.base}/ refused: {detail}", FAILURE, error
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(
                f"the server at {self.base}/ ({self.owner.describe()}) does not answer: {reason}",
                FAILURE,
            ) from None

    @staticmethod
    def _error_body(exc: urllib.error.HTTPError) -> tuple[str, str]:
        try:
            body = json.loads(exc.read())
            return str(body["error"]), str(body["detail"])
        except (ValueError, KeyError, TypeError, OSError):
            return str(exc.reason), f"HTTP {exc.code} {exc.reason}"

    def follow(
        self, path: str, done: Callable[[Any], bool], on_status: Callable[[Any], None]
    ) -> Any:
        """GET ``path`` until ``done(status)``; each status goes to ``on_status`` first."""
        while True:
            status = self.get(path)
            on_status(status)
            if done(status):
                return status
            time.sleep(POLL_SECONDS)
