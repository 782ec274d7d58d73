"""``hikaze-mm catalog push|pull URL [--merge]``: this host's library to and from PostgreSQL.

``push`` copies the local SQLite library (the data folder's, whatever ``--db-url`` says)
into the PostgreSQL catalog at URL; ``pull`` writes the catalog into the local library.
Both refuse a target that holds a library already unless ``--merge``, which combines the
two by the promotion's merge rule (a studio pushes machine A, then merges B and C). The
local library is held for the copy, so no server may be running on it. Images stay files
in the data folder.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

from hikaze_mm.cli.common import add_config_options, add_json_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "catalog",
        help="copy this host's library to (push) or from (pull) a PostgreSQL catalog",
        description="Copy the local SQLite library into a PostgreSQL catalog (push), or a "
        "catalog into the local library (pull): tags, models, file copies, pending models, "
        "the legacy ledger, caches, generations and downloads. A target that holds a library "
        "already is refused unless --merge. Images stay files in the data folder.",
    )
    p.add_argument(
        "direction", choices=("push", "pull"), help="push: local -> URL; pull: URL -> local"
    )
    p.add_argument("url", metavar="URL", help="the catalog: postgresql://user@host/db")
    p.add_argument("--merge", action="store_true", help="combine with the target's library")
    add_config_options(p)
    add_json_option(p, "the report")
    p.set_defaults(func=run_catalog)


def run_catalog(args: argparse.Namespace) -> int:
    from hikaze_mm.cli import context
    from hikaze_mm.library import catalog

    config = replace(context.config_from_args(args), database_url=None)
    services = context.open_writer(
        config, "catalog", create=args.direction == "pull", task=f"{args.direction} the catalog"
    )
    with context.using(services):
        copy = catalog.push if args.direction == "push" else catalog.pull
        report = copy(config, services.db, args.url, merge=args.merge)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print("\n".join(report_lines(report)))
    return 0


def report_lines(report: dict[str, Any]) -> list[str]:
    verb = "merged into" if report["merge"] else "copied to"
    lines = [f"{report['source']} {verb} {report['target']}:"]
    for table, counts in report["tables"].items():
        if counts["read"]:
            extra = "".join(
                f", {counts[key]} {key}" for key in ("merged", "skipped") if counts[key]
            )
            lines.append(f"  {table}: {counts['added']} added{extra} (of {counts['read']})")
    if len(lines) == 1:
        lines.append("  nothing to copy: the library is empty")
    return lines
