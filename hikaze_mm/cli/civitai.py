"""``hikaze-mm civitai``: look models up on Civitai by hash, fill their empty fields and
download previews.

Running the command is the user's consent to send those hashes to Civitai (the
automatic lookup of new models, ``HIKAZE_CIVITAI_AUTO``, is another matter and off by
default). While a server holds the library, the lookup runs there and is followed here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from hikaze_mm.cli.common import (
    FAILURE,
    CliError,
    add_config_options,
    add_json_option,
    plural,
)
from hikaze_mm.cli.progress import Progress

SHA_RE = re.compile(r"[0-9a-fA-F]{64}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "civitai",
        help="look models up on Civitai by hash: trigger words, description, base, previews",
        description="Ask Civitai about models by SHA-256 and fill what is empty: trigger "
        "words, description, base model, a link, and up to 4 previews (only images rated "
        "at most $HIKAZE_CIVITAI_MAX_NSFW, default 2: PG-13). Fields a user edited are "
        "never overwritten. This sends the hashes to Civitai ($HIKAZE_CIVITAI_URL); a hash "
        "Civitai does not know is not asked again for 7 days unless --force is given.",
    )
    add_config_options(p)
    p.add_argument("sha256s", nargs="*", metavar="SHA", help="models to look up (SHA-256)")
    p.add_argument(
        "--missing",
        action="store_true",
        help="every model without Civitai data (except hashes Civitai did not know lately)",
    )
    p.add_argument(
        "--force", action="store_true", help="ask again about hashes Civitai did not know"
    )
    add_json_option(p, "the report")
    p.set_defaults(func=run_civitai)


def run_civitai(args: argparse.Namespace) -> int:
    if args.missing == bool(args.sha256s):
        raise CliError("give either --missing or model hashes")
    bad = [s for s in args.sha256s if not SHA_RE.fullmatch(s)]
    if bad:
        raise CliError(f"not a SHA-256 (64 hex characters): {bad[0]!r:.80}")
    shas = list(dict.fromkeys(s.lower() for s in args.sha256s)) or None
    from hikaze_mm.cli import context

    config = context.config_from_args(args)
    owner = context.holder(config)
    report = None
    if owner is not None and owner.address:
        report = _remote(owner, shas, args)
    if report is None:
        services = context.open_writer(config, "civitai", create=False, task="look models up")
        with context.using(services), Progress("civitai") as bar:
            report = services.civitai.run(
                sha256s=shas,
                missing=args.missing,
                force=args.force,
                on_progress=lambda status: _show(bar, status),
            )
    return _finish(report, args)


def _remote(owner: Any, shas: list[str] | None, args: argparse.Namespace) -> dict | None:
    """Run the lookup in the server that holds the library; None if it does not answer."""
    from hikaze_mm.cli.follow import ServerJob, in_server

    body: dict[str, Any] = {"missing": True} if args.missing else {"sha256s": shas}
    if args.force:
        body["force"] = True
    return in_server(
        owner,
        ServerJob("civitai", "looking up", lambda remote: remote.post("/api/civitai/fetch", body)),
    )


def _show(bar: Progress, status: dict[str, Any]) -> None:
    current = status.get("current")
    label = f"civitai {current[:10]}" if current else "civitai"
    bar.update(status["progress"]["done"], status["progress"]["total"], label=label)


def _finish(report: dict[str, Any], args: argparse.Namespace) -> int:
    failed = report["counts"]["failed"]
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return FAILURE if report["error"] or failed else 0
    for item in report["results"]:
        if item["status"] == "found":
            filled = ", ".join(item["filled"]) or "nothing new"
            print(f"{item['sha256'][:10]}  found      {filled}")
        elif item["status"] == "not_found":
            later = " (remembered)" if item["remembered"] else ""
            print(f"{item['sha256'][:10]}  not found{later}")
        else:
            print(f"{item['sha256'][:10]}  {item['status']:9}  {item['detail']}")
        for problem in item["problems"]:
            print(f"problem  {item['sha256'][:10]}: {problem}", file=sys.stderr)
    c = report["counts"]
    print(
        f"{report['done']} of {plural(report['total'], 'model')}: {c['found']} found, "
        f"{c['not_found']} not found, {c['failed']} failed, {c['skipped']} skipped, "
        f"{plural(c['images'], 'image')} downloaded"
    )
    if report["error"]:
        raise CliError(report["error"], FAILURE, "Civitai unreachable")
    return FAILURE if failed else 0
