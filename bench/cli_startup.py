"""Start-up time of the ``hikaze-mm`` command against a bare interpreter.

Runs ``python -c pass``, ``python -m hikaze_mm --help`` and ``python -m hikaze_mm
--version`` N times each (interleaved, so drift hits all three alike) and prints the
median wall time of each and its ratio to the bare interpreter measured in this run.
The target: ``--help`` and ``--version`` at most 2x the bare start.

    python bench/cli_startup.py [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "hikaze-mm --help": [sys.executable, "-m", "hikaze_mm", "--help"],
    "hikaze-mm --version": [sys.executable, "-m", "hikaze_mm", "--version"],
}
TARGET_RATIO = 2.0


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKAZE_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _time_once(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(runs: int) -> dict[str, float]:
    env = _env()
    for command in CASES.values():  # warm the page cache and the bytecode caches
        _time_once(command, env)
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(runs):
        for name, command in CASES.items():
            samples[name].append(_time_once(command, env))
    return {name: statistics.median(times) for name, times in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each command (30)")
    parser.add_argument("--quick", action="store_true", help="5 runs each (a smoke run)")
    args = parser.parse_args()
    runs = 5 if args.quick else max(1, args.runs)
    medians = measure(runs)
    base = medians["python -c pass"]
    print(f"median of {runs} runs each ({sys.executable}, Python {sys.version.split()[0]})")
    for name, seconds in medians.items():
        ratio = seconds / base
        mark = "" if name == "python -c pass" else ("  ok" if ratio <= TARGET_RATIO else "  SLOW")
        print(f"  {name:22} {seconds * 1000:7.1f} ms  {ratio:5.2f}x{mark}")
    print(f"target: --help and --version at most {TARGET_RATIO:.0f}x the bare interpreter")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
