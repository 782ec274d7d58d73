"""Library benchmarks, each part against a baseline measured in the same run.

Parts (``--part``, default ``all``):

* ``rescan``: trees of 20,000 and 50,000 small model files (one run prints both) each get
  a first scan, then unchanged rescans timed beside a bare ``os.walk`` + ``os.stat`` of
  the same tree (target: at most 1.3x).
* ``listing``: a real library of --models models (default 50,000) with tags, trigger words
  and realistic meta, served by a real server on 127.0.0.1 in a child process (the
  client does not share its event loop). ``GET /api/models`` with limit 100 is timed
  --requests times from the bench's process (to the body's last byte) for three queries:
  a tag filter with a text query, no filter sorted by name, and a text query alone; each
  prints p50 and p95, the same SQL (count + page) run directly on SQLite in the same run
  (interleaved with the requests), and the difference (target for the first two: HTTP
  p50 at most 2 ms above the raw SQL's).
* ``firstscan``: N model files with distinct contents, some with a ``.json`` sidecar or a
  preview, in ONE folder, for N = 2,000 and 10,000: the first scan with immediate hashing,
  against the hashing of the same files on their own (``HashService.hash_file`` each, in
  a library of its own). Two sizes, each for the target it can judge:

  - --file-kb (default 16384: 16 MiB, a small LoRA; past 4 KB the files are sparse, so
    they are read and hashed in full but take no disk): the cost beyond hashing must stay
    under 20% of the hashing time;
  - --growth-kb (default 4): with tiny files the fixed cost per model stands alone, so
    its growth from 2,000 to 10,000 files must be linear (5x). At 16 MiB that cost is
    the small difference of two large timings, too noisy to judge growth by.

Usage: python bench/scan_bench.py [--part rescan|listing|firstscan|all] [--quick]
       [--dir DIR] [--models N] [--requests N] [--file-kb KB] [--growth-kb KB]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import http.client
import io
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import web
from bench_backends import SQLITE, Backends
from PIL import Image

from hikaze_mm.config import Config
from hikaze_mm.database import ModelQuery
from hikaze_mm.database.values import natural_key
from hikaze_mm.server import create_app
from hikaze_mm.services import Services

Part = Callable[[argparse.Namespace, Path], None]
# Each part registers itself here with @part(name); "all" runs them in this order.
PARTS: dict[str, Part] = {}


def part(name: str) -> Callable[[Part], Part]:
    def register(fn: Part) -> Part:
        PARTS[name] = fn
        return fn

    return register


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# ---------------------------------------------------------------------- rescan
RESCAN_TYPES = ("loras", "checkpoints", "embeddings", "vae", "controlnet")
RESCAN_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".safetensors", ".gguf")


def build_rescan_tree(root: Path, count: int, per_folder: int = 100) -> None:
    """``count`` small model files with distinct content, ``per_folder`` to a folder,
    spread over ComfyUI type folders (plus a few non-model files the walk must skip)."""
    made: set[Path] = set()
    for i in range(count):
        kind = i % len(RESCAN_TYPES)
        folder = root / RESCAN_TYPES[kind] / f"set{i // len(RESCAN_TYPES) // per_folder:04d}"
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "preview.png").write_bytes(b"png")
            made.add(folder)
        name = f"model_{i:06d}{RESCAN_EXTENSIONS[kind]}"
        (folder / name).write_bytes(hashlib.sha256(str(i).encode()).digest() * (1 + i % 7))


def bare_walk(root: Path) -> int:
    """The baseline: ``os.walk`` plus one ``os.stat`` per file, nothing else."""
    n = 0
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=True):
        for name in filenames:
            os.stat(os.path.join(dirpath, name))
            n += 1
    return n


def time_rescans(
    services: Services, root: Path, count: int, runs: int
) -> tuple[list[float], list[float]]:
    """Times of the unchanged rescan and of the bare walk, interleaved so both see the same
    cache state."""
    rescans, walks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        seen = bare_walk(root)
        walks.append(time.perf_counter() - start)
        start = time.perf_counter()
        again = services.scanner.scan().counts
        rescans.append(time.perf_counter() - start)
        assert again.unchanged == count and again.hashed == 0 and again.new == 0, again
    assert seen >= count
    return rescans, walks


@part("rescan")
def run_rescan(args: argparse.Namespace, workdir: Path) -> None:
    """Both sizes in one run: the start-up rescan of an unchanged library of 20,000 and of
    50,000 files, each against a bare walk of the same tree (target: at most 1.3x; 1.5x on
    PostgreSQL), on each backend."""
    quick_sizes, sizes = [2_000, 5_000], [20_000, 50_000]
    sizes = [args.files] if args.files else quick_sizes if args.quick else sizes
    runs = 3 if args.quick else 15
    for count in sizes:
        root = workdir / f"rescan-models-{count}"
        start = time.perf_counter()
        build_rescan_tree(root, count)
        print(f"rescan: built {count} model files in {time.perf_counter() - start:.1f}s")
        for backend in args.backends.names:
            config = args.backends.config(
                backend, workdir / f"rescan-data-{count}-{backend}", [str(root)]
            )
            time_backend_rescan(config, backend, root, count, runs, args.quick)
        shutil.rmtree(root, ignore_errors=True)


def time_backend_rescan(
    config: Config, backend: str, root: Path, count: int, runs: int, quick: bool
) -> None:
    services = Services.open(config)
    try:
        start = time.perf_counter()
        first = services.scanner.scan(immediate_hashing=True).counts
        first_time = time.perf_counter() - start
        assert first.new == count and first.promoted == count, first
        print(f"  [{backend}] first scan (queue + promote {count} new files): {first_time:.2f}s")
        if backend != SQLITE:  # the library as a start-up finds it: autovacuum has been by
            services.db.conn.execute("VACUUM ANALYZE")
    finally:
        services.close()
    # A fresh process's view: the library opened anew, as at start-up.
    services = Services.open(config)
    try:
        rescans, walks = time_rescans(services, root, count, runs)
    finally:
        services.close()
    rescan_p50, walk_p50 = statistics.median(rescans), statistics.median(walks)
    ratio = rescan_p50 / walk_p50
    print(
        f"  [{backend}] unchanged rescan p50  {ms(rescan_p50):>10}  "
        f"(min {ms(min(rescans))}, {runs} runs)"
    )
    print(f"  [{backend}] bare os.walk+stat p50 {ms(walk_p50):>10}  (min {ms(min(walks))})")
    print(
        f"  [{backend}] ratio rescan/bare walk at {count}: p50 {ratio:.2f}x, "
        f"min {min(rescans) / min(walks):.2f}x"
    )
    target = 1.3 if backend == SQLITE else 1.5
    verdict = "met" if ratio <= target else "NOT met"
    print(f"  [{backend}] target <= {target}x: {verdict}" + (" (quick run)" if quick else ""))


# ---------------------------------------------------------------------- listing
LISTING_TAG = "style"  # on about 8% of the models
LISTING_QUERY = "anime"  # in about 1 name in 6
WORDS = [
    "anime",
    "realistic",
    "portrait",
    "landscape",
    "pixel",
    "cyber",
    "fantasy",
    "dark",
    "light",
    "detail",
    "girl",
    "boy",
    "car",
    "city",
    "forest",
    "armor",
    "dress",
    "robot",
    "dragon",
    "castle",
    "ink",
    "watercolor",
    "neon",
    "retro",
]
TYPES = ("loras",) * 6 + ("checkpoints", "checkpoints", "embeddings", "vae")
BASES = ("SDXL", "SD1.x", "Flux.1", "Pony", None)


def build_listing_library(services: Services, count: int, seed: int = 5) -> None:
    """``count`` models, 40 tags (0-4 per model) and meta of 0.5-8 KB, in one transaction.

    Rows go in with executemany: a fixture, not the code under test.
    """
    rnd = random.Random(seed)
    root = services.config.model_roots[0].path
    tag_names = [LISTING_TAG, *(f"tag{i:02d}" for i in range(39))]
    with services.db.transaction() as conn:
        conn.executemany(
            "INSERT INTO tags (name, color, created_at) VALUES (?, ?, 0)",
            [(name, f"#{rnd.randrange(1 << 24):06x}") for name in tag_names],
        )
        ids = {row[1]: row[0] for row in conn.execute("SELECT id, name FROM tags")}
        models, links = [], []
        for i in range(count):
            sha = hashlib.sha256(f"model {i}".encode()).hexdigest()
            words = rnd.sample(WORDS, 3)
            name = f"{'_'.join(words)}_v{i % 9}"
            model_type = rnd.choice(TYPES)
            meta = {
                "description": " ".join(rnd.choices(WORDS, k=rnd.choice((60, 120, 1200)))),
                "trigger_words": rnd.sample(WORDS, 4),
            }
            models.append(
                (
                    sha,
                    f"{root}/{model_type}/{words[0]}/{name}.safetensors",
                    name,
                    natural_key(name),
                    model_type,
                    rnd.choice(BASES),
                    rnd.randrange(10**6, 7 * 10**9),
                    1_600_000_000_000 + i * 1000,
                    json.dumps(meta),
                )
            )
            chosen = set(rnd.sample(tag_names[1:], rnd.randint(0, 3)))
            if rnd.random() < 0.08:
                chosen.add(LISTING_TAG)
            links += [(sha, ids[t]) for t in chosen]
        conn.executemany(
            "INSERT INTO models (sha256, path, name, name_key, type, base, size_bytes, "
            "created_at, meta_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            models,
        )
        conn.executemany("INSERT INTO model_tags (model_hash, tag_id) VALUES (?, ?)", links)
    # What every background job (scan, import, promotion) does after its bulk writes.
    services.db.listing.tidy_search_index()
    if services.db.dialect.name == SQLITE:
        services.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        services.db.conn.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load


def serve_listing(config: Config, channel: Connection) -> None:
    """The listing's server, in a child process of its own (the bench's client must not
    share its event loop): a real server on 127.0.0.1, as ``create_app`` builds it. It
    sends its port, then serves until the bench sends anything (or goes away)."""
    asyncio.run(_serve_listing(config, channel))


async def _serve_listing(config: Config, channel: Connection) -> None:
    runner = web.AppRunner(create_app(Services.open(config)))  # closes them at cleanup
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        channel.send(runner.addresses[0][1])
        stop = asyncio.Event()
        asyncio.get_running_loop().add_reader(channel.fileno(), stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


@contextmanager
def listing_server(config: Config) -> Iterator[int]:
    """Run ``serve_listing`` in a child process; yield its port."""
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=serve_listing, args=(config, theirs), daemon=True
    )
    child.start()
    try:
        if not ours.poll(120):
            raise RuntimeError("the listing's server did not start within 120 s")
        yield int(ours.recv())
    finally:
        with suppress(OSError):
            ours.send("stop")
        child.join(30)
        if child.is_alive():
            child.terminate()
            child.join()


def get_listing(conn: http.client.HTTPConnection, path: str) -> tuple[float, bytes]:
    """One ``GET``, timed from sending it to the last byte of its body (parsing the body
    is the client's work, done after)."""
    start = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    elapsed = time.perf_counter() - start
    assert resp.status == 200, body[:500]
    return elapsed, body


def time_listing(
    services: Services, port: int, params: dict[str, str], query: ModelQuery, runs: int
) -> tuple[list[float], list[float], int]:
    """HTTP times of ``GET /api/models`` from this process (keep-alive, one connection)
    and times of the listing's own SQL (``db.listing.page``: count + page, without HTTP,
    JSON or item assembly) run here, interleaved so both see the same machine."""
    path = f"/api/models?{urlencode(params)}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    http_times, raw_times = [], []
    try:
        for _ in range(20):  # warm-up: connection, page cache, each worker's statements
            body = get_listing(conn, path)[1]
        for _ in range(runs):
            elapsed, body = get_listing(conn, path)
            http_times.append(elapsed)
            start = time.perf_counter()
            total, _rows = services.db.listing.page(query)
            raw_times.append(time.perf_counter() - start)
    finally:
        conn.close()
    served = json.loads(body)["total"]
    assert served == total, (served, total)
    return http_times, raw_times, total


LISTING_CASES = (
    # (label, HTTP parameters, ModelQuery, target: at most this many seconds above the
    # raw SQL at p50, or None)
    (
        f"tags={LISTING_TAG}&q={LISTING_QUERY}",
        {"limit": "100", "tags": LISTING_TAG, "q": LISTING_QUERY},
        ModelQuery(limit=100, tags=(LISTING_TAG,), q=LISTING_QUERY),
        0.002,
    ),
    ("no filter, sort=name", {"limit": "100", "sort": "name"}, ModelQuery(limit=100), 0.002),
    (
        f"q={LISTING_QUERY}",
        {"limit": "100", "q": LISTING_QUERY},
        ModelQuery(limit=100, q=LISTING_QUERY),
        None,
    ),
)


@part("listing")
def run_listing(args: argparse.Namespace, workdir: Path) -> None:
    count = 2_000 if args.quick and args.models is None else (args.models or 50_000)
    runs = 30 if args.quick and args.requests is None else (args.requests or 300)
    models_root = workdir / "listing-models"
    models_root.mkdir()
    for backend in args.backends.names:
        config = args.backends.config(
            backend, workdir / f"listing-data-{backend}", [str(models_root)]
        )
        services = Services.open(config)
        try:
            start = time.perf_counter()
            build_listing_library(services, count)
            print(
                f"listing [{backend}]: built {count} models in {time.perf_counter() - start:.1f}s"
            )
            assert services.db.listing.search_ready()
            with listing_server(config) as port:
                for label, params, query, target in LISTING_CASES:
                    http_times, raw, total = time_listing(services, port, params, query, runs)
                    above = target if backend == SQLITE else None  # issue 19's, for SQLite
                    report_listing(
                        f"[{backend}] {label}", total, count, http_times, raw, above, args.quick
                    )
                    if backend != SQLITE and target is not None:
                        verdict = "met" if statistics.median(http_times) <= 0.010 else "NOT met"
                        print(f"  [{backend}] target HTTP p50 <= 10 ms: {verdict}")
        finally:
            services.close()


def report_listing(
    label: str,
    total: int,
    count: int,
    http_times: list[float],
    raw: list[float],
    target: float | None,
    quick: bool,
) -> None:
    http_p50, raw_p50 = statistics.median(http_times), statistics.median(raw)
    runs = len(http_times)
    print(f"listing: GET /api/models?limit=100 {label}: {total} of {count} match")
    print(
        f"  HTTP   p50 {ms(http_p50):>10}  p95 {ms(percentile(http_times, 0.95)):>10}"
        f"  ({runs} runs, client in another process)"
    )
    print(f"  raw SQL p50 {ms(raw_p50):>10}  p95 {ms(percentile(raw, 0.95)):>10}")
    print(f"  HTTP above raw SQL (p50) {ms(http_p50 - raw_p50)}")
    print(f"  ratio HTTP/raw SQL (p50) {http_p50 / raw_p50:.2f}x")
    if target is not None:
        verdict = "met" if http_p50 - raw_p50 <= target else "NOT met"
        print(
            f"  target p50 <= raw SQL + {target * 1000:g} ms: {verdict}"
            + (" (quick run)" if quick else "")
        )


# ---------------------------------------------------------------------- firstscan
FIRSTSCAN_SIDECAR = json.dumps({"activation text": "word, other", "preferred weight": 0.8})


def tiny_png(i: int) -> bytes:
    """A real 8x8 PNG of its own colour (a preview the image store keeps)."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (i % 251, i // 251 % 251, 7)).save(out, "PNG")
    return out.getvalue()


def build_flat_folder(folder: Path, count: int, size: int) -> list[Path]:
    """``count`` model files of ``size`` bytes with distinct contents, all in ``folder``;
    one in 10 has an A1111 ``.json`` sidecar, one in 20 a ``.preview.png``. Past 4 KB a
    file is a distinct 4 KB head and a hole (sparse: read and hashed in full, no disk)."""
    folder.mkdir(parents=True)
    paths = []
    for i in range(count):
        path = folder / f"lora_{i:06d}.safetensors"
        with open(path, "wb") as f:
            f.write(hashlib.sha256(str(i).encode()).digest() * 128)  # 4 KB
            f.truncate(max(size, 4096))
        if i % 10 == 3:
            (folder / f"lora_{i:06d}.json").write_text(FIRSTSCAN_SIDECAR)
        if i % 20 == 7:
            (folder / f"lora_{i:06d}.preview.png").write_bytes(tiny_png(i))
        paths.append(path)
    return paths


def time_hashing(workdir: Path, paths: list[Path]) -> tuple[float, float]:
    """The baseline, in a library of its own: ``HashService.hash_file`` of each file, as a
    promotion hashes it (read, SHA-256, the cache row); and a bare sha256 loop, run first:
    it brings the files into the page cache (a new sparse file's first read is slower),
    so the baseline and the scan after it read them alike."""
    start = time.perf_counter()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while n := f.readinto(buffer):
                digest.update(view[:n])
        digest.hexdigest()
    bare = time.perf_counter() - start
    config = Config.load(data_dir=workdir, model_roots=[str(paths[0].parent)], env={})
    services = Services.open(config)
    try:
        start = time.perf_counter()
        for path in paths:
            services.hashes.hash_file(path)
        return time.perf_counter() - start, bare
    finally:
        services.close()


def time_first_scan(workdir: Path, root: Path, count: int) -> float:
    """``hikaze-mm scan --immediate`` in process: a new library, one scan that queues and
    promotes every file (reading each model's sidecars)."""
    config = Config.load(data_dir=workdir, model_roots=[str(root)], env={})
    services = Services.open(config)
    try:
        start = time.perf_counter()
        counts = services.scanner.scan(immediate_hashing=True).counts
        elapsed = time.perf_counter() - start
        assert counts.new == count and counts.promoted == count and not counts.errors, counts
        with_words = sum(
            1
            for sha in services.db.listing.all_sha256s()
            if (services.db.models.get(sha) or {}).get("meta", {}).get("trigger_words")
        )
        assert with_words == len(range(3, count, 10)), with_words  # every sidecar was read
    finally:
        services.close()
    return elapsed


def first_scan_beyond(workdir: Path, count: int, kb: int) -> tuple[float, float]:
    """``(first scan, hashing)`` seconds for ``count`` files of ``kb`` KB in one folder;
    prints both and the cost beyond hashing."""
    root = workdir / f"firstscan-models-{count}-{kb}"
    paths = build_flat_folder(root / "loras", count, kb * 1024)
    hashing, bare = time_hashing(workdir / f"firstscan-hash-{count}-{kb}", paths)
    total = time_first_scan(workdir / f"firstscan-data-{count}-{kb}", root, count)
    shutil.rmtree(root, ignore_errors=True)
    beyond = total - hashing
    print(f"firstscan: {count} files of {kb} KB in one folder")
    print(f"  first scan --immediate  {total:8.2f} s")
    print(f"  hashing (HashService)   {hashing:8.2f} s  (bare sha256 loop {bare:.2f} s)")
    print(f"  cost beyond hashing     {beyond:8.2f} s  ({beyond / count * 1e3:.3f} ms a file)")
    print(f"  beyond/hashing          {beyond / hashing:8.0%}")
    return total, hashing


@part("firstscan")
def run_firstscan(args: argparse.Namespace, workdir: Path) -> None:
    """The first scan (``--immediate``) of N files in ONE folder, N = 2,000 and 10,000:
    its cost beyond hashing at --file-kb (target under 20% of the hashing time), and the
    growth of that cost with N at --growth-kb (target: linear, the ratio of the sizes)."""
    sizes = [400, 2_000] if args.quick else [2_000, 10_000]
    quick = " (quick run)" if args.quick else ""
    for count in sizes if args.file_kb else ():  # --file-kb 0: the growth only
        total, hashing = first_scan_beyond(workdir, count, args.file_kb)
        ratio = (total - hashing) / hashing
        verdict = "met" if ratio < 0.2 else "NOT met"
        print(
            f"firstscan: {count} files of {args.file_kb} KB: cost beyond hashing "
            f"{ratio:.0%} of the hashing, target < 20%: {verdict}{quick}"
        )
    beyond = [
        total - hashing
        for total, hashing in (first_scan_beyond(workdir, n, args.growth_kb) for n in sizes)
    ]
    growth, linear = beyond[1] / beyond[0], sizes[1] / sizes[0]
    verdict = "met" if growth <= linear * 1.2 else "NOT met"
    print(
        f"firstscan: cost beyond hashing ({args.growth_kb} KB files) grew {growth:.2f}x "
        f"from {sizes[0]} to {sizes[1]} files (linear: {linear:g}x): {verdict}{quick}"
    )


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=(*PARTS, "all"), default="all")
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp)")
    parser.add_argument("--files", type=int, default=None, help="rescan: model files (20000)")
    parser.add_argument("--models", type=int, default=None, help="listing: models (50000)")
    parser.add_argument("--requests", type=int, default=None, help="listing: timed requests")
    parser.add_argument(
        "--file-kb",
        type=int,
        default=16384,
        help="firstscan: file size for the 20%% target (0: skip it)",
    )
    parser.add_argument(
        "--growth-kb", type=int, default=4, help="firstscan: file size for the growth target"
    )
    parser.add_argument(
        "--db-url",
        metavar="URL",
        help="also run rescan and listing on PostgreSQL: a server the bench may create "
        "databases on, or 'temp' for a throwaway cluster (bench/bench_backends.py)",
    )
    args = parser.parse_args()
    args.backends = Backends(args.db_url)
    workdir = Path(tempfile.mkdtemp(prefix="hikaze-scan-bench-", dir=args.dir))
    try:
        for name, fn in PARTS.items():
            if args.part in (name, "all"):
                fn(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        args.backends.close()


if __name__ == "__main__":
    main()
