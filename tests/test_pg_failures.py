"""A library on PostgreSQL when the server fails: a connection lost in the middle of a
job (a scan, Stage 1) fails that job cleanly and the next run resumes, the server keeps answering; a
server that cannot be reached is one line of every CLI command; and the URL's password
never shows (an error, the log, ``/api/health``, ``status``)."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import pytest

from hikaze_mm.config import Config
from hikaze_mm.server import create_app
from hikaze_mm.services import Services
from tests.helpers import (
    run_cli,
    same_origin_headers,
    server_json,
    start_server,
    stop,
    write_model,
)
from tests.legacy_fixtures import build_legacy
from tests.pg_cluster import PgServer
from tests.waiting import wait_until, wait_until_async

FILES = 400


def database_of(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def end_sessions(cluster: PgServer, url: str, *, busy: bool = False) -> int:
    """End every session on the database of ``url`` (as a server restart would), or only
    those in a statement or a transaction (``busy``); how many there were."""
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND (NOT %s OR state <> 'idle')",
            (database_of(url), busy),
        ).fetchall()
    return len(rows)


def end_sessions_mid_transaction(cluster: PgServer, url: str) -> int:
    """End every session on the database of ``url`` if one of them is inside a unit of
    work right now, not committing it (one statement: the check and the ends are one
    moment); how many were ended. A session ended between units of work is replaced
    unseen, by design, and one ended while it commits may have committed."""
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND EXISTS ("
            " SELECT 1 FROM pg_stat_activity a WHERE a.datname = %s"
            " AND a.pid <> pg_backend_pid() AND (a.state = 'idle in transaction'"
            " OR (a.state = 'active' AND a.xact_start < a.query_start"
            " AND a.query NOT LIKE 'COMMIT%%')))",
            (database_of(url), database_of(url)),
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
    # Ended inside a unit of work (a group's promotion): the scan cannot go on unseen.
    wait_until(
        lambda: end_sessions_mid_transaction(pg_cluster, pg_config.database_url),
        interval=0.001,
        message="a unit of work of the scan to interrupt",
    )
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
    # Nothing half-written: each file is a model or still pending, never both nor neither.
    db = services.db
    promoted = {path for (path,) in db.tuples("SELECT path FROM models")}
    waiting = {path for (path,) in db.tuples("SELECT path FROM pending_import")}
    assert not promoted & waiting and len(promoted | waiting) == FILES
    # The next scan resumes and ends with every model present exactly once.
    await start_scan(client)
    done = await wait_until_async(
        lambda: scan_status(client), lambda s: not s["running"], message="the second scan"
    )
    assert done["phase"] == "done", done["error"]
    assert db.pending.count() == 0
    rows = db.tuples("SELECT sha256, path FROM models ORDER BY sha256")
    assert sorted(sha for sha, _ in rows) == sorted(made)
    assert len({path for _, path in rows}) == FILES
    for sha, has_preview in made.items():
        assert len(services.images.list_seqs(sha)) == int(has_preview), sha
    pixels = db.tuples("SELECT sha256, COUNT(*) FROM image_pixels GROUP BY sha256")
    assert all(count == 1 and made[sha] for sha, count in pixels)


def test_a_connection_lost_mid_stage_1_fails_it_and_the_next_run_resumes(
    pg_config: Config, pg_cluster: PgServer, tmp_path: Path
) -> None:
    """Stage 1 (the legacy import) has its busy sessions ended after its first models (an
    idle one would be replaced unseen), until it stops: it fails saying why; every model it
    committed is whole (its ledger row, its tag link and its image), and the next run
    imports the rest, each once."""
    count = 120
    legacy, images = build_legacy(tmp_path / "src", count)
    services = Services.open(pg_config)
    try:
        services.legacy_import.start(legacy, images)
        job = services.jobs.get("legacy-import")
        wait_until(
            job.snapshot,
            lambda s: s["progress"]["phase"] == "models" and s["progress"]["done"] > 0,
            interval=0.005,
            message="Stage 1's first models",
        )

        def end_busy_sessions() -> dict[str, Any]:
            end_sessions(pg_cluster, pg_config.database_url, busy=True)
            return job.snapshot()

        failed = wait_until(
            end_busy_sessions,
            lambda s: not s["running"],
            interval=0.002,
            message="Stage 1 to end",
        )
        assert failed["error"] and "cannot reach the library" in failed["error"], failed
        db = services.db
        models = {sha for (sha,) in db.tuples("SELECT sha256 FROM models")}
        ledger = {sha for (sha,) in db.tuples("SELECT sha256 FROM legacy_import_models")}
        linked = {sha for (sha,) in db.tuples("SELECT model_hash FROM model_tags")}
        assert len(models) < count and models == ledger == linked
        for sha in models:
            assert len(services.images.list_seqs(sha)) == 1, sha
        report = services.legacy_import.run_blocking(legacy, images)
        assert report["already_imported"] == len(models)
        assert db.tuples("SELECT COUNT(*), COUNT(DISTINCT sha256) FROM models") == [(count, count)]
        assert db.tuples("SELECT COUNT(*) FROM model_tags") == [(count,)]
        assert len(list(pg_config.images_dir.glob("*_high.webp"))) == count
    finally:
        services.close()


# ---------------------------------------------------------------------- the CLI
SECRET = "s3cret-Pa55"


def with_password(url: str) -> str:
    """``url`` with a password for its user (the test cluster trusts its socket: the
    password is carried, never checked)."""
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user or 'postgres'}:{SECRET}@{host}"))


def refused_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql://bob:{SECRET}@127.0.0.1:{port}/lib"


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "0"],
        ["list"],
        ["status"],
        ["scan"],
        ["promote", "--all"],
    ],
)
def test_an_unreachable_server_is_one_cli_line(tmp_path: Path, command: list[str]) -> None:
    models = tmp_path / "models"
    write_model(models / "loras" / "a.safetensors", 100)
    env = {
        "HIKAZE_DATA_DIR": str(tmp_path / "data"),
        "HIKAZE_MODEL_ROOTS": str(models),
        "HIKAZE_DB_URL": refused_url(),
    }
    proc = run_cli(*command, env_extra=env)
    assert proc.returncode == 1, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hikaze-mm: error: "), proc.stderr
    assert "cannot reach the library at postgresql://bob:***@127.0.0.1:" in lines[0]
    assert SECRET not in proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_an_unreachable_server_in_json(tmp_path: Path) -> None:
    env = {"HIKAZE_DATA_DIR": str(tmp_path / "data"), "HIKAZE_DB_URL": refused_url()}
    proc = run_cli("status", "--json", env_extra=env)
    assert proc.returncode == 1 and proc.stderr == ""
    error = json.loads(proc.stdout)
    assert set(error) == {"error", "detail"} and "cannot reach the library" in error["detail"]
    assert "\n" not in error["detail"] and SECRET not in proc.stdout


def test_the_option_names_the_server_too(tmp_path: Path) -> None:
    url = refused_url()
    proc = run_cli("--db-url", url, "list", env_extra={"HIKAZE_DATA_DIR": str(tmp_path)})
    assert proc.returncode == 1
    assert proc.stderr.startswith("hikaze-mm: error: cannot") and proc.stderr.count("\n") == 1
    assert SECRET not in proc.stderr and "bob:***@" in proc.stderr


def test_the_password_never_shows(tmp_path: Path, pg_url: str, models_root: Path) -> None:
    """serve (its output and log, /api/health, a scan's status), status and list with a
    URL that carries a password: the password is never printed."""
    write_model(models_root / "loras" / "a.safetensors", 100)
    url = with_password(pg_url)
    data = tmp_path / "data"
    env = {"HIKAZE_DB_URL": url, "HIKAZE_MODEL_ROOTS": str(models_root)}
    server = start_server(data, tmp_path, env=env)
    try:
        health = server_json(server, "api/health")
        assert health["status"] == "ok"
        server_json(server, "api/scan", {"immediate_hashing": True})
        status = wait_until(
            lambda: server_json(server, "api/scan/status"), lambda s: not s["running"]
        )
        assert status["phase"] == "done"
        beside = run_cli("status", "--data-dir", str(data), env_extra=env)  # via the server
        assert beside.returncode == 0, beside.stderr
    finally:
        assert stop(server) == 0
    alone = run_cli("status", "--json", "--data-dir", str(data), env_extra=env)
    listed = run_cli("list", "--data-dir", str(data), env_extra=env)
    assert alone.returncode == 0 and listed.returncode == 0, alone.stderr + listed.stderr
    assert listed.stderr == "1 of 1 model\n"
    said = [json.dumps(health), json.dumps(status), server.stdout.read_text()]
    said += [(tmp_path / "serve.err").read_text()]
    said += [p.stdout + p.stderr for p in (beside, alone, listed)]
    assert all(SECRET not in text for text in said)
    assert "library at postgresql://postgres:***@/" in said[2]
