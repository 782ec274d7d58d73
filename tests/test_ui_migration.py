"""End-to-end: the Migration and scan page in headless Chromium against a real server:
Stage 2 with real sparse files (hundreds of MB, so progress is observable, with a pause
and a resume), the Stage 1 form on a real legacy database (the import runs in the
background: 202, then the page's polls show its progress and its report or error), and a
real directory scan."""

from __future__ import annotations

import errno
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.browser import (
    Library,
    LiveServer,
    axe_violations,
    requires_chromium,
    screenshot,
)
from tests.helpers import make_sparse, write_model
from tests.legacy_fixtures import build_sample_legacy
from tests.waiting import wait_until

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

# Records the Stage 2 labels (bar, models, data, speed, time left) each time they change.
RECORD_RATES = """
() => {
    const panel = document.getElementById("stage2-progress").closest("section");
    const read = () => [
        panel.querySelector(".progress-text").textContent,
        ...["items", "bytes", "speed", "eta"].map(
            (k) => panel.querySelector(`[data-testid=stage2-${k}]`).textContent),
    ];
    window.__rates = [read()];
    new MutationObserver(() => {
        const row = read();
        if (row.join("|") !== window.__rates[window.__rates.length - 1].join("|"))
            window.__rates.push(row);
    }).observe(panel, {subtree: true, childList: true, characterData: true});
}
"""
PERCENT = re.compile(r"^(0|100|\d{1,2}\.\d)%$")
BYTES = r"\d+(\.\d)? (B|KB|MB|GB|TB)"
SPEED = re.compile(rf"^{BYTES}/s$")
DURATION = re.compile(r"^(\d+s|\d+m \d\ds|\d+h \d\dm)$")
NOT_YET = ("measuring…", "—")
THROTTLE_S = 0.03
# The status polls: the page sends the next one only once it has shown the last answer.
STATUS_POLL = "/api/migration/status"
IDLE_POLL_MS = 4000  # migration.js polls at this pace when nothing runs


def throttle(_path: str, _done: int) -> None:
    """A HashService.on_chunk hook: at most one chunk per THROTTLE_S in each thread.

    Not a wait: it slows the hashing down, so that the run lasts long enough for the
    page to measure a speed and a time left on any machine."""
    time.sleep(THROTTLE_S)


def wait_for_polls(page, count: int, *, timeout: float = 10_000) -> None:
    """Wait until the page has sent ``count`` more status polls (each within ``timeout``
    ms). A poll is sent only after the previous one was shown, so all of them but the
    last have been shown when this returns."""
    for _ in range(count):
        with page.expect_request(lambda request: STATUS_POLL in request.url, timeout=timeout):
            pass


def check_rate_labels(rows: list[list[str]], total: int) -> None:
    """Every recorded set of Stage 2 labels is well formed: the percent, "k of N models",
    "x of y" in bytes, a speed in bytes per second and a duration (or not yet / none);
    the models done never go back, and a speed and a time left were shown."""
    # Before the worker counted the run's items, the labels are the idle ones.
    rows = [r for r in rows if r[1] != "0 of 0 models"]
    assert rows
    done_seen = []
    for bar, items, data, speed, eta in rows:
        assert PERCENT.match(bar), bar
        m = re.fullmatch(rf"(\d+) of {total} models?", items)
        assert m, items
        done_seen.append(int(m.group(1)))
        assert re.fullmatch(rf"{BYTES} of {BYTES}", data), data
        assert speed in NOT_YET or SPEED.match(speed), speed
        assert eta in NOT_YET or DURATION.match(eta), eta
        assert "items" not in bar + data  # nothing mixes items and bytes
    assert done_seen == sorted(done_seen), done_seen
    assert any(SPEED.match(r[3]) for r in rows), rows
    assert any(DURATION.match(r[4]) for r in rows), rows


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
    expect(panel.get_by_test_id("stage2-items")).to_have_text(
        re.compile(rf"^\d of {FILE_COUNT} models$")
    )
    expect(panel.get_by_test_id("stage2-bytes")).to_have_text(re.compile(r"^.+ of 1\.1 GB$"))
    # Paused: no speed, no time left.
    expect(panel.get_by_test_id("stage2-speed")).to_have_text("—")
    expect(panel.get_by_test_id("stage2-eta")).to_have_text("—")
    status = library.services.migration.get_status()
    assert status["status"] == "PAUSED" and status["current_item"]["bytes_done"] == at
    wait_for_polls(page, 2)  # a poll sent after the thread stopped has been shown
    paused_at = stage2_value(page)
    assert 0 < paused_at < 100
    screenshot(page, "migration")
    wait_for_polls(page, 2)  # polls later: a paused run has not moved
    assert stage2_value(page) == paused_at
    assert library.db.pending.count() == FILE_COUNT - int(
        library.services.migration.get_status()["stats"]["processed_items"]
    )

    # The rest is read at most one chunk per THROTTLE_S, so the speed and the time left
    # (which need two seconds of samples) show before the end, on any machine.
    hashes.on_chunk = throttle
    page.evaluate(RECORD_RATES)
    panel.get_by_role("button", name="Resume").click()
    expect(panel.locator(".badge")).to_have_text("running")
    # While it runs: the current file, the speed and the time left are shown.
    expect(panel.locator("[data-testid=current-file]")).to_contain_text("big_")
    expect(panel.get_by_test_id("stage2-speed")).to_have_text(SPEED, timeout=30_000)
    expect(panel.get_by_test_id("stage2-eta")).to_have_text(DURATION)
    expect(panel.locator(".badge")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#stage2-progress")).to_have_attribute("aria-valuenow", "100.0")
    expect(panel.locator(".progress-text").first).to_have_text("100%")
    expect(panel.get_by_test_id("stage2-items")).to_have_text(
        f"{FILE_COUNT} of {FILE_COUNT} models"
    )
    expect(panel.get_by_test_id("stage2-bytes")).to_have_text("1.1 GB of 1.1 GB")
    check_rate_labels(page.evaluate("window.__rates"), FILE_COUNT)
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
    with held_import(library) as release:
        answers = run_import_from_the_form(page, live, sample)
        # Answered at once: the import runs on, and the polls show where it is.
        expect(bar).to_contain_text(re.compile(r"^Models and images \d+ / \d+$"))
        expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^\d+\.\d$"))
        assert float(bar.get_attribute("aria-valuenow")) < 100
        assert answers == [202]
        expect(form.get_by_role("button", name="Importing…")).to_be_disabled()
        expect(report).to_have_count(0)
        # Polled fast while it runs: two more polls, each sooner than the idle pace.
        wait_for_polls(page, 2, timeout=IDLE_POLL_MS - 500)
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
    # Before any scan: no counts (zeros would read as a result).
    expect(panel.locator(".scan-none")).to_have_text(
        "No scan has run since the manager started: the counts of the next one show here."
    )
    expect(panel.get_by_test_id("scan-new")).to_have_count(0)
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
    expect(panel.get_by_test_id("scan-new")).to_have_text("4")
    expect(panel.get_by_role("button", name="Scan now")).to_be_enabled()
    assert library.db.pending.count() == 4
    expect(page.locator("#pending-count")).to_have_text("4", timeout=20_000)

    # A second scan finds nothing new.
    panel.get_by_role("button", name="Scan now").click()
    expect(panel.get_by_test_id("scan-new")).to_have_text("0", timeout=30_000)
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
    expect(panel.locator(".progress-text")).to_have_text("Done: 1 file seen", timeout=30_000)
    assert library.db.pending.count() == 0
    page.get_by_role("link", name="Library").click()
    expect(page.locator(".card .card-name")).to_have_text(["quick"])


# ---------------------------------------------------------------------- speed and time left
# A synthetic Stage 2 run fed to js/pages/migration/rate.js in the browser: one worker,
# a status every 500 ms; LARGE is one 8 GB file read at 500 MB/s (16 s), SMALL 400 files
# of 1 MB taking 50 ms each (20 s, the time going into each item's work). Each row is
# [t, true seconds left, estimate, basis, bytes/s, what is being hashed].
SIMULATE = """
async (order) => {
    const { RateWindow, sampleOf } = await import("./static/js/pages/migration/rate.js");
    const large = [{ size: 8e9, secs: 16, kind: "large" }];
    const small = Array.from({ length: 400 }, () => ({ size: 1e6, secs: 0.05, kind: "small" }));
    const items = order === "large-first" ? [...large, ...small] : [...small, ...large];
    const totalBytes = items.reduce((sum, i) => sum + i.size, 0);
    const totalTime = items.reduce((sum, i) => sum + i.secs, 0);
    const window_ = new RateWindow();
    const rows = [];
    for (let step = 0; step * 0.5 <= totalTime + 1e-9; step++) {
        const t = step * 0.5;
        let start = 0, done = 0, doneBytes = 0, current = [], kind = null;
        for (const item of items) {
            if (start + item.secs <= t + 1e-9) {
                done++; doneBytes += item.size; start += item.secs;
                continue;
            }
            const part = Math.floor(item.size * (t - start) / item.secs);
            current = [{ bytes_done: part, bytes_total: item.size }];
            doneBytes += part;
            kind = item.kind;
            break;
        }
        window_.add(sampleOf({
            now: 1e12 + t * 1000,
            stats: { processed_items: done, total_items: items.length,
                     done_bytes: doneBytes, total_bytes: totalBytes },
            current_items: current,
        }));
        const e = window_.estimate();
        rows.push([t, totalTime - t, e.secondsLeft, e.basis, e.bytesPerSecond, kind]);
    }
    return rows;
}
"""


def test_rate_large_file_then_many_small_ones(page, live: LiveServer) -> None:
    page.goto(f"{live.url}#/migration")
    rows = page.evaluate(SIMULATE, "large-first")
    # Nothing before the window holds two seconds.
    assert all(r[2] is None and r[4] is None for r in rows if r[0] < 2)
    large = [r for r in rows if r[5] == "large" and 2 <= r[0] < 15]
    assert large
    for t, _truth, eta, basis, speed, _ in large:
        # The large file dominates: its bytes give the speed and the time left.
        assert basis == "bytes", t
        assert speed == pytest.approx(500e6, rel=0.01)
        bytes_left = 8e9 * (1 - t / 16) + 400e6
        assert eta == pytest.approx(bytes_left / 500e6, rel=0.02)
    # Once the window holds only small files (16 s + 10 s), the items give the time left,
    # within 10% of the truth; the speed is what they really read (20 MB/s).
    settled = [r for r in rows if r[5] == "small" and r[0] >= 26]
    assert settled
    for _t, truth, eta, basis, speed, _ in settled:
        assert basis == "items"
        assert eta == pytest.approx(truth, rel=0.1, abs=0.2)
        assert speed == pytest.approx(20e6, rel=0.05)
    # Never an absurd time left (the page once said 2527 h for a 144 s run).
    for t, truth, eta, *_ in rows:
        assert eta is None or eta <= 1.5 * truth + 1, (t, truth, eta)


def test_rate_many_small_files_then_a_large_one(page, live: LiveServer) -> None:
    page.goto(f"{live.url}#/migration")
    rows = page.evaluate(SIMULATE, "small-first")
    smalls = [r for r in rows if r[5] == "small" and r[0] >= 2]
    assert smalls and all(r[3] == "items" for r in smalls)
    # The speed of the small files is their real rate, not a few KB/s.
    assert all(r[4] == pytest.approx(20e6, rel=0.05) for r in smalls)
    # The large file starts at 20 s: a fresh window, so nothing for two seconds, then the
    # bytes give the time left, close to the truth.
    assert all(r[2] is None for r in rows if 20 <= r[0] < 21.5)
    large = [r for r in rows if r[5] == "large" and r[0] >= 22.5]
    assert large
    for _t, truth, eta, basis, speed, _ in large:
        assert basis == "bytes"
        assert speed == pytest.approx(500e6, rel=0.01)
        assert eta == pytest.approx(truth, rel=0.05, abs=0.2)
    for t, truth, eta, *_ in rows:
        assert eta is None or eta <= 1.5 * truth + 1, (t, truth, eta)


def test_rate_window_starts_afresh_for_a_new_run(page, live: LiveServer) -> None:
    page.goto(f"{live.url}#/migration")
    result = page.evaluate(
        """async () => {
            const { RateWindow } = await import("./static/js/pages/migration/rate.js");
            const w = new RateWindow();
            const s = (t, bytes, finished) => ({ t, bytes, totalBytes: 1000, items: finished,
                finished, totalItems: 10, largestLeft: 0 });
            for (let i = 0; i <= 6; i++) w.add(s(i * 500, i * 50, i));
            const before = w.estimate();
            w.add(s(3500, 0, 0));  // fewer bytes done: another run
            const after = w.estimate();
            w.add(s(3500, 10, 1)); // the same time again: ignored
            return [before, after, w.samples.length];
        }"""
    )
    before, after, kept = result
    assert before["bytesPerSecond"] == pytest.approx(100)
    assert before["basis"] == "items"
    assert before["secondsLeft"] == pytest.approx(4 / 2)  # 4 items left at 2 items/s
    assert after == {
        "bytesPerSecond": None,
        "itemsPerSecond": None,
        "secondsLeft": None,
        "basis": None,
    }
    assert kept == 1


# One hashing thread; one large file and many small ones, read slowly enough to be seen.
@pytest.mark.parametrize("library", [{"hash_workers": 1}], indirect=True)
def test_stage2_labels_with_a_large_file_and_small_ones(
    page, library: Library, live: LiveServer
) -> None:
    folder = library.root / "mixed"
    folder.mkdir()
    big = folder / "big.safetensors"
    make_sparse(big, 640 * 1024 * 1024, tail=b"the large one")  # >= 160 throttled chunks
    library.add_pending("big", big)
    small_count = 150  # >= 4.5 s of throttled small files
    for i in range(small_count):
        path = folder / f"small_{i:02d}.safetensors"
        write_model(path, 64 * 1024, seed=i)
        library.add_pending(f"small_{i:02d}", path)
    total = small_count + 1
    library.services.hashes.on_chunk = throttle

    page.goto(f"{live.url}#/migration")
    panel = page.locator(
        "section.panel", has=page.get_by_role("heading", name=re.compile("Stage 2"))
    )
    expect(panel.get_by_test_id("stage2-items")).to_have_text("0 of 0 models")
    page.evaluate(RECORD_RATES)
    panel.get_by_role("button", name="Start").click()
    expect(panel.get_by_test_id("stage2-speed")).to_have_text(SPEED, timeout=30_000)
    expect(panel.locator(".badge")).to_have_text("completed", timeout=120_000)
    expect(panel.get_by_test_id("stage2-items")).to_have_text(f"{total} of {total} models")
    status = library.services.migration.get_status()["stats"]
    assert status["processed_items"] == total
    rows = page.evaluate("window.__rates")
    check_rate_labels(rows, total)
    # The time left was given while the large file was read, and again (from the items)
    # while the small ones were.
    with_eta = [int(r[1].split()[0]) for r in rows if DURATION.match(r[4])]
    assert min(with_eta) == 0 and max(with_eta) > 1, rows
    # The data label's total is the run's bytes, the same in every row of the run.
    assert {r[2].split(" of ")[1] for r in rows if r[1] != "0 of 0 models"} == {"649 MB"}
    assert library.db.pending.count() == 0


# ---------------------------------------------------------------------- scan report
def seed_copies(library: Library) -> dict[str, object]:
    """Real duplicate files, hashed by a first scan (one model per content, the other
    files recorded as its copies): a (300,000 bytes) with one copy, small (5,000) with two;
    then one new file that the next scan queues, one model moved and one gone."""
    loras = library.root / "loras"
    a = loras / "a.safetensors"
    write_model(a, 300_000, seed=1)
    (loras / "sub").mkdir()
    shutil.copyfile(a, loras / "sub" / "a_copy.safetensors")
    small = loras / "small.safetensors"
    write_model(small, 5000, seed=2)
    shutil.copyfile(small, library.root / "s2.safetensors")
    shutil.copyfile(small, library.root / "s3.safetensors")
    mover = loras / "mover.safetensors"
    write_model(mover, 7000, seed=4)
    goner = loras / "goner.safetensors"
    write_model(goner, 9000, seed=5)
    library.services.scanner.scan(immediate_hashing=True, conf_strategy="delete")
    write_model(loras / "fresh.safetensors", 4096, seed=3)
    # One model moves to another folder, one vanishes.
    moved = library.root / "elsewhere" / "mover.safetensors"
    moved.parent.mkdir()
    mover.rename(moved)
    goner.unlink()
    return {"mover": mover, "moved": moved, "goner": goner}


# The watcher off: no incremental scan of its own replaces the report under test.
@pytest.mark.parametrize("library", [{"watch": "off"}], indirect=True)
def test_scan_report_shows_every_count_and_links_the_duplicates(
    page, library: Library, live: LiveServer
) -> None:
    seeded = seed_copies(library)
    first = page.request.get(f"{live.url}api/scan/status").json()["started_at"]
    page.goto(f"{live.url}#/migration")
    panel = page.locator(
        "section.panel", has=page.get_by_role("heading", name="Scan model folders")
    )
    panel.get_by_role("button", name="Scan now").click()
    # The seeding scan saw 7 files too: the report is the one of the scan started here.
    answer = wait_until(
        lambda: page.request.get(f"{live.url}api/scan/status").json(),
        lambda status: status["started_at"] != first and not status["running"],
        timeout=30,
    )
    expect(panel.locator(".progress-text")).to_have_text("Done: 7 files seen", timeout=30_000)

    # The API's report of that scan.
    counts = answer["last_report"]["counts"]
    assert counts["duplicates"] == 3 and counts["new"] == 1 and counts["unchanged"] == 5
    assert counts["moved"] == 1 and counts["missing"] == 1 and counts["hashed"] == 1
    # Every count of the report is on the page, with the API's value.
    for key, value in counts.items():
        expect(panel.get_by_test_id(f"scan-{key}")).to_have_text(f"{value:,}")
    shown = panel.locator(".scan-counts [data-testid^=scan-]").evaluate_all(
        "els => els.map((el) => el.dataset.testid)"
    )
    assert set(shown) == {f"scan-{key}" for key in counts} | {"scan-duration"}
    expect(panel.locator(".scan-counts dt", has_text="Duplicate copies")).to_have_count(1)
    expect(panel.locator(".scan-counts dt", has_text="Unchanged")).to_have_count(1)
    # The moved and the missing files, folded.
    relinked = panel.locator(".scan-list[data-list=relinked]")
    relinked.locator("summary").click()
    expect(relinked.locator("summary")).to_have_text("Moved or renamed files (1)")
    expect(relinked.locator("li")).to_have_text(
        f"Moved{seeded['mover']}→to{seeded['moved']}", use_inner_text=False
    )
    missing = panel.locator(".scan-list[data-list=missing]")
    missing.locator("summary").click()
    expect(missing.locator("li .path")).to_have_text(str(seeded["goner"]))

    # Duplicates were found: a link leads to them.
    link = panel.get_by_role("link", name="See the 3 duplicate copies")
    link.click()
    expect(page).to_have_url(re.compile(r"#/duplicates$"))
    expect(page.locator(".dup-group")).to_have_count(2)


# The watcher off: no incremental scan of its own replaces the report under test.
@pytest.mark.parametrize("library", [{"watch": "off"}], indirect=True)
def test_scan_report_without_duplicates_has_no_link(
    page, library: Library, live: LiveServer
) -> None:
    write_model(library.root / "loras" / "one.safetensors", 2048, seed=1)
    page.goto(f"{live.url}#/migration")
    panel = page.locator(
        "section.panel", has=page.get_by_role("heading", name="Scan model folders")
    )
    panel.get_by_role("button", name="Scan now").click()
    expect(panel.locator(".progress-text")).to_have_text("Done: 1 file seen", timeout=30_000)
    expect(panel.get_by_test_id("scan-duplicates")).to_have_text("0")
    expect(panel.get_by_test_id("scan-new")).to_have_text("1")
    expect(panel.get_by_role("link", name=re.compile("duplicate"))).to_have_count(0)


# ---------------------------------------------------------------------- layouts
@pytest.mark.parametrize("library", [{"watch": "off"}], indirect=True)
@pytest.mark.parametrize(("width", "height"), [(390, 844), (1440, 900)], ids=["phone", "desktop"])
def test_migration_page_fits_and_passes_axe(
    page, library: Library, live: LiveServer, width: int, height: int
) -> None:
    seed_copies(library)
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live.url}#/migration")
    scan = page.locator("section.panel", has=page.get_by_role("heading", name="Scan model folders"))
    scan.get_by_role("button", name="Scan now").click()
    expect(scan.locator(".progress-text")).to_have_text("Done: 7 files seen", timeout=30_000)
    # A pending model whose (long) path is gone: Stage 2 lists it in error. (Outside the
    # model roots, so that no later scan drops it as a stale row.)
    deep = (
        library.root.parent
        / ("a-long-folder-name-" * 4)
        / "missing-model-with-a-long-name.safetensors"
    )
    library.add_pending("gone", deep)
    stage2 = page.locator(
        "section.panel", has=page.get_by_role("heading", name=re.compile("Stage 2"))
    )
    stage2.get_by_role("button", name="Start").click()
    expect(page.locator(".toast-success", has_text="Stage 2 started")).to_be_visible()
    expect(stage2.locator(".badge")).to_have_text("completed", timeout=30_000)
    expect(stage2.locator(".error-list li")).to_have_count(1)
    page.evaluate("document.querySelectorAll('details.scan-list').forEach((d) => (d.open = true))")
    expect(page.locator(".scan-list li")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.mouse.move(0, 0)  # no hovered button (app.css's hover colors are not under test)
    for scheme in ("dark", "light"):  # the theme follows the system's by default
        page.emulate_media(color_scheme=scheme)
        assert axe_violations(page) == [], scheme
    screenshot(page, f"migration-{width}", full_page=True)
