"""The library's virtual grid in headless Chromium on a library of 20,000 models: only the
cards near the viewport are in the DOM (under 10,000 elements at the top, deep in the
library and at its end, in the grid and the list views), the scroll bar spans the whole
filtered set, and what must keep working does: keyboard navigation over the whole set (across
pages not loaded), Shift-click ranges over cards never rendered, "Select all" of the filtered
set, the card menu of a deep card, and the same scroll position (and the card focused) after
the details panel closes.

The library is seeded once for the module by direct inserts (20,000 rows in one transaction);
its models are "model 00000".."model 19999", so item i of the name order is "model {i:05d}".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import LiveServer, browser_page, open_library, requires_chromium
from tests.library_helpers import insert_models

pytestmark = [pytest.mark.browser, requires_chromium]

expect = pytest.importorskip("playwright.sync_api").expect

MODELS = 20_000
DOM_LIMIT = 10_000
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the module over a library of 20,000 models (read-only for the tests)."""
    lib = open_library(Path(tmp_path_factory.mktemp("big-library")))
    with lib.db.transaction() as conn:
        insert_models(conn, MODELS)
    server = LiveServer(lib.services).start()
    yield server
    server.stop()


@pytest.fixture
def grid_page(browser: Any, big: LiveServer) -> Iterator[Any]:
    """The library page on the 20,000 models, its first cards shown."""
    with browser_page(browser, viewport=VIEWPORT) as pg:
        pg.goto(big.url)
        expect(pg.locator(".page-library .summary")).to_have_text("20,000 models")
        expect(card(pg, 0)).to_be_visible()
        # The facets (type tabs, filters) too: nothing above the grid changes height later.
        expect(pg.get_by_role("tab", name=re.compile("^loras"))).to_be_visible()
        pg.wait_for_load_state("networkidle")
        yield pg


def card(page: Any, index: int) -> Any:
    """The loaded card of item `index` (its placeholder does not count)."""
    return page.locator(f'.cards .card[aria-posinset="{index + 1}"][data-sha256]')


def dom_size(page: Any) -> int:
    return page.evaluate("() => document.getElementsByTagName('*').length")


def layout(page: Any) -> dict[str, float]:
    """The grid's columns, row height (a card and the gap), own height and top in the page."""
    return page.evaluate(
        """() => {
          const grid = document.querySelector('.cards');
          const style = getComputedStyle(grid);
          const grids = style.display.includes('grid');
          const cols = grids ? style.gridTemplateColumns.split(' ').length : 1;
          const gap = parseFloat(style.rowGap) || 0;
          const one = grid.querySelector('.card[data-sha256]');
          const box = grid.getBoundingClientRect();
          const row = one.getBoundingClientRect().height + gap;
          return {cols, gap, row, height: grid.offsetHeight,
                  border: grid.offsetHeight - grid.clientHeight, top: box.top + scrollY};
        }"""
    )


def scroll_to(page: Any, index: int) -> None:
    """Scroll the window so item `index` is near the top of the view, and wait for its card."""
    geo = layout(page)
    row = index // geo["cols"]
    page.evaluate("y => window.scrollTo(0, y)", geo["top"] + row * geo["row"] - 200)
    expect(card(page, index)).to_be_visible()


def test_the_dom_stays_small_and_the_scroll_bar_spans_the_set(grid_page: Any) -> None:
    page = grid_page
    assert dom_size(page) < DOM_LIMIT
    geo = layout(page)
    rows = -(-MODELS // geo["cols"])
    # The grid is as tall as all its rows, though only a few are rendered.
    assert abs(geo["height"] - geo["border"] - (rows * geo["row"] - geo["gap"])) <= 2
    assert page.locator(".cards .card").count() < 20 * geo["cols"]
    scroll_to(page, 15_000)
    expect(card(page, 15_000).locator(".card-name")).to_have_text("model 15000")
    assert dom_size(page) < DOM_LIMIT
    page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    expect(card(page, MODELS - 1).locator(".card-name")).to_have_text("model 19999")
    assert dom_size(page) < DOM_LIMIT
    # The list view is virtual too, its scroll bar as true.
    page.evaluate("() => window.scrollTo(0, 0)")
    page.get_by_role("button", name="List view").click()
    expect(page.locator(".cards")).to_have_class(re.compile(r"\bview-list\b"))
    expect(card(page, 0)).to_be_visible()
    geo = layout(page)
    assert geo["cols"] == 1
    assert abs(geo["height"] - geo["border"] - MODELS * geo["row"]) <= 2 * geo["row"]
    assert dom_size(page) < DOM_LIMIT
    scroll_to(page, 15_000)
    expect(card(page, 15_000).locator(".card-name")).to_have_text("model 15000")
    assert dom_size(page) < DOM_LIMIT
    page.get_by_role("button", name="Grid view").click()
    expect(page.locator(".cards")).to_have_class(re.compile(r"\bview-grid\b"))


def focused_name(page: Any) -> str:
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.matches('.card[data-sha256]')"
    )
    return page.evaluate("() => document.activeElement.querySelector('.card-name').textContent")


def test_the_keyboard_moves_over_the_whole_set(grid_page: Any) -> None:
    page = grid_page
    card(page, 0).focus()
    cols = layout(page)["cols"]
    # Down across the first page's end (100 cards): the next page loads, the focus follows.
    downs = -(-100 // cols)
    for _ in range(downs):
        page.keyboard.press("ArrowDown")
    assert focused_name(page) == f"model {downs * cols:05d}"
    page.keyboard.press("End")
    assert focused_name(page) == "model 19999"
    assert page.evaluate("() => document.activeElement.getAttribute('aria-posinset')") == "20000"
    assert dom_size(page) < DOM_LIMIT
    page.keyboard.press("ArrowLeft")
    assert focused_name(page) == "model 19998"
    page.keyboard.press("ArrowUp")
    assert focused_name(page) == f"model {19998 - cols:05d}"
    page.keyboard.press("Home")
    assert focused_name(page) == "model 00000"
    assert page.evaluate("() => window.scrollY") < layout(page)["top"]
    # One tab stop: the focused card, whatever was rendered meanwhile.
    assert page.locator('.cards .card[tabindex="0"]').count() == 1


def test_shift_click_selects_a_range_over_cards_never_rendered(grid_page: Any) -> None:
    page = grid_page
    bar = page.get_by_role("region", name="Selected models")
    card(page, 2).hover()
    card(page, 2).locator(".card-select").check()
    expect(bar.locator(".bulk-count")).to_have_text("1 selected")
    scroll_to(page, 15_000)
    card(page, 15_000).locator(".card-select").click(modifiers=["Shift"])
    expect(bar.locator(".bulk-count")).to_have_text("14,999 selected")
    expect(card(page, 15_000).locator(".card-select")).to_be_checked()
    expect(card(page, 14_999)).to_have_class(re.compile(r"\bselected\b"))
    # Select all of the filtered set.
    bar.get_by_role("button", name="Select all 20,000").click()
    expect(bar.locator(".bulk-count")).to_have_text("20,000 selected")
    assert dom_size(page) < DOM_LIMIT


def test_the_card_menu_opens_on_a_deep_card(grid_page: Any) -> None:
    page = grid_page
    scroll_to(page, 17_321)
    deep = card(page, 17_321)
    deep.hover()
    deep.locator(".card-menu").click()
    menu = page.get_by_role("menu", name=re.compile("model 17321"))
    expect(menu).to_be_visible()
    expect(menu.get_by_role("menuitem", name=re.compile("Copy", re.I)).first).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_have_count(0)
    expect(deep.locator(".card-menu")).to_be_focused()


def test_closing_the_details_returns_to_the_same_place(grid_page: Any) -> None:
    page = grid_page
    scroll_to(page, 12_345)
    before = page.evaluate("() => window.scrollY")
    card(page, 12_345).locator(".card-name").click()
    dialog = page.locator("dialog.details[open], dialog[open]").first
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("model 12345")
    page.keyboard.press("Escape")
    expect(page.locator("dialog[open]")).to_have_count(0)
    expect(card(page, 12_345)).to_be_focused()
    assert page.evaluate("() => window.scrollY") == before
    assert dom_size(page) < DOM_LIMIT
