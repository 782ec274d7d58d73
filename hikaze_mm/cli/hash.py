"""``hikaze-mm hash FILE...``: print SHA-256 and AutoV2 hashes.

Where a library exists, its hash cache is used, and filled when this process may write
the library; where another process holds it or its folder is read-only, the cache is
only read. Without a library the files are hashed and nothing is created. Only regular
files are hashed (a FIFO or a device is refused, never read).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hikaze_mm.cli.common import add_config_options, add_json_option
from hikaze_mm.cli.progress import ByteProgress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "hash",
        help="print the SHA-256 of files (uses the hash cache)",
        description="Print the SHA-256 and AutoV2 short hash of each file. The library's hash "
        "cache is used if there is a library (and filled if this process may write it); "
        "without one, nothing is created. Only regular files are read.",
    )
    add_config_options(p)
    p.add_argument("files", nargs="+", metavar="FILE", help="the files to hash")
    add_json_option(p, "one JSON object per file")
    p.set_defaults(func=run)


class _Hashers:
    """The cache to read (or None), and the service that hashes (and fills the cache when
    it is the library's)."""

    def __init__(self, config: Any) -> None:
        from hikaze_mm.cli import context
        from hikaze_mm.errors import HikazeError
        from hikaze_mm.hashing import HashService
        from hikaze_mm.services import LibraryBusyError, LibraryReadOnlyError, Services

        self.services = None
        self.cache = None
        self._own: HashService | None = None
        if not config.db_path.exists():  # no library: hash without a cache
            self.hasher = self._own = HashService(None)
            return
        try:
            self.services = Services.open(config, access="write", create=False, command="hash")
            self.hasher = self.services.hashes
        except (LibraryBusyError, LibraryReadOnlyError):  # read the cache, write nothing
            self.services = context.open_reader(config)
            self.cache = self.services.hashes
            self.hasher = self._own = HashService(None)
        except HikazeError as exc:
            raise context.as_cli_error(exc) from None

    def hash(self, name: str, bar: ByteProgress) -> Any:
        if self.cache is not None:
            hit = self.cache.lookup_cache(name)
            if hit is not None:
                return hit
            return self.hasher.hash_file(name, progress=bar.update, use_cache=False)
        return self.hasher.hash_file(name, progress=bar.update)

    def close(self) -> None:
        if self._own is not None:
            self._own.close()
        if self.services is not None:
            self.services.close()


def run(args: argparse.Namespace) -> int:
    from hikaze_mm.cli import context
    from hikaze_mm.hashing import FileChangedError, NotARegularFileError

    hashers = _Hashers(context.config_from_args(args))
    status = 0
    try:
        for name in args.files:
            try:
                with ByteProgress(name) as bar:
                    result = hashers.hash(name, bar)
            except NotARegularFileError as exc:
                status = 1
                _failed(args, name, "Not a regular file", exc.strerror)
                continue
            except OSError as exc:
                status = 1
                _failed(args, name, "Cannot read", exc.strerror or str(exc))
                continue
            except FileChangedError as exc:
                status = 1
                _failed(args, name, "File changed", str(exc))
                continue
            if args.json:
                record = {
                    "path": result.path,
                    "sha256": result.sha256,
                    "autov2": result.short_hash,
                    "cached": result.cached,
                }
                print(json.dumps(record))
            else:
                print(f"{result.sha256}  {result.short_hash}  {result.path}")
    finally:
        hashers.close()
    return status


def _failed(args: argparse.Namespace, name: str, error: str, detail: str) -> None:
    if args.json:
        print(json.dumps({"path": name, "error": error, "detail": f"{name}: {detail}"}))
    else:
        print(f"hikaze-mm: error: {name}: {detail}", file=sys.stderr)
