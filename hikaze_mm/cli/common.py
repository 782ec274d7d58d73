"""What every subcommand shares: the error type, the argument parser, option helpers.

This module is imported to build the parser (``hikaze-mm --help``), so it imports nothing
heavy: the library, aiohttp, Pillow and asyncio are imported by the commands that run
(``hikaze_mm.cli.context`` opens libraries). Strategies and limits come from
``hikaze_mm.policy``, which imports nothing.
"""

from __future__ import annotations

import argparse
import json
import sys

from hikaze_mm.policy import MAX_INT

USAGE = 2  # exit status of a usage error (bad arguments or configuration)
FAILURE = 1  # exit status of a command that could not do its work


class CliError(Exception):
    """A user mistake or a failure: printed as one line (or one JSON object with
    ``--json``), exit status ``code`` (2 for usage errors, 1 for failures)."""

    def __init__(self, message: str, code: int = USAGE, error: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.error = error or ("Usage error" if code == USAGE else "Failed")

    @property
    def detail(self) -> str:
        return str(self)


def report_error(exc: CliError, *, as_json: bool) -> None:
    """``hikaze-mm: error: ...`` on stderr, or ``{"error", "detail"}`` on stdout."""
    if as_json:
        print(json.dumps({"error": exc.error, "detail": exc.detail}, ensure_ascii=False))
    else:
        detail = " ".join(exc.detail.split())  # one line, whatever the message held
        print(f"hikaze-mm: error: {detail}", file=sys.stderr)


def note(message: str) -> None:
    """A remark that is no error (on stderr, so --json output stays clean)."""
    print(f"hikaze-mm: {message}", file=sys.stderr, flush=True)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error raises CliError (one line, exit 2) instead of printing
    the usage and exiting; the subcommands' parsers are of this class too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{message} (see {self.prog} --help)", USAGE)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``; ``many`` for irregular plurals."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def bounded_int(name: str, minimum: int = 0, maximum: int = MAX_INT):
    """An argparse ``type``: a plain integer in [minimum, maximum] (SQLite's range by
    default), else a usage error that says so (argparse prefixes the argument's name)."""

    def parse(text: str) -> int:
        digits = text.strip()
        body = digits[1:] if digits[:1] in "+-" else digits
        if not (body.isascii() and body.isdigit()):
            raise argparse.ArgumentTypeError(f"must be an integer, not {text!r:.40}")
        value = int(digits)
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(
                f"must be an integer from {minimum} to {maximum}, not {text:.40}"
            )
        return value

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--data-dir``, ``--db-path``, ``--db-url`` and ``--models-root``: on the main
    parser (before the command) and on each command's (after it). Unset options stay out
    of the namespace, so a command's parser never hides a value given before the command."""
    group = parser.add_argument_group("data and models")
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="data folder (default ./data, or $HIKAZE_DATA_DIR)",
    )
    group.add_argument(
        "--db-path",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="library database (default <data>/hikaze_mm.db, or $HIKAZE_DB_PATH); "
        "its folder must exist",
    )
    group.add_argument(
        "--db-url",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="a library on a database server instead of the file: postgresql://user@host/db "
        '(or $HIKAZE_DB_URL; needs pip install "hikaze-mm[postgres]")',
    )
    group.add_argument(
        "--models-root",
        action="append",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="a model root; repeat for several (or $HIKAZE_MODEL_ROOTS). "
        "TYPE=DIR gives every file below DIR that type",
    )


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help=f"print {what} as JSON on stdout (errors too, as {{error, detail}})",
    )
