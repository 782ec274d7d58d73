"""Benchmark of the Stage 1 legacy import against a bare one-core Pillow loop.

Builds a legacy v2 database with N models (default 2,000): half of them with a 1024x1024
JPEG preview, a few with a 3000x2000 one; the other half unhashed (pending) without
images. Then:

* runs ``import_legacy_data`` in a fresh process (so its peak RSS is its own) and prints
  models/s, images/s, its CPU seconds (importer and workers; per 1,000 models, against
  upstream Hikaze-Model-Manager-2's 240 s per 1,000 models) and the peak RSS of the
  importer and of its largest worker;
* runs a bare one-core Pillow loop over the same image files doing the same work as the
  import did before issue 13 (open, upright, resize to the three tiers, WebP encode at
  Pillow's default method 4; kept as it was so ratios stay comparable between runs) and
  prints its time and the ratio.

    python bench/legacy_import_bench.py            # N = 2000
    python bench/legacy_import_bench.py --quick    # N = 80, a smoke run
    python bench/legacy_import_bench.py --memory-check   # also N/4 to show RSS is flat
    python bench/legacy_import_bench.py --no-baseline    # the import only (for profiling)
    python bench/legacy_import_bench.py --db-url temp    # also into PostgreSQL, side by side
                                                         # (target: at most 1.3x SQLite's time)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_backends import POSTGRES, SQLITE, Backends  # noqa: E402

from hikaze_mm.images import QUALITIES, TIERS  # noqa: E402
from tests.legacy_fixtures import LegacyModel, LegacyTag, build_legacy_db  # noqa: E402

UPSTREAM_CPU_PER_1000 = 240.0  # Stage 1 of upstream Hikaze-Model-Manager-2, 1,000 models


def base_image(size: tuple[int, int]) -> Image.Image:
    """A photo-like picture (smooth gradients plus texture), compressible like real ones."""
    w, h = size
    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    noise = Image.effect_noise(size, 40).point(lambda v: v // 2 + 64)
    blue = Image.blend(red.transpose(Image.Transpose.ROTATE_90).resize(size), noise, 0.5)
    img = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(img)
    for i in range(12):
        x, y = (i * 97) % w, (i * 61) % h
        draw.ellipse((x, y, x + w // 6, y + h // 6), fill=(30 * i % 255, 200, 90))
    return img


def build(root: Path, n: int) -> tuple[Path, Path, list[Path]]:
    images = root / "legacy_images"
    images.mkdir(parents=True)
    square, large = base_image((1024, 1024)), base_image((3000, 2000))
    n_large = max(1, n // 200)
    files: list[Path] = []
    models = []
    for i in range(1, n + 1):
        extra: dict = {"description": f"model {i}", "params": {"strength": 0.7}}
        hashed = i % 2 == 1
        if hashed:
            img = (large if len(files) < n_large else square).copy()
            ImageDraw.Draw(img).rectangle((i % 900, 10, i % 900 + 100, 60), fill=(i % 256, 0, 0))
            path = images / f"preview_{i}.jpg"
            img.save(path, "JPEG", quality=90)
            files.append(path)
            extra["images"] = [f"/media/{path.name}"]
        sha = hashlib.sha256(f"model-{i}".encode()).hexdigest() if hashed else ""
        models.append(
            LegacyModel(
                i,
                f"/models/loras/m{i}.safetensors",
                "lora",
                sha,
                f"m{i}",
                1000 + i,
                extra_json=extra,
            )
        )
    links = [(i, 1 + i % 20) for i in range(1, n + 1)]
    db = build_legacy_db(
        root / "legacy" / "hikaze_mm.sqlite3",
        tags=[LegacyTag(t, f"tag{t}") for t in range(1, 21)],
        models=models,
        links=links,
        wal=True,
    )
    return db.path, images, files


def bare_pillow_loop(files: list[Path]) -> tuple[float, float]:
    """One core, no pipeline: open, upright, resize to each tier, WebP-encode.

    Returns (wall seconds, CPU seconds)."""
    start, cpu = time.perf_counter(), time.process_time()
    for path in files:
        with Image.open(path) as raw:
            raw.load()
            img = ImageOps.exif_transpose(raw).convert("RGB")
        for quality in QUALITIES:
            tier = TIERS[quality]
            w, h = img.size
            if w * h > tier.max_pixels:
                scale = (tier.max_pixels / (w * h)) ** 0.5
                img = img.resize(
                    (max(1, int(w * scale)), max(1, int(h * scale))),
                    Image.Resampling.LANCZOS,
                    reducing_gap=3.0,
                )
            out = io.BytesIO()
            img.save(out, "WEBP", quality=tier.quality, method=4)
    return time.perf_counter() - start, time.process_time() - cpu


# The import, in a fresh process. Peak RSS comes from /proc (VmHWM, VmRSS): ru_maxrss of a
# child started by subprocess (vfork + exec) reports at least its parent's peak, here the
# bench's own (the images it built), not the importer's. A thread samples the workers every
# 0.1 s (looking for new ones every 1 s); its own CPU time is left out of the importer's.
IMPORT_CHILD = """
import json, os, resource, sys, threading, time
from hikaze_mm.config import Config
from hikaze_mm.services import Services
from hikaze_mm.legacy.importer import import_legacy_data


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(me=str(os.getpid())):
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == me:
                        pids.append(pid)
            except (OSError, IndexError):
                pass
    return pids


peak = {"worker": 0, "total": 0, "cpu": 0.0}
stop = threading.Event()


def sample():
    kids, tick = [], 0
    while not stop.wait(0.1):
        if tick % 10 == 0:
            kids = children()
        tick += 1
        peak["worker"] = max([peak["worker"], *(status_kib(p, "VmHWM") for p in kids)])
        rss = status_kib("self", "VmRSS") + sum(status_kib(p, "VmRSS") for p in kids)
        peak["total"] = max(peak["total"], rss)
        peak["cpu"] = time.thread_time()


legacy, images, data, workers, db_url = sys.argv[1:6]
config = Config.load(data_dir=data, env={})
if db_url:
    import dataclasses
    config = dataclasses.replace(config, database_url=db_url)
svc = Services.open(config)
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
t = time.perf_counter()
r = import_legacy_data(legacy, images, db=svc.db, images=svc.images,
                       work_dir=svc.config.legacy_work_dir, workers=int(workers) or None)
seconds = time.perf_counter() - t
stop.set()
sampler.join()
svc.close()
me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
own = me.ru_utime + me.ru_stime - peak["cpu"]
print(json.dumps({"seconds": seconds, "report": r.to_dict(),
                  "cpu": own + kids.ru_utime + kids.ru_stime, "cpu_importer": own,
                  "rss_self_kb": status_kib("self", "VmHWM"), "rss_worker_kb": peak["worker"],
                  "rss_total_kb": peak["total"]}))
"""


def run_import_child(
    legacy: Path, images: Path, data: Path, workers: int | None, db_url: str | None = None
) -> dict:
    """Run the import in a fresh process; return its timings and peak RSS figures."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_CHILD,
            str(legacy),
            str(images),
            str(data),
            str(workers or 0),
            db_url or "",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"import failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def measure(n: int, workers: int | None, tmp: Path, *, baseline: bool, backends: Backends) -> None:
    root = tmp / f"n{n}"
    t = time.perf_counter()
    legacy, images, files = build(root, n)
    print(f"built legacy DB: {n} models, {len(files)} images in {time.perf_counter() - t:.1f}s")
    times = {}
    for backend in backends.names:
        data = root / f"data-{backend}"
        url = backends.config(backend, data, []).database_url
        print(f"--- into {backend}")
        times[backend] = report_import(
            run_import_child(legacy, images, data, workers, url), n, len(files)
        )
    if len(times) > 1:
        ratio = times[POSTGRES][0] / times[SQLITE][0]
        verdict = "met" if ratio <= 1.3 else "NOT met"
        print(f"Stage 1 into PostgreSQL / into SQLite: {ratio:.2f}x (target <= 1.3x): {verdict}")
    if baseline:
        report_baseline(files, *times[SQLITE])


def report_import(result: dict, n: int, image_count: int) -> tuple[float, float]:
    """Print one import's figures; returns its wall time and CPU time."""
    report, seconds = result["report"], result["seconds"]
    encoded = report["images_encoded"]
    assert encoded == image_count, report
    print(f"import: {seconds:.2f}s  {n / seconds:.0f} models/s  {encoded / seconds:.1f} images/s")
    print(
        f"  active {report['active_models']}, pending {report['pending_models']}, "
        f"links {report['links']}, image errors {report['image_errors']}"
    )
    cpu = result["cpu"]
    print(
        f"  CPU time (importer + workers, worker start-up included): {cpu:.2f}s "
        f"(importer {result['cpu_importer']:.2f}s, workers {cpu - result['cpu_importer']:.2f}s)"
    )
    per_1000 = cpu / n * 1000
    print(
        f"  CPU s / 1000 models: {per_1000:.1f}s  "
        f"vs upstream {UPSTREAM_CPU_PER_1000:.0f} s: {UPSTREAM_CPU_PER_1000 / per_1000:.1f}x"
    )
    print(
        f"  peak RSS: importer {result['rss_self_kb'] / 1024:.0f} MiB, "
        f"largest worker {result['rss_worker_kb'] / 1024:.0f} MiB, "
        f"importer + workers together {result['rss_total_kb'] / 1024:.0f} MiB (sampled)"
    )
    return seconds, cpu


def report_baseline(files: list[Path], seconds: float, cpu: float) -> None:
    """The bare Pillow loop over the same images, and the SQLite import's ratio to it."""
    bare, bare_cpu = bare_pillow_loop(files)
    print(
        f"bare one-core Pillow loop (same resizes, WebP at method 4): {bare:.2f}s  "
        f"{len(files) / bare:.1f} images/s  (CPU {bare_cpu:.2f}s)"
    )
    print(
        f"ratio: the SQLite import is {bare / seconds:.2f}x the bare loop's speed "
        f"({os.cpu_count()} cores; >1 means the pipeline beats one core)"
    )
    print(f"  in CPU seconds: the import needs {cpu / bare_cpu:.2f}x the bare loop's")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="80 models: a smoke run")
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument(
        "--memory-check", action="store_true", help="also import N/4 models, to compare peak RSS"
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the bare Pillow loop (no ratio)"
    )
    parser.add_argument(
        "--db-url",
        metavar="URL",
        help="also import into PostgreSQL: a server the bench may create databases on, or "
        "'temp' for a throwaway cluster (bench/bench_backends.py)",
    )
    args = parser.parse_args()
    n = 80 if args.quick else args.models
    backends = Backends(args.db_url)
    try:
        with tempfile.TemporaryDirectory(prefix="hikaze-bench-") as scratch:
            tmp = Path(scratch)
            if args.memory_check:
                print(f"--- N/4 = {n // 4} models")
                measure(n // 4, args.workers, tmp, baseline=False, backends=backends)
                print(f"--- N = {n} models")
            measure(n, args.workers, tmp, baseline=not args.no_baseline, backends=backends)
    finally:
        backends.close()

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(bench process itself, building images: {rss:.0f} MiB peak)")


if __name__ == "__main__":
    main()
