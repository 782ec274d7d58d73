"""The ComfyUI "Models" sidebar tab on a library of 20,000 models, in ComfyUI's real frontend
(Chromium): the list is virtual like the manager's grid. Only the cards near the view are in
the DOM (it stays under 10,000 elements at the top, deep in the list and at its end), the
list is as tall as all its cards, and a deep card shows its model.

A real ComfyUI (``tests/comfyui_harness.py``: ``COMFYUI_DIR`` and ``COMFYUI_PYTHON`` must be
set, else the test is skipped with one line saying so) starts, and once its start-up scan is
over its library gets 20,000 models by direct inserts (one transaction): "model 00000"..
"model 19999".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from tests.browser import browser_page, requires_chromium
from tests.comfyui_harness import ComfyBase, ComfyEnv, ComfyUI
from tests.library_helpers import insert_models

pytestmark = [pytest.mark.browser, requires_chromium]

expect = pytest.importorskip("playwright.sync_api").expect

MODELS = 20_000
DOM_LIMIT = 10_000


@pytest.fixture(scope="module")
def comfy(comfyui_env: ComfyEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyUI]:
    """One ComfyUI whose Hikaze library holds 20,000 models, inserted once its start-up scan
    is over (a scan would flag them missing: they have no files)."""
    base = ComfyBase(tmp_path_factory.mktemp("comfyui-sidebar-grid"))
    server = ComfyUI(comfyui_env, base)
    server.start()
    try:
        server.wait_scan_idle()
        with closing(sqlite3.connect(base.data_dir / "hikaze_mm.db", timeout=30)) as conn, conn:
            insert_models(conn, MODELS, folder="/x")
        assert server.list_models(limit=1, include_missing="false")
        settings = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False}
        assert server.post("/settings", settings).status == 200
        yield server
    finally:
        server.stop()


def dom_size(page: Any) -> int:
    return page.evaluate("() => document.getElementsByTagName('*').length")


def test_the_sidebar_list_renders_only_the_cards_in_view(browser: Any, comfy: ComfyUI) -> None:
    with browser_page(browser, timeout=20_000, failing=lambda m: "hikaze" in m.lower()) as page:
        page.goto(comfy.url + "/")
        page.wait_for_function(
            "() => window.app && window.app.extensionManager"
            " && document.querySelector('.hikaze-models-tab-button')",
            timeout=120_000,
        )
        page.click(".hikaze-models-tab-button")
        sidebar = page.locator(".hkz-sidebar")
        expect(sidebar.locator(".hkz-summary")).to_have_text("20000 models", timeout=60_000)
        expect(sidebar.locator(".hkz-card-name").first).to_have_text("model 00000")
        assert dom_size(page) < DOM_LIMIT
        rendered = sidebar.locator(".hkz-card-item").count()
        assert 0 < rendered < 500
        # The list is as tall as all its cards (rows of one height and the gap).
        geo = page.evaluate(
            """() => {
              const list = document.querySelector('.hkz-sidebar .hkz-cards');
              const one = list.querySelector('.hkz-card-item');
              const gap = parseFloat(getComputedStyle(list).rowGap) || 0;
              const row = one.getBoundingClientRect().height + gap;
              return {height: list.offsetHeight, row, gap};
            }"""
        )
        assert abs(geo["height"] - (MODELS * geo["row"] - geo["gap"])) <= 2
        # Deep in the list: the cards there, the DOM as small.
        scroll = """(y) => {
          const list = document.querySelector('.hkz-sidebar .hkz-cards');
          let node = list.parentElement;
          const clips = (el) => /(auto|scroll)/.test(getComputedStyle(el).overflowY);
          while (node && !clips(node)) node = node.parentElement;
          const box = node.getBoundingClientRect();
          node.scrollTop = list.getBoundingClientRect().top - box.top + node.scrollTop + y;
        }"""
        page.evaluate(scroll, 15_000 * geo["row"])
        deep = sidebar.locator('.hkz-card-item[data-index="15000"] .hkz-card-name')
        expect(deep).to_have_text("model 15000")
        expect(deep).to_be_in_viewport()
        assert dom_size(page) < DOM_LIMIT
        page.evaluate(scroll, MODELS * geo["row"])
        expect(sidebar.locator('.hkz-card-item[data-index="19999"] .hkz-card-name')).to_have_text(
            "model 19999"
        )
        assert dom_size(page) < DOM_LIMIT
        assert sidebar.locator(".hkz-card-item").count() < 500
