"""The library grid's scroll frame times at the top and deep in a large library, one run.

A real library of --models models (default 20,000; direct inserts) is served by a real
server on 127.0.0.1 and opened in headless Chromium (/usr/bin/chromium, Playwright). The
page is scrolled at a steady pace (--step pixels per animation frame, --frames frames)
twice: from the top, then from item --deep (default 15,000) of the name order. Each
part prints the DOM's element count, the cards in the DOM, and the frame times (the
deltas between requestAnimationFrame callbacks while scrolling: p50, p95, max); then the
ratio deep/top of the p50s. Targets (issue 19): the DOM under 10,000 elements whatever
the depth, and the deep p50 within 1.5x of the top one.

Self-contained: it needs only the library's API and the page, so bench/compare_revisions.py
can run it on an earlier tree for the figures before. A grid that appends cards as it
scrolls (no data-index on its cards) is scrolled down until item --deep is loaded (at most
--load-timeout seconds; the part says how far it got); a virtual grid is scrolled straight
to the row of that item.

Usage: python bench/grid_bench.py [--quick] [--models N] [--deep I] [--frames N]
       [--step PX] [--view grid|list]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web

from hikaze_mm.config import Config
from hikaze_mm.server import create_app
from hikaze_mm.services import Services

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 900}
BASES = ("SDXL", "SD 1.5", "Pony", "Flux.1 D")

# The frame deltas while scrolling `step` px per frame for `frames` frames.
SCROLL_JS = """async ([frames, step]) => {
  const deltas = [];
  let last = await new Promise((r) => requestAnimationFrame(r));
  for (let i = 0; i < frames; i += 1) {
    window.scrollBy(0, step);
    const now = await new Promise((r) => requestAnimationFrame(r));
    deltas.push(now - last);
    last = now;
  }
  return deltas;
}"""

# Where item `index` is (a virtual grid: from its rows; else its card, once loaded).
POSITION_JS = """(index) => {
  const grid = document.querySelector('.cards');
  const cards = grid.querySelectorAll('.card');
  const virtual = cards.length && cards[0].dataset.index !== undefined;
  if (!virtual) {
    const card = cards[index];
    return card ? {y: card.getBoundingClientRect().top + scrollY, loaded: cards.length} : null;
  }
  const style = getComputedStyle(grid);
  const cols = style.display.includes('grid') ? style.gridTemplateColumns.split(' ').length : 1;
  const one = grid.querySelector('.card[data-sha256]');
  const row = one.getBoundingClientRect().height + (parseFloat(style.rowGap) || 0);
  const top = grid.getBoundingClientRect().top + scrollY + grid.clientTop;
  return {y: top + Math.floor(index / cols) * row, loaded: null};
}"""


def seed(services: Services, n: int) -> None:
    """`n` models "model 00000".. (a type and a base each) in one transaction."""
    created = int(time.time() * 1000)
    rows = [
        (
            f"{i:064x}",
            f"/models/loras/m{i:05d}.safetensors",
            f"model {i:05d}",
            "loras",
            BASES[i % len(BASES)],
            2_000_000 + i,
            created - i,
        )
        for i in range(n)
    ]
    with services.db.transaction() as conn:
        conn.executemany(
            "INSERT INTO models (sha256, path, name, type, base, size_bytes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


class Server:
    """The application on 127.0.0.1:<free port>, in a thread with its own loop."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        if not self.ready.wait(30):
            raise SystemExit("the server did not start")
        return f"http://127.0.0.1:{self.port}/"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.runner = web.AppRunner(create_app(self.services), handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


FRAMES_JS = """() => new Promise((done) => {
  let n = 10;
  const next = () => (--n ? requestAnimationFrame(next) : done());
  requestAnimationFrame(next);
})"""
MORE_JS = "n => document.querySelectorAll('.cards .card').length > n"
NAMED_JS = "() => document.querySelectorAll('.cards .card .card-name').length > 0"


def settle(page: Any) -> None:
    """Let the page finish its fetches and a few frames."""
    page.wait_for_load_state("networkidle")
    page.evaluate(FRAMES_JS)


def reach(page: Any, index: int, timeout: float) -> tuple[float, str]:
    """Scroll to item `index`; its y and how it got there."""
    deadline = time.monotonic() + timeout
    while True:
        pos = page.evaluate(POSITION_JS, index)
        if pos is not None:
            how = "virtual grid" if pos["loaded"] is None else f"{pos['loaded']:,} cards loaded"
            return pos["y"], how
        loaded = page.locator(".cards .card").count()
        if time.monotonic() > deadline:
            last = page.evaluate(POSITION_JS, loaded - 1)
            return last["y"], f"stopped at {loaded:,} cards loaded (--load-timeout)"
        page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
        # At the end of the list nothing more comes: the loop measures where it got to.
        with contextlib.suppress(Exception):
            page.wait_for_function(MORE_JS, arg=loaded, timeout=30_000)


def measure(page: Any, label: str, args: argparse.Namespace) -> float:
    settle(page)
    deltas = page.evaluate(SCROLL_JS, [args.frames, args.step])
    settle(page)
    dom = page.evaluate("() => document.getElementsByTagName('*').length")
    cards = page.locator(".cards .card").count()
    p50 = statistics.median(deltas)
    p95 = percentile(deltas, 0.95)
    print(
        f"{label:>5}: DOM {dom:,} elements ({'under' if dom < 10_000 else 'OVER'} 10,000), "
        f"{cards:,} cards in the DOM; frame p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"max {max(deltas):.1f} ms",
        flush=True,
    )
    return p50


def run(url: str, args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport=VIEWPORT, locale="en-US")
        context.add_init_script(
            f"localStorage.setItem('hikaze.library.view', JSON.stringify({{view: '{args.view}'}}))"
        )
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(url)
        page.wait_for_function(NAMED_JS)
        shown = page.evaluate("() => document.querySelector('.cards').className")
        print(f"the page shows: .{'.'.join(shown.split())}", flush=True)
        top = measure(page, "top", args)
        started = time.monotonic()
        y, how = reach(page, args.deep, args.load_timeout)
        page.evaluate("y => window.scrollTo(0, y - 100)", y)
        took = time.monotonic() - started
        print(f"reached item {args.deep:,} ({how}) in {took:.1f} s", flush=True)
        page.wait_for_function(
            "() => !document.querySelector('.cards .card-placeholder')"
            " && document.querySelectorAll('.cards .card .card-name').length"
        )
        deep = measure(page, "deep", args)
        ratio = deep / top
        verdict = "within" if ratio <= 1.5 else "OVER"
        print(f"deep/top frame p50: {ratio:.2f}x ({verdict} the 1.5x target)", flush=True)
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20_000)
    parser.add_argument("--deep", type=int, default=15_000, help="the item the deep part starts at")
    parser.add_argument("--frames", type=int, default=180, help="frames scrolled per part")
    parser.add_argument("--step", type=int, default=20, help="pixels scrolled per frame")
    parser.add_argument("--view", choices=("grid", "list"), default="grid")
    parser.add_argument("--load-timeout", type=float, default=300.0, help="s (appending grid)")
    parser.add_argument("--quick", action="store_true", help="2,000 models, 60 frames")
    args = parser.parse_args()
    if args.quick:
        args.models, args.deep, args.frames = 2_000, 1_500, 60
    args.deep = min(args.deep, args.models - 1)
    with tempfile.TemporaryDirectory(prefix="hikaze-grid-bench-") as scratch:
        root = Path(scratch)
        (root / "models").mkdir()
        cfg = Config.load(data_dir=root / "data", model_roots=[str(root / "models")], env={})
        services = Services.open(cfg)
        seed(services, args.models)
        size = f"{VIEWPORT['width']}x{VIEWPORT['height']}"
        print(
            f"{args.models:,} models, {args.view} view, {size}, "
            f"{args.frames} frames x {args.step} px per part",
            flush=True,
        )
        server = Server(services)
        url = server.start()
        try:
            run(url, args)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
