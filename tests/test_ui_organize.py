"""End-to-end: "Move to template folder" in headless Chromium against a real server and a
real library: for a selection from the bulk bar (a preview, then the result per model, one
refused because a file is in the way) and for one model from its details panel (a template
typed in, a bad one refused with its reason)."""

from __future__ import annotations

import pytest

from tests.browser import Library, LiveServer, axe_violations, requires_chromium, screenshot
from tests.helpers import write_model
from tests.test_ui_library_cards import add

pytestmark = [pytest.mark.browser, requires_chromium]

expect = pytest.importorskip("playwright.sync_api").expect

TEMPLATE = {"download_template": "{base_model}"}


@pytest.mark.parametrize("library", [TEMPLATE], indirect=True)
def test_bulk_move_shows_the_plan_then_each_result(
    page, library: Library, live: LiveServer
) -> None:
    one = add(library, "Model 1", base="SDXL")
    two = add(library, "Model 2", base="Pony")
    three = add(library, "Model 3", base="SDXL")
    blocker = library.root / "loras" / "Pony" / "Model 2.safetensors"
    write_model(blocker, b"someone else's file")
    page.goto(live.url)
    for n in (1, 2, 3):
        page.get_by_label(f"Select Model {n}", exact=True).click()
    bar = page.get_by_role("region", name="Selected models")
    bar.get_by_role("button", name="Move to template folder…").click()

    dialog = page.get_by_role("dialog", name="Move 3 models to their template folder")
    expect(dialog.get_by_role("status")).to_have_text(
        "2 to move, 0 already in place, 1 cannot move."
    )
    rows = dialog.locator(".move-result")
    expect(rows).to_have_count(3)
    target = library.root / "loras" / "SDXL" / "Model 1.safetensors"
    row_one = dialog.locator(f'.move-result[data-sha="{one}"]')
    expect(row_one).to_have_attribute("data-status", "planned")
    expect(row_one.locator(".move-to")).to_have_text(str(target))
    row_two = dialog.locator(f'.move-result[data-sha="{two}"]')
    expect(row_two).to_have_attribute("data-status", "failed")
    expect(row_two.locator(".move-error")).to_contain_text("exists; not overwriting it")
    assert (library.root / "loras" / "Model 1.safetensors").is_file()  # a preview moves nothing
    assert axe_violations(page) == []
    screenshot(page, "library-move-preview")

    dialog.get_by_role("button", name="Move", exact=True).click()
    expect(dialog.get_by_role("status")).to_have_text("2 moved, 0 already in place, 1 failed.")
    expect(row_one).to_have_attribute("data-status", "moved")
    expect(dialog.locator(f'.move-result[data-sha="{three}"]')).to_have_attribute(
        "data-status", "moved"
    )
    expect(dialog.get_by_role("button", name="Move", exact=True)).to_be_disabled()
    assert target.is_file() and library.db.models.get(one)["path"] == str(target)
    assert library.db.models.get(two)["path"] == str(library.root / "loras" / "Model 2.safetensors")
    assert blocker.read_bytes() == b"someone else's file"
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_have_count(0)


def test_details_move_with_a_typed_template(page, library: Library, live: LiveServer) -> None:
    sha = add(library, "Solo", base="SD1")
    page.console_log.allow_http_status(400)  # the bad template and the missing setting
    page.goto(f"{live.url}#/library/{sha}")
    details = page.locator("dialog.details")
    expect(details.get_by_role("heading", name="Solo")).to_be_visible()
    details.get_by_role("button", name="Move to template folder…").click()

    dialog = page.get_by_role("dialog", name="Move 1 model to its template folder")
    # No HIKAZE_DOWNLOAD_TEMPLATE on this server: the preview says so.
    expect(dialog.get_by_role("alert")).to_contain_text("HIKAZE_DOWNLOAD_TEMPLATE")
    field = dialog.get_by_label("Folder template")
    field.fill("{nope}/x")
    dialog.get_by_role("button", name="Preview").click()
    expect(dialog.get_by_role("alert")).to_contain_text("unknown placeholders in the template: no")
    field.fill("{base_model}/kept")
    dialog.get_by_role("button", name="Preview").click()
    target = library.root / "loras" / "SD1" / "kept" / "Solo.safetensors"
    expect(dialog.locator(".move-to")).to_have_text(str(target))
    expect(dialog.get_by_role("alert")).to_be_hidden()
    dialog.get_by_role("button", name="Move", exact=True).click()
    expect(dialog.get_by_role("status")).to_have_text("1 moved, 0 already in place, 0 failed.")
    dialog.get_by_role("button", name="Close").click()
    expect(details.locator("code.path")).to_have_text(str(target))
    assert target.is_file() and library.db.models.get(sha)["path"] == str(target)
