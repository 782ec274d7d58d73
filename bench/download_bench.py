"""Downloads: our downloader against curl on the same file from the same local server.

A local aiohttp file server (a process of its own, sendfile) serves one sparse file of
--size-mib (default 2048: 2 GiB). In alternating runs, `curl -s -o` and our download
service (``DownloadService``: streamed, hashed as written, verified, renamed and promoted)
fetch it into the same folder. Prints per run and the medians:

* throughput of each, and ours / curl (target >= 0.9);
* for ours, the time from the last byte (the download turning ``verifying``) to the model
  being in the library (``done``) (target <= 1 s).

Usage: python bench/download_bench.py [--size-mib N] [--runs N] [--quick] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MIB = 1024 * 1024


def serve(folder: str, port: int) -> None:
    """The file server (run as ``--serve FOLDER PORT`` in its own process)."""
    from aiohttp import web

    app = web.Application()
    app.router.add_static("/files/", folder)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(folder), str(port)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}/files/model.safetensors"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the file server did not start")


def sparse(path: Path, size: int) -> str:
    """A sparse file of ``size`` zero bytes; its SHA-256 (hashed once, here)."""
    with open(path, "wb") as f:
        f.truncate(size)
    digest, chunk = hashlib.sha256(), bytes(8 * MIB)
    left = size
    while left:
        n = min(left, len(chunk))
        digest.update(chunk[:n])
        left -= n
    return digest.hexdigest()


def time_curl(url: str, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["curl", "-s", "-o", str(out), url], check=True)
    elapsed = time.perf_counter() - start
    out.unlink()
    return elapsed


def time_ours(url: str, sha: str, work: Path) -> tuple[float, float]:
    """(seconds to the last byte, seconds from it to the model in the library)."""
    from hikaze_mm.config import Config
    from hikaze_mm.services import Services

    shutil.rmtree(work, ignore_errors=True)
    (work / "models").mkdir(parents=True)
    config = Config.load(data_dir=work / "data", model_roots=[str(work / "models")], env={})
    services = Services.open(config)
    stamps: dict[str, float] = {}
    ended = threading.Event()

    def listen(view: dict) -> None:
        stamps.setdefault(view["status"], time.perf_counter())
        if view["status"] in ("done", "failed"):
            ended.set()

    try:
        services.downloads.add_listener(listen)
        start = time.perf_counter()
        services.downloads.enqueue(url, type="checkpoints", sha256=sha)
        if not ended.wait(3600) or "done" not in stamps:
            raise SystemExit(f"our download failed: {services.downloads.list()[0]['error']}")
        assert services.db.models.get(sha) is not None
        return stamps["verifying"] - start, stamps["done"] - stamps["verifying"]
    finally:
        services.close()
        shutil.rmtree(work, ignore_errors=True)


def run(folder: Path, size: int, runs: int) -> None:
    served = folder / "served"
    served.mkdir()
    sha = sparse(served / "model.safetensors", size)
    proc, url = start_server(served)
    curl_t, ours_t, lags = [], [], []
    try:
        for i in range(runs):  # alternate, so drift in machine load hits both alike
            curl_t.append(time_curl(url, folder / "curl.out"))
            fetched, lag = time_ours(url, sha, folder / "ours")
            ours_t.append(fetched)
            lags.append(lag)
            print(
                f"run {i + 1}: curl {size / curl_t[-1] / MIB:8.1f} MiB/s   ours "
                f"{size / fetched / MIB:8.1f} MiB/s   last byte -> in the library {lag:.3f} s"
            )
    finally:
        proc.terminate()
        proc.wait(10)
    curl_rate = size / statistics.median(curl_t) / MIB
    ours_rate = size / statistics.median(ours_t) / MIB
    lag = statistics.median(lags)
    print(f"\nfile: {size / MIB:.0f} MiB, {runs} runs (medians)")
    print(f"curl            {curl_rate:8.1f} MiB/s")
    print(f"ours            {ours_rate:8.1f} MiB/s")
    print(f"ratio ours/curl {ours_rate / curl_rate:8.2f}   (target >= 0.90)")
    print(f"last byte -> in the library {lag:.3f} s   (target <= 1 s)")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a 256 MiB file, one run")
    parser.add_argument("--dir", help="where to write (default: a temporary folder)")
    args = parser.parse_args()
    if not shutil.which("curl"):
        raise SystemExit("curl is not installed")
    size = (256 if args.quick else args.size_mib) * MIB
    runs = 1 if args.quick else args.runs
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="hikaze-dl-bench-") as tmp:
        run(Path(tmp), size, runs)


if __name__ == "__main__":
    main()
