"""End-to-end: the Library's cards and layout in headless Chromium at 1440x900 and 390x844:
clamped cards (a few tags and "+N", two-line names, base badges), the phone's Filters
button, the searchable tag filter, one tab stop for the grid with arrow keys, the card
actions (copy the LoRA string, send to the workflow inside ComfyUI), and NSFW blur."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser import (
    DESKTOP,
    PHONE,
    ConsoleLog,
    Library,
    LiveServer,
    axe_violations,
    browser_page,
    horizontal_overflow,
    png_bytes,
    requires_chromium,
    screenshot,
)
from tests.helpers import write_model

pytestmark = [pytest.mark.browser, requires_chromium]

expect = pytest.importorskip("playwright.sync_api").expect

LONG_NAME = "An extremely long model name " * 6


def add(
    lib: Library,
    name: str,
    *,
    folder: str = "loras",
    type_: str = "loras",
    base: str | None = "SDXL",
    tags: tuple[str, ...] = (),
    image: tuple[int, int, int] | None = None,
    meta: dict[str, Any] | None = None,
    file_name: str | None = None,
) -> str:
    """A model at <root>/<folder>/<file_name or name>.safetensors (Library.add_model puts
    every model in <root>/<type>/)."""
    path = lib.root / folder / f"{file_name or name}.safetensors"
    sha = write_model(path, 2048, seed=len(lib.models))
    lib.db.models.upsert(
        {
            "sha256": sha,
            "path": str(path),
            "name": name,
            "type": type_,
            "base": base,
            "size_bytes": 2048,
            "meta": meta or {},
        },
        tags,
    )
    if image is not None:
        lib.services.images.add_image(sha, png_bytes(image))
    lib.models[name] = sha
    return sha


def seed(lib: Library) -> dict[str, str]:
    db = lib.db
    for i in range(64):
        db.tags.ensure(f"tag{i:02d}", "#2f81f7")
    db.tags.ensure("nsfw", "#f85149")
    db.tags.ensure("style", "#db61a2")
    db.tags.ensure("lora", "#3fb950")
    add(lib, "Many Tags", tags=tuple(f"tag{i:02d}" for i in range(64)), image=(219, 97, 162))
    add(
        lib,
        "Detail Slider",
        file_name="detail_slider_v2",
        tags=("lora", "style"),
        image=(63, 185, 80),
        meta={"preferred_weight": 0.7, "trigger_words": ["detailed", "sharp focus"]},
    )
    add(lib, LONG_NAME.strip(), image=(47, 129, 247))
    add(lib, "No Base", base=None, type_="checkpoints", folder="checkpoints")
    add(lib, "Spicy", tags=("nsfw",), image=(248, 81, 73))
    for i in range(15):
        add(lib, f"Filler {i:02d}", tags=("style",), image=(120, 120, 120))
    return lib.models


def card(page, sha: str):
    return page.locator(f'.card[data-sha256="{sha}"]')


def expect_listed(page, n: int) -> None:
    """The filtered set holds `n` models (the grid renders only the cards near the view)."""
    expect(page.locator(".page-library .summary")).to_have_text(f"{n} models")
    expect(page.locator(".cards .card").first).to_have_attribute("aria-setsize", str(n))


# Scroll the page down from the top, half a view at a time, until the card is rendered.
SCROLL_TO_CARD = """async (sha) => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    window.scrollTo(0, 0);
    for (;;) {
        await frame();
        const el = document.querySelector(`.card[data-sha256="${sha}"]`);
        if (el) return el.scrollIntoView({ block: "center" });
        if (innerHeight + scrollY >= document.documentElement.scrollHeight - 1) return;
        window.scrollBy(0, innerHeight / 2);
    }
}"""


def shown(page, sha: str):
    """The card of `sha`, scrolled into view (rendered by the virtual grid)."""
    page.evaluate(SCROLL_TO_CARD, sha)
    found = card(page, sha)
    expect(found).to_be_visible()
    return found


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_cards_are_clamped(browser, library: Library, live: LiveServer, viewport) -> None:
    models = seed(library)
    with browser_page(browser, viewport=viewport) as page:
        page.goto(live.url)
        expect_listed(page, 19)  # nsfw excluded by default
        many = shown(page, models["Many Tags"])
        # A few tags and "+N" (its tooltip names the rest).
        expect(many.locator(".tag:not(.tag-more)")).to_have_count(3)
        expect(many.locator(".tag-more")).to_contain_text("+61")
        assert "tag63" in many.locator(".tag-more").get_attribute("title")
        # The card is as tall as its neighbours, whatever its tag count (measured with
        # every card rendered: content-visibility skips the ones far off-screen).
        heights = page.evaluate(
            """() => {
                const cards = [...document.querySelectorAll('.card')];
                for (const c of cards) c.style.contentVisibility = 'visible';
                return cards.map((c) => c.getBoundingClientRect().height);
            }"""
        )
        assert max(heights) - min(heights) < 2, heights
        assert max(heights) < 520
        # A legacy tag that repeats the type badge is hidden; other tags stay.
        slider = shown(page, models["Detail Slider"])
        expect(slider.locator(".tag-name")).to_have_text(["style"])
        expect(slider.locator(".badge-type")).to_have_text("loras")
        # Base badge on every card; "unknown" when none.
        expect(shown(page, models["No Base"]).locator(".badge-base")).to_have_text("unknown")
        cards, badges = page.evaluate(  # one moment: the grid renders cards as it settles
            "() => ['.cards .card', '.cards .card .badge-base']"
            ".map((s) => document.querySelectorAll(s).length)"
        )
        assert cards > 0 and badges == cards
        # Long names: two lines at most, the full name in the tooltip.
        name = shown(page, models[LONG_NAME.strip()]).locator(".card-name")
        expect(name).to_have_attribute("title", LONG_NAME.strip())
        box = name.bounding_box()
        line = float(name.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)"))
        assert box["height"] <= 2 * line + 1
        # Fixed thumbnail ratio (3:4) in the grid.
        thumb = shown(page, models["Many Tags"]).locator(".thumb").bounding_box()
        assert abs(thumb["height"] / thumb["width"] - 4 / 3) < 0.02
        assert horizontal_overflow(page) <= 0
        screenshot(page, f"library-cards-{viewport['width']}")
        assert axe_violations(page) == []

        # List view keeps whole names (not cut to a few characters).
        page.get_by_role("button", name="List view").click()
        expect(page.locator(".cards")).to_have_class(re.compile(r"\bview-list\b"))
        expect_listed(page, 19)
        filler = shown(page, models["Filler 00"]).locator(".card-name")
        assert filler.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
        name = shown(page, models[LONG_NAME.strip()]).locator(".card-name")
        assert name.bounding_box()["width"] > 150
        assert horizontal_overflow(page) <= 0
        screenshot(page, f"library-list-{viewport['width']}")
        page.get_by_role("button", name="Card grid view").click()


def test_phone_filters_behind_a_button(browser, library: Library, live: LiveServer) -> None:
    models = seed(library)
    with browser_page(browser, viewport=PHONE) as page:
        page.goto(live.url)
        expect_listed(page, 19)
        # The filters are folded away: the first card shows on the first screen.
        filters = page.locator("#library-filters")
        expect(filters).to_be_hidden()
        first = page.locator(".card").first.bounding_box()
        assert first["y"] + 80 < PHONE["height"], first
        button = page.get_by_role("button", name="Filters")
        expect(button).to_have_accessible_name("Filters")
        expect(button).to_have_attribute("aria-expanded", "false")
        button.click()
        expect(filters).to_be_visible()
        expect(button).to_have_attribute("aria-expanded", "true")
        page.get_by_label("Base model").select_option("unknown")
        expect(page.locator(".card")).to_have_count(1)
        expect(card(page, models["No Base"])).to_be_visible()
        # The button counts the active filters.
        expect(button).to_have_accessible_name(re.compile(r"^Filters\s*1$"))
        assert horizontal_overflow(page) <= 0
        screenshot(page, "library-phone-filters")
        assert axe_violations(page) == []
        # Escape folds them away again, back on the button.
        page.get_by_label("Folder").focus()
        page.keyboard.press("Escape")
        expect(filters).to_be_hidden()
        expect(button).to_be_focused()
        expect(button).to_have_attribute("aria-expanded", "false")
        # With the filters folded, a few Tab presses lead from the search box to a card:
        # Filters, grid view, list view, Inspect image, the card.
        page.get_by_label(re.compile("^Search models")).focus()
        for _ in range(5):
            page.keyboard.press("Tab")
        expect(card(page, models["No Base"])).to_be_focused()


def test_tag_filter_by_typing(page, library: Library, live: LiveServer) -> None:
    models = seed(library)
    page.goto(live.url)
    expect(page.locator(".card")).to_have_count(19)
    combo = page.get_by_role("combobox", name="Tags")
    # nsfw is excluded by default, shown as a chip.
    nsfw = page.locator('.tag-filter-chips .chip[data-tag="nsfw"]')
    expect(nsfw).to_have_attribute("data-state", "exclude")
    # Type, arrow down, Enter: the tag is required.
    combo.fill("sty")
    listbox = page.get_by_role("listbox", name="Matching tags")
    expect(listbox).to_be_visible()
    expect(listbox.get_by_role("option")).to_have_count(1)
    expect(combo).to_have_attribute("aria-expanded", "true")
    combo.press("Enter")
    style = page.locator('.tag-filter-chips .chip[data-tag="style"]')
    expect(style).to_have_attribute("data-state", "include")
    expect(combo).to_have_value("")
    expect(page.locator(".card")).to_have_count(16)
    # Shift+Enter excludes the active option (the first one, then moved by the arrows).
    combo.fill("tag6")
    expect(listbox.get_by_role("option")).to_have_count(4)  # tag60..tag63
    expect(listbox.get_by_role("option", selected=True)).to_have_text("tag601")
    combo.press("ArrowDown")
    active = listbox.get_by_role("option", selected=True)
    expect(active).to_have_text("tag611")
    expect(combo).to_have_attribute("aria-activedescendant", active.get_attribute("id"))
    combo.press("Shift+Enter")
    expect(page.locator(".tag-filter-chips .chip-exclude")).to_have_count(2)
    expect(page.locator('.chip[data-tag="tag61"]')).to_have_attribute("data-state", "exclude")
    # Many Tags has every tagNN, but not style: it was never in; Detail Slider stays.
    expect(page.locator(".card")).to_have_count(16)
    # A click on a chip switches it; Delete removes it.
    toggle = style.locator(".chip-toggle")
    toggle.click()
    expect(style).to_have_attribute("data-state", "exclude")
    expect(page.locator(".card")).to_have_count(2)  # Many Tags excluded by tag6x
    toggle.focus()
    page.keyboard.press("Delete")
    expect(style).to_have_count(0)
    nsfw.locator(".chip-remove").click()
    expect(nsfw).to_have_count(0)
    expect(page.get_by_label("Show NSFW models")).to_be_checked()
    expect(card(page, models["Spicy"])).to_be_visible()


def test_one_tab_stop_and_arrow_keys(browser, library: Library, live: LiveServer) -> None:
    models = seed(library)
    with browser_page(browser, viewport=DESKTOP) as page:
        page.goto(live.url)
        expect(page.locator(".card")).to_have_count(19)
        # Exactly one card is in the tab order.
        expect(page.locator('.card[tabindex="0"]')).to_have_count(1)
        page.get_by_label(re.compile("^Search models")).focus()
        presses = 0
        while presses < 30:
            page.keyboard.press("Tab")
            presses += 1
            if page.evaluate("() => document.activeElement.classList.contains('card')"):
                break
        # search, grid/list view, Inspect image, the tag finder and its nsfw chip, base,
        # folder, sort, order, recently used, NSFW images, show NSFW, show missing, update
        # available, check for updates, then the first card.
        assert presses <= 16, presses
        first = page.locator(".card").first
        expect(first).to_be_focused()
        # Arrow keys by the grid's columns.
        cols = page.evaluate(
            """() => { const cards = [...document.querySelectorAll('.card')];
                return cards.filter(c => c.offsetTop === cards[0].offsetTop).length; }"""
        )
        assert cols >= 3
        cards = page.locator(".card")
        page.keyboard.press("ArrowRight")
        expect(cards.nth(1)).to_be_focused()
        page.keyboard.press("ArrowDown")
        expect(cards.nth(1 + cols)).to_be_focused()
        page.keyboard.press("ArrowLeft")
        expect(cards.nth(cols)).to_be_focused()
        page.keyboard.press("ArrowUp")
        expect(cards.nth(0)).to_be_focused()
        page.keyboard.press("End")
        expect(cards.last).to_be_focused()
        page.keyboard.press("Home")
        expect(cards.nth(0)).to_be_focused()
        page.keyboard.press("ArrowRight")
        expect(page.locator('.card[tabindex="0"]')).to_have_count(1)
        expect(cards.nth(1)).to_have_attribute("tabindex", "0")
        # Tab leaves the card for its own controls, then the grid.
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")
        expect(cards.nth(1)).to_be_focused()
        # Enter opens the details; closing them gives the focus back to the card.
        sha = cards.nth(1).get_attribute("data-sha256")
        page.keyboard.press("Enter")
        dialog = page.locator("dialog.details")
        expect(dialog).to_be_visible()
        assert sha in page.url
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        expect(card(page, sha)).to_be_focused()
        assert sha in models.values()


def test_copy_lora_string_and_trigger_words(page, library: Library, live: LiveServer) -> None:
    models = seed(library)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page.goto(live.url)
    slider = card(page, models["Detail Slider"])
    menu_button = slider.get_by_role("button", name="Actions for Detail Slider")
    menu_button.click()
    menu = page.get_by_role("menu")
    expect(menu).to_be_visible()
    expect(menu_button).to_have_attribute("aria-expanded", "true")
    assert axe_violations(page) == []
    # Not inside ComfyUI: no "Send to workflow".
    expect(menu.get_by_role("menuitem", name="Send to workflow")).to_have_count(0)
    expect(menu.get_by_role("menuitem").first).to_be_focused()
    menu.get_by_role("menuitem", name="Copy <lora:…> tag").click()
    expect(
        page.locator(".toast-success", has_text="Copied <lora:detail_slider_v2:0.7>")
    ).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == "<lora:detail_slider_v2:0.7>"
    expect(menu).to_have_count(0)
    # Keyboard: the menu opens from the card, arrows move, Enter runs.
    slider.focus()
    page.keyboard.press("Shift+F10")
    expect(page.get_by_role("menu")).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("menuitem", name="Copy trigger words")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".toast-success", has_text="Copied detailed, sharp focus")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == "detailed, sharp focus"
    # Escape closes a menu and gives the focus back to its button.
    menu_button.click()
    page.keyboard.press("Escape")
    expect(page.get_by_role("menu")).to_have_count(0)
    expect(menu_button).to_be_focused()
    # A model without a preferred weight: weight 1; no Civitai page known: no link.
    filler = card(page, models["Filler 00"])
    filler.get_by_role("button", name=re.compile("^Actions for")).click()
    expect(page.get_by_role("menuitem", name="Open the Civitai page")).to_have_count(0)
    page.get_by_role("menuitem", name="Copy <lora:…> tag").click()
    expect(page.locator(".toast-success", has_text="Copied <lora:Filler 00:1>")).to_be_visible()


def test_nsfw_blur_reveal_and_setting(page, library: Library, live: LiveServer) -> None:
    models = seed(library)
    page.goto(live.url)
    page.get_by_label("Show NSFW models").check()
    spicy = card(page, models["Spicy"])
    media = spicy.locator(".card-media")
    expect(media).to_have_class(re.compile(r"\bnsfw-blur\b"))
    spicy.scroll_into_view_if_needed()
    img = spicy.locator(".thumb img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    assert "blur" in img.evaluate("el => getComputedStyle(el).filter")
    # Other cards are not blurred.
    assert card(page, models["Filler 00"]).locator(".card-media.nsfw-blur").count() == 0
    # A click reveals the image (and does not open the details).
    spicy.get_by_role("button", name="Show the NSFW image of Spicy").click()
    expect(media).not_to_have_class(re.compile(r"\bnsfw-blur\b"))
    assert img.evaluate("el => getComputedStyle(el).filter") == "none"
    expect(page.locator("dialog.details")).to_be_hidden()
    # "Hide": no image at all; "Show": plain image. The setting is remembered.
    page.get_by_label("NSFW images").select_option("hide")
    expect(spicy.locator(".card-media")).to_have_class(re.compile(r"\bnsfw-hidden\b"))
    expect(spicy.locator(".thumb img")).to_have_count(0)
    assert page.evaluate("localStorage.getItem('hikaze.nsfw')") == "hide"
    page.reload()
    page.get_by_label("Show NSFW models").check()
    expect(page.get_by_label("NSFW images")).to_have_value("hide")
    expect(spicy.locator(".thumb img")).to_have_count(0)
    page.get_by_label("NSFW images").select_option("show")
    spicy.scroll_into_view_if_needed()
    img = spicy.locator(".thumb img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    assert img.evaluate("el => getComputedStyle(el).filter") == "none"
    expect(spicy.locator(".nsfw-reveal")).to_have_count(0)


# A ComfyUI tab as web/comfy/link.js is: it answers "hello" with when it had the focus, and
# takes a "send" addressed to it, answering "sent".
COMFY_TAB = """ok => {
    window.received = [];
    const channel = new BroadcastChannel("hikaze-workflow");
    channel.onmessage = (event) => {
        const m = event.data;
        if (m.type === "hello") {
            channel.postMessage({type: "here", id: m.id, tab: "t1", focusedAt: 5});
        }
        if (m.type === "send" && m.tab === "t1") {
            window.received.push(m.item);
            channel.postMessage({type: "sent", id: m.id, ok});
        }
    };
}"""


@pytest.mark.parametrize("live", ["/hikaze"], indirect=True)
def test_send_to_workflow_inside_comfyui(page, library: Library, live: LiveServer) -> None:
    """Served by ComfyUI (mounted under /hikaze/), a card's menu offers "Send to workflow",
    which hands the model to the ComfyUI tab over the BroadcastChannel, and says whether
    it went in, or that no ComfyUI tab answered."""
    models = seed(library)
    manager = page.context.new_page()
    log = ConsoleLog(manager)
    manager.goto(live.url)
    slider = card(manager, models["Detail Slider"])
    menu_button = slider.get_by_role("button", name="Actions for Detail Slider")

    # No ComfyUI tab listens yet.
    menu_button.click()
    manager.get_by_role("menuitem", name="Send to workflow").click()
    expect(manager.locator(".toast-error", has_text="No ComfyUI tab answered")).to_be_visible()

    # The ComfyUI tab: a page of the same origin (the stand-in host application).
    host = live.url.removesuffix("hikaze/")
    page.route(f"{host}favicon.ico", lambda route: route.fulfill(status=204))
    page.goto(host)
    page.evaluate(COMFY_TAB, True)
    menu_button.click()
    manager.get_by_role("menuitem", name="Send to workflow").click()
    sent = manager.locator(".toast-success", has_text="Sent Detail Slider to the workflow")
    expect(sent).to_be_visible()
    assert page.evaluate("window.received") == [
        {
            "sha256": models["Detail Slider"],
            "name": "Detail Slider",
            "type": "loras",
            "path": str(library.root / "loras" / "detail_slider_v2.safetensors"),
        }
    ]
    manager.close()
    assert not log.errors, log.errors
