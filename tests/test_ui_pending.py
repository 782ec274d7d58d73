"""End-to-end: the Pending review page in headless Chromium against a real server, with
real pending files, real promotion (hashing, conflicts) and real image tiers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hikaze_mm.pending.promotion import PromotionConflict
from tests.browser import (
    DESKTOP,
    PHONE,
    Library,
    LiveServer,
    axe_violations,
    browser_page,
    requires_chromium,
    screenshot,
)
from tests.helpers import write_model

pytestmark = [pytest.mark.browser, requires_chromium]

expect = pytest.importorskip("playwright.sync_api").expect


def copy_of(lib: Library, name: str, dest: str) -> Path:
    """A new file under the models root with the same content as the model ``name``."""
    src = Path(lib.db.models.get(lib.models[name])["path"])
    target = lib.root / "incoming" / dest
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    return target


def new_file(lib: Library, dest: str, seed: int) -> Path:
    path = lib.root / "incoming" / dest
    write_model(path, 3000, seed=seed)
    return path


def row(page, lib: Library, name: str):
    return page.locator(f'tr[data-id="{lib.pending[name]}"]')


def test_list_then_import_selected(page, library: Library, live: LiveServer) -> None:
    library.db.tags.ensure("anime", "#db61a2")
    library.add_pending(
        "fresh_a", new_file(library, "fresh_a.safetensors", 1), tags=("anime",), image=(63, 185, 80)
    )
    library.add_pending("fresh_b", new_file(library, "fresh_b.safetensors", 2))
    broken = library.add_pending("broken", library.root / "incoming" / "gone.safetensors")
    library.db.pending.update(broken, status="error", error="file not found: gone.safetensors")

    page.goto(f"{live.url}#/pending")
    expect(page.locator(".pending-table tbody tr")).to_have_count(3)
    expect(page.locator(".page-pending .summary")).to_have_text("3 pending models")
    # Original image, tags, status and reason.
    fresh = row(page, library, "fresh_a")
    img = fresh.locator(".thumb img")
    expect(img).to_have_attribute("src", f"api/images/pending/{library.pending['fresh_a']}")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    expect(fresh.locator(".tag")).to_have_text(["anime"])
    expect(fresh.locator(".badge.status-new")).to_have_text("new")
    expect(row(page, library, "fresh_b").locator(".thumb img")).to_have_count(0)
    bad = row(page, library, "broken")
    expect(bad.locator(".badge.status-error")).to_have_text("error")
    expect(bad.locator(".reason")).to_have_text("file not found: gone.safetensors")
    # The header counts pending models.
    expect(page.locator("#pending-count")).to_have_text("3")
    screenshot(page, "pending")

    # Filter by status.
    page.get_by_label("Filter by status").select_option("error")
    expect(page.locator(".pending-table tbody tr")).to_have_count(1)
    page.get_by_label("Filter by status").select_option("")
    expect(page.locator(".pending-table tbody tr")).to_have_count(3)

    # Select two, import.
    page.get_by_label("Select fresh_a").check()
    page.get_by_label("Select fresh_b").check()
    expect(page.locator(".pending-table thead input[type=checkbox]")).to_have_js_property(
        "indeterminate", True
    )
    page.get_by_role("button", name="Import 2 selected").click()
    expect(page.locator(".toast-success", has_text="2 models imported")).to_be_visible()
    expect(page.locator(".pending-table tbody tr")).to_have_count(1)
    expect(page.locator("#pending-count")).to_have_text("1")

    assert library.db.pending.count() == 1
    names = {m["name"] for m in [library.db.models.get(s) for s in _all_shas(library)]}
    assert names == {"fresh_a", "fresh_b"}
    fresh_a = next(
        m for m in [library.db.models.get(s) for s in _all_shas(library)] if m["name"] == "fresh_a"
    )
    assert [t["name"] for t in fresh_a["tags"]] == ["anime"]
    assert library.services.images.list_seqs(fresh_a["sha256"]) == [0]

    # The imported models show up in the library.
    page.get_by_role("link", name="Library").click()
    expect(page.locator(".card")).to_have_count(2)


def _all_shas(lib: Library) -> list[str]:
    return [r[0] for r in lib.db.conn.execute("SELECT sha256 FROM models")]


def test_conflict_resolved_by_merge(page, library: Library, live: LiveServer) -> None:
    library.db.tags.ensure("style", "#2f81f7")
    sha = library.add_model("Base LoRA", base=None, tags=("style",), image=(248, 81, 73))
    pid = library.add_pending(
        "dup",
        copy_of(library, "Base LoRA", "dup.safetensors"),
        tags=("character",),
        image=(47, 129, 247),
        meta={"description": "from pending", "prompts": {"positive": "1girl"}},
    )
    library.db.pending.update(pid, base="SDXL")

    page.goto(f"{live.url}#/pending")
    page.get_by_label("Select dup").check()
    page.get_by_role("button", name="Import 1 selected").click()

    conflict = page.locator(f'.conflict[data-conflict="{pid}"]')
    expect(conflict).to_be_visible()
    expect(page.get_by_role("heading", name="Conflicts (1)")).to_be_visible()
    existing = conflict.locator(".side-existing")
    pending = conflict.locator(".side-pending")
    expect(existing).to_contain_text("Base LoRA")
    expect(existing.locator(".tag")).to_have_text(["style"])
    expect(pending).to_contain_text("dup")
    expect(pending).to_contain_text("from pending")
    expect(pending.locator(".tag")).to_have_text(["character"])
    for side in (existing, pending):
        img = side.locator("img.conflict-img")
        expect(img).to_have_count(1)
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=img.element_handle()
        )
    # Nothing changed yet: the pending row is still there.
    assert library.db.pending.get(pid) is not None
    screenshot(page, "pending-conflict", full_page=True)

    conflict.get_by_label(re.compile("^Merge")).check()
    conflict.get_by_role("button", name="Apply").click()
    expect(
        page.locator(".toast-success", has_text="merged into the existing model")
    ).to_be_visible()
    expect(page.locator(".conflicts")).to_be_hidden()
    expect(page.locator(".pending-table tbody tr")).to_have_count(0)

    model = library.db.models.get(sha)
    assert library.db.pending.get(pid) is None
    assert model["name"] == "Base LoRA"  # existing values win
    assert model["base"] == "SDXL"  # an empty column is filled
    assert model["meta"]["description"] == "from pending"
    assert sorted(t["name"] for t in model["tags"]) == ["character", "style"]
    assert library.services.images.list_seqs(sha) == [0, 1]  # the pending image is a new seq


def test_conflicts_for_all(page, library: Library, live: LiveServer) -> None:
    """Two conflicts, one choice for all (delete): the pending items go, the models stay."""
    first = library.add_model("First", tags=("style",))
    second = library.add_model("Second", tags=("style",))
    library.add_pending("dup1", copy_of(library, "First", "dup1.safetensors"), tags=("x",))
    library.add_pending("dup2", copy_of(library, "Second", "dup2.safetensors"), tags=("y",))

    page.goto(f"{live.url}#/pending")
    page.get_by_label("Select all on this page").check()
    page.get_by_role("button", name="Import 2 selected").click()
    expect(page.locator(".conflict")).to_have_count(2)
    page.get_by_role("group", name="For all:").get_by_role("button", name="Delete pending").click()
    expect(page.locator(".conflict input[value=delete]:checked")).to_have_count(2)
    page.get_by_role("button", name="Resolve all (2)").click()
    expect(page.locator(".conflicts")).to_be_hidden()
    expect(page.locator(".pending-table tbody tr")).to_have_count(0)
    assert library.db.pending.count() == 0
    for sha in (first, second):
        assert [t["name"] for t in library.db.models.get(sha)["tags"]] == ["style"]


def test_conflict_found_by_the_worker_is_resolved_by_override(
    page, library: Library, live: LiveServer
) -> None:
    """A row the worker left in status "conflict" opens side by side from its Resolve button."""
    sha = library.add_model("Kept", tags=("style",))
    pending_path = copy_of(library, "Kept", "moved.safetensors")
    pid = library.add_pending("Renamed", pending_path, tags=("new-tag",))
    library.db.pending.update(pid, status="conflict", sha256=sha, error=f"same content as {sha}")

    page.goto(f"{live.url}#/pending")
    the_row = page.locator(f'tr[data-id="{pid}"]')
    expect(the_row.locator(".badge.status-conflict")).to_have_text("conflict")
    # The reason shows the short hash; the full one on demand.
    reason = the_row.locator(".reason-conflict")
    expect(reason.locator(".hash-short")).to_have_text(sha[:10])
    expect(reason.locator(".hash-full")).to_be_hidden()
    the_row.get_by_role("button", name="Resolve…").click()
    conflict = page.locator(f'.conflict[data-conflict="{pid}"]')
    expect(conflict.locator(".side-existing")).to_contain_text("Kept")
    expect(conflict.locator(".side-pending")).to_contain_text("Renamed")
    conflict.get_by_label(re.compile("^Override")).check()
    conflict.get_by_role("button", name="Apply").click()
    expect(page.locator(".toast-success", has_text="existing model overridden")).to_be_visible()
    model = library.db.models.get(sha)
    assert model["name"] == "Renamed" and model["path"] == str(pending_path)
    assert sorted(t["name"] for t in model["tags"]) == ["new-tag", "style"]
    assert library.db.pending.get(pid) is None


# ---------------------------------------------------------------------- daily use
VIEWPORTS = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]


def no_horizontal_overflow(page) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]"
    )
    assert max(widths[:2]) <= widths[2], widths


def inside_viewport(page, locator) -> None:
    expect(locator).to_be_visible()
    box = locator.bounding_box()
    width = page.evaluate("innerWidth")
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box


def style(locator, prop: str) -> str:
    return locator.evaluate(f"(el) => getComputedStyle(el).{prop}")


def skip_conflict(lib: Library, pid: int) -> None:
    """Record a conflict the way Stage 2's "skip" does (the real promotion code)."""
    with pytest.raises(PromotionConflict):
        lib.services.promoter.promote(pid, "skip")


def item(page, pid: int):
    return page.locator(f'[data-id="{pid}"]')


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_items_fit_the_screen(browser, library: Library, live: LiveServer, viewport) -> None:
    """Every part of every item is on screen, as cards on a phone and rows on a desktop;
    a conflict reason is a short hash and a wrapped path, styled as information."""
    deep = "/".join(["a-rather-long-folder-name-for-a-collection"] * 3)
    library.add_model("Existing", type_="loras")
    fresh = library.add_pending(
        "a_model_with_a_long_name_v2_final",
        new_file(library, f"{deep}/a_model_with_a_long_name_v2_final.safetensors", 5),
        tags=("style", "anime", "portrait"),
    )
    dup = library.add_pending("dup", copy_of(library, "Existing", f"{deep}/dup.safetensors"))
    skip_conflict(library, dup)
    sha = library.models["Existing"]
    broken = library.add_pending("broken", library.root / "incoming" / "gone.safetensors")
    library.db.pending.update(broken, status="error", error=f"cannot read {sha}: broken")

    with browser_page(browser, viewport=viewport) as page:
        page.goto(f"{live.url}#/pending")
        phone = viewport is PHONE
        expect(page.locator(".pending-card" if phone else ".pending-table tbody tr")).to_have_count(
            3
        )
        expect(page.locator(".pending-table" if phone else ".pending-card")).to_have_count(0)
        no_horizontal_overflow(page)
        for pid, status, action in (
            (fresh, "new", "Import"),
            (dup, "conflict", "Resolve…"),
            (broken, "error", "Import"),
        ):
            inside_viewport(page, item(page, pid).locator(f".badge.status-{status}"))
            inside_viewport(page, item(page, pid).locator(".row-name"))
            inside_viewport(page, item(page, pid).locator(".item-path"))
            inside_viewport(page, item(page, pid).get_by_role("button", name=action, exact=True))

        # The conflict reason: short hash, full hash on demand, the existing model's path.
        reason = item(page, dup).locator(".reason")
        expect(reason).to_have_class(re.compile(r"\breason-conflict\b"))
        expect(reason.locator(".hash-short")).to_have_text(sha[:10])
        expect(reason).to_contain_text(library.db.models.get(sha)["path"])
        full = reason.locator(".hash-full")
        expect(full).to_be_hidden()
        assert (reason.bounding_box() or {})["height"] < 160
        # Information, not an error: the text color, unlike the error's reason.
        error_reason = item(page, broken).locator(".reason")
        expect(error_reason).to_have_text("cannot read " + sha[:10] + "…: broken")
        text_color = page.evaluate("getComputedStyle(document.body).color")
        assert style(reason, "color") == text_color
        assert style(error_reason, "color") != text_color
        screenshot(page, f"pending-{'phone' if phone else 'desktop'}", full_page=True)

        reason.locator("summary").click()
        expect(full).to_have_text(sha)
        inside_viewport(page, full)
        no_horizontal_overflow(page)

        # The card's own Import works.
        item(page, fresh).get_by_role("button", name="Import", exact=True).click()
        expect(page.locator(".toast-success", has_text="1 model imported")).to_be_visible()
        expect(item(page, fresh)).to_have_count(0)
        expect(page.locator(".page-pending .summary")).to_have_text("2 pending models")
        page.get_by_label("Select all on this page").check()
        expect(page.get_by_role("button", name="Import 2 selected")).to_be_visible()

        # The layout follows the width: a desktop narrowed to a phone's shows cards.
        page.set_viewport_size(PHONE if not phone else DESKTOP)
        expect(page.locator(".pending-table tbody tr" if phone else ".pending-card")).to_have_count(
            2
        )
        expect(page.locator(".page-pending .item-check:checked")).to_have_count(2)
        no_horizontal_overflow(page)


def test_one_pending_model_reads_singular(page, library: Library, live: LiveServer) -> None:
    library.add_pending("solo", new_file(library, "solo.safetensors", 7))
    page.goto(f"{live.url}#/pending")
    expect(page.locator(".page-pending .summary")).to_have_text("1 pending model")
    page.get_by_label("Select solo").check()
    page.get_by_role("button", name="Import 1 selected").click()
    expect(page.locator(".toast-success .toast-text")).to_have_text("1 model imported")
    expect(page.locator(".page-pending .summary")).to_have_text("0 pending models")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_ask_me_conflict_is_recorded_and_kept(
    browser, library: Library, live: LiveServer, viewport
) -> None:
    """Import with "Ask me" finds a conflict: it shows side by side, the row turns
    "conflict", and after a reload the "conflict" filter still lists it."""
    sha = library.add_model("Original", tags=("style",))
    pid = library.add_pending("copy", copy_of(library, "Original", "copy.safetensors"))
    library.add_pending("other", new_file(library, "other.safetensors", 9))

    with browser_page(browser, viewport=viewport) as page:
        page.goto(f"{live.url}#/pending")
        expect(
            page.get_by_label("What to do when the model is already in the library")
        ).to_have_value("")  # "Ask me"
        item(page, pid).get_by_role("button", name="Import", exact=True).click()
        expect(page.locator(f'.conflict[data-conflict="{pid}"]')).to_be_visible()
        expect(item(page, pid).locator(".badge.status-conflict")).to_be_visible()
        row = library.db.pending.get(pid)
        assert (row["status"], row["sha256"]) == ("conflict", sha)

        page.reload()
        expect(page.locator(".conflict")).to_have_count(0)
        page.get_by_label("Filter by status").select_option("conflict")
        expect(page.locator(".page-pending [data-id]")).to_have_count(1)
        expect(item(page, pid).locator(".reason-conflict .hash-short")).to_have_text(sha[:10])
        no_horizontal_overflow(page)
        item(page, pid).get_by_role("button", name="Resolve…").click()
        conflict = page.locator(f'.conflict[data-conflict="{pid}"]')
        expect(conflict.locator(".side-existing")).to_contain_text("Original")
        expect(conflict.locator(".side-existing .hash-short")).to_have_text(sha[:10])
        no_horizontal_overflow(page)
        conflict.get_by_label(re.compile("^Merge")).check()
        conflict.get_by_role("button", name="Apply").click()
        expect(
            page.locator(".toast-success", has_text="merged into the existing model")
        ).to_be_visible()
        expect(page.locator(".page-pending [data-id]")).to_have_count(0)
    assert library.db.pending.get(pid) is None


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_resolve_scrolls_the_conflict_below_the_header(
    browser, library: Library, live: LiveServer, viewport
) -> None:
    library.add_model("Kept")
    for n in range(14):
        library.add_pending(f"filler_{n}", new_file(library, f"filler_{n}.safetensors", 20 + n))
    pid = library.add_pending("late", copy_of(library, "Kept", "late.safetensors"))
    skip_conflict(library, pid)

    with browser_page(browser, viewport=viewport) as page:
        page.goto(f"{live.url}#/pending")
        resolve = item(page, pid).get_by_role("button", name="Resolve…")
        resolve.scroll_into_view_if_needed()
        page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        before = page.evaluate("scrollY")
        assert before > 0
        resolve.click()
        conflict = page.locator(f'.conflict[data-conflict="{pid}"]')
        expect(conflict).to_be_visible()
        page.wait_for_function("y => scrollY < y", arg=before)
        header = page.evaluate("document.querySelector('.topbar').getBoundingClientRect().bottom")
        for heading in (conflict, conflict.get_by_role("heading", name="In the library")):
            top = heading.bounding_box()["y"]
            assert top >= header, (top, header)
        assert conflict.bounding_box()["y"] < page.evaluate("innerHeight") / 2
        no_horizontal_overflow(page)


def test_nsfw_images_are_blurred_until_clicked(browser, library: Library, live: LiveServer) -> None:
    red, blue = (200, 40, 40), (40, 40, 200)
    tagged = library.add_pending(
        "tagged", new_file(library, "tagged.safetensors", 31), tags=("NSFW",), image=red
    )
    civitai = library.add_pending(
        "civitai",
        new_file(library, "civitai.safetensors", 32),
        image=red,
        meta={"civitai": {"nsfw": True}},
    )
    sidecar = library.add_pending(
        "sidecar",
        new_file(library, "sidecar.safetensors", 33),
        image=red,
        meta={"sidecar": {"nsfw": True}},
    )
    safe = library.add_pending(
        "safe", new_file(library, "safe.safetensors", 34), image=blue, meta={"civitai": {}}
    )
    explicit = (tagged, civitai, sidecar)

    with browser_page(browser, viewport=DESKTOP) as page:  # no setting: blur
        page.goto(f"{live.url}#/pending")
        expect(page.locator(".pending-table tbody tr")).to_have_count(4)
        for pid in explicit:
            box = item(page, pid).locator(".pending-nsfw")
            expect(box).to_have_class(re.compile(r"\bpending-nsfw-blurred\b"))
            img = box.locator("img")
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=img.element_handle()
            )
            assert "blur" in style(img, "filter")
        expect(item(page, safe).locator(".pending-nsfw")).to_have_count(0)
        assert style(item(page, safe).locator(".thumb img"), "filter") == "none"
        screenshot(page, "pending-nsfw")

        page.get_by_role("button", name="Show the NSFW images of tagged").click()
        expect(item(page, tagged).locator(".pending-nsfw-reveal")).to_have_count(0)
        assert style(item(page, tagged).locator("img"), "filter") == "none"
        assert "blur" in style(item(page, civitai).locator("img"), "filter")  # one at a time

    with browser_page(browser, viewport=DESKTOP, nsfw="hide") as page:
        page.goto(f"{live.url}#/pending")
        expect(item(page, safe).locator(".thumb img")).to_have_count(1)
        for pid in explicit:
            expect(item(page, pid).locator(".pending-nsfw-hidden")).to_contain_text("NSFW")
            expect(item(page, pid).locator("img")).to_have_count(0)

    with browser_page(browser, viewport=DESKTOP, nsfw="show") as page:
        page.goto(f"{live.url}#/pending")
        for pid in (*explicit, safe):
            expect(item(page, pid).locator(".thumb img")).to_have_count(1)
        expect(page.locator(".pending-nsfw-blurred")).to_have_count(0)


def test_nsfw_conflict_images_are_blurred(page, library: Library, live: LiveServer) -> None:
    library.add_model("Spicy", tags=("nsfw",), image=(200, 40, 40))
    pid = library.add_pending(
        "spicy copy", copy_of(library, "Spicy", "spicy.safetensors"), image=(40, 200, 40)
    )
    page.goto(f"{live.url}#/pending")
    item(page, pid).get_by_role("button", name="Import", exact=True).click()
    conflict = page.locator(f'.conflict[data-conflict="{pid}"]')
    for side in ("existing", "pending"):  # the pending copy has no tag: same content
        gallery = conflict.locator(f".side-{side} .pending-nsfw-gallery")
        expect(gallery).to_have_class(re.compile(r"\bpending-nsfw-blurred\b"))
        assert "blur" in style(gallery.locator("img"), "filter")
    conflict.get_by_role("button", name="Show the NSFW images of Spicy (In the library)").click()
    assert style(conflict.locator(".side-existing img"), "filter") == "none"
    assert "blur" in style(conflict.locator(".side-pending img"), "filter")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_accessibility_of_cards_conflicts_and_nsfw(
    browser, library: Library, live: LiveServer, viewport
) -> None:
    """axe-core finds no serious or critical violation: the list (cards on a phone), an
    open hash disclosure, NSFW reveal buttons and a conflict side by side."""
    sha = library.add_model("Existing", tags=("nsfw",), image=(200, 40, 40))
    library.add_pending(
        "fresh", new_file(library, "fresh.safetensors", 41), tags=("NSFW", "a"), image=(1, 2, 3)
    )
    dup = library.add_pending(
        "dup", copy_of(library, "Existing", "dup.safetensors"), image=(3, 4, 5)
    )
    skip_conflict(library, dup)
    broken = library.add_pending("broken", library.root / "incoming" / "gone.safetensors")
    library.db.pending.update(broken, status="error", error=f"cannot read {sha}: broken")

    with browser_page(browser, viewport=viewport) as page:
        page.goto(f"{live.url}#/pending")
        expect(page.locator(".page-pending [data-id]")).to_have_count(3)
        item(page, dup).locator("summary").click()
        assert axe_violations(page) == []
        item(page, dup).get_by_role("button", name="Resolve…").click()
        expect(page.locator(".conflict .pending-nsfw-gallery")).to_have_count(2)
        assert axe_violations(page) == []
