"""The ``hikaze-mm`` command. Each subcommand lives in its own module with a ``register``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hikaze_mm import __version__
from hikaze_mm.cli import hash as hash_cmd
from hikaze_mm.cli import library, migrate, promote, serve
from hikaze_mm.cli.common import CliError

COMMANDS = (serve, migrate, promote, library, hash_cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hikaze-mm",
        description="Hikaze Model Manager: models identified by the SHA-256 of their content.",
    )
    parser.add_argument("--version", action="version", version=f"hikaze-mm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"hikaze-mm: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("hikaze-mm: interrupted", file=sys.stderr)
        return 130
