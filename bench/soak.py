"""Soak: a real `hikaze-mm serve` under mixed load, watched for leaks and errors.

Starts the server as a subprocess on a free port on 127.0.0.1 with a fresh library and a
model root, then for --minutes keeps a mixed load going from a few concurrent clients:
listings and model reads, PATCHes of tags and notes, image uploads, scans (each after new
model files are dropped in) and Stage 2 runs that promote them. It samples the server's
open file descriptors and resident memory (from /proc) at the start of the load and at
the end, and counts errors: any 5xx, any unexpected status, any failed request.

Prints the requests made, the error count (must be 0), fds and RSS at start and end, and
their ratios end/start (a leak shows as a ratio that grows with the minutes).

Usage: python bench/soak.py [--minutes N] [--clients N] [--quick] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from PIL import Image

MODELS_AT_START = 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), ((seed * 37) % 256, (seed * 91) % 256, 120)).save(buf, "PNG")
    return buf.getvalue()


class Load:
    def __init__(self, base: str, root: Path, deadline: float) -> None:
        self.base = base
        self.root = root
        self.deadline = deadline
        self.requests = 0
        self.errors: list[str] = []
        self.files = 0

    async def call(self, session, method, path, expect=(200,), **kwargs):
        self.requests += 1
        try:
            async with session.request(method, self.base + path, **kwargs) as resp:
                body = await resp.read()
                if resp.status not in expect:
                    self.errors.append(f"{method} {path}: {resp.status} {body[:200]!r}")
                    return None
                return await resp.json() if body[:1] in (b"{", b"[") else body
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self.errors.append(f"{method} {path}: {type(exc).__name__} {exc}")
            return None

    def drop_files(self, n: int) -> None:
        folder = self.root / "loras" / f"batch{self.files // 50}"
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(n):
            (folder / f"soak_{self.files:05d}.safetensors").write_bytes(
                os.urandom(4096) + self.files.to_bytes(4, "big")
            )
            self.files += 1

    async def reader(self, session) -> None:
        rng = random.Random(1)
        while time.monotonic() < self.deadline:
            page = await self.call(
                session, "GET", f"/api/models?limit=50&offset={rng.randint(0, 20)}"
            )
            if page and page["items"]:
                sha = rng.choice(page["items"])["sha256"]
                await self.call(session, "GET", f"/api/models/{sha}")
                await self.call(
                    session, "GET", f"/api/images/{sha}.webp?quality=low", expect=(200, 404)
                )
            await self.call(session, "GET", "/api/stats")
            await self.call(session, "GET", "/api/tags")

    async def writer(self, session) -> None:
        rng = random.Random(2)
        n = 0
        while time.monotonic() < self.deadline:
            page = await self.call(session, "GET", "/api/models?limit=100")
            if not page or not page["items"]:
                await asyncio.sleep(0.2)
                continue
            sha = rng.choice(page["items"])["sha256"]
            n += 1
            await self.call(
                session,
                "PATCH",
                f"/api/models/{sha}",
                json={"tags": {"add": [f"soak{n % 7}"]}, "meta_json": {"note": f"soak {n}"}},
            )
            if n % 5 == 0:
                await self.call(
                    session,
                    "POST",
                    f"/api/images/{sha}",
                    expect=(201,),
                    data=png(n),
                    headers={"Content-Type": "image/png"},
                )

    async def scanner(self, session) -> None:
        while time.monotonic() < self.deadline:
            self.drop_files(5)
            await self.call(session, "POST", "/api/scan", expect=(202, 409), json={})
            await self.wait_idle(session, "/api/scan/status", lambda s: not s["running"])
            await self.call(session, "POST", "/api/migration/start", expect=(200, 409), json={})
            await self.wait_idle(
                session, "/api/migration/status", lambda s: s["status"] != "RUNNING"
            )

    async def wait_idle(self, session, path, done) -> None:
        while time.monotonic() < self.deadline + 30:
            status = await self.call(session, "GET", path)
            if status is None or done(status):
                return
            await asyncio.sleep(0.1)


async def run_load(base: str, root: Path, minutes: float, clients: int, pid: int) -> dict:
    deadline = time.monotonic() + minutes * 60
    load = Load(base, root, deadline)
    headers = {"Origin": base}
    async with aiohttp.ClientSession(headers=headers) as session:
        # Warm up: a first scan and promotion of the starting models, so the pools exist.
        load.drop_files(MODELS_AT_START)
        load.deadline = time.monotonic() + 120
        await load.call(session, "POST", "/api/scan", expect=(202,), json={})
        await load.wait_idle(session, "/api/scan/status", lambda s: not s["running"])
        await load.call(session, "POST", "/api/migration/start", json={})
        await load.wait_idle(session, "/api/migration/status", lambda s: s["status"] != "RUNNING")
        load.deadline = deadline
        start = {"fds": proc_fds(pid), "rss": proc_rss_mib(pid)}
        tasks = [load.reader(session) for _ in range(max(1, clients - 2))]
        tasks += [load.writer(session), load.scanner(session)]
        await asyncio.gather(*tasks)
        end = {"fds": proc_fds(pid), "rss": proc_rss_mib(pid)}
    return {"load": load, "start": start, "end": end}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="20 seconds: a smoke run")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp)")
    args = parser.parse_args()
    minutes = 1 / 3 if args.quick else args.minutes
    work = Path(tempfile.mkdtemp(prefix="hikaze-soak-", dir=args.dir))
    root = work / "models"
    (root / "loras").mkdir(parents=True)
    port = free_port()
    env = {**os.environ, "HIKAZE_DATA_DIR": str(work / "data"), "HIKAZE_MODEL_ROOTS": str(root)}
    log_path = work / "server.log"  # a file: an unread pipe would fill and stall the server
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below
    server = subprocess.Popen(
        [sys.executable, "-m", "hikaze_mm", "serve", "--port", str(port)],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if server.poll() is not None:
                    log = log_path.read_text(errors="replace")
                    raise SystemExit(f"the server exited: {log[-2000:]}") from None
                time.sleep(0.1)
        result = asyncio.run(run_load(base, root, minutes, args.clients, server.pid))
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log_file.close()
        shutil.rmtree(work, ignore_errors=True)
    load, start, end = result["load"], result["start"], result["end"]
    print(
        f"soak: {minutes:.2f} min, {args.clients} clients, {load.requests} requests, "
        f"{load.files} model files dropped in"
    )
    print(f"  errors                {len(load.errors)}")
    for line in load.errors[:10]:
        print(f"    {line}")
    print(
        f"  open fds  start {start['fds']:6d}   end {end['fds']:6d}   "
        f"ratio {end['fds'] / start['fds']:.2f}x"
    )
    print(
        f"  RSS MiB   start {start['rss']:6.1f}   end {end['rss']:6.1f}   "
        f"ratio {end['rss'] / start['rss']:.2f}x"
    )
    print(f"  target: 0 errors: {'met' if not load.errors else 'NOT met'}")
    return 0 if not load.errors else 1


if __name__ == "__main__":
    sys.exit(main())
