"""Stage 1 interfaces: the HTTP route on a real server, the CLI as a subprocess, the job."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hikaze_mm.errors import ConflictError
from hikaze_mm.server.http import SERVICES_KEY
from hikaze_mm.services import Services
from tests.conftest import on_each_backend, sqlite_only
from tests.helpers import REPO, cli_env, run_cli
from tests.legacy_fixtures import build_sample_legacy
from tests.test_legacy_import import dump_v3
from tests.waiting import wait_until_async

config = on_each_backend()

URL = "/api/migration/migrate_legacy_db"


# ------------------------------------------------------------------------- HTTP


async def import_over_http(client, body: dict) -> dict:
    """POST the import (202 with the status URL), then poll that URL until the import
    ends; returns its report."""
    resp = await client.post(URL, json=body)
    assert resp.status == 202, await resp.text()
    started = await resp.json()
    assert started["status"] == "started"
    assert started["status_url"] == "/api/migration/status" == resp.headers["Location"]
    assert started["legacy_import"]["started_at"] is not None

    async def legacy_import() -> dict:
        return (await (await client.get(started["status_url"])).json())["legacy_import"]

    status = await wait_until_async(
        legacy_import,
        lambda status: not status["running"],
        interval=0.05,
        message="the legacy import to end",
    )
    assert status["running"] is False and status["error"] is None
    assert status["finished_at"] >= started["legacy_import"]["started_at"]
    return status["last_report"]


async def test_api_imports_and_reports(client, tmp_path: Path) -> None:
    sample = build_sample_legacy(tmp_path / "src", wal=True)
    body = {"legacy_db_path": str(sample.db.path), "legacy_images_dir": str(sample.images_dir)}
    report = await import_over_http(client, body)
    for key, value in sample.expected.items():
        assert report[key] == value, key
    assert {"legacy_id", "path", "reason"} <= set(report["errors"][0])
    resp = await client.get("/api/migration/status")
    assert resp.status == 200
    status = (await resp.json())["legacy_import"]
    assert status["running"] is False and status["last_report"]["active_models"] == 2
    again = await import_over_http(client, body)
    assert again["already_imported"] == 6 and again["active_models"] == 0


async def test_api_without_images_folder(client, tmp_path: Path) -> None:
    sample = build_sample_legacy(tmp_path / "src")
    report = await import_over_http(client, {"legacy_db_path": str(sample.db.path)})
    assert report["images_encoded"] == 0 and report["warnings"]
    await import_over_http(
        client, {"legacy_db_path": str(sample.db.path), "legacy_images_dir": None}
    )


@pytest.mark.parametrize(
    "body, words",
    [
        ({}, "legacy_db_path is required"),
        ({"legacy_db_path": None}, "legacy_db_path is required"),
        ({"legacy_db_path": 12}, "must be a non-empty string"),
        ({"legacy_db_path": "  "}, "must be a non-empty string"),
        ({"legacy_db_path": ["a"]}, "must be a non-empty string"),
        ({"legacy_db_path": "/no/such/legacy.sqlite3"}, "not found"),
        ({"legacy_db_path": "LEGACY", "legacy_images_dir": 5}, "must be a non-empty string"),
        ({"legacy_db_path": "LEGACY", "legacy_images_dir": "/no/such/dir"}, "not found"),
        ({"legacy_db_path": "LEGACY", "legacy_images_dir": "LEGACY"}, "not a folder"),
    ],
)
async def test_api_400(client, tmp_path: Path, body: dict, words: str) -> None:
    legacy = build_sample_legacy(tmp_path / "src").db.path
    body = {k: str(legacy) if v == "LEGACY" else v for k, v in body.items()}
    svc = client.server.app[SERVICES_KEY]
    before = dump_v3(svc.db)
    resp = await client.post(URL, json=body)
    assert resp.status == 400
    data = await resp.json()
    assert data["error"] and words in data["detail"]
    assert dump_v3(svc.db) == before


@sqlite_only
async def test_api_422_for_a_file_that_is_not_a_legacy_db(client, tmp_path: Path) -> None:
    svc = client.server.app[SERVICES_KEY]
    before = dump_v3(svc.db)
    for content in (b"just text\n" * 10, svc.config.db_path.read_bytes()):  # a v3 DB is not v2
        path = tmp_path / "x.sqlite3"
        path.write_bytes(content)
        resp = await client.post(URL, json={"legacy_db_path": str(path)})
        assert resp.status == 422
        data = await resp.json()
        assert data["error"] == "Not a legacy database" and str(tmp_path) not in data["detail"]
    resp = await client.post(URL, data=b"{bad", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert dump_v3(svc.db) == before


async def test_api_409_while_running_and_progress_visible(client, tmp_path: Path) -> None:
    sample = build_sample_legacy(tmp_path / "src")
    svc: Services = client.server.app[SERVICES_KEY]
    reached, release = threading.Event(), threading.Event()

    def hold(phase: str, done: int, total: int) -> None:
        if phase == "models" and done == 2:
            reached.set()
            release.wait(30)

    first = asyncio.get_running_loop().run_in_executor(
        None,
        lambda: svc.legacy_import.run_blocking(sample.db.path, sample.images_dir, progress=hold),
    )
    try:
        assert await asyncio.to_thread(reached.wait, 30)
        resp = await client.post(URL, json={"legacy_db_path": str(sample.db.path)})
        assert resp.status == 409
        assert "already running" in (await resp.json())["detail"]
        status = (await (await client.get("/api/migration/status")).json())["legacy_import"]
        assert status["running"] is True
        assert status["progress"]["phase"] == "models" and status["progress"]["done"] == 2
        assert status["progress"]["total"] == 6
        resp = await client.get("/api/health")  # the loop is free meanwhile
        assert resp.status == 200
    finally:
        release.set()
        report = await first
    assert report["active_models"] == 2


# ------------------------------------------------------------------------- job


@sqlite_only
def test_job_refuses_a_second_process(services: Services, tmp_path: Path) -> None:
    import fcntl

    sample = build_sample_legacy(tmp_path / "src")
    lock = os.open(f"{services.db.path}.legacy-import.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process holds it (flock is per open file)
        with pytest.raises(ConflictError):
            services.legacy_import.run_blocking(sample.db.path, sample.images_dir)
        assert services.db.pending.count() == 0
    finally:
        os.close(lock)
    report = services.legacy_import.run_blocking(sample.db.path, sample.images_dir)
    assert report["pending_models"] == 3


def test_last_report_survives_a_restart(config, tmp_path: Path) -> None:
    sample = build_sample_legacy(tmp_path / "src")
    first = Services.open(config)
    try:
        report = first.legacy_import.run_blocking(sample.db.path, sample.images_dir)
    finally:
        first.close()
    second = Services.open(config)
    try:
        status = second.legacy_import.status()
        assert status["running"] is False and status["last_report"] == report
    finally:
        second.close()


# ------------------------------------------------------------------------- CLI


def test_cli_json_report_and_rerun(tmp_path: Path) -> None:
    sample = build_sample_legacy(tmp_path / "src", wal=True)
    data = tmp_path / "data"
    args = ["migrate-legacy", str(sample.db.path), "--images", str(sample.images_dir)]
    proc = run_cli(*args, "--data-dir", str(data), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    for key, value in sample.expected.items():
        assert report[key] == value, key
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal
    proc = run_cli(*args, "--data-dir", str(data))
    assert proc.returncode == 0, proc.stderr
    assert "already imported: 6" in proc.stdout and "Imported" in proc.stdout


@pytest.mark.parametrize("target", ["missing", "text"])
def test_cli_fatal_errors_are_one_line(tmp_path: Path, target: str) -> None:
    path = tmp_path / "legacy.sqlite3"
    if target == "text":
        path.write_text("not sqlite")
    proc = run_cli("migrate-legacy", str(path), "--data-dir", str(tmp_path / "data"))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hikaze-mm: error:")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_cli_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    import pty

    sample = build_sample_legacy(tmp_path / "src")
    leader, follower = pty.openpty()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hikaze_mm",
            "migrate-legacy",
            str(sample.db.path),
            "--images",
            str(sample.images_dir),
            "--data-dir",
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=cli_env(),
        timeout=120,
        cwd=str(REPO),
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.returncode == 0
    assert "importing models" in b"".join(chunks).decode(errors="replace")
