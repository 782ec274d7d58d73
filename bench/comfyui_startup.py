"""ComfyUI's start-up time without and with Hikaze Model Manager, on 10,000 known models.

Builds one ComfyUI base folder (``tests/comfyui_harness.ComfyBase``) whose ``models/``
holds 10,000 small model files, and a library that already knows them all (``hikaze-mm
scan --immediate --models-root <models>`` with this Python, before any timing). Then starts
ComfyUI N times without our package and N times with it (alternating; the only difference
is the ``custom_nodes/hikaze-model-manager`` link; the command line is the same), each from
process start until ``GET /system_stats`` answers, and prints the medians and their
difference. Target: ours adds at most 0.5 s. One untimed start of each kind comes first
(bytecode compile, page cache). After each start with the package the script waits for
the library's background start-up scan to finish (reported, not part of the start-up
time) before it stops ComfyUI.

    COMFYUI_DIR=... COMFYUI_PYTHON=... python bench/comfyui_startup.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.comfyui_harness import NODE_DIR_NAME, ComfyBase, ComfyUI, comfy_env_from  # noqa: E402

TARGET_SECONDS = 0.5
FOLDERS = ("checkpoints", "loras", "embeddings", "vae")
SCAN_COUNTS: dict[str, int] = {}  # the last start-up scan's counts


def make_models(models: Path, count: int) -> None:
    """``count`` small files with distinct content, 100 per folder, spread over the types."""
    for n in range(count):
        kind = FOLDERS[n % len(FOLDERS)]
        folder = models / kind / f"set{n // 400:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        seed = hashlib.sha256(f"hikaze-bench-{n}".encode()).digest()
        (folder / f"model_{n:05d}.safetensors").write_bytes(seed * (16 + n % 48))


def prebuild_library(models: Path, data_dir: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKAZE_")}
    env["HIKAZE_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(REPO)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "hikaze_mm", "scan", "--immediate", "--models-root", str(models)],
        env=env,
        cwd=str(REPO),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"hikaze-mm scan failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def library_count(data_dir: Path) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKAZE_")}
    env.update(HIKAZE_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "hikaze_mm", "list", "--limit", "0", "--json"],
        env=env,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(proc.stdout)["total"])


def wait_startup_scan(server: ComfyUI, timeout: float = 300.0) -> float | None:
    """Seconds from ready until the plugin's start-up scan has finished (None: no library).

    The scan's counts go to ``SCAN_COUNTS``."""
    ready = time.perf_counter()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = server.api("GET", "/scan/status")
        if result.status != 200:
            return None  # the library is unavailable; the log says why
        status = result.json()
        if not status.get("running") and status.get("last_report") is not None:
            if status.get("error"):
                raise SystemExit(f"start-up scan failed: {status['error']}")
            SCAN_COUNTS.update(status["last_report"].get("counts", {}))
            return time.perf_counter() - ready
        time.sleep(0.1)
    raise SystemExit(f"the start-up scan did not finish in {timeout:.0f} s")


def start_once(server: ComfyUI, with_package: bool) -> tuple[float, float | None]:
    """One start: seconds to /system_stats, and (with the package) the start-up scan's."""
    if with_package:
        server.base.link_package()
    elif server.base.node_link.is_symlink():
        server.base.node_link.unlink()
    server.start()
    try:
        return server.startup_seconds, (wait_startup_scan(server) if with_package else None)
    finally:
        server.stop()


def loaded_cleanly(log: str) -> bool:
    """No import failure of our folder and no "unavailable" library in ComfyUI's log."""
    for line in log.splitlines():
        if NODE_DIR_NAME in line and ("IMPORT FAILED" in line or "Cannot import" in line):
            return False
    return "Hikaze Model Manager is unavailable" not in log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed starts of each kind (3)")
    parser.add_argument("--quick", action="store_true", help="1 run of each (a smoke run)")
    parser.add_argument("--models", type=int, default=10_000, help="known model files (10000)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()
    env = comfy_env_from()
    if env is None:
        print("set COMFYUI_DIR and COMFYUI_PYTHON to run this benchmark (see README)")
        return 2
    runs = 1 if args.quick else max(1, args.runs)

    root = Path(tempfile.mkdtemp(prefix="hikaze-comfy-bench-"))
    try:
        base = ComfyBase(root)
        started = time.perf_counter()
        make_models(base.models, args.models)
        made = time.perf_counter() - started
        scan = prebuild_library(base.models, base.data_dir)
        known = library_count(base.data_dir)
        print(
            f"{args.models} model files written in {made:.1f} s; library pre-built in "
            f"{scan:.1f} s ({known} known models)"
        )
        if known < args.models:
            raise SystemExit(f"only {known} of {args.models} models are in the library")

        server = ComfyUI(env, base)
        for with_package in (False, True):  # untimed: bytecode compile, page cache
            start_once(server, with_package)
        times: dict[bool, list[float]] = {False: [], True: []}
        scans: list[float] = []
        for n in range(runs):
            order = (False, True) if n % 2 == 0 else (True, False)
            for with_package in order:
                seconds, scan_seconds = start_once(server, with_package)
                times[with_package].append(seconds)
                if scan_seconds is not None:
                    scans.append(scan_seconds)
                label = "with" if with_package else "without"
                print(f"  run {n + 1} {label:8} {seconds:6.2f} s")
        if not loaded_cleanly(server.log_text()) or len(scans) < runs:
            print(f"WARNING: the package did not load cleanly; see {base.log_path}")
            args.keep = True
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept {root}")

    without = statistics.median(times[False])
    with_ours = statistics.median(times[True])
    diff = with_ours - without
    print(f"ComfyUI start-up to /system_stats, median of {runs} ({args.models} known models)")
    print(f"  without hikaze-model-manager {without:6.2f} s")
    print(f"  with hikaze-model-manager    {with_ours:6.2f} s")
    verdict = "ok" if diff <= TARGET_SECONDS else "SLOW"
    print(
        f"  difference                   {diff:+6.2f} s  {verdict} (target <= +{TARGET_SECONDS} s)"
    )
    if scans:
        counts = SCAN_COUNTS
        print(
            f"  background start-up scan, after ready: median {statistics.median(scans):.2f} s "
            f"({counts.get('files_seen')} files seen, {counts.get('unchanged')} unchanged, "
            f"{counts.get('hashed')} hashed)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
