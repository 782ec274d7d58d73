"""Library commands: ``hikaze-mm scan`` and ``hikaze-mm list``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hikaze_mm.cli.common import (
    FAILURE,
    CliError,
    add_config_options,
    add_json_option,
    bounded_int,
    plural,
)
from hikaze_mm.cli.progress import Progress
from hikaze_mm.policy import API_STRATEGIES, DEFAULT_LIMIT, MAX_LIMIT, SORT_KEYS, STRATEGY_FIELD

# How many moved/missing models and problems the scan summary lists (the counts are total).
SCAN_LIST_LIMIT = 20


def register(sub: argparse._SubParsersAction) -> None:
    """Subcommands of this module are added here."""
    _register_scan(sub)
    _register_list(sub)


# ---------------------------------------------------------------------- scan
def _register_scan(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scan",
        help="scan the model roots: queue new files, relink moved ones, flag missing ones",
        description="Walk the model roots. Files the hash cache knows are not read; new files "
        "are queued for hashing (Stage 2); a moved or renamed model keeps its tags, meta and "
        "images; a model whose file is gone is flagged missing, never deleted. Creates the "
        "library if there is none. While a server holds the library, the scan runs there, "
        "over the server's model roots.",
    )
    add_config_options(p)
    p.add_argument(
        "--immediate",
        action="store_true",
        help="hash and promote new files now instead of leaving them to the background worker",
    )
    p.add_argument(
        "--strategy",
        dest="conf_strategy",
        choices=API_STRATEGIES,
        default=None,
        help="with --immediate: what to do when a new file's content is already a model "
        "(default: leave it pending for review)",
    )
    add_json_option(p, "the full report")
    p.set_defaults(func=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    if args.conf_strategy and not args.immediate:
        raise CliError("--strategy applies to --immediate only (give both, or neither)")
    from hikaze_mm.cli import context

    config = context.config_from_args(args)
    owner = context.holder(config)
    if owner is not None and owner.address:
        code = _scan_remote(owner, args)
        if code is not None:
            return code
    if not config.model_roots:
        raise CliError("no model roots configured: use --models-root DIR or $HIKAZE_MODEL_ROOTS")
    for root in config.model_roots:
        if not root.path.exists():
            raise CliError(f"model root does not exist: {root.path}", FAILURE)
        if not root.path.is_dir():
            raise CliError(f"model root is not a folder: {root.path}", FAILURE)
    services = context.open_writer(config, "scan", create=True, task="scan")
    with context.using(services), Progress("scan") as bar:
        report = services.scanner.scan(
            immediate_hashing=args.immediate,
            conf_strategy=args.conf_strategy,
            on_progress=lambda status: _show_progress(bar, status),
        )
    _print_report(report.to_dict(), args)
    return 0


def _scan_remote(owner: Any, args: argparse.Namespace) -> int | None:
    """Run the scan in the server that holds the library; None if it does not answer."""
    from hikaze_mm.cli.follow import ServerJob, in_server

    body = {"immediate_hashing": args.immediate, STRATEGY_FIELD: args.conf_strategy}
    report = in_server(
        owner,
        ServerJob(
            "scan", "scanning, over its model roots", lambda remote: remote.post("/api/scan", body)
        ),
    )
    if report is None:
        return None
    _print_report(report, args)
    return 0


def _print_report(data: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        _print_summary(data)


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
        f"scanned {plural(c['files_seen'], 'file')} in {data['duration_ms'] / 1000:.1f}s: "
        f"{c['unchanged']} known, {c['new']} new, {c['moved']} moved, {c['renamed']} renamed, "
        f"{c['missing']} missing, {c['restored']} restored, "
        f"{plural(c['duplicates'], 'duplicate')}, {c['pending']} already pending, "
        f"{plural(c['errors'], 'problem')}"
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
        print(f"... and {plural(c['errors'] - len(shown), 'more problem')}", file=sys.stderr)


# ---------------------------------------------------------------------- list
def _register_list(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "list",
        help="list the library's models (the same query as GET /api/models)",
        description="List models, filtered and sorted like the web UI. Missing models (file "
        "gone) are left out unless --include-missing is given. Reads the library only: it "
        "works beside a running server and in a read-only folder.",
    )
    add_config_options(p)
    p.add_argument("--type", help="only this type (a folder key: loras, checkpoints, ...)")
    p.add_argument("--base", help="only this base model (e.g. SDXL)")
    p.add_argument(
        "--tag", action="append", default=[], metavar="TAG", help="required tag; repeat for more"
    )
    p.add_argument(
        "--exclude-tag", action="append", default=[], metavar="TAG", help="leave out this tag"
    )
    p.add_argument("-q", "--query", help="text in the name or path")
    p.add_argument("--sort", choices=SORT_KEYS, default="name", help="sort key (default: name)")
    p.add_argument(
        "--order",
        choices=("asc", "desc"),
        default=None,
        help="sort order (default: A-Z for names, newest or largest first otherwise)",
    )
    p.add_argument(
        "--limit",
        type=bounded_int("--limit"),
        default=DEFAULT_LIMIT,
        help=f"at most this many models (default {DEFAULT_LIMIT}; 0: all)",
    )
    p.add_argument(
        "--offset", type=bounded_int("--offset"), default=0, help="skip this many models first"
    )
    p.add_argument("--include-missing", action="store_true", help="also list missing models")
    p.add_argument(
        "--update",
        action="store_true",
        help="only models with a newer version on Civitai (found by `hikaze-mm updates --check`)",
    )
    add_json_option(p, "{total, offset, items}")
    p.set_defaults(func=run_list)


def _list_pages(services: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Fetch the requested window in pages of at most MAX_LIMIT models."""
    from hikaze_mm.database import ModelQuery
    from hikaze_mm.model_types import canonical_type

    items: list[dict[str, Any]] = []
    total = 0
    offset = args.offset
    while True:
        want = MAX_LIMIT if args.limit == 0 else min(MAX_LIMIT, args.limit - len(items))
        query = ModelQuery(
            type=canonical_type(args.type) if args.type else None,
            base=args.base or None,
            tags=tuple(args.tag),
            exclude_tags=tuple(args.exclude_tag),
            q=args.query or None,
            sort=args.sort,
            order=args.order,
            offset=offset,
            limit=want,
            include_missing=args.include_missing,
            update="available" if args.update else None,
        )
        page = services.models.list(query)
        total = page["total"]
        items += page["items"]
        offset += len(page["items"])
        done = args.limit and len(items) >= args.limit
        if done or len(page["items"]) < want or offset >= total:
            return {"total": total, "offset": args.offset, "items": items}


def _words(words: list[str], shown: int = 3) -> str:
    """Trigger words, compactly: ``  <a, b, c +2>``."""
    if not words:
        return ""
    more = f" +{len(words) - shown}" if len(words) > shown else ""
    return f"  <{', '.join(words[:shown])}{more}>"


def _version(update: dict[str, Any]) -> str:
    """An update's version, by name if it has one."""
    return update.get("version_name") or f"#{update['version_id']}"


def run_list(args: argparse.Namespace) -> int:
    from hikaze_mm.cli import context

    config = context.config_from_args(args)
    with context.using(context.open_reader(config)) as services:
        result = _list_pages(services, args)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return 0
    for item in result["items"]:
        tags = ", ".join(t["name"] for t in item["tags"])
        flags = "  (missing)" if item["missing"] else ""
        if item.get("update"):
            flags += f"  (update: {_version(item['update'])})"
        print(
            f"{item['short_hash']}  {item['type'] or '-':12} {item['base'] or '-':12} "
            f"{item['name'] or '-'}{f'  [{tags}]' if tags else ''}"
            f"{_words(item.get('trigger_words', []))}{flags}"
        )
    shown = len(result["items"])
    print(f"{shown} of {plural(result['total'], 'model')}", file=sys.stderr)
    return 0
