"""The browser tests' fixtures and helpers: a real server in a thread, headless Chromium,
pages, seeding.

tests/conftest.py registers this module as a plugin, so its fixtures ``browser``,
``library``, ``live`` and ``page`` are there for every test module (the ComfyUI page
tests' included); the test modules import only its helpers (``Library``,
``requires_chromium``, ``browser_page``, ``screenshot``...) and define no browser or
library fixture of their own.

``browser`` is one headless Debian Chromium per test module (driven by Playwright's sync
API); ``library`` is a fresh library (real DatabaseManager, ImageStore and files in a temp
dir), asking our Civitai stand-in ``fake`` in a module marked ``pytest.mark.fake_civitai``;
``live`` is a real aiohttp server on 127.0.0.1 serving it from a background thread with its
own event loop; ``page`` is a new page that records console errors and page errors, and the
test fails if any was logged (``browser_page`` makes more, of any size). Without
/usr/bin/chromium the browser tests are skipped (CI installs it with apt-get).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from PIL import Image, ImageDraw

from hikaze_mm.config import Config
from hikaze_mm.server import create_app, mount
from hikaze_mm.services import Services
from tests.helpers import write_model

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

requires_chromium = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"{CHROMIUM} is missing (CI installs Debian's chromium with apt-get)",
)


class LiveServer:
    """The real application on 127.0.0.1:<free port>, in a thread with its own loop."""

    def __init__(self, services: Services, *, prefix: str | None = None) -> None:
        self.services = services
        self.prefix = prefix
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ui-test-server", daemon=True)

    @property
    def url(self) -> str:
        """The UI's address, ending with a slash."""
        path = f"{self.prefix}/" if self.prefix else "/"
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the test server did not start: {self._error}")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        if self.prefix:
            app = web.Application()

            async def host_page(request: web.Request) -> web.Response:
                return web.Response(text="host application")

            app.router.add_get("/", host_page)
            mount(app, self.prefix, self.services)
        else:
            app = create_app(self.services)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop serving; the app's cleanup closes the services."""
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            future.result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


# ---------------------------------------------------------------------- seeding
def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (240, 320)) -> bytes:
    """A preview-like PNG: a vertical gradient of ``color`` with a lighter disc."""
    width, height = size
    light = Image.new("RGB", size, color)
    dark = Image.new("RGB", size, tuple(c // 5 for c in color))
    img = Image.composite(dark, light, Image.linear_gradient("L").resize(size))
    glow = tuple(min(255, c + 70) for c in color)
    r = min(width, height) // 4
    ImageDraw.Draw(img).ellipse(
        (width // 2 - r, height // 3 - r, width // 2 + r, height // 3 + r), fill=glow
    )
    buffer = io.BytesIO()
    img.save(buffer, "PNG")
    return buffer.getvalue()


def write_png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (240, 320)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(color, size))
    return path


@dataclass
class Library:
    """A real library in a temp dir: its services, and handy facts about what was seeded."""

    services: Services
    root: Path
    models: dict[str, str] = field(default_factory=dict)  # name -> sha256
    pending: dict[str, int] = field(default_factory=dict)  # name -> pending id

    @property
    def db(self):
        return self.services.db

    def add_model(
        self,
        name: str,
        *,
        type_: str = "loras",
        base: str | None = "SDXL",
        tags: tuple[str, ...] = (),
        image: tuple[int, int, int] | None = None,
        size: int = 2048,
        missing: bool = False,
        meta: dict[str, Any] | None = None,
    ) -> str:
        path = self.root / type_ / f"{name}.safetensors"
        sha = write_model(path, size, seed=len(self.models))
        self.db.models.upsert(
            {
                "sha256": sha,
                "path": str(path),
                "name": name,
                "type": type_,
                "base": base,
                "size_bytes": size,
                "meta": meta or {},
            },
            tags,
        )[0]
        if image is not None:
            self.services.images.add_image(sha, png_bytes(image))
        if missing:
            path.unlink()
            self.db.models.update(sha, missing=True)
        self.models[name] = sha
        return sha

    def add_pending(
        self,
        name: str,
        path: Path,
        *,
        type_: str = "loras",
        tags: tuple[str, ...] = (),
        image: tuple[int, int, int] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> int:
        pid = self.db.pending.add(
            {
                "path": str(path),
                "name": name,
                "type": type_,
                "size_bytes": path.stat().st_size if path.exists() else None,
                "meta": meta or {},
                "source": "scan",
            },
            tags,
        )
        if image is not None:
            src = write_png(self.root.parent / "pending-src" / f"{pid}.png", image)
            self.services.images.add_pending_image(pid, src, 0)
        self.pending[name] = pid
        return pid


def open_library(tmp_path: Path, **config: Any) -> Library:
    models_root = tmp_path / "models"
    models_root.mkdir(parents=True, exist_ok=True)
    cfg = Config.load(data_dir=tmp_path / "data", model_roots=[str(models_root)], env={}, **config)
    return Library(Services.open(cfg), models_root)


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Any]:
    """One headless Chromium for the whole test module."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing (CI installs Debian's chromium with apt-get)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield instance
        instance.close()


@pytest.fixture(name="library")
def library_fixture(tmp_path: Path, request: pytest.FixtureRequest) -> Library:
    """A fresh, empty library; the test seeds it (the server closes its services).

    Parametrize indirectly with a dict of Config overrides to change its settings. In a
    module marked ``pytest.mark.fake_civitai`` it asks the ``fake`` Civitai stand-in; with
    ``HIKAZE_TEST_BACKEND=postgres`` it is on PostgreSQL.
    """
    overrides = dict(getattr(request, "param", {}))
    if os.environ.get("HIKAZE_TEST_BACKEND") == "postgres":  # as the conftest's config
        overrides.setdefault("database_url", request.getfixturevalue("pg_url"))
    if request.node.get_closest_marker("fake_civitai") is not None:
        overrides.setdefault("civitai", request.getfixturevalue("fake").settings())
    return open_library(tmp_path, **overrides)


@pytest.fixture(name="live")
def live_fixture(library: Library, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """The server of ``library``; parametrize indirectly with a prefix to mount it there."""
    server = LiveServer(library.services, prefix=getattr(request, "param", None)).start()
    yield server
    server.stop()


class ConsoleLog:
    """Console errors and uncaught page errors of one page.

    A test that provokes an HTTP error on purpose (Chromium logs every 4xx answer as a
    console error) allows exactly that with ``allow_http_status(400)``.
    """

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self._allowed: list[re.Pattern[str]] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def allow_http_status(self, status: int) -> None:
        self._allowed.append(re.compile(rf"Failed to load resource: .*status of {status}\b"))

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        if any(pattern.search(message.text) for pattern in self._allowed):
            return
        self.errors.append(f"console: {message.text} @ {message.location}")


@pytest.fixture(name="page")
def page_fixture(browser: Any, live: LiveServer) -> Iterator[Any]:
    """A fresh page (own context) on ``live``; fails the test if the page logged any error.

    It depends on ``live`` so that it closes before the server stops.
    """
    with browser_page(browser) as pg:
        yield pg


def screenshot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Save a screenshot under test-artifacts/ (not committed)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# ---------------------------------------------------------------------- axe-core
ROOT = Path(__file__).resolve().parent.parent
AXE_JS = ROOT / ".cache" / "node" / "node_modules" / "axe-core" / "axe.min.js"
AXE_INSTALL = "npm install --no-save --prefix .cache/node axe-core@4"


def axe_script() -> Path:
    """axe.min.js of the npm package axe-core; in CI (CI=true) its absence fails the test,
    elsewhere it skips with the command that installs it."""
    if AXE_JS.is_file():
        return AXE_JS
    message = f"axe-core is not installed: run `{AXE_INSTALL}` in {ROOT}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def axe_violations(
    page: Any, impacts: tuple[str, ...] = ("serious", "critical")
) -> list[dict[str, Any]]:
    """Run axe-core on the whole page; its violations of the given impacts, each as
    {id, impact, help, nodes: [css selectors]} (readable in an assertion message)."""
    script = axe_script()
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # Evaluated through the DevTools protocol: the page's CSP (script-src 'self') would
        # block page.add_script_tag's inline <script>.
        page.evaluate(script.read_text(encoding="utf-8") + "\n;undefined")
    violations = page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return result.violations.map((v) => ({
                id: v.id,
                impact: v.impact,
                help: v.help,
                nodes: v.nodes.map((n) => n.target.join(" ")),
            }));
        }"""
    )
    return [v for v in violations if v["impact"] in impacts]


# ---------------------------------------------------------------------- pages, layout
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def _any_error(_error: str) -> bool:
    return True


@contextmanager
def browser_page(
    browser: Any,
    *,
    viewport: dict[str, int] | None = None,
    color_scheme: str | None = None,
    nsfw: str | None = None,
    timeout: float = 10_000,
    failing: Callable[[str], bool] = _any_error,
) -> Iterator[Any]:
    """A fresh page in its own context (what the ``page`` fixture gives), for any server,
    size (``viewport``), emulated system theme (``color_scheme`` "light" or "dark":
    prefers-color-scheme) and NSFW images setting (``nsfw``: "blur", "hide" or "show", as
    the page remembers it); ``timeout`` (ms) is its Playwright default. Its ConsoleLog is
    ``page.console_log``; when the block ends, the test fails if the page logged a console
    error (one of those ``failing`` accepts)."""
    context = browser.new_context(
        viewport=viewport or {"width": 1400, "height": 900},
        locale="en-US",
        color_scheme=color_scheme,
    )
    context.set_default_timeout(timeout)
    if nsfw is not None:
        context.add_init_script(f"localStorage.setItem('hikaze.nsfw', {json.dumps(nsfw)})")
    pg = context.new_page()
    log = ConsoleLog(pg)
    pg.console_log = log
    try:
        yield pg
    finally:
        context.close()
    errors = [error for error in log.errors if failing(error)]
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)


def horizontal_overflow(page: Any) -> int:
    """How many CSS pixels the document is wider than the window (0: no sideways scroll)."""
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


def wait_for_visible_images(page: Any) -> None:
    """Wait until every thumbnail near the viewport has loaded (lazy frames) and every
    <img> in the document is complete, so a screenshot or a contrast check sees them."""
    page.wait_for_function(
        """() => [...document.querySelectorAll("[data-alt]")].every((frame) => {
              const box = frame.getBoundingClientRect();
              const near = box.bottom > -400 && box.top < innerHeight + 400;
              return !near || frame.classList.contains("loaded")
                  || frame.classList.contains("failed");
            }) && [...document.images].every((img) => img.complete)"""
    )


# ---------------------------------------------------------------------- README screenshots
SCREENSHOTS = ROOT / "docs" / "screenshots"
SCREENSHOTS_ENV = "HIKAZE_SCREENSHOTS"


def readme_screenshots_wanted() -> bool:
    """True when the README's screenshots are to be written (HIKAZE_SCREENSHOTS=1)."""
    return os.environ.get(SCREENSHOTS_ENV) == "1"


def readme_screenshot(page: Any, name: str, *, full_page: bool = False) -> Path | None:
    """Write docs/screenshots/<name>.png (committed, shown by the README), only when
    HIKAZE_SCREENSHOTS=1; otherwise do nothing and return None."""
    if not readme_screenshots_wanted():
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
    return path
