"""The one job model: every background job in one registry, listed with the same fields
(``GET /api/jobs``), and closed together; a Stage 1 import stopped in the middle (by
``Services.close()`` or SIGINT to ``hikaze-mm serve``) resumes without importing anything
twice."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from hikaze_mm.config import Config
from hikaze_mm.database import open_library
from hikaze_mm.jobs import JobCancelled, JobControl
from hikaze_mm.services import Services
from tests.conftest import on_each_backend
from tests.helpers import run_cli, server_json, start_server, write_model
from tests.legacy_fixtures import (
    build_legacy,
    import_into,
)
from tests.waiting import wait_until, wait_until_async

JOBS = [
    "scan",
    "legacy-import",
    "migration",
    "probe",
    "civitai",
    "updates",
    "search-index",
    "autov3",
]
FIELDS = {"name", "running", "progress", "started_at", "finished_at", "error", "last_report"}


config = on_each_backend()


def library_counts(config: Config) -> dict[str, int]:
    """Rows of the library's main tables, read through a read-only open (either backend)."""
    library = open_library(config, read_only=True)
    try:
        if library.dialect.name == "sqlite":
            assert library.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {
            table: int(library.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("models", "legacy_import_models", "model_tags")
        }
    finally:
        library.close()


# ---------------------------------------------------------------- GET /api/jobs
async def test_every_job_is_listed_with_the_same_fields(client) -> None:
    resp = await client.get("/api/jobs")
    assert resp.status == 200
    jobs = (await resp.json())["jobs"]
    assert [job["name"] for job in jobs] == JOBS
    for job in jobs:
        assert set(job) == FIELDS
        assert set(job["progress"]) == {"done", "total", "unit", "phase"}
        assert job["running"] is False


async def test_an_unknown_job_is_a_404(client) -> None:
    resp = await client.get("/api/jobs/nope")
    assert resp.status == 404
    body = await resp.json()
    assert body["error"] == "Not found" and "'nope'" in body["detail"] and "scan" in body["detail"]


async def test_a_finished_scan_shows_its_report_and_progress(client, models_root: Path) -> None:
    write_model(models_root / "loras" / "a.safetensors", 3000, seed=1)
    write_model(models_root / "loras" / "b.safetensors", 3000, seed=2)
    assert (await client.post("/api/scan", json={})).status == 202
    job = await wait_until_async(
        lambda: _json(client.get("/api/jobs/scan")),
        lambda j: not j["running"] and j["finished_at"] is not None,
        message="the scan job to end",
    )
    assert job["error"] is None
    assert job["progress"] == {"done": 2, "total": 2, "unit": "files", "phase": "done"}
    assert job["last_report"]["counts"]["new"] == 2
    scan_status = await (await client.get("/api/scan/status")).json()
    assert scan_status["last_report"] == job["last_report"]  # the old route is unchanged


async def test_a_run_is_followed_after_another_has_started(client, models_root: Path) -> None:
    """The CLI follows its own run: ``?started_at=`` finds a run that is no longer the
    job's last one, with the progress and report it ended with; a forgotten one is a 404."""
    write_model(models_root / "a.safetensors", 3000, seed=1)
    first = await (await client.post("/api/scan", json={})).json()

    def ended(job: dict[str, Any]) -> bool:
        return not job["running"]

    await wait_until_async(lambda: _json(client.get("/api/jobs/scan")), ended)
    write_model(models_root / "b.safetensors", 3000, seed=2)
    write_model(models_root / "c.safetensors", 3000, seed=3)
    second = await (await client.post("/api/scan", json={})).json()
    last = await wait_until_async(lambda: _json(client.get("/api/jobs/scan")), ended)
    assert last["started_at"] == second["started_at"] != first["started_at"]
    assert last["last_report"]["counts"]["new"] == 2
    mine = await _json(client.get(f"/api/jobs/scan?started_at={first['started_at']}"))
    assert mine["started_at"] == first["started_at"] and not mine["running"]
    assert mine["last_report"]["counts"]["new"] == 1
    assert mine["progress"] == {"done": 1, "total": 1, "unit": "files", "phase": "done"}
    for bad, status in (("1", 404), ("soon", 400), ("-5", 400)):
        resp = await client.get(f"/api/jobs/scan?started_at={bad}")
        assert resp.status == status
        assert set(await resp.json()) == {"error", "detail"}


# ---------------------------------------------------------------- Stage 1 stopped
def test_a_cancelled_stage_1_stops_between_rows_and_resumes(services: Services, tmp_path) -> None:
    legacy, images = build_legacy(tmp_path / "src", 150)
    control = JobControl()

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "models" and done == 70:
            control.cancel()

    with pytest.raises(JobCancelled):
        import_into(services, legacy, images, progress=progress, control=control)
    first = library_counts(services.config)
    # The models in flight were finished: every committed model is whole, and some are left.
    assert 70 <= first["legacy_import_models"] < 150
    assert first["models"] == first["legacy_import_models"]
    assert not services.config.legacy_work_dir.exists()  # the private copy is gone

    report = import_into(services, legacy, images)
    assert report.already_imported == first["legacy_import_models"]
    assert library_counts(services.config) == {
        "models": 150,
        "legacy_import_models": 150,
        "model_tags": 150,
    }
    assert len(list(services.config.images_dir.glob("*_high.webp"))) == 150  # one each


def test_closing_the_services_cancels_a_background_stage_1(config: Config, tmp_path) -> None:
    legacy, images = build_legacy(tmp_path / "src", 200)
    services = Services.open(config)
    try:
        services.legacy_import.start(legacy, images)
        job = services.jobs.get("legacy-import")
        wait_until(
            job.snapshot, lambda s: s["progress"]["phase"] == "models" and s["progress"]["done"]
        )
    finally:
        services.close()
    assert job.current is not None and job.current.error == "cancelled"
    assert not job.running
    done = library_counts(config)["legacy_import_models"]
    assert 0 < done < 200, "the import was not interrupted"
    again = Services.open(config)
    try:
        report = again.legacy_import.run_blocking(legacy, images)
    finally:
        again.close()
    assert report["already_imported"] == done
    assert library_counts(config)["models"] == 200


def test_sigint_to_serve_during_a_background_stage_1(tmp_path: Path) -> None:
    legacy, images = build_legacy(tmp_path / "src", 400)
    data = tmp_path / "data"
    server = start_server(data, tmp_path)
    try:
        body = {"legacy_db_path": str(legacy), "legacy_images_dir": str(images)}
        started = server_json(server, "api/migration/migrate_legacy_db", body)
        assert started["legacy_import"]["running"] is True
        wait_until(
            lambda: server_json(server, "api/jobs/legacy-import")["progress"],
            lambda p: p["phase"] == "models" and p["done"] > 0,
            message="Stage 1 to import its first models",
        )
        server.proc.send_signal(signal.SIGINT)
        # The requirement (serve stops within 10 s of Ctrl-C), not a speed claim:
        # a shutdown that waited for the whole import would take far longer.
        assert server.proc.wait(timeout=10) == 0, server.stdout.read_text()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()
    done = library_counts(Config.load(data_dir=data, env={}))["legacy_import_models"]
    assert 0 < done < 400, "the import was not interrupted"

    again = run_cli(
        "migrate-legacy", str(legacy), "--images", str(images), "--data-dir", str(data), "--json"
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["already_imported"] == done
    assert library_counts(Config.load(data_dir=data, env={})) == {
        "models": 400,
        "legacy_import_models": 400,
        "model_tags": 400,
    }


async def _json(response: Any) -> Any:
    return await (await response).json()
