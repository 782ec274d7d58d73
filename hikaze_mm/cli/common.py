"""Options shared by every subcommand, and turning them into a Config."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from hikaze_mm.config import Config
from hikaze_mm.database import SchemaTooNewError
from hikaze_mm.errors import HikazeError
from hikaze_mm.services import Services


class CliError(Exception):
    """A user mistake or fatal condition: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def add_config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data and models")
    group.add_argument("--data-dir", help="data folder (default ./data, or $HIKAZE_DATA_DIR)")
    group.add_argument("--db-path", help="library database (default <data>/hikaze_mm.db)")
    group.add_argument(
        "--models-root",
        action="append",
        metavar="DIR",
        help="a model root; repeat for several (or $HIKAZE_MODEL_ROOTS). "
        "TYPE=DIR gives every file below DIR that type",
    )


def config_from_args(args: argparse.Namespace, **extra: object) -> Config:
    try:
        return Config.load(
            data_dir=getattr(args, "data_dir", None),
            db_path=getattr(args, "db_path", None),
            model_roots=getattr(args, "models_root", None),
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            **extra,
        )
    except ValueError as exc:
        raise CliError(f"bad configuration: {exc}") from exc


def open_library(config: Config) -> Services:
    """Open the library's services, or a one-line CliError if it cannot be opened."""
    try:
        return Services.open(config)
    except (OSError, SchemaTooNewError) as exc:
        raise CliError(f"cannot open the library: {exc}") from None


@contextmanager
def open_services(config: Config, *, error_code: int = 2) -> Iterator[Services]:
    """The services for one command: a service error becomes a one-line CliError (exit
    ``error_code``), and the services close however the command ends."""
    services = open_library(config)
    try:
        yield services
    except HikazeError as exc:
        raise CliError(exc.detail, code=error_code) from None
    finally:
        services.close()
