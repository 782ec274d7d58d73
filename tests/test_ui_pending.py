"""End-to-end: the Pending review page in headless Chromium against a real server, with
real pending files, real promotion (hashing, conflicts) and real image tiers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.browser import (
    Library,
    LiveServer,
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
    expect(page.locator(".toast-success", has_text="2 model(s) imported")).to_be_visible()
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
    expect(the_row.locator(".reason")).to_have_text(f"same content as {sha}")
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
