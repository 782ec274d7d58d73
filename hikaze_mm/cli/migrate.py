"""``hikaze-mm migrate-legacy LEGACY_DB [--images DIR]``: Stage 1, the one-time import."""

from __future__ import annotations

import argparse
import json

from hikaze_mm.cli.common import FAILURE, CliError, add_config_options, add_json_option
from hikaze_mm.cli.progress import Progress

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
        "database. The legacy files are only read, and checked before anything is created. "
        "Running it again imports nothing twice. Refused while another process holds the "
        "library (a server imports through its Migration page).",
    )
    p.add_argument("legacy_db", metavar="LEGACY_DB", help="the legacy hikaze_mm.sqlite3 file")
    p.add_argument("--images", metavar="DIR", help="the legacy images folder (/media/ files)")
    add_json_option(p, "the report")
    add_config_options(p)
    p.set_defaults(func=run)


def _check_input(args: argparse.Namespace) -> None:
    """The legacy database and images folder, checked the way the import checks them,
    before the library is opened (a bad input creates nothing)."""
    import tempfile

    from hikaze_mm.errors import HikazeError
    from hikaze_mm.legacy.importer import check_images_dir
    from hikaze_mm.legacy.snapshots import LegacySnapshot

    try:
        check_images_dir(args.images)
        with tempfile.TemporaryDirectory(prefix="hikaze-check-") as scratch:
            LegacySnapshot.open(args.legacy_db, root=scratch).close()
    except HikazeError as exc:
        raise CliError(exc.detail, FAILURE, exc.error) from None


def run(args: argparse.Namespace) -> int:
    from hikaze_mm.cli import context
    from hikaze_mm.legacy.report import summarize

    config = context.config_from_args(args)
    _check_input(args)
    services = context.open_writer(config, "migrate-legacy", create=True, task="import")
    with context.using(services), Progress(PHASE_LABELS["reading"]) as bar:

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
