"""Update checks in Chromium: a check against our Civitai stand-in (127.0.0.1) records an
update; the Library's card shows the "Update" badge (the listing's ``update``); the details
panel shows the version with "Download update" (POST api/downloads, whose answer the row
shows, an error with its status: the downloads route may not exist yet) and "Ignore this
version" (the badge and the row go, and the library remembers it). The Library's "Check
for updates" (in the Filters panel) runs a check with its progress, then the badges
appear; a check already running (409) is followed; a check Civitai refuses says so; the
"Update available" filter lists only the models with an update."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser import (
    Library,
    LiveServer,
    browser_page,
    horizontal_overflow,
    requires_chromium,
)
from tests.civitai_fake import FakeCivitai, Reply, model_item, model_version_item

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


def three_models(library: Library, fake: FakeCivitai) -> tuple[str, str, str]:
    """Alpha and Gamma have a newer version on the stand-in, Beta is at its newest."""
    alpha = holding(library, "Alpha", 3, 31)
    beta = holding(library, "Beta", 4, 41)
    gamma = holding(library, "Gamma", 5, 51)
    fake.civitai_models[3] = model_item(
        3, [model_version_item(32, "v2"), model_version_item(31, "v1")]
    )
    fake.civitai_models[4] = model_item(4, [model_version_item(41, "v1")])
    fake.civitai_models[5] = model_item(
        5, [model_version_item(52, "v5"), model_version_item(51, "v1")]
    )
    return alpha, beta, gamma


def test_check_button_progress_badges_and_filter(
    page, library: Library, live: LiveServer, fake: FakeCivitai
) -> None:
    alpha, beta, gamma = three_models(library, fake)
    # The stand-in holds its answer until released: the check's progress can be seen.
    fake.models_script = [Reply(hold=True, body={"items": list(fake.civitai_models.values())})]
    page.goto(live.url)
    cards = page.locator(".cards .card[data-sha256]")
    expect(cards).to_have_count(3)
    expect(page.locator(".badge-update")).to_have_count(0)

    check = page.get_by_test_id("update-check")
    button = check.get_by_role("button", name="Check for updates")
    button.click()
    expect(check.get_by_role("status")).to_have_text("Checking for updates… 0 of 3 models")
    expect(check.get_by_role("progressbar", name="Update check progress")).to_be_visible()
    expect(button).to_be_disabled()
    assert library.services.updates.job.running
    fake.release.set()

    expect(page.locator(".toast-success", has_text="2 models have an update")).to_be_visible()
    expect(check.get_by_role("status")).to_have_text("2 models have an update")
    expect(check.get_by_role("progressbar")).to_be_hidden()
    expect(button).to_be_enabled()
    for sha in (alpha, gamma):
        expect(page.locator(f'.card[data-sha256="{sha}"] .badge-update')).to_have_text("Update")
    expect(page.locator(f'.card[data-sha256="{beta}"]')).to_be_visible()
    expect(page.locator(f'.card[data-sha256="{beta}"] .badge-update')).to_have_count(0)
    assert [ids for ids, _ in fake.models_asked] == [[3, 4, 5]]

    toggle = page.get_by_label("Update available")
    with page.expect_response(re.compile(r"/api/models\?.*update=available")):
        toggle.check()
    expect(cards).to_have_count(2)
    expect(page.locator(f'.card[data-sha256="{beta}"]')).to_have_count(0)
    expect(page.locator(".summary")).to_have_text("2 models")
    expect(page.locator(".filters-count")).to_have_text("1")
    toggle.focus()
    page.keyboard.press("Space")  # the keyboard unchecks it
    expect(toggle).not_to_be_checked()
    expect(cards).to_have_count(3)


def test_a_running_check_is_followed_and_a_refusal_shown(
    browser, library: Library, live: LiveServer, fake: FakeCivitai
) -> None:
    """On a phone: the button in the Filters panel (no sideways scroll), pressed with the
    keyboard while a check runs (409: that check is followed), then a refused key."""
    three_models(library, fake)
    fake.models_script = [Reply(hold=True, body={"items": list(fake.civitai_models.values())})]
    library.services.updates.start()  # another client's check, held by the stand-in
    with browser_page(browser, viewport={"width": 390, "height": 844}) as page:
        page.console_log.allow_http_status(409)
        page.goto(live.url)
        expect(page.locator(".cards .card[data-sha256]")).to_have_count(3)
        check = page.get_by_test_id("update-check")
        expect(check).to_be_hidden()  # folded with the filters
        page.locator(".filters-toggle").click()
        button = check.get_by_role("button", name="Check for updates")
        expect(button).to_be_visible()
        assert horizontal_overflow(page) == 0
        with page.expect_response(re.compile(r"/api/updates/check$")) as answer:
            button.focus()
            page.keyboard.press("Enter")
        assert answer.value.status == 409
        expect(check.get_by_role("status")).to_contain_text("Checking for updates… 0 of 3")
        fake.release.set()
        expect(page.locator(".toast-success", has_text="2 models have an update")).to_be_visible()
        expect(page.locator(".badge-update")).to_have_count(2)
        assert len(fake.models_asked) == 1  # one check ran: the page followed it

        fake.models_script = [Reply(401, {"error": "Unauthorized"})]
        button.click()
        error = page.locator(".toast-error", has_text="Update check failed: Civitai unreachable")
        expect(error).to_be_visible()
        expect(check.get_by_role("status")).to_contain_text(
            "Update check failed: Civitai unreachable"
        )
        expect(check.get_by_role("status")).to_have_class(re.compile("error-text"))
        expect(button).to_be_enabled()
        expect(page.locator(".badge-update")).to_have_count(2)  # the last answers stay
        assert horizontal_overflow(page) == 0
