"""Turning options into a Config and opening the library the way a command needs it.

Imported by the commands when they run (it imports the whole library), never to build
the parser. Every error here is a one-line CliError:

* read-only commands (``status``, ``list``) open the library read-only: nothing is
  created, recovered or locked, and they work beside the process that writes it and in a
  folder that cannot be written;
* write commands open it as the one writer (``Services.open(access="write")``): refused,
  with nothing created, while another process holds the library, or when it is read-only
  or missing (unless the command creates libraries: ``serve``, ``scan``,
  ``migrate-legacy``, which may create the data folder, but not the database's folder).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from hikaze_mm.cli.common import FAILURE, USAGE, CliError
from hikaze_mm.config import Config
from hikaze_mm.errors import HikazeError, ValidationError
from hikaze_mm.process_lock import LockOwner, ProcessLock
from hikaze_mm.services import LibraryBusyError, Services


def config_from_args(args: argparse.Namespace, *, serving: bool = False) -> Config:
    """The Config of these options; ``serving`` reads the address (``HIKAZE_HOST``,
    ``HIKAZE_PORT``), which only ``serve`` uses, so a bad one stops no other command."""
    try:
        return Config.load(
            data_dir=getattr(args, "data_dir", None),
            db_path=getattr(args, "db_path", None),
            database_url=getattr(args, "db_url", None),
            model_roots=getattr(args, "models_root", None),
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            address_from_env=serving,
            watch="off" if getattr(args, "no_watch", False) else None,
            rescan_interval=getattr(args, "rescan_interval", None),
        )
    except ValueError as exc:
        raise CliError(f"bad configuration: {exc}", USAGE) from None


def as_cli_error(exc: HikazeError) -> CliError:
    """A service error as a CliError: bad input is a usage error, the rest failures."""
    code = USAGE if isinstance(exc, ValidationError) else FAILURE
    return CliError(exc.detail, code, exc.error)


def holder(config: Config) -> LockOwner | None:
    """The live process that holds the library's lock, as its lock file says (read only)."""
    return ProcessLock(config.lock_path).owner()


def busy_error(exc: LibraryBusyError, advice: str) -> CliError:
    return CliError(f"{exc.detail}: {advice}", FAILURE, exc.error)


def advice_for(owner: LockOwner | None, task: str) -> str:
    """What to do when ``owner`` holds the library and we wanted to do ``task``."""
    if owner is not None and owner.address:
        return f"{task} through that server (web UI or API), or stop it first"
    return "wait for it to finish or stop it, then run this again"


def open_reader(config: Config) -> Services:
    try:
        return Services.open(config, access="read")
    except HikazeError as exc:
        raise as_cli_error(exc) from None
    except OSError as exc:
        raise CliError(f"cannot open the library: {exc}", FAILURE) from None


def open_writer(config: Config, command: str, *, create: bool, task: str) -> Services:
    """The library for a command that writes; ``task`` completes the busy message
    ("scan", "import", ...)."""
    try:
        return Services.open(config, access="write", create=create, command=command)
    except LibraryBusyError as exc:
        raise busy_error(exc, advice_for(exc.owner, task)) from None
    except HikazeError as exc:
        raise as_cli_error(exc) from None
    except OSError as exc:
        raise CliError(f"cannot open the library: {exc}", FAILURE) from None


@contextmanager
def service_errors() -> Iterator[None]:
    """Service errors inside the block become one-line CliErrors."""
    try:
        yield
    except HikazeError as exc:
        raise as_cli_error(exc) from None


@contextmanager
def using(services: Services) -> Iterator[Services]:
    """``services`` for one command: service errors become CliErrors, and the services
    close however the command ends."""
    try:
        with service_errors():
            yield services
    finally:
        services.close()
