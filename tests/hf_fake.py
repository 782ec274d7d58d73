"""Our own Hugging Face: a real aiohttp server on 127.0.0.1 (a thread with its own loop)
answering as the Hub does, for the files a test adds (``add_file``):

* ``POST /api/{models|datasets}/{owner}/{name}/paths-info/{rev}`` (form ``paths=``, any
  number) answers ``[{type, path, size, oid, lfs?: {oid: <sha256>, size, pointerSize}}]``
  for the paths that exist; an unknown repo is 401 with ``X-Error-Code: RepoNotFound``
  (the Hub's answer to a caller without a token), an unknown revision 404
  ``RevisionNotFound``, a gated repo without the token 401 ``GatedRepo``;
* ``GET|HEAD [/datasets]/{owner}/{name}/resolve/{rev}/{path}`` (or ``/{name}/…``, a repo
  without an owner such as ``gpt2``) serves a small (non-LFS) file
  itself and redirects (302) an LFS file to the storage, on a second port like the Hub's
  CDN, so a token that follows the redirect shows; ``/blob/`` is the file's web page.

The storage (``/lfs/{sha256}``) honours ``Range: bytes=N-`` / ``N-M``. Every request is
logged with its port and headers (``requests``). Nothing here reaches the internet.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web


@dataclass(frozen=True)
class HfFile:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def pointer(self) -> bytes:
        return (
            "version https://git-lfs.github.com/spec/v1\n"
            f"oid sha256:{self.sha256}\nsize {len(self.data)}\n"
        ).encode()

    def entry(self, path: str) -> dict[str, Any]:
        """The file as ``paths-info`` lists it."""
        blob = self.pointer() if self.lfs else self.data
        oid = hashlib.sha1(b"blob %d\0" % len(blob) + blob).hexdigest()  # git's blob id
        entry: dict[str, Any] = {"type": "file", "oid": oid, "size": len(self.data), "path": path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": len(self.data), "pointerSize": len(blob)}
        return entry


class FakeHub:
    def __init__(self) -> None:
        # (repo_type, "owner/name") -> revision -> path -> file
        self.repos: dict[tuple[str, str], dict[str, dict[str, HfFile]]] = {}
        self.gated: set[str] = set()  # repos that need ``token``
        self.token: str | None = None
        self.requests: list[tuple[int, str, dict[str, str]]] = []  # (port, path, headers)
        self.port = 0
        self.storage_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage_url(self) -> str:
        return f"http://127.0.0.1:{self.storage_port}"

    def add_file(
        self,
        repo: str,
        path: str,
        data: bytes,
        *,
        rev: str = "main",
        lfs: bool = True,
        repo_type: str = "models",
    ) -> str:
        """A file of ``repo`` at ``rev``; its SHA-256."""
        revisions = self.repos.setdefault((repo_type, repo), {})
        revisions.setdefault(rev, {})[path] = HfFile(data, lfs)
        return hashlib.sha256(data).hexdigest()

    def storage_requests(self) -> list[tuple[int, str, dict[str, str]]]:
        return [r for r in self.requests if r[0] == self.storage_port]

    # ------------------------------------------------------------ serving
    def _log(self, request: web.Request) -> None:
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        port = sock[1] if sock else 0
        self.requests.append((port, request.path_qs, dict(request.headers)))

    def _files(self, request: web.Request, repo_type: str) -> dict[str, HfFile]:
        """The repo's files at the request's revision, or the Hub's error."""
        owner = request.match_info.get("owner")
        repo = f"{owner}/{request.match_info['name']}" if owner else request.match_info["name"]
        revisions = self.repos.get((repo_type, repo))
        if revisions is None:
            raise _hub_error(401, "RepoNotFound", "Repository not found")
        if repo in self.gated and request.headers.get("Authorization") != f"Bearer {self.token}":
            raise _hub_error(401, "GatedRepo", f"Access to model {repo} is restricted")
        files = revisions.get(request.match_info["rev"])
        if files is None:
            raise _hub_error(404, "RevisionNotFound", "Invalid rev id")
        return files

    async def _paths_info(self, request: web.Request) -> web.StreamResponse:
        self._log(request)
        files = self._files(request, request.match_info["type"])
        form = await request.post()
        paths = [str(p) for p in form.getall("paths", [])]
        return web.json_response([files[p].entry(p) for p in paths if p in files])

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        self._log(request)
        repo_type = "datasets" if request.path.startswith("/datasets/") else "models"
        files = self._files(request, repo_type)
        file = files.get(request.match_info["path"])
        if file is None:
            raise _hub_error(404, "EntryNotFound", "Entry not found")
        if request.match_info["kind"] == "blob":
            page = "<html><body>a file's page</body></html>"
            return web.Response(text=page, content_type="text/html")
        headers = {"ETag": f'"{file.sha256}"', "X-Repo-Commit": "0" * 40}
        if file.lfs:
            headers["X-Linked-Size"] = str(len(file.data))
            raise web.HTTPFound(f"{self.storage_url}/lfs/{file.sha256}", headers=headers)
        return web.Response(body=file.data, headers=headers)

    async def _storage(self, request: web.Request) -> web.StreamResponse:
        self._log(request)
        sha = request.match_info["sha"]
        found = next(
            (
                f
                for revs in self.repos.values()
                for fs in revs.values()
                for f in fs.values()
                if f.sha256 == sha
            ),
            None,
        )
        if found is None:
            return web.Response(status=404, text="no such object")
        return _ranged(request, found.data)

    def start(self) -> None:
        ready = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            file = r"{kind:resolve|blob}/{rev}/{path:.+}"
            info = r"/api/{type:models|datasets}/{owner}/{name}/paths-info/{rev}"
            app.router.add_post(info, self._paths_info)
            app.router.add_post(info.replace("{owner}/", ""), self._paths_info)  # "gpt2"
            app.router.add_get("/datasets/{owner}/{name}/" + file, self._resolve)
            app.router.add_get("/{owner}/{name}/" + file, self._resolve)
            app.router.add_get("/{name}/" + file, self._resolve)
            app.router.add_get("/lfs/{sha}", self._storage)
            runner = web.AppRunner(app, shutdown_timeout=0.5, handler_cancellation=True)
            loop.run_until_complete(runner.setup())
            for _ in range(2):  # the Hub, and its storage on a port of its own
                loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
            self.port, self.storage_port = (a[1] for a in runner.addresses)
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=main, name="fake-hf", daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


def _hub_error(status: int, code: str, message: str) -> web.HTTPException:
    cls = web.HTTPUnauthorized if status == 401 else web.HTTPNotFound
    return cls(
        text=f'{{"error": "{message}"}}',
        content_type="application/json",
        headers={"X-Error-Code": code, "X-Error-Message": message},
    )


def _ranged(request: web.Request, data: bytes) -> web.Response:
    """``data``, or the part a ``Range: bytes=N-[M]`` asks (206), 416 past the end."""
    raw = request.headers.get("Range", "")
    if not raw.startswith("bytes="):
        return web.Response(body=data, headers={"Accept-Ranges": "bytes"})
    first, _, last = raw.removeprefix("bytes=").partition("-")
    start = int(first or 0)
    end = min(int(last) if last else len(data) - 1, len(data) - 1)
    if start >= len(data) or start > end:
        return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
    headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}", "Accept-Ranges": "bytes"}
    return web.Response(status=206, body=data[start : end + 1], headers=headers)


def fake_hub_server() -> Iterator[FakeHub]:
    hub = FakeHub()
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture(name="hf")
def hf_fixture() -> Iterator[FakeHub]:
    """Our Hugging Face stand-in on 127.0.0.1 for one test (tests/conftest.py registers
    this module as a plugin)."""
    yield from fake_hub_server()
