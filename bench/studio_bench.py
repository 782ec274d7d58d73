"""A studio's hashing: two hosts against one, side by side in one run.

A folder of --files large model files (default 16 of --size-mib 512 MiB; sparse, with
distinct tails, so they are read and hashed in full but take no disk; read once before
the rounds, so each finds them page-cached) is one NAS folder
reached through two paths (two folders whose files are hard links of one another, as two
hosts' mounts of one share). Each round gets a catalog of its own on PostgreSQL:

* **one host**: host A runs ``hikaze-mm scan --immediate`` over its mount, alone;
* **two hosts**: A and B (their own data folders, host names and mounts) run it at once.
  One of them holds the root's scan, the other helps it: each claims files (a large one
  at a time) and hashes what it claimed.

Each host is a process of its own, hashing on one thread, as one machine does. Printed:
each round's wall time (median of --runs), which host promoted how many files (each file
exactly once across the two, no conflicts) with the time each host's scan took from its
start (the rest is the process starting and opening the catalog), and the ratios two
hosts / one host of the wall times and of the scans (target: at most 0.6).

Usage: python bench/studio_bench.py [--files N] [--size-mib N] [--runs N]
       [--db-url URL|temp] [--dir DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_backends import POSTGRES, Backends

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parents[1]


def make_nas(folder: Path, files: int, size: int) -> tuple[Path, Path]:
    """The NAS as host A mounts it, and as host B does (hard links of A's files)."""
    nas_a, nas_b = folder / "nas-a" / "checkpoints", folder / "nas-b" / "checkpoints"
    nas_a.mkdir(parents=True)
    nas_b.mkdir(parents=True)
    for i in range(files):
        path = nas_a / f"model_{i:03}.safetensors"
        with open(path, "wb") as f:
            f.truncate(size - 16)
            f.seek(size - 16)
            f.write(f"{i:016}".encode())
        os.link(path, nas_b / path.name)
        with open(path, "rb") as f:  # read once: every round finds it page-cached
            while f.read(16 * MIB):
                pass
    return nas_a.parent, nas_b.parent


def host(url: str, name: str, mount: Path, data: Path) -> subprocess.Popen:
    """``hikaze-mm scan --immediate --json`` as host ``name``, started now."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKAZE_")}
    env.update(
        HIKAZE_DB_URL=url,
        HIKAZE_HOST_NAME=name,
        HIKAZE_ROOT_NAMES=f"nas={mount}",
        HIKAZE_WATCH="0",
        PYTHONPATH=str(REPO),
    )
    command = [sys.executable, "-m", "hikaze_mm", "scan", "--immediate", "--json"]
    return subprocess.Popen(
        [*command, "--data-dir", str(data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def round_of(backends: Backends, folder: Path, mounts: list[tuple[str, Path]]) -> dict:
    """One round on a new catalog: the hosts' scans started together; wall time and what
    each host promoted."""
    url = backends.config(POSTGRES, folder / "setup", []).database_url
    assert url is not None
    started = time.perf_counter()
    procs = [(name, host(url, name, mount, folder / f"data-{name}")) for name, mount in mounts]
    promoted, scans, conflicts = {}, {}, 0
    for name, proc in procs:
        out, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"{name}'s scan failed: {err.strip()}")
        report = json.loads(out)
        promoted[name] = report["counts"]["promoted"]
        scans[name] = round(report["duration_ms"] / 1000, 2)
        conflicts += report["counts"]["conflicts"]
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "promoted": promoted, "scans": scans, "conflicts": conflicts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db-url", default="temp")
    parser.add_argument("--dir", help="where the NAS folder goes (default: a temp folder)")
    parser.add_argument("--quick", action="store_true", help="4 files of 64 MiB, one run")
    args = parser.parse_args()
    if args.quick:
        args.files, args.size_mib, args.runs = 4, 64, 1
    backends = Backends(args.db_url)
    try:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            root = Path(tmp)
            nas_a, nas_b = make_nas(root, args.files, args.size_mib * MIB)
            total = args.files * args.size_mib
            print(f"{args.files} files of {args.size_mib} MiB ({total} MiB), {args.runs} runs")
            rounds: dict[str, list[dict]] = {"one host": [], "two hosts": []}
            for run in range(args.runs):  # alternated, so both see the same machine
                for label, mounts in (
                    ("one host", [("host-a", nas_a)]),
                    ("two hosts", [("host-a", nas_a), ("host-b", nas_b)]),
                ):
                    result = round_of(backends, root / f"{label}-{run}".replace(" ", "-"), mounts)
                    if sum(result["promoted"].values()) != args.files or result["conflicts"]:
                        raise SystemExit(f"{label}: not each file once: {result}")
                    rounds[label].append(result)
                    print(
                        f"  run {run + 1}, {label}: {result['seconds']:.2f} s, "
                        f"promoted {result['promoted']}, each host's scan (s) {result['scans']}"
                    )
            one = statistics.median(r["seconds"] for r in rounds["one host"])
            two = statistics.median(r["seconds"] for r in rounds["two hosts"])
            one_scan = statistics.median(max(r["scans"].values()) for r in rounds["one host"])
            two_scan = statistics.median(max(r["scans"].values()) for r in rounds["two hosts"])
            print(f"one host:  {one:.2f} s ({total / one:.0f} MiB/s), scan {one_scan:.2f} s")
            print(f"two hosts: {two:.2f} s ({total / two:.0f} MiB/s), scans {two_scan:.2f} s")
            print(
                f"two hosts / one host: {two / one:.2f} wall, {two_scan / one_scan:.2f} scans "
                "(target <= 0.6)"
            )
    finally:
        backends.close()


if __name__ == "__main__":
    main()
