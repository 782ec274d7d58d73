"""The Hikaze extension in ComfyUI's real frontend, driven in Chromium (Playwright).

A real ComfyUI (``tests/comfyui_harness.py``: ``COMFYUI_DIR`` and ``COMFYUI_PYTHON`` must be
set, else every test here is skipped with one line saying so) starts with this repository
as its custom node ``hikaze-model-manager`` and four tiny ``.safetensors`` files in its model
folders; the plugin's start-up scan hashes them into the library. The tests then check, in
ComfyUI's own page (``comfyui_frontend_package``):

- the "Models" sidebar tab lists the library (thumbnails, filters, search);
- the picker of a ``HikazeLoraPowerLoader`` writes the chosen LoRA into ``hikaze_payload``
  (sha256, path, preferred weight), and the node's list edits it (strength, enable, remove);
- "send to workflow" of a checkpoint card sets the selected ``HikazeCheckpointLoader``'s
  payload, or adds a loader; dragging a LoRA card onto the canvas appends it;
- a node says when its model is not in the library, or was relinked;
- scan events on the websocket give one progress toast and one summary;
- our extension logs no console error.

The screenshots ``docs/screenshots/comfyui-sidebar.png`` and ``comfyui-node.png`` are written
here (run: ``COMFYUI_DIR=... COMFYUI_PYTHON=... python -m pytest -q tests/test_comfyui_ui.py``).
"""

from __future__ import annotations

import hashlib
import json
import struct
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.browser import ConsoleLog, browser_page, png_bytes, requires_chromium
from tests.comfyui_harness import ComfyBase, ComfyEnv, ComfyUI
from tests.storage_fake import FakeStorage

pytestmark = [pytest.mark.browser, requires_chromium]

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "docs" / "screenshots"
EXTENSION_URL = "/extensions/hikaze-model-manager/"

# name -> (model folder, kohya base version, cover color or None, tags)
MODELS: dict[str, tuple[str, str | None, tuple[int, int, int] | None, tuple[str, ...]]] = {
    "aurora_xl_checkpoint": ("checkpoints", "sdxl_base_v1-0", (214, 120, 52), ("photo",)),
    "ink_style_lora": ("loras", "sdxl_base_v1-0", (62, 132, 222), ("style", "ink")),
    "detail_tweaker_lora": ("loras", "sd_v1", (146, 92, 214), ("detail",)),
    "clear_vae": ("vae", None, None, ()),
}
LORA_WEIGHT = 0.8  # ink_style_lora's meta.preferred_weight


# ---------------------------------------------------------------- the library
def write_safetensors(path: Path, metadata: dict[str, str], seed: str) -> str:
    """A tiny valid safetensors file (one F32 tensor); its SHA-256."""
    tensor = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    header = {"__metadata__": metadata, "weight": tensor}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    data = struct.pack("<Q", len(raw)) + raw + hashlib.sha256(seed.encode()).digest()[:16]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def api_call(server: ComfyUI, method: str, path: str, body: bytes, content_type: str) -> Any:
    url = f"{server.url}/hikaze/api{path}"
    headers = {"Content-Type": content_type}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


@dataclass
class Library:
    server: ComfyUI
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> listing item

    def sha(self, name: str) -> str:
        return self.items[name]["sha256"]


@pytest.fixture(scope="module")
def library(comfyui_env: ComfyEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    """One ComfyUI for the module, its library holding MODELS (covers, tags, a weight)."""
    base = ComfyBase(tmp_path_factory.mktemp("comfyui-ui"))
    paths = {}
    for name, (folder, version, _color, _tags) in MODELS.items():
        metadata = {"ss_base_model_version": version} if version else {}
        paths[name] = base.models / folder / f"{name}.safetensors"
        write_safetensors(paths[name], metadata, name)
    server = ComfyUI(comfyui_env, base)
    server.start()
    try:
        lib = Library(server)
        for name, path in paths.items():
            lib.items[name] = server.wait_for_model(path, timeout=180)
        for name, (_folder, _version, color, tags) in MODELS.items():
            sha = lib.sha(name)
            if color:
                api_call(server, "POST", f"/images/{sha}", png_bytes(color), "image/png")
            patch: dict[str, Any] = {"tags": {"add": list(tags)}} if tags else {}
            if name == "ink_style_lora":
                patch["meta_json"] = {"preferred_weight": LORA_WEIGHT}
            if patch:
                body = json.dumps(patch).encode()
                api_call(server, "PATCH", f"/models/{sha}", body, "application/json")
        # No first-run tutorial or template browser over the canvas.
        settings = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False}
        assert server.post("/settings", settings).status == 200
        for name in MODELS:  # the listing as the UI sees it (paths, covers)
            lib.items[name] = next(i for i in server.list_models() if i["sha256"] == lib.sha(name))
        yield lib
    finally:
        server.stop()


# ---------------------------------------------------------------- the browser
def ours(message: str) -> bool:
    """Whether a console error comes from our extension or our API."""
    return "hikaze" in message.lower()


@pytest.fixture
def page(browser: Any, library: Library) -> Iterator[Any]:
    """ComfyUI's page with our extension loaded; fails the test if our code logged an error."""
    with browser_page(browser, timeout=20_000, failing=ours) as pg:
        pg.context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=library.server.url
        )
        # Uncaught errors by where they were thrown (ConsoleLog keeps only their message).
        pg.on(
            "pageerror", lambda exc: pg.console_log.errors.append(f"pageerror stack: {exc.stack}")
        )
        pg.goto(library.server.url + "/")
        pg.wait_for_function(
            "() => window.app && window.app.graph && window.app.extensionManager"
            " && document.querySelector('.hikaze-models-tab-button')",
            timeout=120_000,
        )
        pg.evaluate(
            "() => { app.graph.clear(); app.canvas.ds.scale = 1; app.canvas.ds.offset = [0, 0] }"
        )
        yield pg


def open_sidebar(page: Any) -> Any:
    page.click(".hikaze-models-tab-button")
    sidebar = page.locator(".hkz-sidebar")
    sidebar.wait_for()
    return sidebar


def add_node(page: Any, node_type: str, x: int = 200, y: int = 150, select: bool = False) -> int:
    return page.evaluate(
        """([type, x, y, select]) => {
            const node = LiteGraph.createNode(type);
            node.pos = [x, y];
            app.graph.add(node);
            if (select) app.canvas.selectNode(node); else app.canvas.deselectAll();
            app.canvas.setDirty(true, true);
            return node.id;
        }""",
        [node_type, x, y, select],
    )


def wait_count(page: Any, selector: str, count: int) -> None:
    """Wait until exactly ``count`` elements match ``selector``."""
    page.wait_for_function(
        "([s, n]) => document.querySelectorAll(s).length === n", arg=[selector, count]
    )


def wait_texts(page: Any, selector: str, texts: list[str]) -> None:
    """Wait until the elements matching ``selector`` have exactly these texts."""
    page.wait_for_function(
        "([s, t]) => JSON.stringify([...document.querySelectorAll(s)].map((e) => e.textContent))"
        " === JSON.stringify(t)",
        arg=[selector, texts],
    )


def wait_payload(page: Any, node_id: int) -> Any:
    """Wait until the node's payload is set; the payload."""
    page.wait_for_function(
        "(id) => app.graph.getNodeById(id).widgets.find((w) => w.name === 'hikaze_payload').value",
        arg=node_id,
    )
    return payload(page, node_id)


def payload(page: Any, node_id: int) -> Any:
    text = page.evaluate(
        "(id) => app.graph.getNodeById(id).widgets.find((w) => w.name === 'hikaze_payload').value",
        node_id,
    )
    return json.loads(text) if text else None


def set_payload(page: Any, node_id: int, value: Any) -> None:
    page.evaluate(
        """([id, text]) => {
            const node = app.graph.getNodeById(id);
            node.widgets.find((w) => w.name === 'hikaze_payload').value = text;
            node.hikaze.refresh();
        }""",
        [node_id, json.dumps(value)],
    )


def single_payload(item: dict[str, Any], path: str | None = None) -> dict[str, Any]:
    return {"sha256": item["sha256"], "name": item["name"], "ckpt_path": path or item["path"]}


def loras_payload(*items: dict[str, Any], weight: float = 0.8) -> dict[str, Any]:
    entries = [
        {
            "name": item["name"],
            "full_path": item["path"],
            "strength_model": weight,
            "strength_clip": weight,
            "sha256": item["sha256"],
            "enabled": True,
        }
        for item in items
    ]
    return {"version": 2, "loras": entries}


def screenshot(page: Any, name: str, clip: dict[str, float] | None = None) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), clip=clip)
    return path


# ---------------------------------------------------------------- tests
def test_the_extension_loads_from_the_custom_node_folder(page: Any, library: Library) -> None:
    urls = library.server.get("/extensions").json()
    ours_ = sorted(u for u in urls if u.startswith(EXTENSION_URL))
    assert EXTENSION_URL + "main.js" in ours_
    assert page.evaluate("() => app.extensions.some((e) => e.name === 'hikaze.ModelManager')")
    # The stylesheet is injected by the extension (ComfyUI loads only .js files).
    assert page.evaluate("() => !!document.querySelector('link#hikaze-mm-style')")


def test_the_sidebar_tab_lists_the_library(page: Any, library: Library) -> None:
    sidebar = open_sidebar(page)
    cards = sidebar.locator(".hkz-card-item")
    cards.nth(len(MODELS) - 1).wait_for()
    assert cards.count() == len(MODELS)
    assert set(sidebar.locator(".hkz-card-name").all_inner_texts()) == set(MODELS)
    summary = sidebar.locator(".hkz-summary")
    assert summary.inner_text() == f"{len(MODELS)} models"
    # Thumbnails: the three models with a cover show it; the VAE shows its letter.
    wait_count(page, ".hkz-sidebar .hkz-thumb.hkz-loaded", 3)
    cover = sidebar.locator(f'[data-sha256="{library.sha("ink_style_lora")}"] img')
    assert "quality=low" in cover.get_attribute("src")
    assert cover.get_attribute("loading") == "lazy"
    # Every control has a label, every action is a real button (or a link).
    for control in sidebar.locator("input, select").all():
        label = control.evaluate("(el) => el.labels.length || el.getAttribute('aria-label')")
        assert label, control.evaluate("(el) => el.outerHTML")
    actions = sidebar.locator(".hkz-card-actions button[aria-label]")
    assert actions.count() == 4 + 2  # "send" on each card, "copy" on the LoRAs
    # Copy <lora:name:weight>, at the preferred weight.
    sidebar.get_by_role("button", name="Copy the LoRA tag of ink_style_lora").click()
    tag = f"<lora:ink_style_lora:{LORA_WEIGHT:g}>"
    page.locator(".p-toast-message").filter(has_text=tag).wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == tag
    link = sidebar.locator(".hkz-sidebar-head a")
    assert link.get_attribute("href").endswith("/hikaze/")
    assert link.get_attribute("target") == "_blank"

    # Type, base and tag filters, and search.
    names = ".hkz-sidebar .hkz-card-name"
    sidebar.get_by_label("Type", exact=True).select_option("loras")
    wait_texts(page, names, ["detail_tweaker_lora", "ink_style_lora"])
    sidebar.get_by_label("Base", exact=True).select_option("SD1.x")
    wait_texts(page, names, ["detail_tweaker_lora"])
    sidebar.get_by_label("Base", exact=True).select_option("")
    sidebar.get_by_label("Tag", exact=True).select_option("ink")
    wait_texts(page, names, ["ink_style_lora"])
    sidebar.get_by_label("Tag", exact=True).select_option("")
    sidebar.get_by_label("Type", exact=True).select_option("")
    sidebar.get_by_label("Search models").fill("aurora")
    wait_texts(page, names, ["aurora_xl_checkpoint"])
    sidebar.get_by_label("Search models").fill("")
    cards.nth(len(MODELS) - 1).wait_for()
    wait_count(page, ".hkz-sidebar .hkz-thumb.hkz-loaded", 3)

    # The picture for the README: the tab beside a checkpoint and a LoRA loader in use.
    ckpt, ink = library.items["aurora_xl_checkpoint"], library.items["ink_style_lora"]
    set_payload(page, add_node(page, "HikazeCheckpointLoader", 330, 140), single_payload(ckpt))
    set_payload(page, add_node(page, "HikazeLoraPowerLoader", 700, 140), loras_payload(ink))
    wait_count(page, ".hkz-node .hkz-thumb.hkz-loaded", 2)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.mouse.move(1300, 850)
    screenshot(page, "comfyui-sidebar")


def test_the_lora_picker_writes_the_payload(page: Any, library: Library) -> None:
    node_id = add_node(page, "HikazeLoraPowerLoader", 150, 120)
    view = page.locator(".hkz-node-loras")
    view.wait_for()
    assert view.locator(".hkz-node-empty").inner_text() == "No LoRAs yet."
    # The raw JSON widget is hidden (advanced) and the view is never saved or queued.
    assert page.evaluate(
        """(id) => {
            const node = app.graph.getNodeById(id);
            const raw = node.widgets.find((w) => w.name === 'hikaze_payload');
            const view = node.widgets.find((w) => w.name === 'hikaze_view');
            return raw.advanced === true && view.serialize === false
                && view.options.serialize === false;
        }""",
        node_id,
    )

    view.get_by_role("button", name="Add LoRA…").click()
    dialog = page.locator("dialog.hkz-dialog[open]")
    dialog.wait_for()
    assert dialog.locator(".hkz-dialog-title").inner_text() == "Choose a LoRA"
    dialog.locator(".hkz-card-pick").nth(1).wait_for()
    # Filtered to LoRAs: only the two LoRAs are offered.
    names = set(dialog.locator(".hkz-card-name").all_inner_texts())
    assert names == {"ink_style_lora", "detail_tweaker_lora"}
    dialog.get_by_role("button", name="ink_style_lora").click()
    dialog.wait_for(state="detached")

    item = library.items["ink_style_lora"]
    data = wait_payload(page, node_id)
    assert data == {
        "version": 2,
        "loras": [
            {
                "name": "ink_style_lora",
                "full_path": item["path"],
                "strength_model": LORA_WEIGHT,
                "strength_clip": LORA_WEIGHT,
                "sha256": item["sha256"],
                "enabled": True,
            }
        ],
    }
    row = view.locator(".hkz-lora")
    row.wait_for()
    wait_count(page, ".hkz-lora .hkz-thumb.hkz-loaded", 1)

    # A second LoRA through the picker; then edit the list.
    view.get_by_role("button", name="Add LoRA…").click()
    dialog.get_by_role("button", name="detail_tweaker_lora").click()
    wait_count(page, ".hkz-lora", 2)
    data = payload(page, node_id)
    shas = [library.sha("ink_style_lora"), library.sha("detail_tweaker_lora")]
    assert [e["sha256"] for e in data["loras"]] == shas
    assert data["loras"][1]["strength_model"] == 1  # no preferred weight: 1.0

    view.get_by_label("Model strength of detail_tweaker_lora").fill("0.35")
    view.get_by_label("Model strength of detail_tweaker_lora").press("Enter")
    view.get_by_label("Enable ink_style_lora").uncheck()
    data = payload(page, node_id)
    assert data["loras"][1]["strength_model"] == 0.35 and data["loras"][1]["strength_clip"] == 1
    assert data["loras"][0]["enabled"] is False
    assert view.locator(".hkz-lora-footer .hkz-node-meta").inner_text() == "1 of 2 enabled"

    # The prompt carries the payload (and nothing of the view).
    prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
    inputs = prompt[str(node_id)]["inputs"]
    assert json.loads(inputs["hikaze_payload"]) == data
    assert "hikaze_view" not in inputs

    view.get_by_role("button", name="Remove ink_style_lora").click()
    wait_count(page, ".hkz-lora", 1)
    assert [e["name"] for e in payload(page, node_id)["loras"]] == ["detail_tweaker_lora"]


def test_send_to_workflow_sets_the_checkpoint_loader(page: Any, library: Library) -> None:
    item = library.items["aurora_xl_checkpoint"]
    node_id = add_node(page, "HikazeCheckpointLoader", 120, 120, select=True)
    sidebar = open_sidebar(page)
    card = sidebar.locator(f'.hkz-card-item[data-sha256="{item["sha256"]}"]')
    card.get_by_role("button", name="Send aurora_xl_checkpoint to the workflow").click()
    assert wait_payload(page, node_id) == {
        "sha256": item["sha256"],
        "name": "aurora_xl_checkpoint",
        "ckpt_path": item["path"],
    }
    assert page.locator(".p-toast-message").filter(has_text="Sent to workflow").count() >= 1
    # Nothing selected: a new loader is added with the model.
    page.evaluate("() => app.canvas.deselectAll()")
    card.get_by_role("button", name="Send aurora_xl_checkpoint to the workflow").click()
    page.wait_for_function(
        "() => app.graph.nodes.filter((n) => n.type === 'HikazeCheckpointLoader').length === 2"
    )
    new_id = page.evaluate(
        "(id) => app.graph.nodes.find((n) => n.type === 'HikazeCheckpointLoader' && n.id != id).id",
        node_id,
    )
    assert wait_payload(page, new_id)["sha256"] == item["sha256"]

    # A LoRA card dragged onto the canvas goes into the only LoRA loader.
    lora_id = add_node(page, "HikazeLoraPowerLoader", 520, 420)
    detail = library.sha("detail_tweaker_lora")
    lora_card = sidebar.locator(f'.hkz-card-item[data-sha256="{detail}"] .hkz-card')
    lora_card.drag_to(page.locator("#graph-canvas"), target_position={"x": 900, "y": 700})
    assert [e["sha256"] for e in wait_payload(page, lora_id)["loras"]] == [detail]


def test_nodes_show_the_model_and_its_state(page: Any, library: Library) -> None:
    page.console_log.allow_http_status(404)  # the model that is not in the library
    ckpt = library.items["aurora_xl_checkpoint"]
    ink, detail = library.items["ink_style_lora"], library.items["detail_tweaker_lora"]
    ckpt_id = add_node(page, "HikazeCheckpointLoader", 40, 60)
    lora_id = add_node(page, "HikazeLoraPowerLoader", 400, 60)
    set_payload(page, ckpt_id, single_payload(ckpt))
    set_payload(page, lora_id, loras_payload(ink, detail))
    page.evaluate("() => app.canvas.setDirty(true, true)")
    single = page.locator(".hkz-node-single").first
    wait_count(page, ".hkz-node-single .hkz-thumb.hkz-loaded", 1)
    wait_count(page, ".hkz-lora .hkz-thumb.hkz-loaded", 2)
    assert single.locator(".hkz-node-name").inner_text() == "aurora_xl_checkpoint"
    assert single.locator(".hkz-node-meta").inner_text().startswith("Checkpoint · SDXL · ")
    assert single.locator(".hkz-node-status").inner_text() == ""
    page.evaluate(
        "() => { app.canvas.ds.scale = 1.25; app.canvas.ds.offset = [60, 80];"
        " app.canvas.setDirty(true, true) }"
    )
    # The canvas has drawn at the new scale once the nodes' DOM widgets follow it.
    page.wait_for_function(
        """() => {
            const scale = app.canvas.ds.scale;
            const nodes = [...document.querySelectorAll(".hkz-node")];
            return nodes.length >= 2 && nodes.every(
                (el) => Math.abs(el.getBoundingClientRect().width - el.offsetWidth * scale) < 1);
        }"""
    )
    box = page.evaluate(
        """(ids) => {
            const rect = app.canvasEl.getBoundingClientRect();
            const nodes = ids.map((id) => app.graph.getNodeById(id));
            const ds = app.canvas.ds;
            const x0 = Math.min(...nodes.map((n) => n.pos[0])) - 20;
            const y0 = Math.min(...nodes.map((n) => n.pos[1])) - 50;
            const x1 = Math.max(...nodes.map((n) => n.pos[0] + n.size[0])) + 20;
            const y1 = Math.max(...nodes.map((n) => n.pos[1] + n.size[1])) + 20;
            return {
                x: rect.left + (x0 + ds.offset[0]) * ds.scale,
                y: rect.top + (y0 + ds.offset[1]) * ds.scale,
                width: (x1 - x0) * ds.scale,
                height: (y1 - y0) * ds.scale,
            };
        }""",
        [ckpt_id, lora_id],
    )
    screenshot(page, "comfyui-node", clip=box)

    # Relinked: the payload's path is not where the library has the model now.
    set_payload(page, ckpt_id, single_payload(ckpt, "/old/place.safetensors"))
    status = single.locator(".hkz-node-status")
    status.filter(has_text="Relinked: now at").wait_for()
    assert ckpt["path"] in status.inner_text()
    single.get_by_role("button", name="Use new path").click()
    assert payload(page, ckpt_id)["ckpt_path"] == ckpt["path"]
    # Not in the library: a hash the library does not know.
    set_payload(page, ckpt_id, {"sha256": "0" * 64, "name": "gone"})
    status.filter(has_text="Not in the library (0000000000)").wait_for()


def test_a_saved_workflow_keeps_the_payload_and_its_view(page: Any, library: Library) -> None:
    ckpt, ink = library.items["aurora_xl_checkpoint"], library.items["ink_style_lora"]
    ckpt_id = add_node(page, "HikazeCheckpointLoader", 300, 100)
    lora_id = add_node(page, "HikazeLoraPowerLoader", 700, 100)
    dtype_id = add_node(page, "HikazeDiffusionModelLoader", 300, 400)
    set_payload(page, ckpt_id, single_payload(ckpt))
    set_payload(page, lora_id, loras_payload(ink))
    workflow = page.evaluate("() => app.graph.serialize()")
    values = {node["id"]: node["widgets_values"] for node in workflow["nodes"]}
    # Only the node's own inputs are saved: the payload (and the diffusion loader's dtype).
    assert len(values[ckpt_id]) == 1 and json.loads(values[ckpt_id][0]) == single_payload(ckpt)
    assert len(values[lora_id]) == 1 and json.loads(values[lora_id][0]) == loras_payload(ink)
    assert values[dtype_id] == ["", "default"]
    page.evaluate("async (wf) => { app.graph.clear(); await app.loadGraphData(wf); }", workflow)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.hkz-node-single .hkz-node-name')]"
        ".some((e) => e.textContent === 'aurora_xl_checkpoint')"
    )
    page.locator(".hkz-lora").filter(has_text="ink_style_lora").wait_for()
    assert payload(page, ckpt_id) == single_payload(ckpt)
    dtype = page.evaluate(
        "(id) => app.graph.getNodeById(id).widgets.find((w) => w.name === 'weight_dtype').value",
        dtype_id,
    )
    assert dtype == "default"


def test_scan_events_give_one_progress_toast_and_a_summary(page: Any) -> None:
    def emit(status: dict[str, Any]) -> None:
        page.evaluate("(s) => comfyAPI.api.api.dispatchCustomEvent('hikaze.scan', s)", status)

    counts = {"files_seen": 10, "new": 0, "hashed": 0, "to_hash": 0, "promoted": 0, "missing": 0}
    started = {"started_at": 1_700_000_000_000, "finished_at": None}
    for phase in ("starting", "walking", "walking", "hashing"):
        emit({**started, "phase": phase, "counts": counts})
    toasts = page.locator(".p-toast-message")
    toasts.filter(has_text="Hikaze: scanning models").wait_for()
    assert toasts.filter(has_text="Hikaze: scanning models").count() == 1
    done = {"started_at": started["started_at"], "finished_at": 1_700_000_005_000, "phase": "done"}
    emit({**done, "counts": {**counts, "new": 3, "promoted": 3, "missing": 1}})
    emit({**done, "counts": {**counts, "new": 3, "promoted": 3, "missing": 1}})  # a repeat
    summary = toasts.filter(has_text="Hikaze: scan finished")
    summary.wait_for()
    assert summary.count() == 1
    assert "10 files: 3 new, 3 added, 1 missing" in summary.inner_text()
    toasts.filter(has_text="Hikaze: scanning models").wait_for(state="detached")


def test_download_events_give_a_progress_toast_and_an_ending(page: Any) -> None:
    def emit(view: dict[str, Any]) -> None:
        page.evaluate("(v) => comfyAPI.api.api.dispatchCustomEvent('hikaze.download', v)", view)

    base = {"id": 7, "source": "civitai:101", "file_name": "alpha.safetensors", "error": None}
    emit({**base, "status": "running", "bytes_done": 512, "bytes_total": 2048, "speed": 1024})
    emit({**base, "status": "running", "bytes_done": 1024, "bytes_total": 2048, "speed": 1024})
    toasts = page.locator(".p-toast-message")
    running = toasts.filter(has_text="Hikaze: downloading")
    running.wait_for()
    assert running.count() == 1 and "alpha.safetensors: 25% of 2.0 KB" in running.inner_text()
    done = {**base, "status": "done", "bytes_done": 2048, "bytes_total": 2048}
    emit({**done, "path": "/models/loras/alpha.safetensors", "sha256": "a" * 64})
    emit({**done, "path": "/models/loras/alpha.safetensors", "sha256": "a" * 64})  # a repeat
    ended = toasts.filter(has_text="Hikaze: downloaded")
    ended.wait_for()
    assert ended.count() == 1 and "/models/loras/alpha.safetensors" in ended.inner_text()
    running.wait_for(state="detached")
    emit({**base, "id": 8, "status": "failed", "error": "SHA-256 mismatch: expected a, got b"})
    failed = toasts.filter(has_text="Hikaze: download failed")
    failed.wait_for()
    assert "SHA-256 mismatch" in failed.inner_text()


def test_a_loaded_workflow_lists_its_missing_models_and_fetches_them(
    page: Any, library: Library, storage: FakeStorage
) -> None:
    """Loading a workflow that needs a model the library lacks shows our dialog beside
    ComfyUI's own missing-models warning (never instead of it); once that one is closed,
    "Download all" fetches the model (verified by the hash the workflow lists) and says
    the workflow can run."""
    data = struct.pack("<Q", 2) + b"{}" + hashlib.sha256(b"fetched").digest() * 64
    storage.put("fetched.safetensors", data)
    sha = hashlib.sha256(data).hexdigest()
    name = "fetched/ui_fetched_lora.safetensors"
    assert (
        library.server.post("/settings", {"Comfy.Workflow.ShowMissingModelsWarning": False}).status
        == 200
    )
    workflow = {
        "last_node_id": 1,
        "last_link_id": 0,
        "nodes": [
            {
                "id": 1, "type": "LoraLoaderModelOnly", "pos": [200, 200], "size": [300, 90],
                "flags": {}, "order": 0, "mode": 0, "inputs": [], "outputs": [],
                "properties": {}, "widgets_values": [name, 1.0],
            }
        ],
        "links": [],
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
        "models": [
            {
                "name": name,
                "url": storage.file_url("fetched.safetensors"),
                "hash": sha,
                "hash_type": "SHA256",
                "directory": "loras",
            }
        ],
    }  # fmt: skip
    page.evaluate("async (wf) => { app.graph.clear(); await app.loadGraphData(wf); }", workflow)
    dialog = page.locator("#hkz-missing-models")
    dialog.wait_for()
    assert dialog.locator("tbody tr").count() == 1
    assert name in dialog.inner_text() and sha[:10].upper() in dialog.inner_text()
    comfy_warning = page.locator(".p-dialog-mask")
    comfy_warning.wait_for()  # ComfyUI's own dialog is there too
    page.keyboard.press("Escape")
    comfy_warning.wait_for(state="detached")
    dialog.get_by_role("button", name="Download all").click()
    status = dialog.locator(".hkz-missing-status")
    status.filter(has_text="You can run the workflow").wait_for(timeout=60_000)
    assert "1 downloaded" in status.inner_text()
    model = library.server.api("GET", f"/models/{sha}")
    assert model.status == 200 and model.json()["path"].endswith(name)
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="detached")


def test_the_manager_page_sends_to_the_workflow(page: Any, library: Library) -> None:
    """The manager's own page (/hikaze/, another tab of ComfyUI's origin) knows it runs
    inside ComfyUI: a card's "Send to workflow" puts the model into the open ComfyUI tab's
    workflow, and says so when no ComfyUI tab is open."""
    item = library.items["aurora_xl_checkpoint"]
    manager = page.context.new_page()
    log = ConsoleLog(manager)
    manager.goto(library.server.url + "/hikaze/")
    manager.locator(".card").first.wait_for()

    def send() -> None:
        manager.get_by_role("button", name="Actions for aurora_xl_checkpoint").click()
        manager.get_by_role("menuitem", name="Send to workflow").click()

    send()
    sent = manager.locator(".toast-success", has_text="Sent aurora_xl_checkpoint to the workflow")
    sent.wait_for()
    page.wait_for_function(
        "(sha) => app.graph.nodes.some((n) => n.type === 'HikazeCheckpointLoader'"
        " && (n.widgets.find((w) => w.name === 'hikaze_payload').value || '').includes(sha))",
        arg=item["sha256"],
    )
    # No ComfyUI tab open any more: the page says so instead of waiting.
    page.goto("about:blank")
    send()
    manager.locator(".toast-error", has_text="No ComfyUI tab answered").wait_for()
    manager.close()
    assert log.errors == []
