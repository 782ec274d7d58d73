"""End-to-end in headless Chromium, against a real server and library with a real ComfyUI
output folder: the details panel's "Made with this model" strip (newest first, a deleted
file, paging, "Use as cover" making a generation the model's cover) and the Library's
inspect (an image dropped on the page lists its parameters and resources, errors shown,
the details gallery's own upload drop left alone)."""

from __future__ import annotations

import base64
import io
import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat, PngImagePlugin

from hikaze_mm.credits.infotext import Parameters, Resource, build_infotext
from tests.browser import (
    Library,
    LiveServer,
    axe_violations,
    browser_page,
    open_library,
    png_bytes,
    requires_chromium,
)

pytestmark = [pytest.mark.browser, requires_chromium]

expect = pytest.importorskip("playwright.sync_api").expect

PAGE_SIZE = 12  # the strip's page (details/generations.js)
GEN_SIZE = (64, 80)


@dataclass
class Site:
    library: Library
    server: LiveServer
    output: Path  # ComfyUI's output folder

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.server.url}api/{path}", timeout=10) as resp:
            return json.load(resp)


@pytest.fixture(name="site")
def site_fixture(tmp_path: Path) -> Iterator[Site]:
    """A fresh library whose ComfyUI output folder is <tmp>/output, and its server."""
    output = tmp_path / "output"
    output.mkdir()
    library = open_library(tmp_path, output_dir=output)
    server = LiveServer(library.services).start()
    yield Site(library, server, output)
    server.stop()


def solid_png(color: tuple[int, int, int], size: tuple[int, int] = GEN_SIZE) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def record(site: Site, sha: str, k: int, *, color=(40, 90, 200), missing: bool = False) -> int:
    """Generation k of model `sha`: output/gen_<k>.png (not written when `missing`)."""
    name = f"gen_{k:03d}.png"
    if not missing:
        (site.output / name).write_bytes(solid_png(color))
    params = {
        "prompt": f"prompt {k}",
        "negative_prompt": "blurry",
        "seed": 1000 + k,
        "steps": 20,
        "sampler": "Euler",
        "cfg": 7.0,
        "width": GEN_SIZE[0],
        "height": GEN_SIZE[1],
    }
    uses = [{"sha256": sha, "role": "lora", "name": "Style LoRA", "weight": 0.8}]
    return site.library.services.generations.record(name, params, uses)


def prompts(page: Any) -> list[str]:
    return page.locator(".made-item .made-prompt").all_inner_texts()


def mean_color(data: bytes) -> tuple[float, ...]:
    with Image.open(io.BytesIO(data)) as img:
        return tuple(ImageStat.Stat(img.convert("RGB")).mean)


# ---------------------------------------------------------------------- the strip
def test_strip_lists_generations_newest_first_with_a_deleted_file_and_pages(
    browser, site: Site
) -> None:
    lib = site.library
    sha = lib.add_model("Style LoRA", image=(219, 97, 162))
    total = PAGE_SIZE + 3
    for k in range(total):
        record(site, sha, k, missing=k == total - 2)  # the second newest was deleted
    with browser_page(browser) as page:
        page.goto(f"{site.server.url}#/library/{sha}")
        strip = page.locator("dialog.details .details-made")
        expect(strip.get_by_role("heading", name="Made with this model")).to_be_visible()
        expect(strip.locator(".made-item")).to_have_count(PAGE_SIZE)
        newest = [f"prompt {k}" for k in range(total - 1, -1, -1)]
        assert prompts(page) == newest[:PAGE_SIZE]
        expect(strip.locator(".made-count")).to_have_text(f"{PAGE_SIZE} of {total}")
        first = strip.locator(".made-item").first
        expect(first).to_contain_text("Seed 1014")
        expect(first).to_contain_text("Euler")
        expect(first).to_contain_text("20 steps")
        page.wait_for_function(
            "img => img.complete && img.naturalWidth === 64",
            arg=first.locator("img").element_handle(),
        )
        # The deleted file: a placeholder, nothing to make a cover of.
        deleted = strip.locator(".made-item").nth(1)
        expect(deleted.locator(".made-missing")).to_have_text("File deleted")
        expect(deleted.locator("img")).to_have_count(0)
        expect(deleted.get_by_role("button")).to_have_count(0)
        expect(first.get_by_role("button", name="Use as cover: image 1")).to_be_visible()
        violations = axe_violations(page)
        assert not violations, violations

        # Paging: the rest, then no more to load; the focus goes to the first new image.
        more = strip.get_by_role("button", name="Load more")
        more.focus()
        page.keyboard.press("Enter")
        expect(strip.locator(".made-item")).to_have_count(total)
        assert prompts(page) == newest
        expect(more).to_be_hidden()
        expect(strip.locator(".made-count")).to_have_text(f"{total} of {total}")
        expect(strip.locator(".made-item").nth(PAGE_SIZE).locator("a")).to_be_focused()


def test_use_as_cover_makes_a_generation_the_models_cover(browser, site: Site) -> None:
    lib = site.library
    sha = lib.add_model("Style LoRA", image=(219, 97, 162))
    lib.services.images.add_image(sha, png_bytes((63, 185, 80)))
    before = site.api(f"models/{sha}")["images"]
    assert len(before) == 2
    blue, yellow = (30, 60, 220), (230, 200, 20)
    record(site, sha, 0, color=yellow)
    record(site, sha, 1, color=blue)  # the newest: image 1 of the strip
    with browser_page(browser) as page:
        page.goto(f"{site.server.url}#/library/{sha}")
        dialog = page.locator("dialog.details")
        expect(dialog.locator(".made-item")).to_have_count(2)
        dialog.get_by_role("button", name="Use as cover: image 2").click()
        expect(page.locator(".toast-success")).to_contain_text("The image is now the cover")

        after = site.api(f"models/{sha}")["images"]
        assert len(after) == 3 and after[1:] == before
        with urllib.request.urlopen(f"{site.server.url}api/images/{after[0]}?quality=low") as resp:
            color = mean_color(resp.read())
        assert all(abs(c - y) < 16 for c, y in zip(color, yellow, strict=True)), color
        # The panel's gallery and the grid's card show the new cover.
        cover = dialog.locator(".gallery-item").first
        expect(cover).to_have_attribute("data-name", after[0])
        expect(cover.locator(".cover-badge")).to_be_visible()
        expect(dialog.locator(".gallery-item")).to_have_count(3)
        card_img = page.locator(f'.card[data-sha256="{sha}"] img')
        expect(card_img).to_have_attribute("src", re.compile(after[0]))


def test_strip_says_when_a_model_made_nothing(browser, site: Site) -> None:
    sha = site.library.add_model("Unused", image=(63, 185, 80))
    with browser_page(browser) as page:
        page.goto(f"{site.server.url}#/library/{sha}")
        strip = page.locator("dialog.details .details-made")
        expect(strip.locator(".made-empty")).to_contain_text("Nothing made with this model yet")
        expect(strip.locator(".made-item")).to_have_count(0)
        expect(strip.get_by_role("button", name="Load more")).to_be_hidden()


# ---------------------------------------------------------------------- inspect
DROP = """async ({selector, b64, name, type, size}) => {
    const bytes = b64 === null
        ? new Uint8Array(size)
        : Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], name, { type }));
    const target = document.querySelector(selector);
    for (const kind of ["dragenter", "dragover", "drop"]) {
        const init = { bubbles: true, cancelable: true, dataTransfer: data };
        target.dispatchEvent(new DragEvent(kind, init));
    }
}"""


def drop_file(page: Any, selector: str, data: bytes | None, name: str, type_: str, size: int = 0):
    b64 = None if data is None else base64.b64encode(data).decode()
    page.evaluate(
        DROP, {"selector": selector, "b64": b64, "name": name, "type": type_, "size": size}
    )


def a1111_png(text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    buffer = io.BytesIO()
    Image.new("RGB", GEN_SIZE, (120, 80, 40)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def test_a_dropped_image_lists_its_parameters_and_resources(browser, site: Site) -> None:
    lib = site.library
    base = lib.add_model("Base Model", type_="checkpoints", image=(47, 129, 247))
    lora = lib.add_model("Style LoRA", image=(219, 97, 162))
    elsewhere = "ab" * 32  # a LoRA this library does not have: AutoV2 ABABABABAB
    params = Parameters(
        prompt="a cat in a hat",
        negative_prompt="blurry",
        steps=28,
        sampler="DPM++ 2M",
        schedule_type="Karras",
        cfg=6.5,
        seed=424242,
        width=64,
        height=80,
    )
    resources = [
        Resource("model", "Base Model", base),
        Resource("lora", "Style LoRA", lora, 0.8),
        Resource("lora", "elsewhere", elsewhere, 1.0),
    ]
    text = build_infotext(params, resources)  # what HikazeSaveImage writes
    with browser_page(browser) as page:
        page.goto(site.server.url)
        expect(page.locator(".card")).to_have_count(2)
        drop_file(page, ".cards", a1111_png(text), "cat.png", "image/png")
        dialog = page.locator("dialog.inspect")
        expect(dialog).to_be_visible()
        shown = dialog.locator(".inspect-params")
        for value in (
            "a cat in a hat",
            "blurry",
            "424242",
            "28",
            "DPM++ 2M · Karras",
            "6.5",
            "64×80",
        ):
            expect(shown).to_contain_text(value)
        found = dialog.locator(".inspect-resource.in-library")
        expect(found.get_by_role("button", name="Style LoRA").first).to_be_visible()
        expect(found.get_by_role("button", name="Base Model").first).to_be_visible()
        missing = dialog.locator(".inspect-resource.not-in-library", has_text="elsewhere")
        expect(missing).to_contain_text("Not in the library")
        expect(missing).to_contain_text("ABABABABAB")
        violations = axe_violations(page)
        assert not violations, violations

        # A card opens the model's details in place of the dialog.
        found.get_by_role("button", name="Style LoRA").first.click()
        expect(dialog).to_be_hidden()
        details = page.locator("dialog.details")
        expect(details.get_by_role("heading", name="Style LoRA")).to_be_visible()
        assert page.evaluate("location.hash") == f"#/library/{lora}"


def test_inspect_shows_errors_for_a_non_image_and_a_too_large_file(browser, site: Site) -> None:
    site.library.add_model("Style LoRA", image=(219, 97, 162))
    with browser_page(browser) as page:
        page.console_log.allow_http_status(400)
        page.goto(site.server.url)
        expect(page.locator(".card")).to_have_count(1)
        # Picked with the button's file input: not an image (the server's 400).
        page.locator(".inspect-button + input[type=file]").set_input_files(
            files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"just text"}]
        )
        dialog = page.locator("dialog.inspect")
        alert = dialog.get_by_role("alert")
        expect(alert).to_contain_text("not a readable PNG, WebP or JPEG image")
        # Over 32 MiB: said at once, without sending it.
        sent = []
        page.on("request", lambda req: sent.append(req.url) if "inspect" in req.url else None)
        drop_file(page, "dialog.inspect", None, "huge.png", "image/png", size=32 * 1024 * 1024 + 1)
        expect(alert).to_contain_text("too large: at most 32")
        assert sent == []
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()


def test_a_drop_on_the_details_gallery_uploads_and_is_not_inspected(browser, site: Site) -> None:
    sha = site.library.add_model("Style LoRA", image=(219, 97, 162))
    with browser_page(browser) as page:
        sent = []
        page.on(
            "request", lambda req: sent.append(req.url) if "images/inspect" in req.url else None
        )
        page.goto(f"{site.server.url}#/library/{sha}")
        gallery = page.locator("dialog.details .gallery-item")
        expect(gallery).to_have_count(1)
        drop_file(
            page, "dialog.details .dropzone", png_bytes((63, 185, 80)), "new.png", "image/png"
        )
        expect(gallery).to_have_count(2)
        # A file dropped elsewhere on the open panel is not inspected either.
        drop_file(page, "dialog.details .details-view", solid_png((1, 2, 3)), "x.png", "image/png")
        expect(page.locator("dialog.inspect")).to_be_hidden()
        assert len(site.api(f"models/{sha}")["images"]) == 2
        assert sent == []


DRAG = """({selector, kinds}) => {
    const data = new DataTransfer();
    data.items.add(new File(["x"], "x.png", { type: "image/png" }));
    const target = document.querySelector(selector);
    for (const kind of kinds) {
        const init = { bubbles: true, cancelable: true, dataTransfer: data };
        target.dispatchEvent(new DragEvent(kind, init));
    }
}"""


def test_a_file_dragged_over_the_library_shows_where_to_drop_it(browser, site: Site) -> None:
    sha = site.library.add_model("Style LoRA", image=(219, 97, 162))
    with browser_page(browser) as page:
        page.goto(site.server.url)
        expect(page.locator(".card")).to_have_count(1)
        hint = page.locator(".inspect-drop-hint")
        expect(hint).to_be_hidden()
        page.evaluate(DRAG, {"selector": ".cards", "kinds": ["dragenter", "dragover"]})
        expect(hint).to_be_visible()
        expect(hint).to_contain_text("Drop the image to see what it was made with")
        page.evaluate(DRAG, {"selector": ".cards", "kinds": ["dragleave"]})
        expect(hint).to_be_hidden()
        # Not over the details panel: its drops are its own.
        page.goto(f"{site.server.url}#/library/{sha}")
        expect(page.locator("dialog.details .gallery-item")).to_have_count(1)
        page.evaluate(DRAG, {"selector": "dialog.details .dropzone", "kinds": ["dragenter"]})
        expect(hint).to_be_hidden()
