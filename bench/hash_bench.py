"""Hashing throughput: our SHA-256 service against openssl (or sha256sum) in the same run.

1. One file of --size-mib (default 1024, at least 512 in a real run) of random-ish data,
   page-cached, hashed alternately by HashService and by `openssl dgst -sha256` over
   --runs runs. Prints the median throughputs and their ratio (target >= 0.95).
2. --files files hashed one after another on one thread, then in parallel on all cores
   through the service's pool. Prints both throughputs and the ratio (target >= 1.8x on
   two cores).

Usage: python bench/hash_bench.py [--size-mib N] [--runs N] [--quick] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hikaze_mm.hashing import HashService

MIB = 1024 * 1024


def make_file(path: Path, size: int) -> None:
    """Incompressible content (so no filesystem trick can make reads free)."""
    block = os.urandom(8 * MIB)
    with open(path, "wb") as f:
        written = 0
        while written < size:
            n = min(len(block), size - written)
            f.write(block[:n])
            written += n


def warm(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(16 * MIB):
            pass


def baseline_command() -> list[str]:
    if shutil.which("openssl"):
        return ["openssl", "dgst", "-sha256"]
    if shutil.which("sha256sum"):
        return ["sha256sum"]
    raise SystemExit("neither openssl nor sha256sum is installed")


def time_ours(service: HashService, path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    result = service.hash_file(path, use_cache=False)
    return time.perf_counter() - start, result.sha256


def time_baseline(cmd: list[str], path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([*cmd, str(path)], capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - start
    digest = out.strip().split()[-1] if cmd[0] == "openssl" else out.split()[0]
    return elapsed, digest


def single_file(folder: Path, size: int, runs: int) -> None:
    path = folder / "single.bin"
    make_file(path, size)
    warm(path)
    cmd = baseline_command()
    service = HashService(None, workers=1)
    ours, theirs = [], []
    try:
        for _ in range(runs):  # alternate, so drift in machine load hits both alike
            t, d1 = time_ours(service, path)
            ours.append(t)
            t, d2 = time_baseline(cmd, path)
            theirs.append(t)
            if d1 != d2:
                raise SystemExit(f"digest mismatch: {d1} != {d2}")
    finally:
        service.close()
    ours_mib = size / MIB / statistics.median(ours)
    theirs_mib = size / MIB / statistics.median(theirs)
    print(f"single file: {size // MIB} MiB, {runs} runs each, page-cached")
    print(f"  hikaze HashService : {ours_mib:8.0f} MiB/s (median)")
    print(f"  {' '.join(cmd):19s}: {theirs_mib:8.0f} MiB/s (median)")
    print(f"  ratio ours/baseline: {ours_mib / theirs_mib:.3f}  (target >= 0.95)")
    path.unlink()


def many_files(folder: Path, count: int, size: int, runs: int) -> None:
    paths = [folder / f"f{i}.bin" for i in range(count)]
    for p in paths:
        make_file(p, size)
        warm(p)
    cores = os.cpu_count() or 1
    one = HashService(None, workers=1)
    pool = HashService(None, workers=cores)
    serial_t, parallel_t = [], []
    try:
        for _ in range(runs):
            start = time.perf_counter()
            for p in paths:
                one.hash_file(p, use_cache=False)
            serial_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            futures = [pool.submit(pool.hash_file, p) for p in paths]
            for f in futures:
                f.result()
            parallel_t.append(time.perf_counter() - start)
    finally:
        one.close()
        pool.close()
    total = count * size / MIB
    serial = total / statistics.median(serial_t)
    parallel = total / statistics.median(parallel_t)
    print(f"{count} files x {size // MIB} MiB, {cores} cores, {runs} runs each")
    print(f"  one core           : {serial:8.0f} MiB/s (median)")
    print(f"  all cores          : {parallel:8.0f} MiB/s (median)")
    print(f"  ratio all/one      : {parallel / serial:.2f}x  (target >= 1.8x on 2 cores)")
    for p in paths:
        p.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--file-mib", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--dir", help="where to write the test files (default: a temp dir)")
    args = parser.parse_args()
    if args.quick:
        args.size_mib, args.runs, args.files, args.file_mib = 64, 2, 2, 32
    elif args.size_mib < 512:
        parser.error("--size-mib must be at least 512 for a real run (or use --quick)")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        single_file(folder, args.size_mib * MIB, args.runs)
        many_files(folder, args.files, args.file_mib * MIB, args.runs)


if __name__ == "__main__":
    main()
