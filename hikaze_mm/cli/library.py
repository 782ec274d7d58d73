"""Library commands: ``hikaze-mm scan`` (and ``list``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hikaze_mm.cli.common import CliError, add_config_options, config_from_args
from hikaze_mm.cli.progress import Progress
from hikaze_mm.errors import HikazeError
from hikaze_mm.migration.promotion import API_STRATEGIES
from hikaze_mm.services import Services

# How many moved/missing models and problems the scan summary lists (the counts are total).
SCAN_LIST_LIMIT = 20


def register(sub: argparse._SubParsersAction) -> None:
    """Subcommands of this module are added here."""
    _register_scan(sub)


# ---------------------------------------------------------------------- scan
def _register_scan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scan",
        help="scan the model roots: queue new files, relink moved ones, flag missing ones",
        description="Walk the model roots. Files the hash cache knows are not read; new files "
        "are queued for hashing (Stage 2); a moved or renamed model keeps its tags, meta and "
        "images; a model whose file is gone is flagged missing, never deleted.",
    )
    add_config_options(p)
    p.add_argument(
        "--immediate",
        action="store_true",
        help="hash and promote new files now instead of leaving them to the background worker",
    )
    p.add_argument(
        "--strategy",
        choices=API_STRATEGIES,
        default=None,
        help="with --immediate: what to do when a new file's content is already a model "
        "(default: leave it pending for review)",
    )
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.set_defaults(func=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if not config.model_roots:
        raise CliError("no model roots configured: use --models-root DIR or $HIKAZE_MODEL_ROOTS")
    services = Services.open(config)
    try:
        with Progress("scan") as bar:
            report = services.scanner.scan(
                immediate_hashing=args.immediate,
                conflict_strategy=args.strategy,
                on_progress=lambda status: _show_progress(bar, status),
            )
    except HikazeError as exc:
        raise CliError(exc.detail) from None
    finally:
        services.close()
    data = report.to_dict()
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        _print_summary(data)
    return 0


def _show_progress(bar: Progress, status: dict[str, Any]) -> None:
    counts = status["counts"]
    moved = counts["moved"] + counts["renamed"]
    label = f"{status['phase']} new {counts['new']} moved {moved} missing {counts['missing']}"
    if status["phase"] == "hashing" and counts["to_hash"]:
        bar.update(counts["hashed"], counts["to_hash"], label=label)
    else:
        bar.update(counts["files_seen"], counts["files_seen"], label=label)


def _print_summary(data: dict[str, Any]) -> None:
    c = data["counts"]
    print(
        f"scanned {c['files_seen']} files in {data['duration_ms'] / 1000:.1f}s: "
        f"{c['unchanged']} known, {c['new']} new, {c['moved']} moved, {c['renamed']} renamed, "
        f"{c['missing']} missing, {c['restored']} restored, {c['duplicates']} duplicates, "
        f"{c['pending']} already pending, {c['errors']} problems"
    )
    if data["immediate_hashing"]:
        print(f"promoted {c['promoted']}, left pending as conflicts {c['conflicts']}")
    for item in data["relinked"][:SCAN_LIST_LIMIT]:
        print(f"{item['kind']:8} {item['sha256'][:10]}  {item['from']} -> {item['to']}")
    for item in data["missing"][:SCAN_LIST_LIMIT]:
        print(f"missing  {item['sha256'][:10]}  {item['path']}")
    shown = [p for p in data["problems"] if p["kind"] != "loop"][:SCAN_LIST_LIMIT]
    for problem in shown:
        print(
            f"problem  {problem['kind']}: {problem['path']}: {problem['detail']}", file=sys.stderr
        )
    if c["errors"] > len(shown):
        print(f"... and {c['errors'] - len(shown)} more problems", file=sys.stderr)
