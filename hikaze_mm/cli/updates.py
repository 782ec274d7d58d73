"""``hikaze-mm updates``: the models with a newer version on Civitai.

Without ``--check`` it lists what the last check recorded (``meta.update``), reading the
library read-only (beside a server that holds it). ``--check`` first asks Civitai (the
``updates`` job, a progress bar on a terminal): in the server that holds the library when
one does, followed there, else here.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hikaze_mm.cli.common import FAILURE, CliError, add_config_options, add_json_option, plural
from hikaze_mm.cli.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "updates",
        help="list the models with a newer version on Civitai (--check asks Civitai first)",
        description="List the models whose Civitai model has a newer version than the one "
        "held, of the same base model, as the last check found. --check asks Civitai first "
        "(up to 100 models a request; this sends the models' Civitai ids to Civitai).",
    )
    add_config_options(p)
    p.add_argument("--check", action="store_true", help="ask Civitai first")
    p.add_argument(
        "--any-base",
        action="store_true",
        help="with --check: a newer version of any base model counts",
    )
    add_json_option(p, "the check's report and the list")
    p.set_defaults(func=run_updates)


def run_updates(args: argparse.Namespace) -> int:
    from hikaze_mm.cli import context

    if args.any_base and not args.check:
        raise CliError("--any-base goes with --check")
    config = context.config_from_args(args)
    report = None
    if args.check:
        owner = context.holder(config)
        if owner is not None and owner.address:
            report = _remote(owner, args.any_base)
        if report is None:
            services = context.open_writer(config, "updates", create=False, task="check updates")
            with context.using(services), Progress("updates") as bar:
                report = services.updates.run(
                    any_base=args.any_base,
                    on_progress=lambda s: bar.update(s["progress"]["done"], s["progress"]["total"]),
                )
                return _finish(report, services.updates.list(), args)
    services = context.open_reader(config)
    with context.using(services):
        return _finish(report, services.updates.list(), args)


def _remote(owner: Any, any_base: bool) -> dict[str, Any] | None:
    """Check in the server that holds the library; None if it does not answer."""
    from hikaze_mm.cli.follow import ServerJob, in_server

    return in_server(
        owner,
        ServerJob(
            "updates",
            "checking for updates",
            lambda remote: remote.post("/api/updates/check", {"any_base": any_base}),
        ),
    )


def _line(item: dict[str, Any]) -> str:
    held, update = item["held"], item["update"]
    was = held.get("version_name") or f"version {held.get('version_id')}"
    new = update.get("version_name") or f"version {update.get('version_id')}"
    when = str(update.get("published_at") or "")[:10]
    extra = ", ".join(str(x) for x in (update.get("base_model"), when) if x)
    return f"{item['sha256'][:10]}  {item['name']}  {was} -> {new}" + (
        f" ({extra})" if extra else ""
    )


def _finish(report: dict[str, Any] | None, items: list[dict[str, Any]], args: Any) -> int:
    if args.json:
        print(json.dumps({"check": report, "items": items}, ensure_ascii=False, indent=2))
        return FAILURE if report and report["error"] else 0
    if report is not None:
        c = report["counts"]
        print(
            f"checked {plural(report['done'], 'model')} of {report['total']} in "
            f"{plural(report['requests'], 'request')}: {c['updates']} with an update, "
            f"{c['newest']} up to date, {c['not_found']} not on Civitai, {c['failed']} failed"
        )
    for item in items:
        print(_line(item))
    print(f"{plural(len(items), 'model')} with an update")
    if report is not None and report["error"]:
        raise CliError(report["error"], FAILURE, "Civitai unreachable")
    return 0
