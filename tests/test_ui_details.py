"""End-to-end: the model details panel in headless Chromium at 1440x900 and 390x844, against
a real server and library: view mode first, Edit and Save (the Save bar on a phone), the
cover and the order of images, the full-screen viewer, NSFW blur, one-step tag creation,
and the unknown-model error."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser import Library, LiveServer, axe_violations, png_bytes, requires_chromium
from tests.browser import screenshot as save_screenshot

pytestmark = [pytest.mark.browser, requires_chromium]

expect = pytest.importorskip("playwright.sync_api").expect

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
LONG_NAME = "A very long model name that a card clamps to two lines: Ultra Detailed Portraits v3.5"
EDITABLE = "input:not([type=file]), textarea"  # the upload's file input is hidden
COLORS = ((219, 97, 162), (63, 185, 80), (47, 129, 247))


def add_images(lib: Library, sha: str, n: int = 3) -> None:
    for i in range(n):
        lib.services.images.add_image(sha, png_bytes(COLORS[i % len(COLORS)]))


def seed(lib: Library) -> dict[str, str]:
    lib.db.tags.ensure("style", "#2f81f7")
    lib.db.tags.ensure("NSFW", "#f85149")
    sha = lib.add_model(
        LONG_NAME,
        tags=("style",),
        meta={"description": "line one\nline two", "prompts": {"positive": "portrait"}},
    )
    add_images(lib, sha)
    lib.add_model("Spicy", tags=("NSFW",), image=(248, 81, 73))
    lib.add_model("Civitai says", meta={"civitai": {"nsfw": True}}, image=(210, 153, 34))
    lib.add_model("Plain", image=(63, 185, 80))
    return lib.models


def set_viewport(page: Any, viewport: dict[str, int]) -> None:
    page.set_viewport_size(viewport)


def assert_no_overflow(page: Any) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"horizontal overflow: {width}"


def assert_accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert not violations, violations


def focused(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            return {tag: el.tagName, id: el.id, cls: el.className,
                    label: el.getAttribute("aria-label") || el.textContent.trim()};
        }"""
    )


def in_viewport(page: Any, locator: Any) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return (
        box is not None
        and box["y"] >= 0
        and box["y"] + box["height"] <= size["height"]
        and box["x"] >= 0
        and box["x"] + box["width"] <= size["width"]
    )


def wait_loaded(page: Any, img: Any) -> None:
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())


@VIEWPORTS
def test_opens_in_view_mode_then_edit_and_save(
    page, library: Library, live: LiveServer, viewport
) -> None:
    models = seed(library)
    sha = models[LONG_NAME]
    set_viewport(page, viewport)
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    title = dialog.get_by_role("heading", name=LONG_NAME)
    expect(title).to_be_visible()  # the full name, not clamped
    expect(title).to_be_focused()
    assert focused(page)["tag"] == "H2"
    expect(dialog.locator(EDITABLE)).to_have_count(0)  # nothing a keypress edits
    view = dialog.locator(".details-view")
    expect(view).to_contain_text("line one\nline two")
    expect(view).to_contain_text("portrait")
    # A stray keypress changes nothing and does not close the panel.
    page.keyboard.type("xyz")
    expect(dialog).to_be_visible()
    assert_no_overflow(page)
    assert_accessible(page)
    name = "phone" if viewport is PHONE else "desktop"
    save_screenshot(page, f"details-view-{name}")

    dialog.get_by_role("button", name="Edit", exact=True).click()
    field = dialog.get_by_label("Name", exact=True)
    expect(field).to_be_focused()
    expect(field).to_have_value(LONG_NAME)
    save = dialog.get_by_role("button", name="Save", exact=True)
    # The Save bar is on screen at once, and still after scrolling the panel to the top.
    assert in_viewport(page, save), save.bounding_box()
    dialog.evaluate("d => d.scrollTo(0, 0)")
    assert in_viewport(page, save), save.bounding_box()
    dialog.get_by_label("Description").fill("fresh text")
    assert in_viewport(page, save), save.bounding_box()
    assert_no_overflow(page)
    assert_accessible(page)
    save_screenshot(page, f"details-edit-{name}")

    field.fill("Renamed")
    save.click()
    expect(page.locator(".toast-success", has_text="Saved")).to_be_visible()
    expect(dialog.get_by_role("heading", name="Renamed")).to_be_visible()
    expect(dialog.locator(EDITABLE)).to_have_count(0)  # back in view mode
    expect(dialog.get_by_role("button", name="Edit", exact=True)).to_be_focused()
    expect(page.locator(f'.card[data-sha256="{sha}"] .card-name')).to_have_text("Renamed")
    record = library.db.models.get(sha)
    assert record["name"] == "Renamed" and record["meta"]["description"] == "fresh text"


def test_cancel_with_changes_asks_and_escape_keeps_the_guard(
    page, library: Library, live: LiveServer
) -> None:
    models = seed(library)
    sha = models["Plain"]
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    # View mode: Escape closes at once.
    expect(dialog.get_by_role("heading", name="Plain")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(f"{live.url}#/library")  # closed: back to the page's URL

    page.goto(f"{live.url}#/library/{sha}")
    dialog.get_by_role("button", name="Edit", exact=True).click()
    dialog.get_by_label("Name", exact=True).fill("Not saved")
    dialog.get_by_role("button", name="Cancel", exact=True).click()
    expect(dialog.get_by_role("alertdialog")).to_be_visible()
    dialog.get_by_role("button", name="Keep editing").click()
    expect(dialog.get_by_label("Name", exact=True)).to_have_value("Not saved")
    page.keyboard.press("Escape")
    expect(dialog.get_by_role("alertdialog")).to_be_visible()
    dialog.get_by_role("button", name="Discard changes").click()
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(f"{live.url}#/library")
    assert library.db.models.get(sha)["name"] == "Plain"

    page.goto(f"{live.url}#/library/{sha}")
    dialog.get_by_role("button", name="Edit", exact=True).click()
    dialog.get_by_label("Name", exact=True).fill("Not saved either")
    dialog.get_by_role("button", name="Cancel", exact=True).click()
    dialog.get_by_role("button", name="Discard changes").click()
    expect(dialog).to_be_visible()  # Cancel's discard goes back to view mode
    expect(dialog.get_by_role("heading", name="Plain")).to_be_visible()
    expect(dialog.locator(EDITABLE)).to_have_count(0)


@VIEWPORTS
def test_make_cover_and_reorder(page, library: Library, live: LiveServer, viewport) -> None:
    models = seed(library)
    sha = models[LONG_NAME]
    set_viewport(page, viewport)
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    items = dialog.locator(".gallery-item")
    expect(items).to_have_count(3)
    thumb = page.locator(f'.card[data-sha256="{sha}"] .thumb img')
    expect(thumb).to_have_attribute("src", re.compile(rf"{sha}_0\.webp"))
    expect(items.nth(0).locator(".cover-badge")).to_have_text("Cover")
    expect(dialog.get_by_role("button", name="Move image 1 earlier")).to_be_disabled()
    expect(dialog.get_by_role("button", name="Move image 3 later")).to_be_disabled()

    dialog.get_by_role("button", name="Make cover: image 3").click()
    expect(items.nth(0)).to_have_attribute("data-name", f"{sha}_2.webp")
    assert library.services.images.list_seqs(sha) == [2, 0, 1]
    expect(thumb).to_have_attribute("src", re.compile(rf"{sha}_2\.webp"))  # the card follows
    wait_loaded(page, thumb)
    assert_no_overflow(page)

    # Keyboard: Enter on "Move later" moves it, and the focus follows the image.
    later = dialog.get_by_role("button", name="Move image 1 later")
    later.focus()
    page.keyboard.press("Enter")
    expect(items.nth(1)).to_have_attribute("data-name", f"{sha}_2.webp")
    assert library.services.images.list_seqs(sha) == [0, 2, 1]
    expect(dialog.get_by_role("button", name="Move image 2 later")).to_be_focused()
    page.keyboard.press("Enter")
    expect(items.nth(2)).to_have_attribute("data-name", f"{sha}_2.webp")
    # At the end "later" is disabled: the focus moves to "earlier" of the same image.
    expect(dialog.get_by_role("button", name="Move image 3 earlier")).to_be_focused()
    assert library.services.images.list_seqs(sha) == [0, 1, 2]
    expect(dialog.locator(".upload-status")).to_have_text("Moved to place 3")
    expect(thumb).to_have_attribute("src", re.compile(rf"{sha}_0\.webp"))

    # Drag and drop an image onto another puts it at that place.
    if viewport is DESKTOP:
        items.nth(2).drag_to(items.nth(0))
        expect(items.nth(0)).to_have_attribute("data-name", f"{sha}_2.webp")
        assert library.services.images.list_seqs(sha) == [2, 0, 1]
        items.nth(0).drag_to(items.nth(2))
        expect(items.nth(2)).to_have_attribute("data-name", f"{sha}_2.webp")
        assert library.services.images.list_seqs(sha) == [0, 1, 2]

    # The order survives a reload.
    dialog.get_by_role("button", name="Move image 2 earlier").click()
    expect(items.nth(0)).to_have_attribute("data-name", f"{sha}_1.webp")
    page.reload()
    expect(page.locator("dialog.details .gallery-item").nth(0)).to_have_attribute(
        "data-name", f"{sha}_1.webp"
    )
    expect(thumb).to_have_attribute("src", re.compile(rf"{sha}_1\.webp"))


@VIEWPORTS
def test_full_screen_viewer(page, library: Library, live: LiveServer, viewport) -> None:
    models = seed(library)
    sha = models[LONG_NAME]
    set_viewport(page, viewport)
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    opener = dialog.get_by_role("button", name="Open image 2 in full size")
    opener.click()
    viewer = page.locator("dialog.lightbox")
    big = viewer.locator("img")
    expect(viewer).to_be_visible()
    expect(big).to_have_attribute("src", re.compile(rf"{sha}_1\.webp\?quality=high"))
    expect(viewer.locator(".lightbox-counter")).to_have_text("2 / 3")
    wait_loaded(page, big)
    box = viewer.bounding_box()  # full screen
    assert box is not None and (box["width"], box["height"]) == (
        viewport["width"],
        viewport["height"],
    )
    assert_no_overflow(page)
    assert_accessible(page)
    save_screenshot(page, f"details-viewer-{'phone' if viewport is PHONE else 'desktop'}")

    page.keyboard.press("ArrowRight")
    expect(big).to_have_attribute("src", re.compile(rf"{sha}_2\.webp\?quality=high"))
    page.keyboard.press("ArrowRight")  # wraps around
    expect(big).to_have_attribute("src", re.compile(rf"{sha}_0\.webp\?quality=high"))
    page.keyboard.press("ArrowLeft")
    expect(big).to_have_attribute("src", re.compile(rf"{sha}_2\.webp\?quality=high"))
    viewer.get_by_role("button", name="Previous image").click()
    expect(big).to_have_attribute("src", re.compile(rf"{sha}_1\.webp\?quality=high"))
    viewer.get_by_role("button", name="Next image").click()
    expect(viewer.locator(".lightbox-counter")).to_have_text("3 / 3")

    # Focus stays inside the viewer.
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.closest('dialog.lightbox') !== null")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.closest('dialog.lightbox') !== null")

    # Escape closes the viewer, not the panel; the focus returns to the image shown last.
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Open image 3 in full size")).to_be_focused()
    # Enter on a thumbnail opens it too.
    page.keyboard.press("Enter")
    expect(viewer).to_be_visible()
    expect(viewer.locator(".lightbox-counter")).to_have_text("3 / 3")
    viewer.get_by_role("button", name="Close").click()
    expect(viewer).to_be_hidden()
    expect(dialog).to_be_visible()


@pytest.mark.parametrize("name", ["Spicy", "Civitai says"])
def test_nsfw_images_blur_until_clicked(page, library: Library, live: LiveServer, name) -> None:
    models = seed(library)
    sha = models[name]
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    item = dialog.locator(".gallery-item").first
    img = item.locator("img")
    expect(item).to_have_class(re.compile(r"\bnsfw-blurred\b"))
    wait_loaded(page, img)
    assert "blur" in img.evaluate("el => getComputedStyle(el).filter")
    assert_accessible(page)
    save_screenshot(page, "details-nsfw")
    # A click on the blurred image reveals it (the button over it takes the click); from
    # the keyboard, the image opens in the viewer blurred too, until revealed there.
    dialog.get_by_role("button", name="Open image 1 in full size").focus()
    page.keyboard.press("Enter")
    frame = page.locator("dialog.lightbox .lightbox-frame")
    expect(frame).to_have_class(re.compile(r"\bnsfw-blurred\b"))
    page.keyboard.press("Escape")
    dialog.get_by_role("button", name="Show NSFW image 1").click()
    expect(item).not_to_have_class(re.compile(r"nsfw-blurred"))
    assert img.evaluate("el => getComputedStyle(el).filter") == "none"
    dialog.get_by_role("button", name="Open image 1 in full size").click()
    expect(frame).not_to_have_class(re.compile(r"nsfw-blurred"))
    page.keyboard.press("Escape")

    # A model that is not NSFW is never blurred.
    page.goto(f"{live.url}#/library/{models['Plain']}")
    expect(dialog.get_by_role("heading", name="Plain")).to_be_visible()
    expect(dialog.locator(".gallery-item.nsfw-blurred")).to_have_count(0)
    expect(dialog.get_by_role("button", name="Show NSFW image 1")).to_have_count(0)


def test_nsfw_setting_hide_and_show(page, library: Library, live: LiveServer) -> None:
    models = seed(library)
    sha = models["Spicy"]
    page.goto(live.url)
    page.evaluate("localStorage.setItem('hikaze.nsfw', 'hide')")
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    item = dialog.locator(".gallery-item").first
    expect(item.locator(".nsfw-placeholder")).to_have_text("NSFW image hidden")
    expect(item.locator("img")).to_have_count(0)
    dialog.get_by_role("button", name="Show NSFW image 1").click()
    expect(item.locator("img")).to_have_count(1)

    page.evaluate("localStorage.setItem('hikaze.nsfw', 'show')")
    page.reload()
    item = page.locator("dialog.details .gallery-item").first
    expect(item.locator("img")).to_have_count(1)
    expect(item).not_to_have_class(re.compile(r"nsfw"))


def test_new_tag_in_one_step(page, library: Library, live: LiveServer) -> None:
    models = seed(library)
    sha = models["Plain"]
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    dialog.get_by_role("button", name="Edit", exact=True).click()
    tag_input = dialog.get_by_role("combobox", name="Add a tag")
    chips = dialog.locator(".tag-editor .tag-list .tag-name")

    # Type a new name and press Enter at once (before any suggestion shows): created, added.
    tag_input.press_sequentially("brand-new")
    tag_input.press("Enter")
    expect(chips).to_have_text(["brand-new"])
    expect(tag_input).to_have_value("")
    assert library.db.tags.get("brand-new") is not None

    # One click on "Create tag" does the same.
    tag_input.fill("second-new")
    dialog.get_by_role("option", name="Create tag “second-new”").click()
    expect(chips).to_have_text(["brand-new", "second-new"])
    assert library.db.tags.get("second-new") is not None

    # Enter on an existing name adds that tag (no duplicate is created).
    tag_input.press_sequentially("STYLE")
    tag_input.press("Enter")
    expect(chips).to_have_text(["brand-new", "second-new", "style"])

    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".toast-success", has_text="Saved")).to_be_visible()
    tags = sorted(t["name"] for t in library.db.models.get(sha)["tags"])
    assert tags == ["brand-new", "second-new", "style"]
    assert [t["name"] for t in library.db.tags.list()].count("style") == 1


@VIEWPORTS
def test_unknown_model_error_is_padded(page, library: Library, live: LiveServer, viewport):
    seed(library)
    set_viewport(page, viewport)
    page.console_log.allow_http_status(404)
    page.goto(f"{live.url}#/library/{'ab' * 32}")
    dialog = page.locator("dialog.details")
    expect(dialog.get_by_role("heading", name="Could not load the model")).to_be_visible()
    error = dialog.get_by_role("alert")
    expect(error).to_be_visible()
    padding = error.evaluate(
        "el => ['Top', 'Right', 'Bottom', 'Left']"
        ".map(s => parseFloat(getComputedStyle(el)['padding' + s]))"
    )
    assert min(padding) >= 12, padding
    # The text itself starts well inside the panel's edge.
    text_left = error.evaluate(
        "el => { const r = document.createRange(); r.selectNodeContents(el);"
        " return r.getBoundingClientRect().left; }"
    )
    assert text_left - dialog.bounding_box()["x"] >= 12
    assert_no_overflow(page)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_trigger_words_and_preferred_weight_are_edited(
    page, library: Library, live: LiveServer
) -> None:
    """What the card's "copy <lora:...>" and "copy trigger words" use is edited here."""
    models = seed(library)
    sha = models["Plain"]
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    dialog.get_by_role("button", name="Edit", exact=True).click()
    dialog.get_by_label("Trigger words").fill("glow, soft light\nrim")
    dialog.get_by_label("Preferred weight").fill("0.65")
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".toast-success", has_text="Saved")).to_be_visible()
    view = dialog.locator(".details-view")
    expect(view).to_contain_text("glow, soft light, rim")
    expect(view).to_contain_text("0.65")
    record = library.services.models.detail(sha)
    assert (record["trigger_words"], record["preferred_weight"]) == (
        ["glow", "soft light", "rim"],
        0.65,
    )
    # Cleared: both go back to unset; a Save with no change sends nothing.
    dialog.get_by_role("button", name="Edit", exact=True).click()
    dialog.get_by_label("Trigger words").fill("")
    dialog.get_by_label("Preferred weight").fill("")
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(dialog.get_by_role("button", name="Edit", exact=True)).to_be_focused()
    record = library.services.models.detail(sha)
    assert (record["trigger_words"], record["preferred_weight"]) == ([], None)
    dialog.get_by_role("button", name="Edit", exact=True).click()
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(dialog.get_by_role("button", name="Edit", exact=True)).to_be_focused()
    # An out-of-range weight is refused before anything is sent; nothing changes.
    dialog.get_by_role("button", name="Edit", exact=True).click()
    dialog.get_by_label("Preferred weight").fill("12")
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(dialog.locator(".form-error")).to_have_text(
        "The preferred weight is a number from -10 to 10."
    )
    expect(dialog.get_by_label("Preferred weight")).to_be_focused()
    assert library.services.models.detail(sha)["preferred_weight"] is None
