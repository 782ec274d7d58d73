"""End-to-end: the Downloads page in headless Chromium against a real server and our
storage host: a pasted URL downloaded into the library, a slow one paused, resumed and
finished, a wrong hash's error shown, and a bad source refused in the form."""

from __future__ import annotations

import hashlib

import pytest

from tests.browser import Library, LiveServer, axe_violations, requires_chromium
from tests.storage_fake import FakeStorage
from tests.test_downloads import MIB, payload

pytestmark = [
    pytest.mark.browser,
    requires_chromium,
    pytest.mark.parametrize("library", [{"watch": "off"}], indirect=True),
]

expect = pytest.importorskip("playwright.sync_api").expect


def test_a_pasted_url_downloads_pauses_resumes_and_lands_in_the_library(
    page, library: Library, live: LiveServer, storage: FakeStorage
) -> None:
    data = payload(3 * MIB, seed=70)
    storage.put("paste.safetensors", data)
    storage.slow = 256 * 1024
    page.goto(f"{live.url}#/downloads")
    page.get_by_label("URL or hash").fill(storage.file_url("paste.safetensors"))
    page.get_by_label("Type (folder)").select_option("loras")
    page.get_by_role("button", name="Download", exact=True).click()
    row = page.locator(".dl-row").filter(has_text="paste.safetensors")
    expect(row.locator(".dl-status-running")).to_be_visible(timeout=30_000)
    expect(row.locator(".dl-line")).to_contain_text("/s", timeout=30_000)  # a speed
    row.get_by_role("button", name="Pause paste.safetensors").click()
    expect(row.locator(".dl-status-paused")).to_be_visible(timeout=30_000)
    expect(row.locator(".dl-line")).to_contain_text("paused at")
    storage.slow = 0
    row.get_by_role("button", name="Resume paste.safetensors").click()
    expect(row.locator(".dl-status-done")).to_be_visible(timeout=60_000)
    final = library.root / "loras" / "paste.safetensors"
    expect(row.locator(".dl-line")).to_have_text(str(final))
    assert final.read_bytes() == data
    assert library.db.models.get(hashlib.sha256(data).hexdigest()) is not None
    assert axe_violations(page) == []
    row.get_by_role("button", name="Remove paste.safetensors").click()
    expect(page.locator(".dl-row")).to_have_count(0)
    expect(page.locator(".dl-empty")).to_be_visible()


def test_errors_show_in_the_form_and_in_the_queue(
    page, library: Library, live: LiveServer, storage: FakeStorage
) -> None:
    storage.put("wrong.safetensors", payload(MIB, seed=71))
    page.console_log.allow_http_status(400)  # the refused source, on purpose
    page.goto(f"{live.url}#/downloads")
    page.get_by_label("URL or hash").fill("ftp://example.invalid/x.safetensors")
    page.get_by_label("Type (folder)").select_option("loras")
    page.get_by_role("button", name="Download", exact=True).click()
    expect(page.locator(".dl-form .form-error")).to_contain_text("ftp")
    expect(page.locator(".dl-row")).to_have_count(0)
    expected = "ab" * 32
    page.get_by_label("URL or hash").fill(storage.file_url("wrong.safetensors"))
    page.get_by_label("Expected SHA-256 (optional)").fill(expected)
    page.get_by_role("button", name="Download", exact=True).click()
    row = page.locator(".dl-row").filter(has_text="wrong.safetensors")
    expect(row.locator(".dl-status-failed")).to_be_visible(timeout=30_000)
    expect(row.locator(".dl-line.dl-error")).to_contain_text(expected)
    expect(row.get_by_role("button", name="Resume wrong.safetensors")).to_be_visible()
