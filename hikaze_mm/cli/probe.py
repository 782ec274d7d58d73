"""``hikaze-mm probe``: read the base model of models from their files' headers.

Without ``--all`` only the models with no base are probed; with it every model except
those whose base a user set. Only the safetensors header is read. While a server holds
the library, the probe runs there and is followed here.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hikaze_mm.cli.common import (
    add_config_options,
    add_json_option,
    plural,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="read the base model (SD1.x, SDXL, Pony, Flux.1, ...) from the models' headers",
        description="Probe the safetensors header of each model with no base and record the "
        "base it names (meta.sources.base = probe). With --all, every model except those "
        "whose base a user set. Tensor data is never read.",
    )
    add_config_options(p)
    p.add_argument(
        "--all",
        dest="every",
        action="store_true",
        help="probe every model again (never one whose base a user set)",
    )
    add_json_option(p, "the report")
    p.set_defaults(func=run_probe)


def run_probe(args: argparse.Namespace) -> int:
    from hikaze_mm.cli import context

    config = context.config_from_args(args)
    owner = context.holder(config)
    report = None
    if owner is not None and owner.address:
        report = _remote(owner, args)
    if report is None:
        services = context.open_writer(config, "probe", create=False, task="probe models")
        with context.using(services):
            services.prober.wait()  # an upgrade's backfill, started on opening
            report = services.prober.run(every=args.every)
    return _finish(report, args)


def _remote(owner: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    """Probe in the server that holds the library; None if it does not answer."""
    from hikaze_mm.cli.follow import ServerJob, in_server

    return in_server(
        owner,
        ServerJob(
            "probe",
            "probing",
            lambda remote: remote.post("/api/models/probe", {"all": bool(args.every)}),
        ),
    )


def _finish(report: dict[str, Any], args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    c = report["counts"]
    print(
        f"{plural(report['total'], 'model')} to probe: {c['set']} set, {c['unknown']} unknown, "
        f"{c['absent']} without a file"
    )
    return 0
