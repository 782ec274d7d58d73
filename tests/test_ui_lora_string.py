"""The manager's card menu copies ``<lora:FILESTEM:WEIGHT>`` (the one builder in
web/comfy/shared/lora.js), in headless Chromium: a LoRA renamed in the library (its display
name differs from its file name) still copies its file's stem, which A1111 and ComfyUI's
prompt-syntax loaders look up. The ComfyUI sidebar's copy of the same LoRA is tested in
tests/test_comfyui_sent_nodes.py."""

from __future__ import annotations

import pytest

from tests.browser import Library, LiveServer, requires_chromium

pytestmark = [pytest.mark.browser, requires_chromium]

expect = pytest.importorskip("playwright.sync_api").expect


def copy_lora(page, name: str) -> str:
    """Open the card menu of ``name``, copy its LoRA tag; the clipboard's text."""
    page.evaluate("navigator.clipboard.writeText('')")
    card = page.locator(".card", has_text=name)
    card.get_by_role("button", name=f"Actions for {name}").click()
    page.get_by_role("menuitem", name="Copy <lora:…> tag").click()
    page.wait_for_function("async () => (await navigator.clipboard.readText()) !== ''")
    return page.evaluate("navigator.clipboard.readText()")


def test_a_renamed_lora_copies_its_file_stem(page, library: Library, live: LiveServer) -> None:
    sha = library.add_model("ink.style_v3", meta={"preferred_weight": 0.65})
    library.db.models.update(sha, name="Ink Style (renamed)")
    library.add_model("plain_lora")  # no preferred weight: 1
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page.goto(live.url)
    assert copy_lora(page, "Ink Style (renamed)") == "<lora:ink.style_v3:0.65>"
    assert copy_lora(page, "plain_lora") == "<lora:plain_lora:1>"
