"""``hikaze-mm hash FILE...``: print SHA-256 and AutoV2 hashes (cached in the library)."""

from __future__ import annotations

import argparse
import json

from hikaze_mm.cli.common import add_config_options, config_from_args, open_services
from hikaze_mm.cli.progress import ByteProgress
from hikaze_mm.hashing import FileChangedError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hash", help="print the SHA-256 of files (uses the hash cache)")
    add_config_options(p)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    status = 0
    with open_services(config_from_args(args)) as services:
        for name in args.files:
            try:
                with ByteProgress(name) as bar:
                    result = services.hashes.hash_file(name, progress=bar.update)
            except (OSError, FileChangedError) as exc:
                print(f"error: {name}: {exc}")
                status = 1
                continue
            if args.json:
                print(
                    json.dumps(
                        {
                            "path": result.path,
                            "sha256": result.sha256,
                            "autov2": result.short_hash,
                            "cached": result.cached,
                        }
                    )
                )
            else:
                print(f"{result.sha256}  {result.short_hash}  {result.path}")
    return status
