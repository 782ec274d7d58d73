"""``hikaze-mm serve``: run the HTTP API and web UI."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from hikaze_mm.cli.common import add_config_options, config_from_args, open_library
from hikaze_mm.server import create_app
from hikaze_mm.server.middleware import _is_loopback_name


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the web UI and HTTP API")
    add_config_options(p)
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8789)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not _is_loopback_name(config.host):
        logging.warning("binding %s: other machines can reach this server", config.host)
    services = open_library(config)
    print(f"Hikaze Model Manager: data in {config.data_dir}")
    print(f"Serving on http://{config.host}:{config.port}/  (Ctrl+C to stop)", flush=True)
    web.run_app(create_app(services), host=config.host, port=config.port, print=None)
    return 0
