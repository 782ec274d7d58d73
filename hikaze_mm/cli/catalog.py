"""``hikaze-mm catalog push URL`` and ``catalog pull URL``: a library onto a PostgreSQL
server, and back into a SQLite file (``library/catalog.py``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hikaze_mm.cli.common import add_config_options, add_json_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "catalog",
        help="copy the library onto a PostgreSQL server (push) or from one (pull)",
        description="push URL copies this library (its SQLite file) into the empty "
        "PostgreSQL catalog at URL; pull URL writes a new SQLite library (at --db-path) from "
        "it. Every table is copied as it is, in one transaction; images stay in the data "
        "folder.",
    )
    p.add_argument("action", choices=("push", "pull"), help="push: onto the server; pull: from it")
    p.add_argument("url", metavar="URL", help="postgresql://user:password@host/db")
    add_config_options(p)
    add_json_option(p, "the report")
    p.set_defaults(func=run_catalog)


def run_catalog(args: argparse.Namespace) -> int:
    from hikaze_mm.cli import context
    from hikaze_mm.errors import HikazeError
    from hikaze_mm.library import catalog

    config = context.config_from_args(args)
    move = catalog.push if args.action == "push" else catalog.pull
    try:
        report = move(config, args.url)
    except HikazeError as exc:
        raise context.as_cli_error(exc) from None
    print(json.dumps(report) if args.json else _summary(report))
    return 0


def _summary(report: dict[str, Any]) -> str:
    rows = report["rows"]
    counts = ", ".join(f"{n} {table}" for table, n in rows.items() if n)
    return f"{report['direction']}ed {report['from']} -> {report['to']}: {counts or 'no rows'}"
