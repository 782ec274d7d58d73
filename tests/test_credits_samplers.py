"""ComfyUI's sampler and scheduler names in A1111's words: one table each."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from hikaze_mm.credits.samplers import SAMPLERS, SCHEDULERS, a1111_sampler

# ComfyUI's names (comfy/samplers.py: KSAMPLER_NAMES + ddim, uni_pc, uni_pc_bh2, and the
# scheduler handlers) as of the ComfyUI this project is tested with.
COMFY_SAMPLERS = [
    "euler",
    "euler_cfg_pp",
    "euler_ancestral",
    "euler_ancestral_cfg_pp",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde",
    "dpmpp_sde_gpu",
    "dpmpp_2m",
    "dpmpp_2m_cfg_pp",
    "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun",
    "dpmpp_2m_sde_heun_gpu",
    "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu",
    "ddpm",
    "lcm",
    "ipndm",
    "ipndm_v",
    "deis",
    "res_multistep",
    "res_multistep_cfg_pp",
    "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp",
    "gradient_estimation",
    "gradient_estimation_cfg_pp",
    "er_sde",
    "seeds_2",
    "seeds_3",
    "sa_solver",
    "sa_solver_pece",
    "ddim",
    "uni_pc",
    "uni_pc_bh2",
]
COMFY_SCHEDULERS = [
    "simple",
    "sgm_uniform",
    "karras",
    "exponential",
    "ddim_uniform",
    "beta",
    "normal",
    "linear_quadratic",
    "kl_optimal",
]


def _safe_a1111_name(name: str) -> bool:
    """Written bare in the parameters line: no comma, colon, quote or newline, no padding."""
    return bool(name) and name == name.strip() and not set(name) & set(',:"\n{}[]')


@pytest.mark.parametrize("name", COMFY_SAMPLERS)
def test_every_comfyui_sampler_has_an_a1111_name(name: str) -> None:
    assert name in SAMPLERS
    sampler, schedule = a1111_sampler(name, None)
    assert sampler == SAMPLERS[name] and _safe_a1111_name(sampler) and schedule is None


@pytest.mark.parametrize("name", COMFY_SCHEDULERS)
def test_every_comfyui_scheduler_has_an_a1111_schedule_type_or_none(name: str) -> None:
    assert name in SCHEDULERS
    _, schedule = a1111_sampler("euler", name)
    assert schedule == SCHEDULERS[name]
    assert schedule is None or _safe_a1111_name(schedule)


def test_only_normal_writes_no_schedule_type() -> None:
    assert [name for name, label in SCHEDULERS.items() if label is None] == ["normal"]


def test_every_table_entry_has_the_shape_of_a_name() -> None:
    for table in (SAMPLERS, SCHEDULERS):
        for key, label in table.items():
            assert key == key.strip().lower() and " " not in key
            assert label is None or _safe_a1111_name(label)


@pytest.mark.parametrize(
    "sampler,scheduler,expected",
    [
        ("euler", "normal", ("Euler", None)),
        ("euler_ancestral", "normal", ("Euler a", None)),
        ("dpmpp_2m", "karras", ("DPM++ 2M", "Karras")),
        ("dpmpp_2m_sde_gpu", "exponential", ("DPM++ 2M SDE", "Exponential")),
        ("dpmpp_sde", "sgm_uniform", ("DPM++ SDE", "SGM Uniform")),
        ("dpmpp_3m_sde", "simple", ("DPM++ 3M SDE", "Simple")),
        ("uni_pc", "beta", ("UniPC", "Beta")),
        ("lcm", None, ("LCM", None)),
        ("ddim", "", ("DDIM", None)),
    ],
)
def test_the_issue_examples(sampler: str, scheduler: str | None, expected: tuple) -> None:
    assert a1111_sampler(sampler, scheduler) == expected


def test_unknown_names_pass_through_unchanged() -> None:
    assert a1111_sampler("my_custom_sampler", "my_schedule") == ("my_custom_sampler", "my_schedule")
    assert a1111_sampler("Euler a", "Karras") == ("Euler a", "Karras")


def _names_in(source: Path) -> tuple[set[str], set[str]]:
    """KSAMPLER_NAMES (+ the extra SAMPLER_NAMES) and the SCHEDULER_HANDLERS keys, read
    from ComfyUI's source without importing it (it needs torch)."""
    samplers: set[str] = set()
    schedulers: set[str] = set()
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.Assign) or not isinstance(node.targets[0], ast.Name):
            continue
        target = node.targets[0].id
        strings = {
            n.value
            for n in ast.walk(node.value)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        }
        if target in ("KSAMPLER_NAMES", "SAMPLER_NAMES"):
            samplers |= strings
        elif target == "SCHEDULER_HANDLERS" and isinstance(node.value, ast.Dict):
            schedulers |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return samplers, schedulers


@pytest.mark.skipif(not os.environ.get("COMFYUI_DIR"), reason="set COMFYUI_DIR")
def test_the_tables_cover_the_real_comfyuis_names() -> None:
    samplers, schedulers = _names_in(Path(os.environ["COMFYUI_DIR"]) / "comfy" / "samplers.py")
    assert len(samplers) > 20 and len(schedulers) > 5
    assert samplers - set(SAMPLERS) == set()
    assert schedulers - set(SCHEDULERS) == set()
