"""ComfyUI's ``SaveImage`` against ``HikazeSaveImage`` for the same 1024x1024 image.

Runs inside ComfyUI's Python with the checkout as its working folder (the script starts
itself there when run from another Python), importing ComfyUI's ``nodes`` as ComfyUI does.
A fresh library in a temp folder knows a checkpoint, a LoRA and an embedding (small files
in temp model folders ComfyUI is told about); the nodes are bound to it as the plugin binds
them. The executed prompt is ComfyUI's: ``CheckpointLoaderSimple`` -> ``LoraLoader`` ->
``KSampler`` (an ``embedding:`` in the prompt) -> ``VAEDecode`` -> the save node, so the
Hikaze node walks the graph, looks up three models by path, writes A1111 infotext and
records the generation (when the library records generations), on every image.

The two nodes save alternately, PNG, into a temp output folder; per image ms p50 of each
and the difference (target: <= 10 ms added). Also the Hikaze node's own work alone (graph
walk, lookups, infotext, record) per image, and its WebP and JPEG times for information.

    COMFYUI_DIR=... COMFYUI_PYTHON=... python bench/save_image_bench.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 10.0
SIZE = 1024


def relaunch(argv: list[str]) -> int:
    """Run this script again in ComfyUI's Python, from the checkout."""
    comfy_dir, python = os.environ.get("COMFYUI_DIR"), os.environ.get("COMFYUI_PYTHON")
    if not comfy_dir or not python:
        raise SystemExit("set COMFYUI_DIR and COMFYUI_PYTHON (a ComfyUI checkout and its Python)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKAZE_")}
    env.pop("PYTHONPATH", None)
    command = [python, str(Path(__file__).resolve()), "--inside", *argv]
    return subprocess.run(command, cwd=comfy_dir, env=env).returncode


def test_image() -> Any:
    """A smooth 1024x1024 picture with some grain (like a generated image, not noise)."""
    import torch

    y, x = torch.meshgrid(torch.linspace(0, 1, SIZE), torch.linspace(0, 1, SIZE), indexing="ij")
    rgb = torch.stack([x, y, 0.5 + 0.5 * torch.sin(12 * x * y)], dim=-1)
    grain = torch.rand(SIZE, SIZE, 3, generator=torch.Generator().manual_seed(1)) * 0.03
    return (rgb * 0.97 + grain).clamp(0, 1).unsqueeze(0)


def make_models(root: Path) -> dict[str, str]:
    """Small files standing in for a checkpoint, a LoRA and an embedding (never loaded)."""
    names = {
        "checkpoints": "bench_ckpt.safetensors",
        "loras": "bench_lora.safetensors",
        "embeddings": "bench_emb.safetensors",
    }
    for n, (folder, name) in enumerate(names.items()):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_bytes(bytes([n + 1]) * (64 * 1024 + n))
    return names


def the_prompt(names: dict[str, str]) -> dict[str, Any]:
    def node(class_type: str, **inputs: Any) -> dict[str, Any]:
        return {"class_type": class_type, "inputs": inputs}

    return {
        "1": node("CheckpointLoaderSimple", ckpt_name=names["checkpoints"]),
        "2": node(
            "LoraLoader",
            model=["1", 0],
            clip=["1", 1],
            lora_name=names["loras"],
            strength_model=0.8,
            strength_clip=1.0,
        ),
        "3": node("CLIPTextEncode", clip=["2", 1], text="a lighthouse, embedding:bench_emb"),
        "4": node("CLIPTextEncode", clip=["2", 1], text="blurry"),
        "5": node("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=1),
        "6": node(
            "KSampler",
            model=["2", 0],
            positive=["3", 0],
            negative=["4", 0],
            latent_image=["5", 0],
            seed=123456789,
            steps=30,
            cfg=7.0,
            sampler_name="dpmpp_2m",
            scheduler="karras",
            denoise=1.0,
        ),
        "7": node("VAEDecode", samples=["6", 0], vae=["1", 2]),
        "8": node("SaveImage", images=["7", 0], filename_prefix="stock"),
        "9": node("HikazeSaveImage", images=["7", 0], filename_prefix="hikaze"),
    }


def open_library(tmp: Path, models: Path) -> Any:
    """A fresh library that knows the model files; the nodes bound to it as in ComfyUI."""
    import folder_paths

    from hikaze_mm.comfy import plugin
    from hikaze_mm.config import Config
    from hikaze_mm.services import Services

    for folder in ("checkpoints", "loras", "embeddings"):
        folder_paths.add_model_folder_path(folder, str(models / folder), is_default=True)
    config = Config.load(data_dir=str(tmp / "data"), model_roots=[str(models)], env={})
    services = Services.open(config)
    services.scanner.scan(immediate_hashing=True)
    plugin._bind(services, folder_paths, writes=True)
    return services


def timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def measure(runs: int, tmp: Path) -> dict[str, list[float]]:
    import folder_paths
    import nodes

    from hikaze_mm.comfy.context import CONTEXT
    from hikaze_mm.comfy.save_image import HikazeSaveImage, credits_for, record
    from hikaze_mm.credits.infotext import build_infotext

    folder_paths.set_output_directory(str(tmp / "output"))
    names = make_models(tmp / "models")
    services = open_library(tmp, tmp / "models")
    prompt, extra = the_prompt(names), {"workflow": {"nodes": [], "links": [], "version": 0.4}}
    image = test_image()
    stock, ours = nodes.SaveImage(), HikazeSaveImage()
    times: dict[str, list[float]] = {k: [] for k in ("stock", "ours", "own", "webp", "jpeg")}

    def own_work() -> None:
        params, resources = credits_for(prompt, "9")
        params = params.__class__(**{**params.__dict__, "width": SIZE, "height": SIZE})
        build_infotext(params, resources)
        record("bench/own.png", params, resources, "png")

    for run in range(runs + 1):  # the first run warms up (imports, page cache)
        pair = [
            ("stock", lambda: stock.save_images(image, "stock", prompt, extra)),
            ("ours", lambda: ours.save_images(image, "hikaze", "png", 95, prompt, extra, "9")),
        ]
        for key, call in pair if run % 2 else reversed(pair):
            elapsed = timed(call)
            if run:
                times[key].append(elapsed)
        for fmt in ("webp", "jpeg"):
            elapsed = timed(
                lambda fmt=fmt: ours.save_images(image, "hikaze", fmt, 90, prompt, extra, "9")
            )
            if run:
                times[fmt].append(elapsed)
        elapsed = timed(own_work)
        if run:
            times["own"].append(elapsed)
    _, resources = credits_for(prompt, "9")
    print(f"  credited: {[(r.role, r.name) for r in resources]}")
    print(f"  recording generations: {'on' if CONTEXT.record_generation else 'off'}")
    services.close()
    return times


def inside(runs: int) -> None:
    sys.path.insert(0, os.getcwd())  # ComfyUI's checkout
    sys.path.insert(1, str(REPO))
    from comfy.cli_args import args

    args.cpu = True  # as the real-ComfyUI tests run it; before comfy.model_management loads
    with tempfile.TemporaryDirectory(prefix="hikaze-save-bench-") as tmp:
        print(f"SaveImage vs HikazeSaveImage, {SIZE}x{SIZE} PNG, {runs} runs each")
        times = measure(runs, Path(tmp))
    p50 = {key: statistics.median(values) for key, values in times.items()}
    added = p50["ours"] - p50["stock"]
    print(f"  ComfyUI SaveImage        : {p50['stock']:8.1f} ms per image (p50)")
    print(f"  HikazeSaveImage          : {p50['ours']:8.1f} ms per image (p50)")
    print(f"  added per image          : {added:8.1f} ms (target <= {TARGET_MS:g} ms)")
    print(f"  Hikaze's own work alone  : {p50['own']:8.1f} ms per image (p50)")
    print(f"  HikazeSaveImage WebP q90 : {p50['webp']:8.1f} ms, JPEG q90: {p50['jpeg']:.1f} ms")
    print("  " + ("PASS" if added <= TARGET_MS else "OVER TARGET"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="3 runs, to check it runs")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    runs = 3 if opts.quick else max(1, opts.runs)
    if not opts.inside:
        raise SystemExit(relaunch(["--runs", str(runs)]))
    inside(runs)


if __name__ == "__main__":
    main()
