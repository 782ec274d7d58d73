"""The scan over real HTTP (``POST /api/scan``, ``GET /api/scan/status``) and the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hikaze_mm.config import Config
from hikaze_mm.server import create_app
from hikaze_mm.services import Services
from tests.conftest import on_each_backend, sqlite_only
from tests.helpers import run_cli, same_origin_headers, write_model
from tests.library_helpers import services_of
from tests.waiting import wait_until_async

config = on_each_backend()


async def scan_status(client) -> dict[str, Any]:
    resp = await client.get("/api/scan/status")
    assert resp.status == 200
    return await resp.json()


async def wait_until_idle(client, timeout: float = 30.0) -> dict[str, Any]:
    return await wait_until_async(
        lambda: scan_status(client),
        lambda status: not status["running"],
        timeout=timeout,
        message="the scan to end",
    )


async def wait_for_phase(client, phase: str, timeout: float = 30.0) -> dict[str, Any]:
    return await wait_until_async(
        lambda: scan_status(client),
        lambda status: status["phase"] == phase,
        timeout=timeout,
        interval=0.01,
        message=f"the scan's phase {phase!r}",
    )


async def test_status_before_any_scan(client) -> None:
    resp = await client.get("/api/scan/status")
    assert resp.status == 200
    status = await resp.json()
    assert status["running"] is False
    assert status["phase"] == "idle"
    assert status["last_report"] is None
    assert status["counts"]["files_seen"] == 0


async def test_scan_runs_in_the_background_and_reports(client, models_root: Path) -> None:
    write_model(models_root / "loras" / "a.safetensors", 100, seed=1)
    write_model(models_root / "checkpoints" / "b.ckpt", 200, seed=2)
    resp = await client.post("/api/scan", headers=same_origin_headers(client))
    assert resp.status == 202
    started = await resp.json()
    assert started["running"] is True
    assert started["roots"] == [{"path": str(models_root), "type": None}]

    status = await wait_until_idle(client)
    assert status["phase"] == "done"
    counts = status["counts"]
    assert (counts["files_seen"], counts["new"], counts["moved"], counts["missing"]) == (
        2,
        2,
        0,
        0,
    )
    assert status["last_report"]["counts"] == counts
    assert len(status["last_report"]["new_pending_ids"]) == 2
    assert services_of(client).db.pending.count() == 2


async def test_moves_and_missing_show_in_status(client, models_root: Path, tmp_path) -> None:
    svc = services_of(client)
    a = models_root / "loras" / "a.safetensors"
    b = models_root / "loras" / "b.safetensors"
    sha_a = write_model(a, 100, seed=1)
    sha_b = write_model(b, 200, seed=2)
    await client.post("/api/scan", headers=same_origin_headers(client))
    await wait_until_idle(client)
    for pending in svc.db.pending.list():
        svc.promoter.promote(pending["id"])
    a.rename(models_root / "checkpoints-a.safetensors")
    b.rename(tmp_path / "away.safetensors")

    resp = await client.post("/api/scan", headers=same_origin_headers(client), json={})
    assert resp.status == 202
    status = await wait_until_idle(client)
    assert status["counts"]["moved"] == 1
    assert status["counts"]["missing"] == 1
    report = status["last_report"]
    assert report["relinked"][0]["sha256"] == sha_a
    assert report["missing"] == [{"sha256": sha_b, "path": str(b)}]


@sqlite_only
async def test_second_scan_while_one_runs_is_409(client, models_root: Path) -> None:
    write_model(models_root / "loras" / "a.safetensors", 100)
    svc = services_of(client)
    blocker = sqlite3.connect(svc.config.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the scan waits at its first write
    try:
        first = await client.post("/api/scan", headers=same_origin_headers(client))
        assert first.status == 202
        second = await client.post("/api/scan", headers=same_origin_headers(client))
        assert second.status == 409
        body = await second.json()
        assert body["error"] == "Conflict"
        assert "already running" in body["detail"]
        # The event loop is free while the scan thread waits: the API answers.
        live = await wait_for_phase(client, "writing")
        assert live["running"] is True
        assert live["counts"]["files_seen"] == 1
        health = await client.get("/api/health")
        assert health.status == 200
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    status = await wait_until_idle(client)
    assert status["counts"]["new"] == 1
    again = await client.post("/api/scan", headers=same_origin_headers(client))
    assert again.status == 202
    await wait_until_idle(client)


async def test_immediate_hashing_over_http(client, models_root: Path) -> None:
    sha = write_model(models_root / "loras" / "a.safetensors", 100)
    resp = await client.post(
        "/api/scan",
        headers=same_origin_headers(client),
        json={"immediate_hashing": True, "conflict_strategy": "merge"},
    )
    assert resp.status == 202
    status = await wait_until_idle(client)
    assert status["immediate_hashing"] is True
    assert status["counts"]["promoted"] == 1
    assert services_of(client).db.models.get(sha) is not None


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"[]", 400),
        (b"{not json", 400),
        (b'"scan"', 400),
        (b'{"immediate_hashing": "yes"}', 400),
        (b'{"immediate_hashing": 1}', 400),
        (b'{"conflict_strategy": "bogus"}', 400),
        (b'{"conflict_strategy": 5}', 400),
        (b'{"roots": ["/etc"]}', 400),
        (b'{"path": "../../etc"}', 400),
        (b"{" + b" " * (3 * 1024 * 1024) + b"}", 413),
    ],
)
async def test_bad_scan_requests_change_nothing(
    client, models_root: Path, body: bytes, status: int
) -> None:
    write_model(models_root / "loras" / "a.safetensors", 100)
    headers = {**same_origin_headers(client), "Content-Type": "application/json"}
    resp = await client.post("/api/scan", data=body, headers=headers)
    assert resp.status == status
    error = await resp.json()
    assert set(error) == {"error", "detail"}
    idle = await (await client.get("/api/scan/status")).json()
    assert idle["phase"] == "idle"
    assert services_of(client).db.pending.count() == 0


async def test_cross_origin_and_wrong_method(client) -> None:
    resp = await client.post("/api/scan", headers={"Origin": "http://evil.example"})
    assert resp.status == 403
    resp = await client.put("/api/scan", headers=same_origin_headers(client))
    assert resp.status == 405
    assert set(await resp.json()) == {"error", "detail"}
    idle = await (await client.get("/api/scan/status")).json()
    assert idle["phase"] == "idle"


async def test_no_roots_is_a_400(aiohttp_client, data_dir: Path) -> None:
    svc = Services.open(Config.load(data_dir=data_dir, env={}))
    client = await aiohttp_client(create_app(svc))
    resp = await client.post("/api/scan", headers=same_origin_headers(client))
    assert resp.status == 400
    assert "no model roots" in (await resp.json())["detail"]


# ---------------------------------------------------------------------- CLI
def test_cli_scan_summary_json_and_relinks(data_dir: Path, models_root: Path) -> None:
    a = models_root / "loras" / "a.safetensors"
    sha = write_model(a, 100, seed=1)
    write_model(models_root / "vae" / "v.pt", 50, seed=2)
    common = ["--data-dir", str(data_dir), "--models-root", str(models_root)]

    first = run_cli("scan", *common)
    assert first.returncode == 0, first.stderr
    assert "scanned 2 files" in first.stdout
    assert "2 new" in first.stdout
    assert "Traceback" not in first.stderr

    config = Config.load(data_dir=data_dir, model_roots=[str(models_root)], env={})
    svc = Services.open(config)
    try:
        for pending in svc.db.pending.list():
            svc.promoter.promote(pending["id"])
    finally:
        svc.close()
    a.rename(models_root / "loras" / "a-new.safetensors")

    second = run_cli("scan", *common, "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["counts"]["renamed"] == 1
    assert report["counts"]["unchanged"] == 1
    assert report["relinked"][0]["sha256"] == sha

    # Roots from the environment, and the plain summary naming the relink.
    a.parent.joinpath("a-new.safetensors").rename(models_root / "vae" / "a.safetensors")
    third = run_cli(
        "scan", "--data-dir", str(data_dir), env_extra={"HIKAZE_MODEL_ROOTS": str(models_root)}
    )
    assert third.returncode == 0, third.stderr
    assert f"moved    {sha[:10]}" in third.stdout


def test_cli_scan_immediate(data_dir: Path, models_root: Path) -> None:
    sha = write_model(models_root / "loras" / "a.safetensors", 100)
    done = run_cli(
        "scan", "--data-dir", str(data_dir), "--models-root", str(models_root), "--immediate"
    )
    assert done.returncode == 0, done.stderr
    assert "promoted 1" in done.stdout
    svc = Services.open(Config.load(data_dir=data_dir, env={}))
    try:
        assert svc.db.models.get(sha) is not None
    finally:
        svc.close()


def test_cli_scan_reports_problems_without_failing(data_dir: Path, models_root: Path) -> None:
    write_model(models_root / "loras" / "ok.safetensors", 10)
    os.symlink(models_root / "nowhere.pt", models_root / "loras" / "dead.pt")
    done = run_cli("scan", "--data-dir", str(data_dir), "--models-root", str(models_root))
    assert done.returncode == 0
    assert "1 problem\n" in done.stdout
    assert f"problem  broken_symlink: {models_root / 'loras' / 'dead.pt'}" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no model roots configured"),
        (["--strategy", "nuke", "--models-root", "."], "invalid choice"),
    ],
)
def test_cli_scan_errors_are_one_line(data_dir: Path, args: list[str], message: str) -> None:
    done = run_cli("scan", "--data-dir", str(data_dir), *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
