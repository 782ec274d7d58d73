"""The ``hikaze-mm`` command. Each subcommand lives in its own module with a ``register``.

Building the parser imports nothing heavy (``--help`` and ``--version`` start fast): the
commands import the library, aiohttp and Pillow when they run. Every error ends as one
line, ``hikaze-mm: error: ...`` on stderr (or ``{"error", "detail"}`` on stdout with
``--json``), exit status 2 for a usage error and 1 for a failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from hikaze_mm import __version__
from hikaze_mm.cli import (
    catalog,
    civitai,
    download,
    library,
    migrate,
    organize,
    probe,
    promote,
    serve,
    updates,
)
from hikaze_mm.cli import hash as hash_cmd
from hikaze_mm.cli.common import (
    FAILURE,
    USAGE,
    ArgumentParser,
    CliError,
    add_config_options,
    report_error,
)

COMMANDS = (
    serve,
    migrate,
    promote,
    library,
    hash_cmd,
    civitai,
    probe,
    organize,
    download,
    updates,
    catalog,
)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="hikaze-mm",
        description="Hikaze Model Manager: models identified by the SHA-256 of their content.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"hikaze-mm {__version__}",
        help="print the version and exit",
    )
    add_config_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether ``--json`` was asked for (read from the words: the parse may have failed)."""
    words = list(argv)
    end = words.index("--") if "--" in words else len(words)
    return "--json" in words[:end]


def _unexpected(exc: BaseException) -> CliError:
    """A failure no command turned into a CliError, still as one line."""
    from hikaze_mm.errors import HikazeError

    if isinstance(exc, HikazeError):
        from hikaze_mm.cli.context import as_cli_error

        return as_cli_error(exc)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return CliError(f"{where}{exc.strerror or exc}", FAILURE)
    return CliError(f"unexpected {type(exc).__name__}: {exc}", FAILURE, "Internal error")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = _wants_json(argv)
    try:
        args = build_parser().parse_args(argv)
        as_json = bool(getattr(args, "json", False))
        if not getattr(args, "func", None):
            raise CliError("no command given (see hikaze-mm --help)", USAGE)
        return int(args.func(args) or 0)
    except CliError as exc:
        report_error(exc, as_json=as_json)
        return exc.code
    except KeyboardInterrupt:
        print("hikaze-mm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``hikaze-mm list | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return FAILURE
    except Exception as exc:
        error = _unexpected(exc)
        report_error(error, as_json=as_json)
        return error.code
