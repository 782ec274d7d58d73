"""End-to-end: the Library's actions that change the library, in headless Chromium against a
real server, a real library and our Civitai stand-in: delete from a card (with and without
the file), bulk tags with Shift-click and select-all, bulk delete and Civitai lookups, and
the views: Recently used, the folder tree, the "unknown" base."""

from __future__ import annotations

import re

import pytest

from tests.browser import (
    PHONE,
    Library,
    LiveServer,
    axe_violations,
    browser_page,
    horizontal_overflow,
    requires_chromium,
    screenshot,
)
from tests.civitai_fake import NOT_FOUND, FakeCivitai
from tests.library_helpers import insert_models
from tests.test_ui_library_cards import add, card

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.fake_civitai]

expect = pytest.importorskip("playwright.sync_api").expect


def names(page) -> list[str]:
    return page.locator(".card .card-name").all_text_contents()


def seed_numbered(lib: Library, n: int) -> list[str]:
    """Models "Model 1".."Model n" (natural order: 2 before 10)."""
    return [add(lib, f"Model {i}", tags=("old",)) for i in range(1, n + 1)]


def tags_of(lib: Library, sha: str) -> list[str]:
    return sorted(tag["name"] for tag in lib.db.models.get(sha)["tags"])


def test_delete_from_a_card_keeps_or_deletes_the_file(
    page, library: Library, live: LiveServer
) -> None:
    keep = add(library, "Keep File")
    gone = add(library, "Lose File")
    other = add(library, "Other")
    keep_path = library.root / "loras" / "Keep File.safetensors"
    gone_path = library.root / "loras" / "Lose File.safetensors"
    page.goto(live.url)
    expect(page.locator(".card")).to_have_count(3)

    # Cancel: nothing happens.
    card(page, keep).get_by_role("button", name="Actions for Keep File").click()
    page.get_by_role("menuitem", name="Delete…").click()
    dialog = page.get_by_role("alertdialog", name="Delete “Keep File”?")
    expect(dialog).to_be_visible()
    box = dialog.get_by_label("Also delete the file from disk")
    expect(box).not_to_be_checked()
    expect(dialog).to_contain_text("its file stays on disk")
    assert axe_violations(page) == []
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert library.db.models.get(keep) is not None

    # Delete, file kept (the default).
    card(page, keep).get_by_role("button", name="Actions for Keep File").click()
    page.get_by_role("menuitem", name="Delete…").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    expect(page.locator(".toast-success", has_text="Deleted Keep File")).to_be_visible()
    expect(card(page, keep)).to_have_count(0)
    expect(page.locator(".page-library .summary")).to_have_text("2 models")
    assert library.db.models.get(keep) is None
    assert keep_path.is_file()

    # Delete with the file, from the keyboard: the note says the file goes.
    card(page, gone).focus()
    page.keyboard.press("Shift+F10")
    page.get_by_role("menuitem", name="Delete…").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("alertdialog")
    expect(dialog.get_by_label("Also delete the file from disk")).to_be_focused()
    page.keyboard.press("Space")
    expect(dialog).to_contain_text("its file is deleted from disk")
    dialog.get_by_role("button", name="Delete").click()
    expect(
        page.locator(".toast-success", has_text="Deleted Lose File and its file")
    ).to_be_visible()
    assert library.db.models.get(gone) is None
    assert not gone_path.exists()
    # The focus stays in the grid, on the neighbouring card.
    expect(card(page, other)).to_be_focused()
    expect(page.locator(".page-library .summary")).to_have_text("1 model")


def test_bulk_tags_with_shift_click_and_select_all(
    page, library: Library, live: LiveServer
) -> None:
    shas = seed_numbered(library, 12)
    page.goto(live.url)
    # Natural order: "Model 2" before "Model 10".
    expect(page.locator(".card")).to_have_count(12)
    assert names(page)[:3] == ["Model 1", "Model 2", "Model 3"]
    assert names(page)[-1] == "Model 12"

    bar = page.get_by_role("region", name="Selected models")
    expect(bar).to_be_hidden()
    # Click the 2nd checkbox, Shift-click the 5th: models 2..5.
    page.get_by_label("Select Model 2", exact=True).click()
    page.get_by_label("Select Model 5", exact=True).click(modifiers=["Shift"])
    expect(bar).to_be_visible()
    expect(bar.locator(".bulk-count")).to_have_text("4 selected")
    expect(page.locator(".card.selected")).to_have_count(4)
    screenshot(page, "library-bulk")
    bar.get_by_role("button", name="Add tags…").click()
    dialog = page.get_by_role("dialog", name="Add tags to 4 models")
    assert axe_violations(page) == []
    dialog.get_by_label("Tag names, separated by commas").fill("fresh, picked")
    dialog.get_by_role("button", name="Add tags").click()
    toast = page.locator(".toast-success", has_text="Added fresh, picked to 4 models.")
    expect(toast).to_be_visible()
    for i, sha in enumerate(shas, 1):
        expected = ["fresh", "old", "picked"] if 2 <= i <= 5 else ["old"]
        assert tags_of(library, sha) == expected, i
    # The selection is cleared and the cards show the new tags.
    expect(bar).to_be_hidden()
    expect(card(page, shas[2]).locator(".tag-name")).to_have_text(["fresh", "old", "picked"])

    # Select all (the whole filtered set), then remove a tag from every model.
    page.get_by_label("Select Model 1", exact=True).click()
    bar.get_by_role("button", name="Select all 12").click()
    expect(bar.locator(".bulk-count")).to_have_text("12 selected")
    expect(bar.get_by_role("button", name=re.compile("^Select all"))).to_be_hidden()
    bar.get_by_role("button", name="Remove tags…").click()
    dialog = page.get_by_role("dialog", name="Remove tags from 12 models")
    dialog.get_by_label("Tag names, separated by commas").fill("old")
    dialog.get_by_role("button", name="Remove tags").click()
    expect(page.locator(".toast-success", has_text="Removed old from 12 models.")).to_be_visible()
    assert all("old" not in tags_of(library, sha) for sha in shas)
    assert tags_of(library, shas[1]) == ["fresh", "picked"]


def test_select_all_fetches_every_page(page, library: Library, live: LiveServer) -> None:
    """Select all takes the whole filtered set, beyond the loaded page (pages of 500)."""
    seed_numbered(library, 3)
    with library.db.transaction() as conn:
        insert_models(conn, 620, stem="bulk")
    page.goto(live.url)
    expect(page.locator(".page-library .summary")).to_have_text("623 models")
    page.get_by_role("combobox", name="Tags")  # the filters are there
    page.get_by_label(re.compile("^Search models")).fill("bulk")
    expect(page.locator(".page-library .summary")).to_have_text("620 models")
    page.locator(".card .card-select").first.click()
    bar = page.get_by_role("region", name="Selected models")
    bar.get_by_role("button", name="Select all 620").click()
    expect(bar.locator(".bulk-count")).to_have_text("620 selected")
    bar.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("alertdialog", name="Delete 620 models?")
    expect(dialog.get_by_label("Also delete the files from disk")).not_to_be_checked()
    dialog.get_by_role("button", name="Delete").click()
    toast = page.locator(".toast-success", has_text="Deleted 620 models (files kept on disk).")
    expect(toast).to_be_visible()
    page.get_by_label(re.compile("^Search models")).fill("")
    expect(page.locator(".page-library .summary")).to_have_text("3 models")
    assert library.db.listing.totals()["models"] == 3


def test_bulk_tags_over_more_models_than_one_request_takes(
    page, library: Library, live: LiveServer
) -> None:
    """A request takes 5,000 models: the page sends a larger selection in batches and
    sums the answers into one summary."""
    count = 5_120
    with library.db.transaction() as conn:
        insert_models(conn, count, stem="many")
    page.goto(live.url)
    expect(page.locator(".page-library .summary")).to_have_text("5,120 models")
    page.locator(".card .card-select").first.click()
    bar = page.get_by_role("region", name="Selected models")
    bar.get_by_role("button", name="Select all 5,120").click()
    expect(bar.locator(".bulk-count")).to_have_text("5,120 selected")
    bar.get_by_role("button", name="Add tags…").click()
    dialog = page.get_by_role("dialog", name="Add tags to 5,120 models")
    dialog.get_by_label("Tag names, separated by commas").fill("batch")
    dialog.get_by_role("button", name="Add tags").click()
    toast = page.locator(".toast-success", has_text="Added batch to 5,120 models.")
    expect(toast).to_be_visible(timeout=60_000)
    tag_id = library.db.tags.ids_by_name(["batch"])["batch"]
    linked = library.db.conn.execute(
        "SELECT COUNT(*) FROM model_tags WHERE tag_id = ?", (tag_id,)
    ).fetchone()[0]
    assert linked == count


def test_bulk_delete_with_files(page, library: Library, live: LiveServer) -> None:
    shas = seed_numbered(library, 4)
    page.goto(live.url)
    page.get_by_label("Select Model 1", exact=True).click()
    page.get_by_label("Select Model 3", exact=True).click()
    bar = page.get_by_role("region", name="Selected models")
    expect(bar.locator(".bulk-count")).to_have_text("2 selected")
    bar.get_by_role("button", name="Delete…").click()
    dialog = page.get_by_role("alertdialog", name="Delete 2 models?")
    dialog.get_by_label("Also delete the files from disk").check()
    expect(dialog).to_contain_text("their files are deleted from disk")
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator(".toast-success", has_text="Deleted 2 models and 2 files.")).to_be_visible()
    expect(page.locator(".card")).to_have_count(2)
    for i, sha in enumerate(shas, 1):
        on_disk = (library.root / "loras" / f"Model {i}.safetensors").exists()
        in_db = library.db.models.get(sha) is not None
        assert on_disk == in_db == (i in (2, 4)), i


def test_civitai_from_a_card_and_in_bulk(
    page, library: Library, live: LiveServer, fake: FakeCivitai
) -> None:
    alpha = add(library, "Alpha", base=None)
    beta = add(library, "Beta", base=None)
    gamma = add(library, "Gamma", base=None)
    fake.found(alpha)
    fake.found(beta, model_id=12, version_id=102)
    fake.serve_png("a.png")
    fake.lookups[gamma] = [NOT_FOUND]
    page.goto(live.url)
    expect(page.locator(".card")).to_have_count(3)

    # One card: fetch, and the card refreshes (base, image, Civitai link).
    card(page, alpha).get_by_role("button", name="Actions for Alpha").click()
    expect(page.get_by_role("menuitem", name="Open the Civitai page")).to_have_count(0)
    page.get_by_role("menuitem", name="Fetch from Civitai").click()
    expect(page.locator(".toast-success", has_text="Alpha: filled from Civitai")).to_be_visible()
    expect(card(page, alpha).locator(".badge-base")).not_to_have_text("unknown")
    expect(card(page, alpha).locator(".thumb img")).to_have_count(1)
    card(page, alpha).get_by_role("button", name="Actions for Alpha").click()
    link = page.get_by_role("menuitem", name="Open the Civitai page")
    expect(link).to_have_attribute("href", f"{fake.url}/models/11?modelVersionId=101")
    expect(link).to_have_attribute("target", "_blank")
    page.keyboard.press("Escape")

    # Bulk: the two others; one summary.
    page.get_by_label("Select Beta").click()
    page.get_by_label("Select Gamma").click()
    bar = page.get_by_role("region", name="Selected models")
    bar.get_by_role("button", name="Fetch from Civitai").click()
    summary = page.locator(
        ".toast", has_text=re.compile("^Civitai: 1 found, 1 not found, 0 failed")
    )
    expect(summary).to_be_visible()
    assert library.db.models.get(beta)["meta"]["civitai"]["version_id"] == 102
    assert "civitai" not in library.db.models.get(gamma)["meta"]
    expect(card(page, beta).locator(".badge-base")).not_to_have_text("unknown")


def test_recently_used_folders_and_unknown_base(browser, library: Library, live: LiveServer):
    first = add(library, "First Used", folder="loras/style")
    add(library, "Never Used", folder="loras/style/anime")
    second = add(library, "Second Used", folder="loras/detail")
    ckpt = add(library, "Base Less", type_="checkpoints", folder="checkpoints", base=None)
    with browser_page(browser, viewport=PHONE) as page:
        page.goto(live.url)
        expect(page.locator(".card")).to_have_count(4)
        # Mark two used, the second one last.
        for sha in (first, second):
            response = page.request.post(
                f"{live.url}api/models/{sha}/used", headers={"Origin": live.url.rstrip("/")}
            )
            assert response.ok, response.text()
        page.get_by_role("button", name="Filters").click()
        recent = page.get_by_role("button", name="Recently used")
        recent.click()
        expect(recent).to_have_attribute("aria-pressed", "true")
        expect(page.locator(".card")).to_have_count(2)
        assert names(page) == ["Second Used", "First Used"]
        expect(page.get_by_label("Sort by")).to_be_disabled()
        recent.click()
        expect(page.locator(".card")).to_have_count(4)

        # The folder tree: root, its subfolders (indented), with counts.
        folder = page.get_by_label("Folder")
        options = folder.locator("option").all_text_contents()
        assert options[0] == "All folders"
        assert any(re.fullmatch(r"\s*└ style \(2\)", o) for o in options), options
        assert any(re.fullmatch(r"\s*└ anime \(1\)", o) for o in options), options
        folder.select_option(str(library.root / "loras" / "style"))
        expect(page.locator(".card")).to_have_count(2)
        assert sorted(names(page)) == ["First Used", "Never Used"]
        folder.select_option(str(library.root / "loras"))
        expect(page.locator(".card")).to_have_count(3)
        folder.select_option("")
        expect(page.locator(".card")).to_have_count(4)

        # "unknown" in the base filter.
        base = page.get_by_label("Base model")
        assert "unknown (1)" in base.locator("option").all_text_contents()
        base.select_option("unknown")
        expect(page.locator(".card")).to_have_count(1)
        expect(card(page, ckpt).locator(".badge-base")).to_have_text("unknown")
        assert horizontal_overflow(page) <= 0
        assert axe_violations(page) == []
