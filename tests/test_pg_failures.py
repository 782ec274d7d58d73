"""A library on PostgreSQL when the server fails: a connection lost in the middle of a
job fails that job cleanly and the next run resumes; the server keeps answering."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from hikaze_mm.config import Config
from hikaze_mm.server import create_app
from hikaze_mm.services import Services
from tests.helpers import same_origin_headers, write_model
from tests.pg_cluster import PgServer
from tests.waiting import wait_until_async

FILES = 400


def database_of(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def end_sessions(cluster: PgServer, url: str) -> int:
    """End every session on the database of ``url`` (as a server restart would); how
    many there were."""
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database_of(url),),
        ).fetchall()
    return len(rows)


async def scan_status(client) -> dict[str, Any]:
    resp = await client.get("/api/scan/status")
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def start_scan(client) -> None:
    resp = await client.post(
        "/api/scan", headers=same_origin_headers(client), json={"immediate_hashing": True}
    )
    assert resp.status == 202, await resp.text()


@pytest.fixture
def pg_config(config: Config, pg_url: str) -> Config:
    return replace(config, database_url=pg_url)


def write_library(models_root: Path) -> dict[str, bool]:
    """``FILES`` models, every tenth with a preview beside it: sha256 -> has a preview."""
    from PIL import Image

    made: dict[str, bool] = {}
    for i in range(FILES):
        path = models_root / "loras" / f"m{i:04d}.safetensors"
        sha = write_model(path, 2048, seed=i)
        made[sha] = i % 10 == 0
        if made[sha]:
            Image.new("RGB", (8, 8), (i % 256, 0, 0)).save(path.with_suffix(".preview.png"))
    return made


async def test_a_connection_lost_mid_scan_fails_the_job_and_the_next_scan_resumes(
    aiohttp_client, pg_config: Config, pg_cluster: PgServer, models_root: Path
) -> None:
    made = write_library(models_root)
    services = Services.open(pg_config)
    client = await aiohttp_client(create_app(services))
    await start_scan(client)
    await wait_until_async(
        lambda: scan_status(client),
        lambda s: s["counts"]["promoted"] > 0,
        interval=0.005,
        message="the first promoted model",
    )
    assert end_sessions(pg_cluster, pg_config.database_url) > 0
    failed = await wait_until_async(
        lambda: scan_status(client), lambda s: not s["running"], message="the scan to end"
    )
    # The job failed, saying why (once: not a problem per file), without the password.
    assert failed["phase"] == "failed"
    assert "cannot reach the library" in failed["error"]
    assert failed["counts"]["errors"] == 0
    # The server keeps answering, on new connections.
    for _ in range(3):
        assert (await client.get("/api/health")).status == 200
        resp = await client.get("/api/models", params={"limit": "500"})
        assert resp.status == 200, await resp.text()
    assert (await resp.json())["total"] < FILES
    # The next scan resumes and ends with every model present exactly once.
    await start_scan(client)
    done = await wait_until_async(
        lambda: scan_status(client), lambda s: not s["running"], message="the second scan"
    )
    assert done["phase"] == "done", done["error"]
    db = services.db
    assert db.pending.count() == 0
    rows = db.tuples("SELECT sha256, path FROM models ORDER BY sha256")
    assert sorted(sha for sha, _ in rows) == sorted(made)
    assert len({path for _, path in rows}) == FILES
    for sha, has_preview in made.items():
        assert len(services.images.list_seqs(sha)) == int(has_preview), sha
    pixels = db.tuples("SELECT sha256, COUNT(*) FROM image_pixels GROUP BY sha256")
    assert all(count == 1 and made[sha] for sha, count in pixels)
