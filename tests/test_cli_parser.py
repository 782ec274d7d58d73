"""The parser: help text everywhere, ``--version``, and a start-up that imports nothing
heavy (no timing is asserted here: see bench/cli_startup.py)."""

from __future__ import annotations

import argparse
import subprocess
import sys

from hikaze_mm import __version__
from hikaze_mm.cli import build_parser
from tests.helpers import REPO, cli_env, run_cli

HEAVY = ("aiohttp", "PIL", "asyncio", "sqlite3", "hikaze_mm.services", "hikaze_mm.database")


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def test_every_subcommand_and_argument_has_help() -> None:
    parser = build_parser()
    sub = _subcommands(parser)
    summaries = {action.dest: action.help for action in sub._choices_actions}
    missing = []
    for name, command in sub.choices.items():
        if not summaries.get(name):
            missing.append(f"{name}: no summary in hikaze-mm --help")
        if not command.description:
            missing.append(f"{name}: no description")
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name}: {action.option_strings or action.dest} has no help")
    for action in parser._actions:
        if action is not sub and not action.help:
            missing.append(f"hikaze-mm: {action.option_strings} has no help")
    assert missing == []


def test_version_and_help() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"hikaze-mm {__version__}"
    for args in (["--help"], ["scan", "--help"], ["serve", "-h"]):
        proc = run_cli(*args)
        assert proc.returncode == 0 and proc.stdout.startswith("usage: hikaze-mm"), args
        assert proc.stderr == ""


def test_importing_the_cli_imports_nothing_heavy() -> None:
    probe = f"import sys, hikaze_mm.cli\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env(), cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_help_and_version_import_nothing_heavy() -> None:
    for flag in ("--help", "--version"):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "hikaze_mm", flag],
            capture_output=True,
            text=True,
            env=cli_env(),
            cwd=REPO,
        )
        assert proc.returncode == 0, proc.stderr
        imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
        assert not imported & set(HEAVY), flag
