"""ComfyUI's sampler and scheduler names in A1111/Forge's words.

Since A1111 1.9 a sampler and its schedule are written apart: ``Sampler: DPM++ 2M,
Schedule type: Karras``. ComfyUI's ``normal`` schedule is the model's own discrete one,
which A1111 calls "Automatic" and does not write, so it maps to no ``Schedule type``.
The ``_gpu`` variants only move the noise sampler to the GPU; they are the same sampler.
Names no table knows (a custom node's) pass through unchanged.
"""

from __future__ import annotations

SAMPLERS: dict[str, str] = {
    "euler": "Euler",
    "euler_cfg_pp": "Euler CFG++",
    "euler_ancestral": "Euler a",
    "euler_ancestral_cfg_pp": "Euler a CFG++",
    "heun": "Heun",
    "heunpp2": "HeunPP2",
    "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a",
    "lms": "LMS",
    "dpm_fast": "DPM fast",
    "dpm_adaptive": "DPM adaptive",
    "dpmpp_2s_ancestral": "DPM++ 2S a",
    "dpmpp_2s_ancestral_cfg_pp": "DPM++ 2S a CFG++",
    "dpmpp_sde": "DPM++ SDE",
    "dpmpp_sde_gpu": "DPM++ SDE",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_cfg_pp": "DPM++ 2M CFG++",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_2m_sde_gpu": "DPM++ 2M SDE",
    "dpmpp_2m_sde_heun": "DPM++ 2M SDE Heun",
    "dpmpp_2m_sde_heun_gpu": "DPM++ 2M SDE Heun",
    "dpmpp_3m_sde": "DPM++ 3M SDE",
    "dpmpp_3m_sde_gpu": "DPM++ 3M SDE",
    "ddpm": "DDPM",
    "lcm": "LCM",
    "ipndm": "IPNDM",
    "ipndm_v": "IPNDM_V",
    "deis": "DEIS",
    "res_multistep": "RES Multistep",
    "res_multistep_cfg_pp": "RES Multistep CFG++",
    "res_multistep_ancestral": "RES Multistep a",
    "res_multistep_ancestral_cfg_pp": "RES Multistep a CFG++",
    "gradient_estimation": "Gradient Estimation",
    "gradient_estimation_cfg_pp": "Gradient Estimation CFG++",
    "er_sde": "ER SDE",
    "seeds_2": "SEEDS 2",
    "seeds_3": "SEEDS 3",
    "sa_solver": "SA-Solver",
    "sa_solver_pece": "SA-Solver PECE",
    "ddim": "DDIM",
    "uni_pc": "UniPC",
    "uni_pc_bh2": "UniPC",
}

# ``None``: A1111 writes no ``Schedule type`` for it.
SCHEDULERS: dict[str, str | None] = {
    "normal": None,
    "karras": "Karras",
    "exponential": "Exponential",
    "sgm_uniform": "SGM Uniform",
    "simple": "Simple",
    "ddim_uniform": "DDIM",
    "beta": "Beta",
    "linear_quadratic": "Linear Quadratic",
    "kl_optimal": "KL Optimal",
}


def a1111_sampler(sampler_name: str, scheduler: str | None) -> tuple[str, str | None]:
    """``(sampler, schedule type)`` in A1111's words; the schedule type is ``None`` when
    A1111 would write none (no scheduler, or ComfyUI's ``normal``)."""
    sampler = SAMPLERS.get(sampler_name, sampler_name)
    if not scheduler:
        return sampler, None
    return sampler, SCHEDULERS.get(scheduler, scheduler)
