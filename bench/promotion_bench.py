"""Stage 2 promotion throughput against `openssl dgst -sha256`, and event-loop lag.

1. Writes --files files of --file-mib random data (default 8 x 512 MiB = 4 GiB) and reads
   them once so they are page-cached.
2. Baseline: one `openssl dgst -sha256 f1 f2 ...` run, which hashes the files one after
   another.
3. Ours: a fresh library with one pending model per file; the background worker
   (MigrationManager.start_full_migration) hashes and promotes them all, several files
   at once. Meanwhile an asyncio loop in the main thread polls the status 4 times a
   second (as the UI does) and records its worst lag, sampled every 5 ms.

Each run alternates baseline and ours (a fresh library each time, so nothing is cached)
and checks every digest against openssl's. Prints median throughputs, the ratio
ours/openssl (target >= 1.8x on 2 cores) and the worst event-loop lag (target < 100 ms).

Usage: python bench/promotion_bench.py [--files N] [--file-mib N] [--runs N] [--quick]
       [--dir DIR] [--images]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from hikaze_mm.config import Config
from hikaze_mm.services import Services

MIB = 1024 * 1024


def make_file(path: Path, size: int) -> None:
    """Incompressible content, written in 8 MiB blocks (each file gets its own bytes)."""
    with open(path, "wb") as f:
        written = 0
        while written < size:
            n = min(8 * MIB, size - written)
            f.write(os.urandom(n))
            written += n


def warm(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(16 * MIB):
            pass


def openssl_run(paths: list[Path]) -> tuple[float, dict[str, str]]:
    if not shutil.which("openssl"):
        raise SystemExit("openssl is not installed")
    start = time.perf_counter()
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", *map(str, paths)], capture_output=True, text=True, check=True
    ).stdout
    elapsed = time.perf_counter() - start
    digests = {}
    for line in out.splitlines():  # "SHA2-256(/path)= hex"
        left, _, digest = line.rpartition("= ")
        digests[left[left.index("(") + 1 : -1]] = digest.strip()
    return elapsed, digests


async def watch(services: Services) -> float:
    """Poll the status like a UI would until the run ends; return the worst loop lag (s)."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    done = asyncio.ensure_future(asyncio.to_thread(services.migration.wait))
    next_poll = loop.time()
    while not done.done():
        before = loop.time()
        await asyncio.sleep(0.005)  # lag is sampled every 5 ms
        worst = max(worst, loop.time() - before - 0.005)
        if loop.time() >= next_poll:  # the status is polled 4 times a second, as the UI does
            next_poll = loop.time() + 0.25
            await asyncio.to_thread(services.migration.get_status)
    await done
    return worst


def ours_run(
    folder: Path, paths: list[Path], images: Path | None
) -> tuple[float, float, dict[str, str]]:
    data = Path(tempfile.mkdtemp(dir=folder, prefix="library-"))
    config = Config.load(data_dir=data, model_roots=[str(paths[0].parent)], env={})
    services = Services.open(config)
    try:
        for path in paths:
            pid = services.db.pending.add({"path": str(path), "name": path.stem})
            if images is not None:
                services.images.add_pending_image(pid, images, 0)
        start = time.perf_counter()
        services.migration.start_full_migration()
        worst_lag = asyncio.run(watch(services))
        elapsed = time.perf_counter() - start
        status = services.migration.get_status()
        if status["status"] != "COMPLETED" or status["stats"]["promoted"] != len(paths):
            raise SystemExit(f"the run did not promote every file: {status}")
        digests = {}
        for path in paths:
            model = services.db.models.get_by_path(str(path))
            assert model is not None
            digests[str(path)] = model["sha256"]
    finally:
        services.close()
        shutil.rmtree(data, ignore_errors=True)
    return elapsed, worst_lag, digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--file-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--images", action="store_true", help="one pending image per model")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--dir", help="where to write the test files (default: a temp dir)")
    args = parser.parse_args()
    if args.quick:
        args.files, args.file_mib, args.runs = 4, 32, 1
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        models = folder / "models"
        models.mkdir()
        paths = [models / f"model{i:02d}.safetensors" for i in range(args.files)]
        for path in paths:
            make_file(path, args.file_mib * MIB)
            warm(path)
        image = None
        if args.images:
            image = folder / "preview.png"
            Image.effect_noise((768, 1024), 60).convert("RGB").save(image)
        total_mib = args.files * args.file_mib
        theirs, ours, lags = [], [], []
        for _ in range(args.runs):  # alternate, so drift in machine load hits both alike
            t_base, base_digests = openssl_run(paths)
            t_ours, lag, our_digests = ours_run(folder, paths, image)
            if base_digests != our_digests:
                raise SystemExit("digest mismatch between openssl and the worker")
            theirs.append(t_base)
            ours.append(t_ours)
            lags.append(lag)
        base_mib = total_mib / statistics.median(theirs)
        ours_mib = total_mib / statistics.median(ours)
        cores = os.cpu_count() or 1
        print(
            f"{args.files} files x {args.file_mib} MiB ({total_mib} MiB), page-cached, "
            f"{cores} cores, {args.runs} runs each"
            + (", one pending image per model" if args.images else "")
        )
        print(f"  openssl dgst -sha256 (one after another): {base_mib:8.0f} MiB/s (median)")
        print(f"  promotion worker (hash + promote)       : {ours_mib:8.0f} MiB/s (median)")
        print(
            f"  ratio worker/openssl                    : {ours_mib / base_mib:.2f}x"
            "  (target >= 1.8x on 2 cores)"
        )
        print(
            f"  worst event-loop lag during the runs    : {max(lags) * 1000:.1f} ms"
            "  (target < 100 ms)"
        )


if __name__ == "__main__":
    main()
