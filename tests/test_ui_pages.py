"""End-to-end: every page loads without a console error, standalone and mounted under a
prefix (as inside ComfyUI), and every request the UI makes stays inside its prefix."""

from __future__ import annotations

import re

import pytest

from tests.browser import (
    Library,
    LiveServer,
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


def test_bare_prefix_redirects_to_the_ui(browser, library: Library) -> None:
    server = LiveServer(library.services, prefix="/hikaze").start()
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{server.port}/hikaze")
        expect(page).to_have_url(f"http://127.0.0.1:{server.port}/hikaze/")
        expect(page.locator(".page-library")).to_be_visible()
        # The host application keeps its own root.
        page.goto(f"http://127.0.0.1:{server.port}/")
        expect(page.locator("body")).to_have_text("host application")
        context.close()
    finally:
        server.stop()
