"""``hikaze-mm organize``: move every model to its template folder.

Each model goes to ``<its type's folder>/<template>/<file name>`` (the template is
``--template`` or ``HIKAZE_DOWNLOAD_TEMPLATE``), its sidecars with it; tags, images and
everything else stay (they are keyed by the hash). ``--dry-run`` prints the plan and
changes nothing. A model that cannot move (its file missing, an existing file at the
target...) is listed as failed and the others go on; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hikaze_mm.cli.common import FAILURE, add_config_options, add_json_option, plural


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "organize",
        help="move every model to its template folder (HIKAZE_DOWNLOAD_TEMPLATE)",
        description="Move each model file, with its sidecars, to <its type's folder>/"
        "<template>/<file name>; tags, images and metadata stay. Placeholders: {base_model}, "
        "{model_name}, {version_name}, {author}, {first_tag}. Never overwrites a file.",
    )
    add_config_options(p)
    p.add_argument(
        "--template",
        metavar="T",
        help="the folder template, e.g. '{base_model}/{author}' "
        "(default: $HIKAZE_DOWNLOAD_TEMPLATE)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan; move nothing")
    add_json_option(p, "the results")
    p.set_defaults(func=run_organize)


def _line(result: dict[str, Any], dry_run: bool) -> str | None:
    status = result["status"]
    if status == "unchanged":
        return None
    if status == "failed":
        return f"failed: {result['from'] or result['sha256']}: {result['error']}"
    verb = "would move" if dry_run else "moved"
    return f"{verb}: {result['from']} -> {result['to']}"


def run_organize(args: argparse.Namespace) -> int:
    from hikaze_mm.cli import context

    config = context.config_from_args(args)
    services = context.open_writer(config, "organize", create=False, task="organize models")
    show = None if args.json else (lambda r: _print(_line(r, args.dry_run)))
    with context.using(services):
        report = services.organizer.organize(args.template, dry_run=args.dry_run, on_result=show)
    counts = report["counts"]
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        moved = counts["planned"] if args.dry_run else counts["moved"]
        verb = "to move" if args.dry_run else "moved"
        print(
            f"{plural(moved, 'model')} {verb}, {counts['unchanged']} already in place, "
            f"{counts['failed']} failed"
        )
    return FAILURE if counts["failed"] and not args.dry_run else 0


def _print(line: str | None) -> None:
    if line is not None:
        print(line, flush=True)
