"""``hikaze-mm promote`` and ``hikaze-mm status``: Stage 2 from the command line.

* ``promote --all``: run the background worker in the foreground (resuming a run that
  was interrupted), with a bytes/s and ETA bar; Ctrl+C stops it resumably.
* ``promote ID...``: promote those pending models one by one; ``--strategy`` decides what
  happens when the content is already in the library (without it, a conflict is
  reported and the item stays pending).
* ``status``: the migration state and the pending counts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hikaze_mm.cli.common import CliError, add_config_options, config_from_args, open_services
from hikaze_mm.cli.progress import ByteProgress
from hikaze_mm.errors import HikazeError
from hikaze_mm.pending.promotion import WORKER_STRATEGIES, PromotionConflict
from hikaze_mm.services import Services


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "promote",
        help="hash pending models and move them into the library",
        description="Hash pending models and promote them into the active library.",
    )
    add_config_options(p)
    p.add_argument("--all", action="store_true", help="every pending model not done yet")
    p.add_argument("ids", nargs="*", type=int, default=[], metavar="ID", help="pending ids")
    p.add_argument(
        "--strategy",
        dest="conf_strategy",
        choices=WORKER_STRATEGIES,  # the API strategies plus "skip"
        help="on a conflict: override, merge or delete (with --all also skip; "
        "default for --all: the configured worker policy, merge)",
    )
    p.add_argument("--json", action="store_true", help="print results as JSON lines")
    p.set_defaults(func=run_promote)

    s = sub.add_parser("status", help="show the migration state and pending counts")
    add_config_options(s)
    s.add_argument("--json", action="store_true", help="print the state as JSON")
    s.set_defaults(func=run_status)


def run_promote(args: argparse.Namespace) -> int:
    if args.all == bool(args.ids):
        raise CliError("give either --all or pending IDs")
    if not args.all and args.conf_strategy == "skip":
        raise CliError("--strategy skip is for --all; without a strategy a conflict is skipped")
    with open_services(config_from_args(args)) as services:
        if args.all:
            return _promote_all(services, args)
        return _promote_ids(services, args)


def _promote_ids(services: Services, args: argparse.Namespace) -> int:
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


def _promote_all(services: Services, args: argparse.Namespace) -> int:
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
    status = mgr.get_status()
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
        f"{status['status']}: {s['processed_items']}/{s['total_items']} items "
        f"({status['progress']:.1f}%), promoted {s['promoted']}, merged {s['merged']}, "
        f"overridden {s['overridden']}, deleted {s['deleted']}, conflicts {s['conflicts']}, "
        f"errors {s['errors']}"
    )
    if status.get("error"):
        line += f"\nerror: {status['error']}"
    return line


def run_status(args: argparse.Namespace) -> int:
    with open_services(config_from_args(args)) as services:
        status = services.migration.get_status()
        status["pending"] = services.db.pending.counts()
    if args.json:
        print(json.dumps(status))
        return 0
    print(_summary(status))
    if status["current_file"]:
        item = status["current_item"]
        print(f"current: {item['path']} ({item['bytes_done']}/{item['bytes_total']} bytes)")
    pending = ", ".join(f"{k} {v}" for k, v in status["pending"].items())
    print(f"pending: {pending}")
    return 0
