"""A long-running server keeps a bounded number of open files: every job thread (scans,
Stage 2 runs and their per-pass promotion threads) releases its SQLite connection."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from hikaze_mm.services import Services

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="counts descriptors through /proc"
)

RUNS = 200


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_200_scans_and_200_promotions_keep_descriptors_bounded(
    services: Services, models_root: Path
) -> None:
    def one_round(n: int) -> None:
        (models_root / f"model_{n:03d}.safetensors").write_bytes(os.urandom(64) + bytes([n % 256]))
        services.scanner.start()
        assert services.scanner.wait(30)
        services.migration.start_full_migration()
        assert services.migration.wait(30)

    for n in range(3):  # warm up: the hashing pool's threads open their connections once
        one_round(n)
    fds, connections = open_fds(), services.db.open_connections()
    for n in range(3, 3 + RUNS):
        one_round(n)
    assert services.scanner.status()["last_report"]["counts"]["new"] == 1
    status = services.migration.get_status()
    assert status["status"] == "COMPLETED"
    assert services.db.pending.count() == 0
    assert len(services.db.listing.all_sha256s()) == 3 + RUNS
    # 200 scans and 200 runs started 400+ job threads and 200+ promotion threads.
    assert services.db.open_connections() <= connections + 1
    assert open_fds() <= fds + 4, sys.platform
