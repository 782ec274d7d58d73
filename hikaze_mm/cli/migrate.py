"""``hikaze-mm migrate-legacy LEGACY_DB [--images DIR]``: Stage 1, the one-time import."""

from __future__ import annotations

import argparse
import json

from hikaze_mm.cli.common import add_config_options, config_from_args, open_services
from hikaze_mm.cli.progress import Progress
from hikaze_mm.legacy.report import summarize

PHASE_LABELS = {
    "reading": "reading legacy DB",
    "tags": "importing tags",
    "models": "importing models",
    "done": "done",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "migrate-legacy",
        help="import a legacy (v2) database and its images folder (read-only, once)",
        description="Import the models, tags and preview images of a Hikaze Model Manager v2 "
        "database. The legacy files are only read. Running it again imports nothing twice.",
    )
    p.add_argument("legacy_db", metavar="LEGACY_DB", help="the legacy hikaze_mm.sqlite3 file")
    p.add_argument("--images", metavar="DIR", help="the legacy images folder (/media/ files)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_config_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    services_cm = open_services(config_from_args(args), error_code=1)
    with services_cm as services, Progress(PHASE_LABELS["reading"]) as bar:

        def on_progress(phase: str, done: int, total: int) -> None:
            bar.update(done, total, label=PHASE_LABELS.get(phase, phase))

        report = services.legacy_import.run_blocking(
            args.legacy_db, args.images, progress=on_progress
        )
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(summarize(report))
    return 0
