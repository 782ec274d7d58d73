"""``hikaze-mm download``: download a model into the library, verified by SHA-256.

``download SOURCE [--type T] [--folder DIR] [--sha256 H]`` queues the download and
follows it with a progress bar to its end; ``download --list`` shows the queue and the
history. While a server holds the library, the download is queued there and followed
here (Ctrl-C stops the following; the download goes on in the server). Without one, it
runs in this process; Ctrl-C leaves it queued, to resume from its part file next time.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from hikaze_mm.cli.common import FAILURE, CliError, add_config_options, add_json_option, note
from hikaze_mm.cli.progress import ByteProgress

OVER = ("done", "failed", "cancelled", "paused")
POLL_SECONDS = 0.2
INTERRUPTED = 130


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "download",
        help="download a model by URL, Civitai or Hugging Face source, or hash",
        description="Download a model into its type's folder under the model roots, "
        "verified by SHA-256 while it is written, and add it to the library. SOURCE is a "
        "URL, a Civitai model page, civitai:VERSION, an AIR, hf:REPO/PATH or sha256:HASH. "
        "A model the library holds already is not downloaded again.",
    )
    add_config_options(p)
    p.add_argument("source", nargs="?", metavar="SOURCE", help="what to download")
    p.add_argument("--type", help="the model's folder key (loras, checkpoints, ...)")
    p.add_argument("--folder", help="the folder to save into (below a model root)")
    p.add_argument("--sha256", help="the file's expected SHA-256 (verified)")
    p.add_argument("--list", action="store_true", help="show the queue and the history")
    add_json_option(p, "the download (or the list)")
    p.set_defaults(func=run_download)


def run_download(args: argparse.Namespace) -> int:
    if args.list == bool(args.source):
        raise CliError("give either a SOURCE or --list")
    if args.list and (args.type or args.folder or args.sha256):
        raise CliError("--list takes no --type, --folder or --sha256")
    from hikaze_mm.cli import context

    config = context.config_from_args(args)
    owner = context.holder(config)
    if owner is not None and owner.address:
        result = _in_server(owner, args)
        if result is not None:
            return result
    if args.list:
        with context.using(context.open_reader(config)) as services:
            return _print_list(services.downloads.list(), args)
    services = context.open_writer(config, "download", create=False, task="download")
    with context.using(services):
        queued = services.downloads.enqueue(
            args.source, type=args.type, folder=args.folder, sha256=args.sha256
        )
        view = _follow(lambda: services.downloads.get(queued["id"]), args, local=True)
    return _finish(view, args)


def _in_server(owner: Any, args: argparse.Namespace) -> int | None:
    """Queue (or list) in the server that holds the library; None if it does not answer."""
    from hikaze_mm.cli.remote import Remote, Unreachable

    remote = Remote(owner)
    try:
        if args.list:
            return _print_list(remote.get("/api/downloads"), args)
        body = {"source": args.source, "type": args.type, "folder": args.folder}
        body["sha256"] = args.sha256
        queued = remote.post("/api/downloads", {k: v for k, v in body.items() if v})
    except Unreachable:
        return None
    note(f"the library is served by {owner.describe()}: downloading there")
    view = _follow(lambda: remote.get(f"/api/downloads/{queued['id']}"), args, local=False)
    return _finish(view, args)


def _follow(get: Callable[[], dict[str, Any]], args: argparse.Namespace, *, local: bool) -> Any:
    """Poll the download until it is over, drawing its bar."""
    try:
        with ByteProgress(args.source[:40], enabled=None if not args.json else False) as bar:
            while True:
                view = get()
                bar.update(view["bytes_done"] or 0, view["bytes_total"] or 0)
                if view["status"] in OVER:
                    return view
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        where = "it resumes on the next start" if local else "it goes on in the server"
        raise CliError(
            f"stopped following the download; {where}", INTERRUPTED, "Interrupted"
        ) from None


def _finish(view: dict[str, Any], args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
        return 0 if view["status"] == "done" else FAILURE
    if view["status"] != "done":
        reason = view["error"] or view["status"]
        raise CliError(f"download {view['id']} {view['status']}: {reason}", FAILURE)
    print(f"{view['sha256']}  {view['path']}")
    return 0


def _print_list(views: list[dict[str, Any]], args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(views, ensure_ascii=False, indent=2))
        return 0
    for v in views:
        total = f"/{v['bytes_total']}" if v["bytes_total"] else ""
        where = v["path"] or v["error"] or v["source"]
        print(f"{v['id']:>5}  {v['status']:9}  {v['bytes_done'] or 0}{total}  {where}")
    if not views:
        print("no downloads")
    return 0
