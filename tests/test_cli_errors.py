"""Every mistake a new user can make on the command line: one line (``hikaze-mm: error:``),
exit 2 for usage errors and 1 for failures, nothing created or changed, never a traceback.
All real subprocesses over real folders."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hikaze_mm.config import Config
from hikaze_mm.services import Services
from tests.helpers import cli_env, run_cli, write_model
from tests.legacy_fixtures import build_sample_legacy

MAX_INT = 2**63 - 1


def run_in(cwd: Path, *args: str, env_extra: dict[str, str] | None = None):
    """``python -m hikaze_mm ARGS`` in ``cwd`` (where ``./data`` is the default library)."""
    return subprocess.run(
        [sys.executable, "-m", "hikaze_mm", *args],
        capture_output=True,
        text=True,
        env=cli_env(env_extra),
        cwd=str(cwd),
        timeout=120,
    )


def one_line_error(proc: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The single error line of a failed run (exit ``code``), containing ``words``."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hikaze-mm: error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def make_library(data: Path, root: Path | None = None) -> None:
    roots = [str(root)] if root else []
    Services.open(Config.load(data_dir=data, model_roots=roots, env={})).close()


# ------------------------------------------------------------------ integers and options
@pytest.mark.parametrize(
    "args",
    [
        ["promote", "99999999999999999999999"],
        ["promote", "--", "-1"],
        ["list", "--offset", "9999999999999999999999"],
        ["list", "--limit", str(MAX_INT + 1)],
        ["list", "--limit", "-1"],
        ["list", "--offset", "ten"],
        ["serve", "--port", "65536"],
    ],
)
def test_integers_are_bounded_where_parsed(tmp_path: Path, args: list[str]) -> None:
    data = tmp_path / "data"
    proc = run_cli(*args, "--data-dir", str(data))
    line = one_line_error(proc, 2, "must be an integer")
    if "99999999999999999999999" in args or "9999999999999999999999" in args:
        assert f"from 0 to {MAX_INT}" in line
    assert not data.exists()


def test_strategy_without_immediate_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    proc = run_cli(
        "scan", "--data-dir", str(tmp_path / "d"), "--models-root", str(root), "--strategy", "merge"
    )
    one_line_error(proc, 2, "--strategy", "--immediate")
    assert not (tmp_path / "d").exists()


def test_no_command_and_unknown_command(tmp_path: Path) -> None:
    one_line_error(run_in(tmp_path), 2, "no command")
    one_line_error(run_in(tmp_path, "bogus"), 2, "invalid choice")
    assert list(tmp_path.iterdir()) == []


def test_options_before_the_command_count(tmp_path: Path) -> None:
    data = tmp_path / "lib"
    make_library(data)
    proc = run_cli("--data-dir", str(data), "status", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "IDLE"


# ------------------------------------------------------------------ serve
def test_serve_on_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_cli("serve", "--data-dir", str(tmp_path / "d"), "--port", str(port))
    one_line_error(proc, 1, f"127.0.0.1:{port}", "in use")
    assert "Serving on" not in proc.stdout
    assert not (tmp_path / "d").exists()


def test_serve_on_a_host_that_does_not_resolve(tmp_path: Path) -> None:
    proc = run_cli(
        "serve", "--data-dir", str(tmp_path / "d"), "--host", "no-such-host.invalid", "--port", "0"
    )
    one_line_error(proc, 1, "no-such-host.invalid")
    assert "Serving on" not in proc.stdout
    assert not (tmp_path / "d").exists()


def test_hikaze_port_is_checked_only_by_serve(tmp_path: Path) -> None:
    data = tmp_path / "lib"
    make_library(data)
    env = {"HIKAZE_PORT": "abc"}
    proc = run_cli("serve", "--data-dir", str(data), env_extra=env)
    one_line_error(proc, 2, "HIKAZE_PORT", "'abc'")
    assert "Serving on" not in proc.stdout
    for args in (["list"], ["status"]):
        proc = run_cli(*args, "--data-dir", str(data), env_extra=env)
        assert proc.returncode == 0, proc.stderr
    proc = run_cli("serve", "--data-dir", str(data), env_extra={"HIKAZE_PORT": "70000"})
    one_line_error(proc, 2, "HIKAZE_PORT", "70000")


# ------------------------------------------------------------------ scan roots and counts
def test_scan_of_a_root_that_does_not_exist(tmp_path: Path) -> None:
    data, missing = tmp_path / "d", tmp_path / "no-such-models"
    proc = run_cli("scan", "--data-dir", str(data), "--models-root", str(missing))
    one_line_error(proc, 1, "does not exist", str(missing))
    assert "vanished" not in proc.stderr
    assert not data.exists()
    a_file = tmp_path / "file.bin"
    a_file.write_bytes(b"x")
    proc = run_cli("scan", "--data-dir", str(data), "--models-root", f"loras={a_file}")
    one_line_error(proc, 1, "not a folder")
    assert not data.exists()


@pytest.mark.parametrize(
    ("spec", "words"),
    [("loras=", ("no folder after '='",)), ("=/tmp", ("no type before '='",))],
)
def test_malformed_roots_are_refused(tmp_path: Path, spec: str, words: tuple[str, ...]) -> None:
    data = tmp_path / "d"
    proc = run_cli("scan", "--data-dir", str(data), "--models-root", spec)
    one_line_error(proc, 2, "--models-root", *words)
    proc = run_cli("scan", "--data-dir", str(data), env_extra={"HIKAZE_MODEL_ROOTS": spec})
    one_line_error(proc, 2, "HIKAZE_MODEL_ROOTS", *words)
    assert not data.exists()


def test_counts_are_pluralized(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_model(root / "loras" / "one.safetensors", 10)
    os.symlink(root / "nowhere.pt", root / "loras" / "dead.pt")
    proc = run_cli("scan", "--data-dir", str(tmp_path / "d"), "--models-root", str(root))
    assert proc.returncode == 0, proc.stderr
    summary = proc.stdout.splitlines()[0]
    assert summary.startswith("scanned 1 file in ")
    assert "1 problem" in summary and "problems" not in summary
    assert "0 duplicates" in summary
    proc = run_cli("list", "--data-dir", str(tmp_path / "d"))
    assert proc.stderr.strip() == "0 of 0 models"


# ------------------------------------------------------------------ nothing is created
def test_read_only_commands_and_failures_create_no_library(tmp_path: Path) -> None:
    model = tmp_path / "m.bin"
    sha = write_model(model, 1000)
    for args in (
        ["status"],
        ["list"],
        ["status", "--json"],
        ["promote", "--all"],
        ["promote", "1"],
    ):
        proc = run_in(tmp_path, *args)
        if "--json" in args:
            assert proc.returncode == 1 and json.loads(proc.stdout)["error"] == "No library"
        else:
            one_line_error(proc, 1, "no library in", str(tmp_path / "data"))
    proc = run_in(tmp_path, "hash", "--json", str(model))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sha256"] == sha
    proc = run_in(tmp_path, "migrate-legacy", "/nonexistent.db")
    one_line_error(proc, 1, "/nonexistent.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]


def test_migrate_legacy_checks_its_input_first(tmp_path: Path) -> None:
    data = tmp_path / "data"
    text = tmp_path / "notes.sqlite3"
    text.write_text("not a database")
    one_line_error(run_cli("migrate-legacy", str(text), "--data-dir", str(data)), 1, "notes")
    sample = build_sample_legacy(tmp_path / "src")
    images = str(tmp_path / "nope")
    proc = run_cli(
        "migrate-legacy", str(sample.db.path), "--images", images, "--data-dir", str(data)
    )
    one_line_error(proc, 1, "images folder")
    assert not data.exists()


def test_db_path_in_a_missing_folder(tmp_path: Path) -> None:
    root = tmp_path / "models"
    root.mkdir()
    missing = tmp_path / "nowhere" / "deeper"
    db = str(missing / "x.db")
    data = str(tmp_path / "data")
    proc = run_cli("scan", "--data-dir", data, "--db-path", db, "--models-root", str(root))
    one_line_error(proc, 1, "does not exist", str(missing))
    proc = run_cli("serve", "--data-dir", data, "--db-path", db, "--port", "0")
    one_line_error(proc, 1, str(missing))
    assert "Serving on" not in proc.stdout
    one_line_error(run_cli("status", "--data-dir", data, "--db-path", db), 1, "no library")
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "data").exists()
    # Into an existing folder, a library is created there; the data folder beside it.
    (tmp_path / "dbs").mkdir()
    db = str(tmp_path / "dbs" / "x.db")
    proc = run_cli("scan", "--data-dir", data, "--db-path", db, "--models-root", str(root))
    assert proc.returncode == 0, proc.stderr
    assert Path(db).is_file() and (tmp_path / "data" / "images" / "pending").is_dir()


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["list"],
        ["promote", "--all"],
        ["promote", "1"],
        ["scan", "--models-root", "MODELS"],
        ["hash", "MODEL"],
        ["serve", "--port", "0"],
    ],
)
@pytest.mark.parametrize("target", ["folder", "text"])
def test_db_path_that_is_no_database(tmp_path: Path, args: list[str], target: str) -> None:
    root = tmp_path / "models"
    model = root / "m.safetensors"
    write_model(model, 100)
    db = tmp_path / "db"
    if target == "folder":
        db.mkdir()
    else:
        db.write_text("just some text\n" * 10)
    before = db.read_bytes() if target == "text" else None
    args = [str(root) if a == "MODELS" else str(model) if a == "MODEL" else a for a in args]
    data = tmp_path / "data"
    proc = run_cli(*args, "--data-dir", str(data), "--db-path", str(db))
    words = ("is a folder",) if target == "folder" else ("not a library database",)
    one_line_error(proc, 1, *words)
    assert "Serving on" not in proc.stdout
    assert not data.exists()
    if before is not None:
        assert db.read_bytes() == before
    else:
        assert list(db.iterdir()) == []


# ------------------------------------------------------------------ one style
@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["list"],
        ["list", "--limit", "x"],
        ["promote", "--all"],
        ["promote", "99999999999999999999999"],
        ["scan"],
        ["scan", "--strategy", "merge", "--models-root", "."],
        ["hash", "NOFILE"],
        ["migrate-legacy", "NOFILE"],
    ],
)
def test_json_errors_on_stdout(tmp_path: Path, args: list[str]) -> None:
    args = [str(tmp_path / "nofile") if a == "NOFILE" else a for a in args]
    proc = run_cli(*args, "--json", "--data-dir", str(tmp_path / "d"))
    assert proc.returncode in (1, 2), proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    body = json.loads(lines[0])
    assert set(body) >= {"error", "detail"} and body["detail"]
    assert not (tmp_path / "d").exists()


def test_failures_exit_1_and_usage_errors_exit_2(tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    one_line_error(run_cli("promote", "--data-dir", data), 2, "--all")
    one_line_error(run_cli("list", "--sort", "bogus", "--data-dir", data), 2, "invalid choice")
    one_line_error(run_cli("status", "--data-dir", data), 1, "no library")
    one_line_error(run_cli("hash", "--data-dir", data, str(tmp_path / "gone.bin")), 1, "gone.bin")
