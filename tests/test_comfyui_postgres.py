"""Our package in a real ComfyUI with the library on PostgreSQL (``HIKAZE_DB_URL`` naming a
database of the test cluster): the loaders run on it, and a server that cannot be reached
never holds ComfyUI's start-up nor stops it (our routes answer 503 with the reason, without
the URL's password).

Each test starts its own ComfyUI; they run only with ``COMFYUI_DIR`` and
``COMFYUI_PYTHON`` set (see ``tests/comfyui_harness.py``) and that Python needs the
``postgres`` extra (psycopg, psycopg-pool)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.comfyui_fixtures import ModelFixtures, check_lora_applied
from tests.comfyui_harness import ComfyBase, ComfyEnv, ComfyUI, unique
from tests.test_comfy_postgres import SECRET, with_password
from tests.test_comfyui_lifecycle import broken_checks
from tests.test_comfyui_real import (
    ckpt_payload,
    hikaze_workflow,
    lora_payload,
    saved_file,
    sha256_of,
)
from tests.waiting import wait_until


@pytest.fixture
def base(comfyui_env: ComfyEnv, tmp_path: Path) -> ComfyBase:
    return ComfyBase(tmp_path)


@pytest.fixture
def blackhole() -> Iterator[socket.socket]:
    """A port that takes connections and never answers; closing it resets them."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def library_rows(url: str) -> dict[str, int]:
    """sha256 -> use count of the models in the PostgreSQL library at ``url``."""
    import psycopg

    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT sha256, use_count FROM models").fetchall())


def test_the_loaders_run_on_a_postgresql_library(
    comfyui_env: ComfyEnv, comfyui_models: ModelFixtures, base: ComfyBase, pg_url: str
) -> None:
    tag = unique("pg")
    ckpt = base.place(comfyui_models.checkpoint, "checkpoints", f"{tag}.safetensors", tag=tag)
    lora = base.place(comfyui_models.lora, "loras", f"{tag}_lora.safetensors", extra=True, tag=tag)
    extra_env = {"HIKAZE_DB_URL": with_password(pg_url)}
    with ComfyUI(comfyui_env, base, extra_env=extra_env) as server:
        ckpt_item = server.wait_for_model(ckpt)  # the start-up scan, into PostgreSQL
        lora_item = server.wait_for_model(lora)
        assert ckpt_item["sha256"] == sha256_of(ckpt)
        prefix = "checkpoints/" + unique("pg")
        workflow = hikaze_workflow(
            ckpt_payload(ckpt_item, ckpt), lora_payload(lora_item, lora, 0.8, 0.5), prefix
        )
        server.run_prompt(workflow)
        check_lora_applied(saved_file(server, prefix), comfyui_models, 0.8)
        health = server.api("GET", "/health")
        assert health.status == 200 and SECRET not in json.dumps(health.json())
        rows = library_rows(pg_url)
        assert rows[ckpt_item["sha256"]] == 1 and rows[lora_item["sha256"]] == 1  # used once
    log = server.log_text()
    assert "Hikaze Model Manager: postgresql://postgres:***@/" in log, server.log_tail()
    assert "(opening in the background)" in log and "the library is open" in log
    assert SECRET not in log and "Hikaze Model Manager is unavailable" not in log


def test_a_server_that_cannot_be_reached_never_stops_comfyui(
    comfyui_env: ComfyEnv, base: ComfyBase, blackhole: socket.socket
) -> None:
    port = blackhole.getsockname()[1]
    extra_env = {"HIKAZE_DB_URL": f"postgresql://bob:{SECRET}@127.0.0.1:{port}/lib"}
    with ComfyUI(comfyui_env, base, extra_env=extra_env) as server:
        # ComfyUI answers while the connection waits (or has timed out, on a slow start).
        first = server.api("GET", "/health")
        assert first.status == 503, first
        detail = first.json()["detail"]
        assert "still opening" in detail or "cannot reach the library" in detail, detail
        blackhole.close()  # the server goes away: the attempt ends with its reason

        def reason() -> str:
            answer = server.api("GET", "/health")
            assert answer.status == 503, answer
            return answer.json()["detail"]

        detail = wait_until(reason, lambda d: "still opening" not in d, message="the reason")
        assert "cannot reach the library at postgresql://bob:***@127.0.0.1" in detail
        broken_checks(server, "cannot reach the library")
        assert SECRET not in server.log_text()
