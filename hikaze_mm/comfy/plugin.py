"""Hikaze Model Manager inside ComfyUI: the library on ComfyUI's own server, under /hikaze/.

``setup(server, folder_paths, args)`` runs while ComfyUI imports its custom nodes (the
repository's root ``__init__.py`` calls it), because ComfyUI freezes its router when it
starts: a sub-app added later answers 404, and one added from ``on_startup`` breaks the
prefix. It

* builds the configuration from ComfyUI's: the data folder ``<user dir>/hikaze`` (or
  ``$HIKAZE_DATA_DIR``), every model folder ComfyUI knows (``folder_names_and_paths``,
  which includes ``extra_model_paths.yaml``) as a root typed by its key, plus
  ``$HIKAZE_MODEL_ROOTS``; the address ComfyUI listens on, so our host guard accepts what
  ComfyUI serves;
* opens the library and mounts the API and UI at ``/hikaze``; binds the nodes to it. A
  library on a database server (``HIKAZE_DB_URL``) opens in a thread of its own
  (``BackgroundOpen``): ComfyUI's start-up never waits on the server, and until it is
  open our routes answer 503 and the nodes fail, both saying it is opening;
* once ComfyUI has started, runs the first scan in the background, hashing and promoting
  new files unless ``HIKAZE_AUTO_HASH=0``, with progress on ComfyUI's websocket
  (``hikaze.scan``); start-up never waits for it;
* reports each download's progress on the websocket (``hikaze.download``: its view);
* closes the library when the process exits (ComfyUI runs no aiohttp cleanup).

A library that cannot open (a corrupt database, a folder that cannot be written, a schema
from a newer release, a missing dependency, a server that cannot be reached) never stops
ComfyUI: our routes answer 503 with
the reason, the nodes fail with it, and the log says it once.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from hikaze_mm.comfy.context import CONTEXT
from hikaze_mm.comfy.credit_lookup import LibraryCredits
from hikaze_mm.config import Config, ModelRoot
from hikaze_mm.database.errors import StorageError
from hikaze_mm.database.open import backend_of, shown_location
from hikaze_mm.library.resolver import ModelResolver
from hikaze_mm.model_types import canonical_type
from hikaze_mm.params import TRUE_WORDS

log = logging.getLogger("hikaze_mm.comfy")

PREFIX = "/hikaze"
# ComfyUI folder keys that hold no models.
NOT_MODELS = frozenset({"custom_nodes", "configs"})
EVENT_SCAN = "hikaze.scan"
EVENT_DOWNLOAD = "hikaze.download"
# The library's committed changes (``GET /hikaze/api/events``' events, kind included).
EVENT_CHANGED = "hikaze.changed"
LISTENER_READY_S = 5.0
SCAN_ENDED = frozenset({"done", "failed", "cancelled"})


# ---------------------------------------------------------------- configuration
def roots_from_comfy(
    folders: Mapping[str, Any], extra: Iterable[ModelRoot] = ()
) -> tuple[ModelRoot, ...]:
    """Model roots from ComfyUI's ``folder_names_and_paths`` (key -> (paths, extensions)).

    Each existing folder becomes a root typed by its key. A folder two keys share
    (``unet`` and ``diffusion_models``, ``clip`` and ``text_encoders``) is scanned once,
    under the key named like the folder when there is one, else the first key. ``extra``
    roots follow, unless ComfyUI's list has their folder already.
    """
    chosen: dict[Path, str] = {}
    for key, entry in folders.items():
        if key in NOT_MODELS:
            continue
        paths = entry[0] if isinstance(entry, (tuple, list)) and entry else []
        for raw in paths:
            folder = Path(raw).expanduser().resolve()
            if not folder.is_dir():
                continue
            if folder not in chosen or folder.name == key:
                chosen[folder] = key
    roots = [ModelRoot(path, canonical_type(key)) for path, key in chosen.items()]
    roots += [r for r in extra if r.path not in chosen]
    return tuple(dict.fromkeys(roots))


def listen_host(listen: str | None) -> str:
    """The host our guard compares with: the first non-loopback address ComfyUI listens on
    (then any Host it serves is accepted, as ComfyUI accepts it), else its loopback one."""
    from hikaze_mm.config import is_loopback_name

    addresses = [a.strip() for a in (listen or "127.0.0.1").split(",") if a.strip()]
    for address in addresses:
        if not is_loopback_name(address):
            return address
    return addresses[0] if addresses else "127.0.0.1"


def comfy_config(
    folders: Mapping[str, Any],
    user_dir: str,
    listen: str | None,
    port: int,
    env: Mapping[str, str] | None = None,
) -> Config:
    env = os.environ if env is None else env
    data_dir = env.get("HIKAZE_DATA_DIR") or str(Path(user_dir) / "hikaze")
    extra = [ModelRoot.parse(s) for s in env.get("HIKAZE_MODEL_ROOTS", "").split(os.pathsep) if s]
    config = Config.load(
        data_dir=data_dir,
        host=listen_host(listen),
        port=port,
        env={k: v for k, v in env.items() if k != "HIKAZE_MODEL_ROOTS"},
    )
    return dataclasses.replace(config, model_roots=roots_from_comfy(folders, extra))


def auto_hash(env: Mapping[str, str] | None = None) -> bool:
    """Whether the start-up scan hashes and promotes new files (``HIKAZE_AUTO_HASH``)."""
    value = (os.environ if env is None else env).get("HIKAZE_AUTO_HASH", "1")
    return value.strip().lower() in TRUE_WORDS


def name_lookup(folder_paths: Any) -> Callable[[str, str], str | None]:
    """A node's model name in ComfyUI's folder for its type: as given (``sub/x.safetensors``),
    else the file whose name, or name without extension (``x``, ``sub/x``), is the name."""

    def find(folder: str, name: str) -> str | None:
        path = folder_paths.get_full_path(folder, name)
        if path:
            return path
        wanted = name.replace("\\", "/")
        for candidate in folder_paths.get_filename_list(folder):
            plain = candidate.replace("\\", "/")
            if wanted in (Path(plain).stem, Path(plain).name, os.path.splitext(plain)[0]):
                return folder_paths.get_full_path(folder, candidate)
        return None

    return find


# ---------------------------------------------------------------- a broken library
def broken_app(reason: str) -> web.Application:
    """Every route answers 503 with the reason (ComfyUI itself keeps working)."""

    async def unavailable(_request: web.Request) -> web.Response:
        return web.json_response(
            {"error": "Hikaze Model Manager unavailable", "detail": reason}, status=503
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", unavailable)
    return app


def describe(exc: BaseException) -> str:
    detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
    if isinstance(exc, ImportError):
        return f"a dependency is missing ({detail}); run pip install -r requirements.txt"
    if detail.startswith("cannot open the library"):
        return detail
    return f"the library cannot open: {detail}"


# ---------------------------------------------------------------- setup
def setup(server: Any, folder_paths: Any, args: Any, env: Mapping[str, str] | None = None):
    """Open the library and mount it on ComfyUI's app; never raises. A library in a file
    opens here (the services, or None); one on a database server opens in the background
    (a ``BackgroundOpen``), so that ComfyUI's start-up never waits on the server."""
    try:
        config = comfy_config(
            folder_paths.folder_names_and_paths,
            folder_paths.get_user_directory(),
            getattr(args, "listen", None),
            int(getattr(args, "port", 8188)),
            env,
        )
    except Exception as exc:
        mount_broken(server, describe(exc))
        return None
    if on_server(config):
        return BackgroundOpen(server, folder_paths, config, auto_hash(env))
    try:
        services = _open(config)
    except LibraryInUse as busy:
        _read_only(busy, folder_paths)
        mount_broken(server, busy.reason, nodes_work=True)
        return None
    except Exception as exc:
        mount_broken(server, describe(exc))
        return None
    from hikaze_mm.server.app import mount

    mount(server.app, PREFIX, services)
    _serve(server, services, folder_paths)
    _started(config, "")
    hashing = auto_hash(env)

    async def first_scan(_app: web.Application) -> None:
        _first_scan(services, hashing)

    server.app.on_startup.append(first_scan)  # ComfyUI's app: its start-up, not ours
    return services


def on_server(config: Config) -> bool:
    """Whether the library is on a database server (opened in the background); a URL that
    no backend serves fails at once, as a library in a file does."""
    try:
        return backend_of(config)[0] != "sqlite"
    except StorageError:
        return False


def _started(config: Config, how: str) -> None:
    """The start-up line: where the library is (a server's URL without its password)."""
    log.info(
        "Hikaze Model Manager: %s, %d model folders, at %s/%s",
        shown_location(config),
        len(config.model_roots),
        PREFIX,
        how,
    )


def _serve(server: Any, services: Any, folder_paths: Any) -> None:
    """The open library at work in ComfyUI: the nodes bound to it, progress on the
    websocket, closed at exit."""
    _bind(services, folder_paths, writes=True)
    _remember_output(services, folder_paths)

    def notify(status: dict[str, Any]) -> None:
        """Every scan's progress (start-up, API, watcher) on ComfyUI's websocket, in the
        shape of GET /hikaze/api/scan/status."""
        running = status.get("phase") not in SCAN_ENDED
        server.send_sync(EVENT_SCAN, {**status, "running": running})

    services.scanner.listener = notify
    # Each download's progress (its view, as GET /hikaze/api/downloads/{id} answers it).
    services.downloads.add_listener(lambda view: server.send_sync(EVENT_DOWNLOAD, view))
    # Each committed change: ``{kind, keys, bulk, host}``.
    services.changes.add_listener(
        lambda change: server.send_sync(EVENT_CHANGED, {"kind": change.kind, **change.data()})
    )
    # A catalog's listener connects first (this thread: the background opening's, on a
    # server), so the first scan's changes are heard.
    services.changes.wait_ready(LISTENER_READY_S)
    atexit.register(services.close)


def _first_scan(services: Any, hashing: bool) -> None:
    """The first scan and the watcher, started (neither waits)."""
    try:
        services.scanner.start(immediate_hashing=hashing)
    except Exception as exc:  # a scan started by a client already, or no roots
        log.info("hikaze: no start-up scan: %s", getattr(exc, "detail", exc))
    try:  # then follow the folders (HIKAZE_WATCH=0: off, =poll: on a clock)
        services.start_watching(immediate_hashing=hashing)
    except Exception as exc:  # never stops ComfyUI
        log.warning("hikaze: cannot watch the model folders: %s", exc)


class BackgroundOpen:
    """A library on a database server, opened by a thread of its own while ComfyUI starts.

    Our routes are mounted at once: until the library is open each answers 503 saying it
    is opening, and the nodes fail saying the same. Opened, it works as a library in a file
    does (``_serve``); a server that cannot be reached (psycopg's ``connect_timeout``:
    ``CONNECT_TIMEOUT_S``) leaves the routes answering 503 with the reason, the nodes
    failing with it, and one line in the log. Nothing retries: restart ComfyUI.
    """

    def __init__(self, server: Any, folder_paths: Any, config: Config, hashing: bool) -> None:
        from hikaze_mm.server.app import mount_later

        self.services: Any = None
        waiting = f"the library at {shown_location(config)} is still opening"
        CONTEXT.resolver, CONTEXT.broken = None, waiting
        self.slot = mount_later(server.app, PREFIX, config, waiting)
        self._thread = threading.Thread(
            target=self._run,
            args=(server, folder_paths, config, hashing),
            name="hikaze-open",
            daemon=True,
        )
        self._thread.start()
        _started(config, " (opening in the background)")

    def _run(self, server: Any, folder_paths: Any, config: Config, hashing: bool) -> None:
        try:
            services = _open(config)
        except LibraryInUse as busy:
            _read_only(busy, folder_paths)
            self.slot.fail(busy.reason)
            log.error("Hikaze Model Manager is unavailable: %s", busy.reason)
            return
        except Exception as exc:
            reason = describe(exc)
            CONTEXT.broken = reason
            self.slot.fail(reason)
            log.error("Hikaze Model Manager is unavailable: %s", reason)
            return
        _serve(server, services, folder_paths)
        self.services = services
        self.slot.fill(services)
        _first_scan(services, hashing)
        services.resume_migration()
        log.info("Hikaze Model Manager: the library is open")

    def wait(self, timeout: float | None = None) -> Any:
        """The services once the attempt has ended (None if it failed), or None at the
        timeout."""
        self._thread.join(timeout)
        return self.services


class LibraryInUse(Exception):
    """Another process writes the library: ComfyUI gets it read-only, for its nodes."""

    def __init__(self, reason: str, reader: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reader = reader


def _open(config: Config):
    """The library as its one writer; when another process holds it, read-only."""
    from hikaze_mm.services import LibraryBusyError, Services

    try:
        return Services.open(config, access="write", command="comfyui")
    except LibraryBusyError as exc:
        reader = Services.open(config, access="read")
        raise LibraryInUse(
            f"{exc.detail}; ComfyUI's nodes use the library read-only meanwhile", reader
        ) from None


def _read_only(busy: LibraryInUse, folder_paths: Any) -> None:
    """Another process writes the library: the nodes read it, closed at exit."""
    _bind(busy.reader, folder_paths, writes=False)
    atexit.register(busy.reader.close)


def _bind(services: Any, folder_paths: Any, *, writes: bool) -> None:
    """Give the nodes the library: resolution, trigger words, the save node's credits and
    (when this process writes the library) use tracking, relinks and recorded generations."""
    find = name_lookup(folder_paths)
    CONTEXT.resolver = ModelResolver(
        services.db,
        services.hashes,
        lambda: services.config.model_roots,
        find,
        relink=writes,
    )
    CONTEXT.mark_used = services.models.mark_used if writes else None
    CONTEXT.trigger_words = services.models.trigger_words
    credits = LibraryCredits(services.db, services.hashes)
    CONTEXT.credit_model, CONTEXT.credit_file = credits.by_sha, credits.by_path
    CONTEXT.find_file = find
    CONTEXT.record_generation = generation_recorder(services, writes)
    CONTEXT.broken = None


def generation_recorder(services: Any, writes: bool) -> Callable[..., int] | None:
    """What ``CONTEXT.record_generation`` calls: ``GenerationsService.record`` with the
    node's ``Parameters`` and ``Resource``s as plain values, when this process writes the
    library and ``HIKAZE_RECORD_GENERATIONS`` is on; else None."""
    if not writes or not services.config.record_generations:
        return None
    record = services.generations.record

    def record_generation(
        file_rel: str, params: Any, resources: Sequence[Any], extra: Mapping[str, Any]
    ) -> int:
        values = {**dataclasses.asdict(params), **extra}
        used = [
            {"sha256": r.sha256, "role": r.role, "name": r.name, "weight": r.weight}
            for r in resources
        ]
        return record(file_rel, values, used)

    return record_generation


def _remember_output(services: Any, folder_paths: Any) -> None:
    """ComfyUI's output folder, where HikazeSaveImage's generations are served from (a
    standalone ``serve`` of this library uses it too); ``HIKAZE_OUTPUT_DIR`` wins."""
    if services.config.output_dir is not None:
        return
    try:
        services.generations.remember_output_dir(Path(folder_paths.get_output_directory()))
    except Exception as exc:  # never stops ComfyUI
        log.warning("hikaze: cannot record ComfyUI's output folder: %s", exc)


def mount_broken(server: Any, reason: str, *, nodes_work: bool = False) -> None:
    """Our routes answer 503 with the reason; the nodes fail with it unless they still
    work (read-only beside another writer). Said once in ComfyUI's log."""
    if not nodes_work:
        CONTEXT.resolver = None
        CONTEXT.broken = reason
    log.error("Hikaze Model Manager is unavailable: %s", reason)
    server.app.add_subapp(PREFIX, broken_app(reason))
