"""``hikaze-mm promote`` and ``hikaze-mm status``: Stage 2 from the command line.

* ``promote --all``: run the background worker in the foreground (resuming a run that
  was interrupted), with a bytes/s and ETA bar; Ctrl+C stops it resumably. While a server
  holds the library, the run is started (or resumed) in the server and followed here.
* ``promote ID...``: promote those pending models one by one; ``--strategy`` decides what
  happens when the content is already in the library (without it, a conflict is
  reported and the item stays pending). Refused while another process holds the library.
* ``status``: the migration state and the pending counts (asked of the server that holds
  the library, if one does; otherwise read from the library, read-only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hikaze_mm.cli.common import (
    CliError,
    add_config_options,
    add_json_option,
    bounded_int,
    plural,
)
from hikaze_mm.cli.progress import ByteProgress
from hikaze_mm.policy import STRATEGY_FIELD, WORKER_STRATEGIES

MIGRATION_STATUS = "/api/migration/status"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "promote",
        help="hash pending models and move them into the library",
        description="Hash pending models and promote them into the active library. While a "
        "server holds the library, --all runs there and is followed here; promoting IDs is "
        "refused (use the server's Pending review page).",
    )
    add_config_options(p)
    p.add_argument("--all", action="store_true", help="every pending model not done yet")
    p.add_argument(
        "ids",
        nargs="*",
        type=bounded_int("a pending ID"),
        default=[],
        metavar="ID",
        help="pending ids (see GET /api/migration/pending)",
    )
    p.add_argument(
        "--strategy",
        dest="conf_strategy",
        choices=WORKER_STRATEGIES,  # the API strategies plus "skip"
        help="on a conflict: override, merge or delete (with --all also skip; "
        "default for --all: the configured worker policy, merge)",
    )
    add_json_option(p, "results (JSON lines for IDs, the final state for --all)")
    p.set_defaults(func=run_promote)

    s = sub.add_parser(
        "status",
        help="show the migration state and pending counts",
        description="Show the Stage 2 state, its progress and the pending counts, and which "
        "process holds the library. Reads only: works beside a server and in a read-only "
        "folder.",
    )
    add_config_options(s)
    add_json_option(s, "the state")
    s.set_defaults(func=run_status)


def run_promote(args: argparse.Namespace) -> int:
    if args.all == bool(args.ids):
        raise CliError("give either --all or pending IDs")
    if not args.all and args.conf_strategy == "skip":
        raise CliError("--strategy skip is for --all; without a strategy a conflict is skipped")
    from hikaze_mm.cli import context

    config = context.config_from_args(args)
    if args.all:
        owner = context.holder(config)
        if owner is not None and owner.address:
            code = _promote_all_remote(owner, args)
            if code is not None:
                return code
    services = context.open_writer(config, "promote", create=False, task="promote")
    with context.using(services):
        if args.all:
            return _promote_all(services, args)
        return _promote_ids(services, args)


def _promote_ids(services: Any, args: argparse.Namespace) -> int:
    from hikaze_mm.errors import HikazeError
    from hikaze_mm.pending.promotion import PromotionConflict

    failures = 0
    for pending_id in args.ids:
        row = services.db.pending.get(pending_id)
        label = Path(row["path"]).name if row else str(pending_id)
        try:
            with ByteProgress(label) as bar:
                result = services.promoter.promote(
                    pending_id, args.conf_strategy, progress=bar.update
                )
        except PromotionConflict as exc:
            failures += 1
            _report(args, {"id": pending_id, "status": "conflict", "detail": exc.detail})
            continue
        except HikazeError as exc:
            failures += 1
            _report(args, {"id": pending_id, "status": "error", "detail": exc.detail})
            continue
        _report(args, result)
    return 1 if failures else 0


def _report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(result))
    elif result["status"] == "success":
        print(f"{result['id']}: {result['action_taken']} {result['sha256']}")
    else:
        print(f"{result['id']}: {result['status']}: {result['detail']}")


def _promote_all(services: Any, args: argparse.Namespace) -> int:
    mgr = services.migration
    try:
        if mgr.get_status()["status"] in ("RUNNING", "PAUSED") and args.conf_strategy is None:
            mgr.resume_processing()  # an interrupted run continues with its counters
        else:
            mgr.start_full_migration(conf_strategy=args.conf_strategy)
        with ByteProgress("promoting") as bar:
            while not mgr.wait(0.2):
                _draw(bar, mgr.get_status())
            _draw(bar, mgr.get_status())
    except KeyboardInterrupt:
        mgr.shutdown()
        print("stopped; run `hikaze-mm promote --all` again to resume")
        return 130
    return _finish(mgr.get_status(), args)


def _start_remote(remote: Any, conf_strategy: str | None) -> None:
    """Start Stage 2 in the server, or resume the run it has (an interrupted one too,
    unless a strategy is given)."""
    status = remote.get(MIGRATION_STATUS)
    if status["active"]:
        if status["status"] == "PAUSED":
            remote.post("/api/migration/resume")
    elif status["status"] in ("RUNNING", "PAUSED") and conf_strategy is None:
        remote.post("/api/migration/resume")
    else:
        body = {STRATEGY_FIELD: conf_strategy} if conf_strategy else {}
        remote.post("/api/migration/start", body)


def _promote_all_remote(owner: Any, args: argparse.Namespace) -> int | None:
    """Start or resume Stage 2 in the server that holds the library and follow it there;
    None if that server does not answer."""
    from hikaze_mm.cli.follow import ServerJob, in_server

    status = in_server(
        owner,
        ServerJob(
            "migration", "promoting", lambda remote: _start_remote(remote, args.conf_strategy)
        ),
    )
    return None if status is None else _finish(status, args)


def _finish(status: dict[str, Any], args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(status))
    else:
        print(_summary(status))
    return 0 if status["status"] == "COMPLETED" else 1


def _draw(bar: ByteProgress, status: dict[str, Any]) -> None:
    stats = status["stats"]
    label = Path(status["current_file"]).name if status["current_file"] else "promoting"
    bar.update(stats["done_bytes"], stats["total_bytes"], label=label)


def _summary(status: dict[str, Any]) -> str:
    s = status["stats"]
    line = (
        f"{status['status']}: {s['processed_items']}/{plural(s['total_items'], 'item')} "
        f"({status['progress']:.1f}%), promoted {s['promoted']}, merged {s['merged']}, "
        f"overridden {s['overridden']}, deleted {s['deleted']}, conflicts {s['conflicts']}, "
        f"errors {s['errors']}"
    )
    if status.get("error"):
        line += f"\nerror: {status['error']}"
    return line


def run_status(args: argparse.Namespace) -> int:
    from hikaze_mm.cli import context

    config = context.config_from_args(args)
    owner = context.holder(config)
    status = None
    if owner is not None and owner.address:
        from hikaze_mm.cli.remote import Remote, Unreachable

        try:
            status = Remote(owner).get(MIGRATION_STATUS)
        except Unreachable:
            status = None
    if status is None:
        with context.using(context.open_reader(config)) as services:
            status = services.migration.get_status()
            status["pending"] = services.db.pending.counts()
    status["holder"] = (
        {"pid": owner.pid, "command": owner.command, "address": owner.address} if owner else None
    )
    if args.json:
        print(json.dumps(status))
        return 0
    print(_summary(status))
    if status["current_file"]:
        item = status["current_item"]
        print(f"current: {item['path']} ({item['bytes_done']}/{item['bytes_total']} bytes)")
    pending = ", ".join(f"{k} {v}" for k, v in status["pending"].items())
    print(f"pending: {pending}")
    if owner is not None:
        print(f"held by: {owner.describe()}")
    return 0
