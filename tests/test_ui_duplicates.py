"""End-to-end: the Duplicates page in headless Chromium against a real server: models found
at several paths (real duplicate files, hashed by a real scan), their wasted bytes, and
deleting an extra copy through the confirmation dialog (the file leaves the disk)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.browser import Library, LiveServer, axe_violations, requires_chromium, screenshot
from tests.helpers import write_model

pytestmark = [
    pytest.mark.browser,
    requires_chromium,
    # The watcher off: the files change only as each test says.
    pytest.mark.parametrize("library", [{"watch": "off"}], indirect=True),
]

expect = pytest.importorskip("playwright.sync_api").expect


def seed_copies(library: Library) -> dict[str, Path]:
    """a (300,000 bytes) at two paths and small (5,000 bytes) at three; a first scan hashes
    them all, keeping one model per content and the other files as its copies."""
    loras = library.root / "loras"
    a = loras / "a.safetensors"
    write_model(a, 300_000, seed=1)
    copy = loras / "a folder with a rather long name" / "a_copy_with_a_long_file_name.safetensors"
    copy.parent.mkdir()
    shutil.copyfile(a, copy)
    small = loras / "small.safetensors"
    write_model(small, 5000, seed=2)
    shutil.copyfile(small, library.root / "s2.safetensors")
    shutil.copyfile(small, library.root / "s3.safetensors")
    library.services.scanner.scan(immediate_hashing=True, conf_strategy="delete")
    return {"a": a, "copy": copy, "small": small}


def api_groups(page, live: LiveServer) -> list[dict]:
    return page.request.get(f"{live.url}api/duplicates").json()


def test_duplicates_are_listed_and_a_copy_is_deleted(
    page, library: Library, live: LiveServer
) -> None:
    files = seed_copies(library)
    page.goto(f"{live.url}#/duplicates")
    groups = page.locator(".dup-group")
    expect(groups).to_have_count(2)
    found = api_groups(page, live)
    assert [len(g["paths"]) for g in found] == [2, 3]  # the largest waste first

    # The total: 2 models, 3 extra copies, 300,000 + 2 x 5,000 bytes wasted.
    expect(page.get_by_test_id("dup-models")).to_have_text("2")
    expect(page.get_by_test_id("dup-copies")).to_have_text("3")
    expect(page.get_by_test_id("dup-total-wasted")).to_have_text("303 KB")

    # Each model: name, short hash (the full one in its tooltip), size, wasted, paths.
    first = groups.nth(0)
    sha = found[0]["sha256"]
    expect(first).to_have_attribute("data-sha256", sha)
    expect(first.get_by_role("heading", level=2)).to_have_text(found[0]["name"])
    expect(first.locator(".hash")).to_have_text(sha[:10])
    expect(first.locator(".hash")).to_have_attribute("title", sha)
    expect(first.get_by_test_id("dup-wasted")).to_have_text("293 KB")
    expect(first.locator(".dup-path .path")).to_have_text(found[0]["paths"])
    expect(groups.nth(1).get_by_test_id("dup-wasted")).to_have_text("9.8 KB")
    # The primary path has no Delete button; every extra copy has one.
    expect(first.locator(".dup-primary .badge")).to_have_text("primary")
    expect(first.locator(".dup-primary button")).to_have_count(0)
    expect(groups.nth(1).get_by_role("button", name=re.compile("^Delete "))).to_have_count(2)

    # Cancel keeps the file.
    delete = first.get_by_role("button", name=f"Delete {files['copy']}")
    delete.click()
    dialog = page.get_by_role("dialog", name="Delete this copy?")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".dup-dialog-path")).to_have_text(str(files["copy"]))
    expect(dialog).to_contain_text(found[0]["name"])
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    screenshot(page, "duplicates-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    # Escape closes it too.
    delete.click()
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert files["copy"].exists()
    expect(groups).to_have_count(2)

    # Delete, confirmed: the file leaves the disk, the page updates.
    delete.click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator(".toast-success", has_text=f"Deleted {files['copy']}")).to_be_visible()
    expect(groups).to_have_count(1)
    assert not files["copy"].exists() and files["a"].exists()
    assert library.db.models.files([sha]) == {sha: [str(files["a"])]}
    expect(page.get_by_test_id("dup-models")).to_have_text("1")
    expect(page.get_by_test_id("dup-copies")).to_have_text("2")
    expect(page.get_by_test_id("dup-total-wasted")).to_have_text("9.8 KB")
    assert [g["sha256"] for g in api_groups(page, live)] == [found[1]["sha256"]]

    # Both extra copies of the other model: then no duplicate is left.
    for path in found[1]["paths"][1:]:
        groups.nth(0).get_by_role("button", name=f"Delete {path}").click()
        dialog.get_by_role("button", name="Delete").click()
        expect(dialog).to_be_hidden()
        expect(page.locator(f'.dup-path code:text-is("{path}")')).to_have_count(0)
        assert not Path(path).exists()
    expect(groups).to_have_count(0)
    expect(page.locator(".dup-empty")).to_have_text("No duplicates: every model is at one path.")
    assert Path(found[1]["paths"][0]).exists()
    assert api_groups(page, live) == []


def test_a_copy_that_cannot_be_deleted_is_reported(
    page, library: Library, live: LiveServer
) -> None:
    files = seed_copies(library)
    page.goto(f"{live.url}#/duplicates")
    expect(page.locator(".dup-group")).to_have_count(2)
    # The primary file vanished: its copy is now the last one on disk, which the server
    # refuses to delete (409); the page says so and keeps listing it.
    files["a"].unlink()
    page.console_log.allow_http_status(409)
    page.get_by_role("button", name=f"Delete {files['copy']}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.locator(".toast-error")).to_contain_text("Deleting the copy failed")
    expect(page.locator(".toast-error")).to_contain_text("last copy")
    assert files["copy"].exists()
    expect(page.locator(".dup-group")).to_have_count(2)


def test_no_duplicates(page, library: Library, live: LiveServer) -> None:
    library.add_model("Only once")
    page.goto(f"{live.url}#/duplicates")
    expect(page.locator(".dup-empty")).to_have_text("No duplicates: every model is at one path.")
    expect(page.locator(".dup-group")).to_have_count(0)
    expect(page.get_by_test_id("dup-models")).to_have_count(0)
    assert axe_violations(page) == []


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1440, 900)], ids=["phone", "desktop"])
def test_duplicates_page_fits_and_passes_axe(
    page, library: Library, live: LiveServer, width: int, height: int
) -> None:
    files = seed_copies(library)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live.url}#/duplicates")
    expect(page.locator(".dup-group")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.mouse.move(0, 0)  # no hovered button (app.css's hover colors are not under test)
    for scheme in ("dark", "light"):  # the theme follows the system's by default
        page.emulate_media(color_scheme=scheme)
        assert axe_violations(page) == [], scheme
    screenshot(page, f"duplicates-{width}", full_page=True)
    # The dialog fits too.
    page.get_by_role("button", name=f"Delete {files['copy']}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert axe_violations(page) == []
