"""End-to-end: every page loads without a console error, standalone and mounted under a
prefix (as inside ComfyUI), and every request the UI makes stays inside its prefix; the
header: the theme toggle, and a compact sticky header on a phone."""

from __future__ import annotations

import re

import pytest

from tests.browser import (
    DESKTOP,
    PHONE,
    Library,
    LiveServer,
    axe_violations,
    browser_page,
    horizontal_overflow,
    requires_chromium,
)
from tests.helpers import write_model

pytestmark = [pytest.mark.browser, requires_chromium]

expect = pytest.importorskip("playwright.sync_api").expect


def seed(lib: Library) -> str:
    lib.db.tags.ensure("style", "#2f81f7")
    sha = lib.add_model("Prefixed LoRA", tags=("style",), image=(163, 113, 247))
    lib.add_model("Plain Checkpoint", type_="checkpoints", base="SD1.5")
    path = lib.root / "incoming" / "waiting.safetensors"
    write_model(path, 1024, seed=9)
    lib.add_pending("waiting", path, tags=("style",), image=(210, 153, 34))
    return sha


@pytest.mark.parametrize("live", [None, "/hikaze"], indirect=True, ids=["root", "prefix"])
def test_every_page_without_errors(page, library: Library, live: LiveServer) -> None:
    sha = seed(library)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    page.goto(live.url)
    expect(page.locator(".card")).to_have_count(2)
    card = page.locator(f'.card[data-sha256="{sha}"]')
    page.wait_for_function(
        "img => img && img.complete && img.naturalWidth > 0",
        arg=card.locator(".thumb img").element_handle(),
    )

    # Details, and a save through the prefix (a same-origin PATCH).
    card.click()
    dialog = page.locator("dialog.details")
    dialog.get_by_role("button", name="Edit", exact=True).click()  # details open in view mode
    dialog.get_by_label("Description").fill("saved through the prefix")
    dialog.get_by_role("button", name="Save").click()
    expect(page.locator(".toast-success", has_text="Saved")).to_be_visible()
    assert library.db.models.get(sha)["meta"]["description"] == "saved through the prefix"
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_role("link", name=re.compile("Pending review")).click()
    expect(page).to_have_url(re.compile(r"#/pending$"))
    row = page.locator(".pending-table tbody tr")
    expect(row).to_have_count(1)
    page.wait_for_function(
        "img => img && img.complete && img.naturalWidth > 0",
        arg=row.locator(".thumb img").element_handle(),
    )

    page.get_by_role("link", name="Migration & scan").click()
    expect(page.locator("#stage2-progress")).to_have_attribute("aria-valuenow", "0.0")
    expect(page.locator(".badge").first).to_have_text("idle")

    # Back and forth through history keeps working.
    page.go_back()
    expect(page.locator(".pending-table tbody tr")).to_have_count(1)
    page.go_back()
    expect(page.locator(".card")).to_have_count(2)

    assert requests, "the page made no request"
    outside = [url for url in requests if not url.startswith(live.url)]
    assert not outside, f"requests outside {live.url}: {outside}"
    # The page fixture fails the test if anything was logged to the console.


@pytest.mark.parametrize("live", ["/hikaze"], indirect=True)
def test_bare_prefix_redirects_to_the_ui(page, live: LiveServer) -> None:
    page.goto(f"http://127.0.0.1:{live.port}/hikaze")
    expect(page).to_have_url(f"http://127.0.0.1:{live.port}/hikaze/")
    expect(page.locator(".page-library")).to_be_visible()
    # The host application keeps its own root (it serves no /favicon.ico: a 404).
    page.console_log.allow_http_status(404)
    page.goto(f"http://127.0.0.1:{live.port}/")
    expect(page.locator("body")).to_have_text("host application")


LIGHT_BG = "rgb(255, 255, 255)"
DARK_BG = "rgb(15, 17, 21)"


def background(page) -> str:
    return page.evaluate("() => getComputedStyle(document.body).backgroundColor")


def test_theme_toggle_follows_the_system_or_forces_one(
    browser, library: Library, live: LiveServer
) -> None:
    seed(library)
    with browser_page(browser, viewport=DESKTOP, color_scheme="light") as page:
        page.goto(live.url)
        expect(page.locator(".card")).to_have_count(2)
        meta = page.locator('meta[name="color-scheme"]')
        expect(meta).to_have_attribute("content", "light dark")
        toggle = page.locator(".topbar .theme-toggle")
        html = page.locator("html")

        # Auto: the system's theme, and it follows a change of the system's theme at once.
        expect(toggle).to_have_accessible_name("Color theme: automatic (as the system)")
        expect(html).not_to_have_attribute("data-theme", re.compile(".*"))
        assert background(page) == LIGHT_BG
        page.emulate_media(color_scheme="dark")
        assert background(page) == DARK_BG
        page.emulate_media(color_scheme="light")

        # auto -> light -> dark: forced whatever the system says; remembered.
        toggle.click()
        expect(toggle).to_have_accessible_name("Color theme: light")
        expect(html).to_have_attribute("data-theme", "light")
        assert page.evaluate("localStorage.getItem('hikaze.theme')") == "light"
        toggle.click()
        expect(toggle).to_have_accessible_name("Color theme: dark")
        expect(html).to_have_attribute("data-theme", "dark")
        assert background(page) == DARK_BG  # while the system is light
        assert page.evaluate("localStorage.getItem('hikaze.theme')") == "dark"
        violations = axe_violations(page)
        assert not violations, violations

        page.reload()
        expect(page.locator(".card")).to_have_count(2)
        expect(toggle).to_have_accessible_name("Color theme: dark")
        assert background(page) == DARK_BG

        # A forced light theme on a dark system, then back to auto.
        page.emulate_media(color_scheme="dark")
        toggle.click()
        expect(toggle).to_have_accessible_name("Color theme: automatic (as the system)")
        assert background(page) == DARK_BG
        page.evaluate("localStorage.setItem('hikaze.theme', 'light')")
        page.reload()
        expect(page.locator(".card")).to_have_count(2)
        expect(html).to_have_attribute("data-theme", "light")
        assert background(page) == LIGHT_BG
        violations = axe_violations(page)
        assert not violations, violations

        # Storage holding garbage falls back to auto.
        page.evaluate("localStorage.setItem('hikaze.theme', 'purple')")
        page.reload()
        expect(toggle).to_have_accessible_name("Color theme: automatic (as the system)")
        assert background(page) == DARK_BG


def test_header_on_a_phone_is_compact_and_sticky(
    browser, library: Library, live: LiveServer
) -> None:
    seed(library)
    with browser_page(browser, viewport=PHONE) as page:
        page.goto(live.url)
        expect(page.locator(".card")).to_have_count(2)
        topbar = page.locator(".topbar")
        nav = page.locator(".topbar .nav")
        height = topbar.evaluate("el => el.offsetHeight")
        assert height <= 80, f"the phone header is {height} px tall"
        # Its height is published for scroll padding and sticky parts of the pages.
        assert (
            page.evaluate(
                "getComputedStyle(document.documentElement).getPropertyValue('--topbar-height')"
            )
            == f"{height}px"
        )
        # The nav scrolls sideways inside the header; the document does not.
        assert nav.evaluate("el => el.scrollWidth > el.clientWidth")
        assert horizontal_overflow(page) <= 0
        # Every page is reachable from the nav, and the current link is brought into view.
        for label, route in (
            ("Downloads", "downloads"),
            ("Duplicates", "duplicates"),
            ("Migration & scan", "migration"),
            ("Pending review", "pending"),
            ("Library", "library"),
        ):
            page.get_by_role("link", name=re.compile(f"^{re.escape(label)}")).click()
            expect(page).to_have_url(re.compile(f"#/{route}$"))
            current = nav.locator('[aria-current="page"]')
            expect(current).to_have_attribute("data-nav", route)
            inside = current.evaluate(
                """link => {
                    const a = link.getBoundingClientRect();
                    const b = link.parentElement.getBoundingClientRect();
                    return a.left >= b.left - 1 && a.right <= b.right + 1;
                }"""
            )
            assert inside, f"the current link {label!r} is scrolled out of the nav"
            assert horizontal_overflow(page) <= 0, route

        # Sticky, and whatever is scrolled into view lands below it, not under it.
        page.evaluate(
            """() => {
                const view = document.getElementById("view");
                view.append(Object.assign(document.createElement("div"), {className: "probe"}));
                view.lastChild.style.height = "3000px";
                const heading = document.createElement("h2");
                heading.id = "probe-heading";
                heading.textContent = "Probe";
                view.append(heading);
                heading.scrollIntoView();
            }"""
        )
        box = page.locator("#probe-heading").bounding_box()
        header = topbar.bounding_box()
        assert header is not None and box is not None
        assert header["y"] == 0, "the header scrolled away"
        assert page.evaluate("scrollY") > 1000
        assert box["y"] >= header["height"], "a heading scrolled to hides under the header"


def test_header_on_a_desktop_is_one_row(browser, library: Library, live: LiveServer) -> None:
    seed(library)
    with browser_page(browser, viewport=DESKTOP) as page:
        page.goto(live.url)
        expect(page.locator(".card")).to_have_count(2)
        assert page.locator(".topbar").evaluate("el => el.offsetHeight") <= 60
        nav = page.locator(".topbar .nav")
        assert nav.evaluate("el => el.scrollWidth <= el.clientWidth"), "the nav is cut"
