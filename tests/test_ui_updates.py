"""Update checks in Chromium: a check against our Civitai stand-in (127.0.0.1) records an
update; the Library's card shows the "Update" badge (the listing's ``update``); the details
panel shows the version with "Download update" (POST api/downloads, whose answer the row
shows, an error with its status: the downloads route may not exist yet) and "Ignore this
version" (the badge and the row go, and the library remembers it)."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser import Library, LiveServer, requires_chromium
from tests.civitai_fake import FakeCivitai, model_item, model_version_item

pytestmark = [pytest.mark.browser, requires_chromium, pytest.mark.fake_civitai]

expect = pytest.importorskip("playwright.sync_api").expect


def holding(library: Library, name: str, model_id: int, version_id: int) -> str:
    civitai = {
        "model_id": model_id,
        "version_id": version_id,
        "version_name": "v1",
        "url": f"https://civitai.com/models/{model_id}?modelVersionId={version_id}",
        "base_model": "SDXL 1.0",
    }
    return library.add_model(name, meta={"civitai": civitai})


def test_badge_download_and_ignore(
    page, library: Library, live: LiveServer, fake: FakeCivitai
) -> None:
    sha = holding(library, "Alpha", 3, 31)
    current = holding(library, "Beta", 4, 41)
    fake.civitai_models[3] = model_item(
        3,
        [
            model_version_item(32, "v2 shiny", published_at="2024-02-01T00:00:00.000Z"),
            model_version_item(31, "v1", published_at="2024-01-01T00:00:00.000Z"),
        ],
    )
    fake.civitai_models[4] = model_item(4, [model_version_item(41, "v1")])
    updates = library.services.updates
    updates.start()  # in its own thread (Playwright's loop runs in this one)
    assert updates.wait(60)
    report = updates.status()["last_report"]
    assert report["counts"]["updates"] == 1 and report["error"] is None

    page.goto(live.url)
    alpha = page.locator(f'.card[data-sha256="{sha}"]')
    expect(alpha.locator(".badge-update")).to_have_text("Update")
    expect(alpha.locator(".badge-update")).to_have_attribute("title", re.compile("v2 shiny"))
    expect(page.locator(f'.card[data-sha256="{current}"]')).to_be_visible()
    expect(page.locator(f'.card[data-sha256="{current}"] .badge-update')).to_have_count(0)

    alpha.locator(".card-name").click()
    dialog = page.locator("dialog.details")
    row = dialog.get_by_test_id("update")
    expect(row).to_contain_text("v2 shiny (SDXL 1.0,")

    page.console_log.allow_http_status(404)  # no downloads route yet: the row says so
    page.console_log.allow_http_status(405)
    with page.expect_response(re.compile(r"/api/downloads$")) as answer:
        row.get_by_role("button", name="Download update").click()
    response = answer.value
    assert json.loads(response.request.post_data) == {"source": "civitai:32", "type": "loras"}
    status = row.get_by_role("status")
    if response.status == 202:
        expect(status).to_have_text(re.compile("Download of v2 shiny queued"))
    else:
        body = response.json()
        expect(status).to_contain_text(f"Download failed (HTTP {response.status})")
        expect(status).to_contain_text(body["error"])
        if response.status == 405 or body["error"] == "Not Found":  # aiohttp: no such route
            expect(status).to_contain_text("this server cannot download models")
        expect(page.locator(".toast-error", has_text="Download update")).to_be_visible()

    row.get_by_role("button", name="Ignore this version").click()
    expect(page.locator(".toast-success", has_text="v2 shiny will not be offered")).to_be_visible()
    expect(dialog.get_by_test_id("update")).to_have_count(0)
    meta = library.db.models.get(sha)["meta"]
    assert "update" not in meta and meta["update_ignored"] == [32]
    page.keyboard.press("Escape")
    expect(alpha).to_be_visible()
    expect(alpha.locator(".badge-update")).to_have_count(0)
