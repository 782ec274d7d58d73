"""Tiny real model files for the real-ComfyUI tests, and the checks on what ComfyUI saves.

``build_model_fixtures`` runs ``tests/comfyui_make_fixtures.py`` with ComfyUI's Python (cwd =
the ComfyUI checkout): ComfyUI's own classes build, save and load back an SD1.5-shaped
checkpoint (one-level UNet, CLIP-L, TAESD), a rank-4 LoRA for it, the UNet alone and the
TAESD alone (about 125 MB in all, ~10 s on two cores). The session fixture in
``comfyui_harness`` builds them once per test session.

This side needs no torch: ``read_safetensors`` reads tensors with NumPy, so a test can check
a file ComfyUI wrote (``ModelSave``) against base + LoRA (``check_lora_applied``).
``copy_with_metadata`` writes a copy whose safetensors header carries extra metadata: the
same weights with a different SHA-256, so each test can have models of its own.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # NumPy is imported where it is used: the plugin loads without it
    import numpy as np

SCRIPT = Path(__file__).resolve().with_name("comfyui_make_fixtures.py")
UNET_PREFIX = "model.diffusion_model."  # the UNet in a checkpoint (and in ModelSave's output)
CLIP_PREFIX = "cond_stage_model.transformer."  # CLIP-L in a checkpoint; CLIPSave drops it
COMFY_CLIP_PREFIX = "clip_l.transformer."  # CLIP-L in ComfyUI's naming (LoraLayer.target)

_DTYPES = {"F64": "f8", "F32": "f4", "F16": "f2", "I64": "i8", "I32": "i4", "I16": "i2"}
_DTYPES.update({"I8": "i1", "U8": "u1", "BOOL": "?"})


@dataclass(frozen=True)
class LoraLayer:
    lora_key: str  # prefix in the LoRA file: <key>.lora_up.weight, .lora_down.weight, .alpha
    target: str  # the weight it patches: diffusion_model.* or clip_l.transformer.text_model.*
    shape: tuple[int, ...]

    @property
    def checkpoint_key(self) -> str | None:
        """The key of the patched weight in a checkpoint file (UNet layers only)."""
        if self.target.startswith("diffusion_model."):
            return "model." + self.target
        return None


@dataclass(frozen=True)
class ModelFixtures:
    checkpoint: Path  # tiny SD1.5 checkpoint: UNet + CLIP-L (part) + TAESD
    lora: Path  # rank-4 LoRA on UNet and CLIP layers
    unet: Path  # the same UNet alone (diffusion_models format, no prefix)
    vae: Path  # the same TAESD alone
    rank: int
    alpha: float
    layers: tuple[LoraLayer, ...]
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def unet_layers(self) -> tuple[LoraLayer, ...]:
        return tuple(layer for layer in self.layers if layer.checkpoint_key)

    @property
    def clip_layers(self) -> tuple[LoraLayer, ...]:
        return tuple(layer for layer in self.layers if layer.target.startswith(COMFY_CLIP_PREFIX))


def build_model_fixtures(
    comfyui_dir: Path, python: str, out_dir: Path, *, clip: str = "tiny", timeout: float = 900
) -> ModelFixtures:
    """Build (and verify with ComfyUI) the model files into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [python, str(SCRIPT), str(out_dir), "--clip", clip],
        cwd=str(comfyui_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{SCRIPT.name} failed ({proc.returncode}):\n{proc.stderr[-4000:]}\n{proc.stdout}"
        )
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    paths = {k: Path(v) for k, v in data["paths"].items()}
    layers = tuple(
        LoraLayer(x["lora_key"], x["target"], tuple(x["shape"])) for x in data["lora"]["layers"]
    )
    return ModelFixtures(
        checkpoint=paths["checkpoint"],
        lora=paths["lora"],
        unet=paths["unet"],
        vae=paths["vae"],
        rank=int(data["lora"]["rank"]),
        alpha=float(data["lora"]["alpha"]),
        layers=layers,
        info=data,
    )


# ---------------------------------------------------------------- safetensors without torch
def _read_header(f) -> tuple[int, dict[str, Any]]:
    (size,) = struct.unpack("<Q", f.read(8))
    return size, json.loads(f.read(size))


def read_safetensors_metadata(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:
        return dict(_read_header(f)[1].get("__metadata__") or {})


def read_safetensors(path: Path, keys: set[str] | None = None) -> dict[str, np.ndarray]:
    """The tensors of a .safetensors file as NumPy arrays (BF16 widened to float32)."""
    import numpy as np

    with open(path, "rb") as f:
        size, header = _read_header(f)
        header.pop("__metadata__", None)
        base = 8 + size
        out: dict[str, np.ndarray] = {}
        for name, spec in header.items():
            if keys is not None and name not in keys:
                continue
            start, end = spec["data_offsets"]
            f.seek(base + start)
            raw = f.read(end - start)
            shape = tuple(spec["shape"])
            if spec["dtype"] == "BF16":
                bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
                out[name] = bits.view(np.float32).reshape(shape)
            else:
                dtype = np.dtype("<" + _DTYPES[spec["dtype"]])
                out[name] = np.frombuffer(raw, dtype=dtype).reshape(shape)
    return out


def copy_with_metadata(src: Path, dst: Path, metadata: dict[str, str]) -> Path:
    """Copy a .safetensors file, adding ``metadata`` to its header: same tensors, new SHA-256."""
    with open(src, "rb") as f:
        _size, header = _read_header(f)
        meta = dict(header.get("__metadata__") or {})
        meta.update({str(k): str(v) for k, v in metadata.items()})
        header["__metadata__"] = meta
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # keep the data 8-byte aligned
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(dst, "wb") as out:
            out.write(struct.pack("<Q", len(blob)))
            out.write(blob)
            shutil.copyfileobj(f, out, 1 << 20)
    return dst


# ---------------------------------------------------------------- LoRA arithmetic
def lora_delta(lora: dict[str, np.ndarray], layer: LoraLayer, rank: int) -> np.ndarray:
    """alpha / rank * up @ down, shaped like the patched weight (as ComfyUI computes it)."""
    import numpy as np

    up = lora[f"{layer.lora_key}.lora_up.weight"].astype(np.float64).reshape(layer.shape[0], -1)
    down = lora[f"{layer.lora_key}.lora_down.weight"].astype(np.float64).reshape(rank, -1)
    alpha = float(lora[f"{layer.lora_key}.alpha"])
    return (alpha / rank * (up @ down)).reshape(layer.shape)


def check_lora_applied(
    saved_path: Path, fixtures: ModelFixtures, strength: float, *, base_path: Path | None = None
) -> dict[str, float]:
    """Assert a ModelSave output is the fixture UNet with the fixture LoRA at ``strength``.

    On the LoRA's UNet layers the saved weight must equal base + strength * delta; every
    other UNet weight must equal the base exactly. Returns the largest error and change.
    """
    import numpy as np

    base = read_safetensors(base_path or fixtures.checkpoint)
    saved = read_safetensors(saved_path)
    lora = read_safetensors(fixtures.lora)
    base_unet = {k for k in base if k.startswith(UNET_PREFIX)}
    saved_unet = {k for k in saved if k.startswith(UNET_PREFIX)}
    assert saved_unet == base_unet, (
        f"saved UNet keys differ: missing {sorted(base_unet - saved_unet)[:5]}, "
        f"extra {sorted(saved_unet - base_unet)[:5]}"
    )
    patched = {layer.checkpoint_key: layer for layer in fixtures.unet_layers}
    worst_error = 0.0
    smallest_change = float("inf")
    for key in sorted(base_unet):
        got = saved[key].astype(np.float64)
        want = base[key].astype(np.float64)
        layer = patched.get(key)
        if layer is None:
            assert np.array_equal(got, want), f"{key} changed, but the LoRA does not patch it"
            continue
        delta = strength * lora_delta(lora, layer, fixtures.rank)
        error = float(np.abs(got - (want + delta)).max())
        change = float(np.abs(got - want).max())
        worst_error = max(worst_error, error)
        smallest_change = min(smallest_change, change)
        tolerance = 1e-5 + 1e-4 * float(np.abs(want + delta).max())
        assert error <= tolerance, f"{key}: saved != base + {strength} * up@down (off by {error})"
    if strength:
        assert smallest_change > 1e-3, "the LoRA left a layer it patches (almost) unchanged"
    return {"worst_error": worst_error, "smallest_change": smallest_change}


def check_same_unet(saved_path: Path, fixtures: ModelFixtures) -> None:
    """Assert a ModelSave output holds exactly the fixture UNet (no LoRA)."""
    import numpy as np

    base = read_safetensors(fixtures.checkpoint)
    saved = read_safetensors(saved_path)
    keys = {k for k in base if k.startswith(UNET_PREFIX)}
    assert {k for k in saved if k.startswith(UNET_PREFIX)} == keys
    for key in sorted(keys):
        assert np.array_equal(saved[key].astype(np.float64), base[key].astype(np.float64)), key


def check_clip_lora_applied(saved_path: Path, fixtures: ModelFixtures, strength: float) -> None:
    """Assert a CLIPSave output (``<prefix>_clip_l_*``) carries the fixture LoRA's CLIP layers
    at ``strength``, and the checkpoint's other CLIP weights unchanged.

    ComfyUI keeps the text encoder in fp16 on the CPU, so the patched weights are rounded
    to fp16: the tolerance is a few fp16 steps, far below a 0.1 change of strength.
    """
    import numpy as np

    base = read_safetensors(fixtures.checkpoint)
    saved = read_safetensors(saved_path)
    lora = read_safetensors(fixtures.lora)
    patched = {layer.target[len(COMFY_CLIP_PREFIX) :]: layer for layer in fixtures.clip_layers}
    checked = 0
    for base_key in sorted(k for k in base if k.startswith(CLIP_PREFIX)):
        key = base_key[len(CLIP_PREFIX) :]
        if "position_ids" in key:
            continue
        assert key in saved, f"{key} missing from {saved_path.name}"
        got = saved[key].astype(np.float64)
        want = base[base_key].astype(np.float64)
        layer = patched.get(key)
        if layer is None:
            assert np.array_equal(got, want), f"CLIP weight {key} changed"
            continue
        want = want + strength * lora_delta(lora, layer, fixtures.rank)
        error = float(np.abs(got - want).max())
        tolerance = 1e-4 + 2e-3 * float(np.abs(want).max())
        assert error <= tolerance, f"CLIP {key}: saved != base + {strength} * delta ({error})"
        checked += 1
    assert checked == len(patched), f"checked {checked} of {len(patched)} CLIP LoRA layers"
