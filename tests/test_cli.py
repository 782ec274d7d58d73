"""The console script, run as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from hikaze_mm.config import Config
from hikaze_mm.services import Services
from tests.helpers import run_cli, write_model
from tests.legacy_fixtures import build_sample_legacy


def test_hash_command_and_env_data_dir(tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    sha = write_model(model, 12345)
    data = tmp_path / "envdata"
    Services.open(Config.load(data_dir=data, env={})).close()
    proc = run_cli("hash", "--json", str(model), env_extra={"HIKAZE_DATA_DIR": str(data)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["sha256"] == sha and out["autov2"] == sha[:10] and out["cached"] is False
    again = json.loads(run_cli("hash", "--json", "--data-dir", str(data), str(model)).stdout)
    assert again["cached"] is True


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    proc = run_cli("hash", "--data-dir", str(tmp_path / "d"), str(tmp_path / "missing.bin"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("hikaze-mm: error: ") and "missing.bin" in proc.stderr
    proc = run_cli("bogus")
    assert proc.returncode == 2


def test_a_library_from_a_newer_release_is_one_line_for_every_command(tmp_path: Path) -> None:
    import sqlite3

    data = tmp_path / "newer"
    data.mkdir()
    with sqlite3.connect(data / "hikaze_mm.db") as conn:
        conn.execute("PRAGMA user_version = 999")
    before = (data / "hikaze_mm.db").read_bytes()
    model = tmp_path / "m.bin"
    write_model(model, 10)
    legacy = build_sample_legacy(tmp_path / "src")
    for args in (
        ["status"],
        ["list"],
        ["hash", str(model)],
        ["migrate-legacy", str(legacy.db.path)],
        ["scan", "--models-root", str(tmp_path)],
        ["promote", "--all"],
    ):
        proc = run_cli(*args, "--data-dir", str(data))
        assert proc.returncode == 1, (args, proc.stderr)
        assert "cannot open the library" in proc.stderr and "Traceback" not in proc.stderr
        assert "Upgrade Hikaze Model Manager" in proc.stderr
        assert proc.stderr.count("\n") == 1
    assert sorted(p.name for p in data.iterdir()) == ["hikaze_mm.db"]
    assert (data / "hikaze_mm.db").read_bytes() == before
