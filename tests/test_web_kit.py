"""The web kit shared by the manager's page (web/js) and the ComfyUI extension (web/comfy):
the modules in web/comfy/shared/ are reachable from both hostings by relative URLs, hold
no ComfyUI or page code, and no other copy of them is left.

ComfyUI serves only the extension's folder (``WEB_DIRECTORY``, at
``/extensions/<package>/``); the manager serves the whole web folder under ``static/``. So
the shared modules live inside the extension's folder: ``./shared/x.js`` from the extension
and ``../comfy/shared/x.js`` from the manager's scripts. The real ComfyUI tests load them
through ComfyUI (tests/test_comfyui_*.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web

from hikaze_mm.server import create_app, mount
from hikaze_mm.server.routes.web_ui import WEB_DIR
from hikaze_mm.services import Services

REPO = Path(__file__).resolve().parents[1]
SHARED = WEB_DIR / "comfy" / "shared"
SHARED_FILES = sorted(SHARED.glob("*.js"))
IMPORT_RE = re.compile(r'^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)";', re.M | re.S)


def imports(path: Path) -> list[str]:
    return IMPORT_RE.findall(path.read_text())


def test_the_shared_modules_are_there() -> None:
    assert {p.name for p in SHARED_FILES} >= {"dom.js", "format.js", "lora.js", "listing.js"}


def test_the_extension_folder_is_what_comfyui_serves() -> None:
    init = (REPO / "__init__.py").read_text()
    assert re.search(r'^WEB_DIRECTORY = "\./hikaze_mm/web/comfy"$', init, re.M)


@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.name)
def test_a_shared_module_imports_only_shared_modules(path: Path) -> None:
    """Nothing of ComfyUI (../../scripts/) nor of either page: it must load in both."""
    for target in imports(path):
        assert re.fullmatch(r"\./[\w-]+\.js", target), (path.name, target)
        assert (SHARED / target).is_file(), (path.name, target)


@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.name)
def test_a_shared_module_has_no_side_effects(path: Path) -> None:
    """ComfyUI imports every .js file of the extension's folder: top-level code is only
    imports, exports, constants, declarations and comments."""
    declarations = ("import ", "export ", "const ", "function ", "async function ", "class ")
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line or line[0] in " }/*)]" or line.startswith(declarations):
            continue
        pytest.fail(f"{path.name}:{number}: top-level statement {line!r}")


def test_every_import_of_the_web_ui_resolves() -> None:
    """Every relative import of both pages names a file; the manager reaches into the
    extension's folder only for the shared modules (the rest imports ComfyUI's scripts)."""
    for path in sorted(WEB_DIR.rglob("*.js")):
        for target in imports(path):
            if path.is_relative_to(WEB_DIR / "comfy") and target.startswith("../../scripts/"):
                continue  # ComfyUI's own app.js and api.js
            resolved = (path.parent / target).resolve()
            assert resolved.is_file(), f"{path.relative_to(WEB_DIR)} imports {target}"
            if path.is_relative_to(WEB_DIR / "js") and resolved.is_relative_to(WEB_DIR / "comfy"):
                assert resolved.parent == SHARED, f"{path.relative_to(WEB_DIR)} imports {target}"


def test_no_copies_of_the_shared_helpers_are_left() -> None:
    """One definition of each shared function in the whole web UI."""
    shared = {
        name
        for path in SHARED_FILES
        for name in re.findall(r"^export (?:async )?function (\w+)", path.read_text(), re.M)
    }
    assert {"h", "copyText", "formatBytes", "loraString", "queryString"} <= shared
    for path in sorted(WEB_DIR.rglob("*.js")):
        if path.parent == SHARED:
            continue
        defined = set(re.findall(r"\bfunction\s+(\w+)\s*\(", path.read_text()))
        assert not defined & shared, f"{path.relative_to(WEB_DIR)} defines {defined & shared}"
    assert not (WEB_DIR / "js" / "dom.js").exists()
    assert not (WEB_DIR / "comfy" / "dom.js").exists()


def test_no_lora_tag_is_built_outside_the_builder() -> None:
    for path in sorted(WEB_DIR.rglob("*.js")):
        if path != SHARED / "lora.js":
            assert "`<lora:" not in path.read_text(), path.relative_to(WEB_DIR)


@pytest.mark.parametrize("prefix", ["", "/hikaze"])
async def test_the_manager_serves_the_shared_modules(aiohttp_client, config, prefix) -> None:
    """From /static/js/app.js, ../comfy/shared/dom.js is /static/comfy/shared/dom.js."""
    if prefix:
        app = web.Application()
        mount(app, prefix, Services.open(config))
    else:
        app = create_app(Services.open(config))
    client = await aiohttp_client(app)
    for path in SHARED_FILES:
        resp = await client.get(f"{prefix}/static/comfy/shared/{path.name}")
        assert resp.status == 200, path.name
        assert resp.headers["Content-Type"].startswith("text/javascript")
        assert await resp.read() == path.read_bytes()
