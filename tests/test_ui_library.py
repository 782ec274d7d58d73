"""End-to-end: the Library page and the details panel in headless Chromium, against a real
server and a real library (SQLite, image tiers, model files in a temp dir)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from tests.browser import (
    Library,
    LiveServer,
    png_bytes,
    requires_chromium,
    screenshot,
    write_png,
)

pytestmark = [pytest.mark.browser, requires_chromium]

expect = pytest.importorskip("playwright.sync_api").expect


def seed(lib: Library) -> dict[str, str]:
    db = lib.db
    db.tags.ensure("style", "#2f81f7")
    db.tags.ensure("anime", "#db61a2")
    db.tags.ensure("realistic", "#3fb950")
    db.tags.ensure("nsfw", "#f85149")
    db.tags.ensure("detail", "#d29922")
    lib.add_model(
        "Anime Style",
        base="SDXL",
        tags=("style", "anime"),
        image=(219, 97, 162),
        meta={"description": "flat colors", "prompts": {"positive": "anime", "negative": "3d"}},
    )
    lib.add_model(
        "Realistic Vision",
        type_="checkpoints",
        base="SD1.5",
        tags=("realistic",),
        image=(63, 185, 80),
    )
    lib.add_model("Flux Dev", type_="checkpoints", base="Flux.1")
    lib.add_model("Secret", base="SDXL", tags=("nsfw", "style"), image=(248, 81, 73))
    lib.add_model("Lost LoRA", base="SDXL", tags=("style",), missing=True)
    lib.add_model("Detail Tweaker", base="SD1.5", tags=("detail",), image=(210, 153, 34))
    return lib.models


SEARCH = "Search models by name, path, tag, trigger word or hash"


def card_names(page) -> list[str]:
    return page.locator(".card .card-name").all_text_contents()


def expect_count(page, n: int) -> None:
    expect(page.locator(".page-library .summary")).to_have_text(f"{n} model{'' if n == 1 else 's'}")
    expect(page.locator(".card")).to_have_count(n)


def test_browse_and_filter(page, library: Library, live: LiveServer) -> None:
    models = seed(library)
    page.goto(live.url)
    # nsfw is excluded by default; missing models are shown, greyed out.
    expect_count(page, 5)
    assert "Secret" not in card_names(page)
    expect(page.get_by_label("Show NSFW models")).not_to_be_checked()
    chip = page.locator('.chip[data-tag="nsfw"]')
    expect(chip).to_have_attribute("data-state", "exclude")
    lost = page.locator(f'.card[data-sha256="{models["Lost LoRA"]}"]')
    expect(lost).to_have_class(re.compile(r"\bmissing\b"))
    expect(lost).to_have_attribute("aria-label", "Lost LoRA (file missing)")

    # Cards show type, base, colored tags and the short hash; thumbnails load lazily.
    anime = page.locator(f'.card[data-sha256="{models["Anime Style"]}"]')
    expect(anime.locator(".badge-type")).to_have_text("loras")
    expect(anime.locator(".badge-base")).to_have_text("SDXL")
    expect(anime.locator(".hash")).to_have_text(models["Anime Style"][:10])
    expect(anime.locator(".tag")).to_have_text(["anime", "style"])
    tag_color = anime.locator(".tag", has_text="anime").evaluate(
        "el => getComputedStyle(el).getPropertyValue('--tag-color').trim()"
    )
    assert tag_color == "#db61a2"
    img = anime.locator(".thumb img")
    expect(img).to_have_attribute("src", re.compile(r"api/images/[0-9a-f]{64}_0\.webp\?quality="))
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    expect(page.locator(f'.card[data-sha256="{models["Flux Dev"]}"] .thumb img')).to_have_count(0)
    screenshot(page, "library")

    # The NSFW toggle and the nsfw chip stay in step.
    page.get_by_label("Show NSFW models").check()
    expect_count(page, 6)
    expect(chip).to_have_count(0)
    page.get_by_label("Show NSFW models").uncheck()
    expect_count(page, 5)
    expect(chip).to_have_attribute("data-state", "exclude")

    # Type tabs come from the API.
    page.get_by_role("tab", name=re.compile("^checkpoints")).click()
    expect_count(page, 2)
    assert sorted(card_names(page)) == ["Flux Dev", "Realistic Vision"]
    page.get_by_role("tab", name="All").click()
    expect_count(page, 5)

    # Search, then the base filter.
    page.get_by_label(SEARCH).fill("tweak")
    expect_count(page, 1)
    assert card_names(page) == ["Detail Tweaker"]
    page.get_by_label(SEARCH).fill("")
    expect_count(page, 5)
    page.get_by_label("Base model").select_option("SD1.5")
    expect_count(page, 2)
    page.get_by_label("Base model").select_option("")
    expect_count(page, 5)

    # Tag filter: pick a tag (required), switch it (excluded), remove it.
    page.get_by_role("combobox", name="Tags").fill("sty")
    page.get_by_role("option", name="style").click()
    style = page.locator('.chip[data-tag="style"]')
    expect(style).to_have_attribute("data-state", "include")
    expect_count(page, 2)
    assert sorted(card_names(page)) == ["Anime Style", "Lost LoRA"]
    style.locator(".chip-toggle").click()
    expect(style).to_have_attribute("data-state", "exclude")
    expect_count(page, 3)
    assert "Anime Style" not in card_names(page)
    style.get_by_role("button", name="Remove the filter style").click()
    expect(style).to_have_count(0)
    expect_count(page, 5)

    # Hiding missing models.
    page.get_by_label("Show missing").uncheck()
    expect_count(page, 4)
    page.get_by_label("Show missing").check()

    # Sorting and order.
    page.get_by_label("Sort by").select_option("name")
    expect_count(page, 5)
    assert card_names(page)[0] == "Anime Style"
    page.get_by_role("button", name=re.compile("^Sort order")).click()
    expect(page.locator(".card .card-name").first).to_have_text("Realistic Vision")

    # List view.
    page.get_by_role("button", name="List view").click()
    expect(page.locator(".cards")).to_have_class(re.compile(r"\bview-list\b"))
    expect(page.get_by_role("button", name="List view")).to_have_attribute("aria-pressed", "true")
    expect_count(page, 5)
    # List rows use the low tier.
    img = anime.locator(".thumb img")
    expect(img).to_have_attribute("src", re.compile(r"_0\.webp\?quality=low$"))
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    screenshot(page, "library-list")


def test_keyboard_navigation(page, library: Library, live: LiveServer) -> None:
    models = seed(library)
    page.goto(live.url)
    expect_count(page, 5)
    # The tag filter from the keyboard: type, Enter requires; Enter on the chip switches it
    # to excluded, Delete removes it.
    combo = page.get_by_role("combobox", name="Tags")
    combo.focus()
    page.keyboard.type("deta")
    page.keyboard.press("Enter")
    chip = page.locator('.chip[data-tag="detail"]')
    expect(chip).to_have_attribute("data-state", "include")
    expect_count(page, 1)
    chip.locator(".chip-toggle").focus()
    page.keyboard.press("Enter")
    expect(chip).to_have_attribute("data-state", "exclude")
    expect_count(page, 4)
    page.keyboard.press("Delete")
    expect(chip).to_have_count(0)
    expect_count(page, 5)
    # Enter on a card opens its details; Escape closes them and gives focus back.
    card = page.locator(f'.card[data-sha256="{models["Realistic Vision"]}"]')
    card.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("dialog.details")
    expect(dialog).to_be_visible()
    # It opens in view mode: the focus is on its title, not in a field.
    expect(dialog.get_by_role("heading", name="Realistic Vision")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(card).to_be_focused()
    # Tabs: arrow keys move between types.
    page.get_by_role("tab", name="All").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", selected=True)).not_to_have_text("All")


def test_edit_and_save_survives_a_reload(page, library: Library, live: LiveServer) -> None:
    models = seed(library)
    sha = models["Anime Style"]
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    dialog.get_by_role("button", name="Edit", exact=True).click()
    name = dialog.get_by_label("Name", exact=True)
    expect(name).to_have_value("Anime Style")
    expect(dialog.get_by_label("Description")).to_have_value("flat colors")
    expect(dialog.get_by_label("Positive prompt")).to_have_value("anime")
    expect(dialog.get_by_label("Negative prompt")).to_have_value("3d")

    name.fill("Anime Style v2")
    dialog.get_by_label("Description").fill("Bold lines and flat colors")
    dialog.get_by_label("Positive prompt").fill("masterpiece, anime")
    dialog.get_by_label("Negative prompt").fill("lowres")
    dialog.get_by_label("Community links").fill(
        "https://civitai.com/models/1\nhttps://example.org/x"
    )

    # Autocomplete an existing tag with the keyboard.
    tag_input = dialog.get_by_role("combobox", name="Add a tag")
    tag_input.fill("real")
    expect(dialog.get_by_role("option", name="realistic")).to_be_visible()
    tag_input.press("Enter")
    # Create a new tag: Enter on "Create tag" creates and adds it in one step.
    tag_input.fill("brand-new")
    expect(dialog.get_by_role("option", name=re.compile("Create tag"))).to_be_visible()
    tag_input.press("Enter")
    # Remove one.
    dialog.get_by_role("button", name="Remove tag anime").click()
    chips = dialog.locator(".tag-editor .tag-list .tag-name")
    expect(chips).to_have_text(["style", "realistic", "brand-new"])

    dialog.get_by_role("button", name="Save").click()
    expect(page.locator(".toast-success", has_text="Saved")).to_be_visible()
    # The card in the library shows the new name at once.
    expect(page.locator(f'.card[data-sha256="{sha}"] .card-name')).to_have_text("Anime Style v2")

    record = library.db.models.get(sha)
    assert record["name"] == "Anime Style v2"
    assert record["meta"]["description"] == "Bold lines and flat colors"
    assert record["meta"]["prompts"] == {"positive": "masterpiece, anime", "negative": "lowres"}
    assert record["meta"]["community_links"] == [
        "https://civitai.com/models/1",
        "https://example.org/x",
    ]
    assert sorted(t["name"] for t in record["tags"]) == ["brand-new", "realistic", "style"]
    assert re.fullmatch(r"#[0-9a-f]{6}", library.db.tags.get("brand-new")["color"])

    page.reload()
    dialog = page.locator("dialog.details")
    expect(dialog.get_by_role("heading", name="Anime Style v2")).to_be_visible()
    view = dialog.locator(".details-view")
    expect(view).to_contain_text("Bold lines and flat colors")
    expect(view).to_contain_text("masterpiece, anime")
    expect(view).to_contain_text("lowres")
    expect(view.locator(".tag-name")).to_have_text(["brand-new", "realistic", "style"])
    dialog.get_by_role("button", name="Edit", exact=True).click()
    expect(dialog.get_by_label("Name", exact=True)).to_have_value("Anime Style v2")
    expect(dialog.get_by_label("Description")).to_have_value("Bold lines and flat colors")
    expect(dialog.get_by_label("Positive prompt")).to_have_value("masterpiece, anime")
    expect(dialog.get_by_label("Negative prompt")).to_have_value("lowres")
    chips = dialog.locator(".tag-editor .tag-list .tag-name")
    expect(chips).to_have_text(["brand-new", "realistic", "style"])
    dialog.get_by_role("button", name="Cancel", exact=True).click()
    expect(dialog.get_by_role("link", name="https://civitai.com/models/1")).to_have_attribute(
        "rel", "noopener noreferrer"
    )
    screenshot(page, "details")
    page.keyboard.press("Escape")
    expect(page.locator(f'.card[data-sha256="{sha}"] .card-name')).to_have_text("Anime Style v2")


def test_save_errors_are_shown(page, library: Library, live: LiveServer) -> None:
    models = seed(library)
    sha = models["Flux Dev"]
    page.console_log.allow_http_status(400)
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    dialog.get_by_role("button", name="Edit", exact=True).click()
    dialog.get_by_label("Type").fill("Bad Type!")
    dialog.get_by_label("Description").fill("never saved")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog.locator(".form-error")).to_contain_text("type must be a folder key")
    expect(page.locator(".toast-error")).to_contain_text("Save failed")
    record = library.db.models.get(sha)
    assert record["type"] == "checkpoints" and "description" not in record["meta"]
    # Closing with unsaved changes asks first.
    page.keyboard.press("Escape")
    expect(dialog.get_by_role("alertdialog")).to_be_visible()
    dialog.get_by_role("button", name="Discard changes").click()
    expect(dialog).to_be_hidden()


def test_upload_delete_and_view_images(page, library: Library, live: LiveServer, tmp_path: Path):
    models = seed(library)
    sha = models["Anime Style"]
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    gallery = dialog.locator(".gallery-item img")
    expect(gallery).to_have_count(1)

    # Drag and drop a file onto the drop zone.
    data = base64.b64encode(png_bytes((47, 129, 247), (200, 300))).decode()
    transfer = page.evaluate_handle(
        """data => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "dropped.png", {type: "image/png"}));
            return dt;
        }""",
        data,
    )
    dialog.locator(".dropzone").dispatch_event("drop", {"dataTransfer": transfer})
    expect(gallery).to_have_count(2)
    expect(dialog.locator(".upload-status")).to_have_text("1 image uploaded")
    assert library.services.images.list_seqs(sha) == [0, 1]

    # Or choose a file.
    picked = write_png(tmp_path / "picked.png", (63, 185, 80), (300, 200))
    dialog.locator("input[type=file]").set_input_files(str(picked))
    expect(gallery).to_have_count(3)
    assert library.services.images.list_seqs(sha) == [0, 1, 2]
    for i in range(3):
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=gallery.nth(i).element_handle()
        )

    # Delete the second image (two clicks: arm, confirm).
    delete = dialog.get_by_role("button", name="Delete image 2")
    delete.click()
    expect(delete).to_have_text("Click again to delete")
    delete.click()
    expect(gallery).to_have_count(2)
    assert library.services.images.list_seqs(sha) == [0, 2]

    # A click opens the high tier; Escape closes the viewer, not the panel.
    dialog.get_by_role("button", name="Open image 1 in full size").click()
    big = page.locator("dialog.lightbox img")
    expect(big).to_have_attribute("src", re.compile(r"_0\.webp\?quality=high(&v=\d+)?$"))
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=big.element_handle())
    page.keyboard.press("Escape")
    expect(page.locator("dialog.lightbox")).to_be_hidden()
    expect(dialog).to_be_visible()

    # The library card counts the images.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    img = page.locator(f'.card[data-sha256="{sha}"] .thumb img')
    expect(img).to_have_count(1)


def test_copy_hash_buttons(page, library: Library, live: LiveServer) -> None:
    models = seed(library)
    sha = models["Detail Tweaker"]
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    expect(dialog.locator("[data-testid=sha256]")).to_have_text(sha)
    expect(dialog.locator("[data-testid=autov2]")).to_have_text(sha[:10])
    dialog.get_by_role("button", name="Copy the SHA-256").click()
    expect(page.locator(".toast-success", has_text=f"Copied {sha}")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == sha
    dialog.get_by_role("button", name="Copy the AutoV2 hash").click()
    copied = page.locator(".toast-success .toast-text").filter(
        has_text=re.compile(rf"^Copied {sha[:10]}$")
    )
    expect(copied).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == sha[:10]


def test_card_cover_follows_the_gallery(page, library: Library, live: LiveServer, tmp_path: Path):
    """The card's thumbnail is the model's first image: one uploaded in the details panel
    shows at once, and when seq 0 is deleted the next image takes its place."""
    models = seed(library)
    sha = models["Flux Dev"]  # no image yet
    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    expect(dialog.locator(".gallery-item img")).to_have_count(0)
    for i, color in enumerate(((47, 129, 247), (63, 185, 80))):
        picked = write_png(tmp_path / f"picked{i}.png", color)
        dialog.locator("input[type=file]").set_input_files(str(picked))
        expect(dialog.locator(".gallery-item img")).to_have_count(i + 1)
    thumb = page.locator(f'.card[data-sha256="{sha}"] .thumb img')
    expect(thumb).to_have_attribute("src", re.compile(rf"{sha}_0\.webp\?quality=medium"))

    delete = dialog.get_by_role("button", name="Delete image 1")
    delete.click()
    delete.click()
    expect(dialog.locator(".gallery-item img")).to_have_count(1)
    assert library.services.images.list_seqs(sha) == [1]
    expect(thumb).to_have_attribute("src", re.compile(rf"{sha}_1\.webp\?quality=medium"))
    loaded = "img => img.complete && img.naturalWidth > 0"
    page.wait_for_function(loaded, arg=thumb.element_handle())


def test_changes_made_elsewhere_show_without_a_reload(
    page, library: Library, live: LiveServer
) -> None:
    """The page follows the library's change events (GET api/events): a model renamed and
    tagged by another client, and a model added, show on the open page by themselves."""
    models = seed(library)
    page.goto(live.url)
    expect_count(page, 5)
    db = library.db
    db.models.update(models["Flux Dev"], name="Flux Schnell")
    db.models.add_tags(models["Flux Dev"], ["fresh"])
    flux = page.locator(f'.card[data-sha256="{models["Flux Dev"]}"]')
    expect(flux.locator(".card-name")).to_have_text("Flux Schnell")
    expect(flux.locator(".tag")).to_have_text(["fresh"])
    library.add_model("Arrived Later", base="SDXL")
    expect_count(page, 6)
    assert "Arrived Later" in card_names(page)


def test_a_model_on_a_root_this_host_does_not_mount_says_which(
    page, library: Library, live: LiveServer
) -> None:
    """A studio's model on a root this host has no name for: its card is greyed as
    missing and names the root (the API gives its ``location``)."""
    sha = library.add_model("Studio LoRA", base="SDXL")
    with library.db.transaction() as conn:
        conn.execute(
            "UPDATE models SET path = ? WHERE sha256 = ?",
            ("@nas/loras/Studio LoRA.safetensors", sha),
        )
    page.goto(live.url)
    card = page.locator(f'.card[data-sha256="{sha}"]')
    expect(card).to_have_class(re.compile(r"\bmissing\b"))
    badge = card.locator(".status-missing")
    expect(badge).to_have_text("on nas")
    expect(badge).to_have_attribute(
        "title", re.compile(r"root nas, which this host does not mount")
    )
