"""End-to-end: the Migration and scan page in headless Chromium against a real server:
Stage 2 with real sparse files (hundreds of MB, so progress is observable, with a pause
and a resume), the Stage 1 form on a real legacy database (the import runs in the
background: 202, then the page's polls show its progress and its report or error), and a
real directory scan."""

from __future__ import annotations

import errno
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.browser import (
    Library,
    LiveServer,
    requires_chromium,
    screenshot,
)
from tests.helpers import make_sparse, write_model
from tests.legacy_fixtures import build_sample_legacy

pytestmark = [pytest.mark.browser, requires_chromium]

expect = pytest.importorskip("playwright.sync_api").expect

# Records every value the Stage 2 bar takes, as the page sets it.
RECORD_PROGRESS = """
() => {
    const bar = document.getElementById("stage2-progress");
    window.__progress = [Number(bar.getAttribute("aria-valuenow") || 0)];
    new MutationObserver(() => {
        window.__progress.push(Number(bar.getAttribute("aria-valuenow") || 0));
    }).observe(bar, {attributes: true, attributeFilter: ["aria-valuenow"]});
}
"""

FILE_SIZE = 384 * 1024 * 1024
FILE_COUNT = 3


def stage2_value(page) -> float:
    return float(page.locator("#stage2-progress").get_attribute("aria-valuenow") or 0)


# One hashing thread, held at a known chunk while the page pauses the run.
@pytest.mark.parametrize("library", [{"hash_workers": 1}], indirect=True)
def test_stage2_progress_pause_resume_to_100(page, library: Library, live: LiveServer) -> None:
    folder = library.root / "big"
    folder.mkdir()
    for i in range(FILE_COUNT):
        path = folder / f"big_{i}.safetensors"
        make_sparse(path, FILE_SIZE, tail=f"model {i}".encode())
        library.add_pending(f"big_{i}", path)

    page.goto(f"{live.url}#/migration")
    panel = page.locator(
        "section.panel", has=page.get_by_role("heading", name=re.compile("Stage 2"))
    )
    expect(panel.locator(".badge")).to_have_text("idle")
    expect(page.locator("#stage2-progress")).to_have_attribute("aria-valuenow", "0.0")
    page.evaluate(RECORD_PROGRESS)

    # The hashing thread waits after its second chunk until the page has paused the run,
    # so the pause lands mid-file whatever the machine's speed.
    reached, release = threading.Event(), threading.Event()
    hashes = library.services.hashes
    at = 2 * hashes.chunk_size

    def hold(_path: str, done: int) -> None:
        if done == at and not reached.is_set():
            reached.set()
            release.wait(60)

    hashes.on_chunk = hold
    panel.get_by_role("button", name="Start").click()
    assert reached.wait(60)
    panel.get_by_role("button", name="Pause").click()
    expect(panel.locator(".badge")).to_have_text("paused")
    release.set()  # the thread sees the pause before its next chunk: it stops here
    expect(panel.get_by_role("button", name="Resume")).to_be_enabled()
    expect(panel.locator(".progress-text").first).to_contain_text(f"/ {FILE_COUNT} items")
    expect(panel.locator(".progress-text").first).to_contain_text("1.1 GB")
    status = library.services.migration.get_status()
    assert status["status"] == "PAUSED" and status["current_item"]["bytes_done"] == at
    page.wait_for_timeout(600)  # a poll after the thread stopped
    paused_at = stage2_value(page)
    assert 0 < paused_at < 100
    screenshot(page, "migration")
    page.wait_for_timeout(2000)  # polls later: a paused run has not moved
    assert stage2_value(page) == paused_at
    assert library.db.pending.count() == FILE_COUNT - int(
        library.services.migration.get_status()["stats"]["processed_items"]
    )

    panel.get_by_role("button", name="Resume").click()
    expect(panel.locator(".badge")).to_have_text("running")
    # While it runs: the current file, the speed and the time left are shown.
    expect(panel.locator("[data-testid=current-file]")).to_contain_text("big_")
    expect(panel.locator(".stage2-fields")).to_contain_text("/s")
    expect(panel.locator(".badge")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#stage2-progress")).to_have_attribute("aria-valuenow", "100.0")
    expect(panel.locator(".progress-text").first).to_contain_text(
        f"100% · {FILE_COUNT} / {FILE_COUNT} items"
    )
    expect(panel.get_by_role("button", name="Start")).to_be_enabled()

    values = page.evaluate("window.__progress")
    assert values[-1] == 100
    assert any(0 < v < 100 for v in values), values  # the bar moved through the run
    assert values == sorted(values), values  # and never went back
    assert library.db.pending.count() == 0
    names = sorted(r[0] for r in library.db.conn.execute("SELECT name FROM models"))
    assert names == [f"big_{i}" for i in range(FILE_COUNT)]


def test_stage2_error_list(page, library: Library, live: LiveServer) -> None:
    path = library.root / "ok.safetensors"
    write_model(path, 4096)
    library.add_pending("ok", path)
    library.add_pending("gone", library.root / "gone.safetensors")

    page.goto(f"{live.url}#/migration")
    panel = page.locator(
        "section.panel", has=page.get_by_role("heading", name=re.compile("Stage 2"))
    )
    panel.get_by_role("button", name="Start").click()
    expect(panel.locator(".badge")).to_have_text("completed", timeout=30_000)
    expect(panel.locator(".error-list h3")).to_have_text("Pending items in error (1)")
    expect(panel.locator(".error-list li")).to_contain_text("gone.safetensors")
    expect(panel.locator(".error-list .reason")).to_contain_text("not found")


def test_stage1_form_runs_the_import_and_shows_the_report(
    page, library: Library, live: LiveServer
) -> None:
    sample = build_sample_legacy(library.root.parent / "legacy")
    page.goto(f"{live.url}#/migration")
    form = page.locator("form.stage1-form")

    # A path that does not exist: the server's error is shown, nothing is imported.
    page.console_log.allow_http_status(400)
    form.get_by_label(re.compile("Legacy database")).fill(str(library.root / "nope.sqlite3"))
    form.get_by_role("button", name="Run import").click()
    expect(form.locator(".form-error")).to_contain_text("nope.sqlite3")
    assert library.db.pending.count() == 0

    form.get_by_label(re.compile("Legacy database")).fill(str(sample.db.path))
    form.get_by_label(re.compile("Legacy images folder")).fill(str(sample.images_dir))
    form.get_by_role("button", name="Run import").click()
    report = page.locator("[data-testid=stage1-report]")
    expect(report).to_be_visible(timeout=60_000)
    expect(form.locator(".form-error")).to_be_empty()
    for key, value in sample.expected.items():
        expect(report.locator(f'tr[data-key="{key}"] td')).to_have_text(str(value))
    expect(report.locator('tr[data-key="active_models"] th')).to_have_text("Active models")
    # Per-item errors: kind, legacy id, path and reason.
    image_errors = page.locator(".report .errors li").filter(
        has=page.locator(".badge", has_text=re.compile("^image$"))
    )
    expect(image_errors).to_have_count(sample.expected["image_errors"])
    expect(image_errors.filter(has_text="two_bad.png")).to_contain_text("#2")
    screenshot(page, "migration-stage1", full_page=True)

    # The pending models of Stage 1 wait in the review page.
    page.get_by_role("link", name=re.compile("Pending review")).click()
    expect(page.locator(".pending-table tbody tr")).to_have_count(sample.expected["pending_models"])


@contextmanager
def held_import(library: Library, *, fail: bool = False) -> Iterator[threading.Event]:
    """Hold a Stage 1 import at its first image write until the yielded event is set (the
    import is then in its "models" phase); with ``fail``, that write then fails as a full
    disk would, which fails the whole import."""
    images = library.services.images
    write_tiers = images.write_tiers
    release = threading.Event()

    def held(*args, **kwargs):
        release.wait(60)
        if fail:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_tiers(*args, **kwargs)

    images.write_tiers = held
    try:
        yield release
    finally:
        release.set()
        images.write_tiers = write_tiers


def run_import_from_the_form(page, live: LiveServer, sample) -> list[int]:
    """Fill the Stage 1 form and submit it; returns the statuses its POST answers."""
    answers: list[int] = []

    def on_response(response) -> None:
        if response.url.endswith("api/migration/migrate_legacy_db"):
            answers.append(response.status)

    page.on("response", on_response)
    page.goto(f"{live.url}#/migration")
    form = page.locator("form.stage1-form")
    form.get_by_label(re.compile("Legacy database")).fill(str(sample.db.path))
    form.get_by_label(re.compile("Legacy images folder")).fill(str(sample.images_dir))
    form.get_by_role("button", name="Run import").click()
    return answers


def test_stage1_import_shows_progress_then_the_report(
    page, library: Library, live: LiveServer
) -> None:
    sample = build_sample_legacy(library.root.parent / "legacy")
    form = page.locator("form.stage1-form")
    bar = page.locator("#stage1-progress")
    report = page.locator("[data-testid=stage1-report]")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "api/migration/status" in r.url else None)
    with held_import(library) as release:
        answers = run_import_from_the_form(page, live, sample)
        # Answered at once: the import runs on, and the polls show where it is.
        expect(bar).to_contain_text(re.compile(r"^Models and images \d+ / \d+$"))
        expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^\d+\.\d$"))
        assert float(bar.get_attribute("aria-valuenow")) < 100
        assert answers == [202]
        expect(form.get_by_role("button", name="Importing…")).to_be_disabled()
        expect(report).to_have_count(0)
        polls_while_running = len(polls)
        page.wait_for_timeout(1200)  # polled fast while it runs
        assert len(polls) >= polls_while_running + 2
        release.set()
        expect(report).to_be_visible(timeout=60_000)
    expect(bar).to_have_text("Legacy import finished")
    expect(bar).to_have_attribute("aria-valuenow", "100.0")
    expect(page.locator(".toast-success", has_text="Legacy import finished")).to_be_visible()
    expect(form.get_by_role("button", name="Run import")).to_be_enabled()
    expect(form.locator(".form-error")).to_be_empty()
    for key, value in sample.expected.items():
        expect(report.locator(f'tr[data-key="{key}"] td')).to_have_text(str(value))
    # The pending models of Stage 1 are counted in the header.
    expect(page.locator("#pending-count")).to_have_text(str(sample.expected["pending_models"]))


def test_stage1_import_that_fails_after_it_started(
    page, library: Library, live: LiveServer
) -> None:
    sample = build_sample_legacy(library.root.parent / "legacy")
    form = page.locator("form.stage1-form")
    bar = page.locator("#stage1-progress")
    with held_import(library, fail=True) as release:
        answers = run_import_from_the_form(page, live, sample)
        expect(bar).to_contain_text("Models and images")
        assert answers == [202]
        release.set()
        expect(form.locator(".form-error")).to_contain_text("No space left on device")
    expect(bar).to_be_hidden()
    expect(page.locator("[data-testid=stage1-report]")).to_have_count(0)
    expect(page.locator(".toast-error")).to_contain_text("Legacy import failed")
    expect(form.get_by_role("button", name="Run import")).to_be_enabled()


def test_scan_button_shows_progress_and_result(page, library: Library, live: LiveServer) -> None:
    for i in range(3):
        write_model(library.root / "loras" / f"found_{i}.safetensors", 2048, seed=i)
    write_model(library.root / "checkpoints" / "found_ckpt.safetensors", 4096)

    page.goto(f"{live.url}#/migration")
    panel = page.locator(
        "section.panel", has=page.get_by_role("heading", name="Scan model folders")
    )
    page.evaluate(
        """() => {
            const bar = document.getElementById("scan-progress");
            window.__scan = [];
            new MutationObserver(() => window.__scan.push(bar.className + "|" +
                (bar.getAttribute("aria-valuenow") || ""))).observe(
                bar, {attributes: true, attributeFilter: ["aria-valuenow", "class"]});
        }"""
    )
    panel.get_by_role("button", name="Scan now").click()
    expect(panel.locator(".progress-text")).to_have_text("Done: 4 files seen", timeout=30_000)
    expect(page.locator("#scan-progress")).to_have_attribute("aria-valuenow", "100.0")
    expect(panel.locator('[data-testid="scan-New"]')).to_have_text("4")
    expect(panel.get_by_role("button", name="Scan now")).to_be_enabled()
    assert library.db.pending.count() == 4
    expect(page.locator("#pending-count")).to_have_text("4", timeout=20_000)

    # A second scan finds nothing new.
    panel.get_by_role("button", name="Scan now").click()
    expect(panel.locator('[data-testid="scan-New"]')).to_have_text("0", timeout=30_000)
    assert library.db.pending.count() == 4


def test_full_flow_from_the_stage1_form(page, library: Library, live: LiveServer) -> None:
    """Legacy DB -> pending -> active in one go: Stage 1, then Stage 2, from one form."""
    sample = build_sample_legacy(library.root.parent / "legacy")
    page.goto(f"{live.url}#/migration")
    form = page.locator("form.stage1-form")
    form.get_by_label(re.compile("Legacy database")).fill(str(sample.db.path))
    form.get_by_label(re.compile("Legacy images folder")).fill(str(sample.images_dir))
    form.get_by_label(re.compile("Then hash and promote")).check()
    form.get_by_role("button", name="Run import").click()

    stage2 = page.locator(
        "section.panel", has=page.get_by_role("heading", name=re.compile("Stage 2"))
    )
    expect(stage2.locator(".badge")).to_have_text("completed", timeout=60_000)
    # Stage 1 ran in the worker: the same progress bar and report as the import alone.
    expect(page.locator("#stage1-progress")).to_have_text("Legacy import finished")
    expect(page.locator("#stage1-progress")).to_have_attribute("aria-valuenow", "100.0")
    report = page.locator("[data-testid=stage1-report]")
    expect(report.locator('tr[data-key="active_models"] td')).to_have_text(
        str(sample.expected["active_models"])
    )
    expect(report.locator('tr[data-key="pending_models"] td')).to_have_text(
        str(sample.expected["pending_models"])
    )
    expect(form.locator(".form-error")).to_be_empty()
    # Every pending model of the legacy DB has a file: all were promoted.
    assert library.db.pending.count() == 0
    total = sample.expected["active_models"] + sample.expected["pending_models"]
    assert library.db.conn.execute("SELECT COUNT(*) FROM models").fetchone()[0] == total
    page.get_by_role("link", name="Library").click()
    expect(page.locator(".card")).to_have_count(total)

    # Another visit shows the last report the server kept.
    page.get_by_role("link", name="Migration & scan").click()
    page.reload()
    expect(page.locator("[data-testid=stage1-report]")).to_be_visible()


def test_skip_policy_leaves_conflicts_for_review(page, library: Library, live: LiveServer) -> None:
    sha = library.add_model("Existing", tags=("style",))
    dup = library.root / "incoming" / "dup.safetensors"
    dup.parent.mkdir(parents=True)
    dup.write_bytes((library.root / "loras" / "Existing.safetensors").read_bytes())
    pid = library.add_pending("Duplicate", dup)

    page.goto(f"{live.url}#/migration")
    stage2 = page.locator(
        "section.panel", has=page.get_by_role("heading", name=re.compile("Stage 2"))
    )
    stage2.get_by_label("What to do when a pending model is already in the library").select_option(
        "skip"
    )
    stage2.get_by_role("button", name="Start").click()
    expect(stage2.locator(".badge")).to_have_text("completed", timeout=30_000)
    expect(stage2.locator(".stage2-fields")).to_contain_text("Conflicts1")
    assert library.db.pending.get(pid)["status"] == "conflict"

    page.get_by_role("link", name=re.compile("Pending review")).click()
    row = page.locator(f'tr[data-id="{pid}"]')
    expect(row.locator(".badge.status-conflict")).to_have_text("conflict")
    expect(row.locator(".reason")).to_contain_text(sha)


def test_scan_with_immediate_hashing(page, library: Library, live: LiveServer) -> None:
    write_model(library.root / "loras" / "quick.safetensors", 2048, seed=3)
    page.goto(f"{live.url}#/migration")
    panel = page.locator(
        "section.panel", has=page.get_by_role("heading", name="Scan model folders")
    )
    panel.get_by_label("Hash new files now").check()
    panel.get_by_role("button", name="Scan now").click()
    expect(panel.locator(".progress-text")).to_have_text("Done: 1 files seen", timeout=30_000)
    assert library.db.pending.count() == 0
    page.get_by_role("link", name="Library").click()
    expect(page.locator(".card .card-name")).to_have_text(["quick"])
