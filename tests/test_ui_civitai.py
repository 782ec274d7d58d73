"""The details panel's "Fetch from Civitai" button, in Chromium, against our own Civitai
stand-in on 127.0.0.1 (nothing reaches the internet)."""

from __future__ import annotations

import pytest

from tests.browser import Library, LiveServer, requires_chromium
from tests.civitai_fake import NOT_FOUND, FakeCivitai

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.fake_civitai]

expect = pytest.importorskip("playwright.sync_api").expect


def test_fetch_from_civitai_fills_the_details(
    page, library: Library, live: LiveServer, fake: FakeCivitai
) -> None:
    sha = library.add_model("Alpha", base=None)
    unknown = library.add_model("Nobody knows", base=None)
    fake.found(sha)
    fake.serve_png("a.png")
    fake.lookups[unknown] = [NOT_FOUND]

    page.goto(f"{live.url}#/library/{sha}")
    dialog = page.locator("dialog.details")
    dialog.get_by_role("button", name="Fetch from Civitai").click()
    expect(page.locator(".toast-success", has_text="Filled from Civitai")).to_be_visible()
    link = dialog.get_by_role("link", name=f"{fake.url}/models/11?modelVersionId=101")
    expect(link).to_be_visible()
    expect(dialog.locator(".gallery img")).to_have_count(1)
    record = library.db.models.get(sha)
    assert record["base"] and record["meta"]["trigger_words"] == ["alpha style", "alpha"]
    assert record["meta"]["civitai"]["version_id"] == 101
    assert fake.lookup_paths() == [f"/api/v1/model-versions/by-hash/{sha}"]

    page.goto(f"{live.url}#/library/{unknown}")
    dialog.get_by_role("button", name="Fetch from Civitai").click()
    expect(page.locator(".toast", has_text="Civitai does not know this model")).to_be_visible()
    assert "civitai" not in library.db.models.get(unknown)["meta"]
