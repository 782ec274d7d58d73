"""``hikaze-mm serve``: run the HTTP API and web UI.

In this order, so that a failure changes nothing: refuse when another process holds the
library; bind the address (a port in use, or a host that does not resolve, is one line);
open the library as its one writer (creating it if needed); start serving, write the
address into the lock file, and only then print "Serving on ...".
"""

from __future__ import annotations

import argparse

from hikaze_mm.cli.common import (
    FAILURE,
    CliError,
    add_config_options,
    bounded_int,
    note,
)
from hikaze_mm.policy import MAX_PORT

BACKLOG = 128


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the web UI and HTTP API",
        description="Serve the web UI and HTTP API. Creates the library if there is none. One "
        "process writes a library: a second serve on it is refused, and scan, promote --all "
        "and status given beside it run through this server.",
    )
    add_config_options(p)
    p.add_argument("--host", help="address to bind (default 127.0.0.1, or $HIKAZE_HOST)")
    p.add_argument(
        "--port",
        type=bounded_int("--port", 0, MAX_PORT),
        help="port (default 8789, or $HIKAZE_PORT; 0: any free port)",
    )
    p.add_argument(
        "--no-watch",
        action="store_true",
        help="do not follow the model roots between scans (or $HIKAZE_WATCH=0; "
        "$HIKAZE_WATCH=poll rescans them on a clock instead of watching)",
    )
    p.add_argument(
        "--rescan-interval",
        type=positive_seconds,
        metavar="SECONDS",
        help="seconds between rescans of a root that cannot be watched, such as a network "
        "share (default 300, or $HIKAZE_RESCAN_INTERVAL)",
    )
    p.set_defaults(func=run)


def positive_seconds(text: str) -> float:
    """An argparse ``type``: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r:.40}")
    return value


def _bind(host: str, port: int) -> list:
    """Listening sockets for every address ``host`` resolves to (one port for all)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CliError(f"cannot serve on {host!r}: {reason}", FAILURE) from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            if hasattr(socket, "SO_REUSEADDR") and not hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:  # the same free port on every address
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise CliError(f"cannot listen on {where}: {exc.strerror or exc}", FAILURE) from None
    return sockets


def _library_line(config) -> str:
    """Where the library is: its data folder, and a server's URL without its password."""
    from hikaze_mm.database.open import shown_location

    if config.database_url:
        return f"library at {shown_location(config)}, data in {config.data_dir}"
    return f"data in {config.data_dir}"


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from hikaze_mm.cli import context
    from hikaze_mm.config import is_loopback_name

    config = context.config_from_args(args, serving=True)
    owner = context.holder(config)
    if owner is not None:  # before binding: its port may be the one we were asked for
        raise CliError(
            f"the library in {config.data_dir} is already held by {owner.describe()}: "
            + context.advice_for(owner, "use it"),
            FAILURE,
            "Library in use",
        )
    sockets = _bind(config.host, config.port)
    try:
        services = context.open_writer(config, "serve", create=True, task="use it")
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not is_loopback_name(config.host):
        logging.warning("binding %s: other machines can reach this server", config.host)
    asyncio.run(_serve(services, sockets))
    return 0


async def _serve(services, sockets: list) -> None:
    import asyncio
    import contextlib
    import signal

    from aiohttp import web

    from hikaze_mm.cli.remote import format_address
    from hikaze_mm.server import create_app

    config = services.config
    try:
        runner = web.AppRunner(create_app(services))  # closes the services at cleanup
    except BaseException:
        services.close()
        raise
    try:
        await runner.setup()
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        port = sockets[0].getsockname()[1]
        address = format_address(config.host, port)
        services.lock.set_info(address=address)
        services.start_watching()  # new, moved and deleted files reach the library alone
        print(f"Hikaze Model Manager: {_library_line(config)}")
        print(f"Serving on http://{address}/  (Ctrl+C to stop)", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        for sock in sockets:
            sock.close()
    note("stopped")
