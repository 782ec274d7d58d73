"""Runtime configuration: data paths, model roots, server address and limits.

Precedence for every setting: explicit argument (CLI flag) > environment > default.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from hikaze_mm.model_types import canonical_type
from hikaze_mm.policy import DEFAULT_WORKER_STRATEGY, MAX_PORT, WORKER_STRATEGIES
from hikaze_mm.process_lock import LOCK_FILE_NAME

DEFAULT_HOST = "127.0.0.1"
DEFAULT_RESCAN_INTERVAL = 300.0
WATCH_MODES = ("on", "off", "poll")
DEFAULT_PORT = 8789
DB_FILE_NAME = "hikaze_mm.db"


def is_loopback_name(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 in brackets or not) is this machine."""
    if host in ("localhost", "localhost.") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ModelRoot:
    """A folder that holds model files.

    With ``type_key`` None the root is laid out like ComfyUI's ``models/`` folder: each
    first-level folder is a type key (``checkpoints/``, ``loras/``, ...). With a type key
    (given as ``loras=/path/to/loras``) every file below the root has that type.
    """

    path: Path
    type_key: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ModelRoot:
        """``DIR`` or ``TYPE=DIR``; ValueError for an empty spec, ``TYPE=`` or ``=DIR``.

        A ``=`` after a path separator is part of a folder name (``./a=b`` is a folder).
        """
        spec = spec.strip()
        if not spec:
            raise ValueError("empty model root")
        key, sep, rest = spec.partition("=")
        if sep and os.sep not in key and "/" not in key:
            if not key.strip():
                raise ValueError(f"model root {spec!r} has no type before '=' (use TYPE=DIR)")
            if not rest.strip():
                raise ValueError(f"model root {spec!r} has no folder after '=' (use TYPE=DIR)")
            return cls(Path(rest.strip()).expanduser().resolve(), canonical_type(key.strip()))
        return cls(Path(spec).expanduser().resolve(), None)


DEFAULT_CIVITAI_URL = "https://civitai.com"
DEFAULT_CIVITAI_NSFW_URL = "https://civitai.red"  # Civitai's NSFW models, since 2026
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class CivitaiSettings:
    """Lookups of models on Civitai by hash (``HIKAZE_CIVITAI_*``).

    ``auto`` governs only the automatic lookup of newly added models (off by default: a
    lookup sends the model's hash to a third party); an explicit request always runs.
    Images whose ``nsfwLevel`` is above ``max_nsfw`` (Civitai's levels: 1 PG, 2 PG-13,
    4 R, 8 X, 16 XXX) are not downloaded. The rest are limits a good client keeps.

    ``nsfw_url`` is the site a hash unknown to ``url`` is asked next (``nsfw_site``):
    None means civitai.red when ``url`` is Civitai's own and none for any other ``url``
    (a mirror, a stand-in); "" means none.
    """

    url: str = DEFAULT_CIVITAI_URL
    nsfw_url: str | None = None
    token: str | None = field(default=None, repr=False)
    auto: bool = False
    max_nsfw: int = 2
    requests_per_second: float = 2.0
    connect_timeout: float = 10.0
    timeout: float = 30.0  # a whole request, body included
    tries: int = 4  # per lookup, on 429 and 5xx answers
    backoff_seconds: float = 1.0  # the first wait after a 5xx (doubling each try)
    max_retry_after: float = 60.0  # the longest Retry-After honoured as given
    not_found_days: float = 7.0  # an unknown hash is not asked again for this long
    max_images: int = 4
    max_image_bytes: int = 16 * 1024 * 1024
    max_response_bytes: int = 8 * 1024 * 1024

    @property
    def nsfw_site(self) -> str | None:
        """The second site asked about hashes ``url`` does not know, or None."""
        if self.nsfw_url is None:
            return DEFAULT_CIVITAI_NSFW_URL if self.url == DEFAULT_CIVITAI_URL else None
        return self.nsfw_url or None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CivitaiSettings:
        """``HIKAZE_CIVITAI_URL``, ``_NSFW_URL`` (``off`` for none), ``_TOKEN``, ``_AUTO``
        and ``_MAX_NSFW``; ValueError names the variable at fault."""
        url = _site(env, "HIKAZE_CIVITAI_URL") or DEFAULT_CIVITAI_URL
        nsfw_url = _site(env, "HIKAZE_CIVITAI_NSFW_URL", off=True)
        auto = env.get("HIKAZE_CIVITAI_AUTO", "").strip().lower()
        if auto not in _TRUE + _FALSE:
            raise ValueError(f"HIKAZE_CIVITAI_AUTO must be 1 or 0, not {auto!r}")
        raw_nsfw = env.get("HIKAZE_CIVITAI_MAX_NSFW", "").strip() or "2"
        if not (raw_nsfw.isascii() and raw_nsfw.isdigit()) or not 1 <= int(raw_nsfw) <= 32:
            raise ValueError(
                f"HIKAZE_CIVITAI_MAX_NSFW must be a level from 1 to 32, not {raw_nsfw!r}"
            )
        return cls(
            url=url,
            nsfw_url=nsfw_url,
            token=env.get("HIKAZE_CIVITAI_TOKEN", "").strip() or None,
            auto=auto in _TRUE,
            max_nsfw=int(raw_nsfw),
        )


DEFAULT_HF_URL = "https://huggingface.co"


@dataclass(frozen=True)
class HfSettings:
    """Hugging Face, a source of downloads (``HIKAZE_HF_URL``, ``HIKAZE_HF_TOKEN``).

    The token (a gated or private repo needs one) is sent as ``Authorization: Bearer`` to
    this address only; it is never shown (not in ``repr``)."""

    url: str = DEFAULT_HF_URL
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HfSettings:
        """ValueError names the variable at fault."""
        return cls(
            url=_site(env, "HIKAZE_HF_URL") or DEFAULT_HF_URL,
            token=env.get("HIKAZE_HF_TOKEN", "").strip() or None,
        )


def _site(env: Mapping[str, str], key: str, *, off: bool = False) -> str | None:
    """An http(s) base address from ``env[key]`` (no trailing slash): None when unset,
    "" for ``off`` (if allowed); ValueError names ``key``."""
    url = env.get(key, "").strip()
    if not url:
        return None
    if off and url.lower() == "off":
        return ""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or parts.query or parts.fragment:
        either = " or off" if off else ""
        raise ValueError(f"{key} must be an http(s) address{either}, not {url!r}")
    return url.rstrip("/")


@dataclass(frozen=True)
class DownloadSettings:
    """Downloads: how many run at once (``HIKAZE_DOWNLOAD_CONCURRENCY``, default 2; the
    rest wait queued). Where they go below a type's folder is ``Config.download_template``."""

    concurrency: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DownloadSettings:
        raw = env.get("HIKAZE_DOWNLOAD_CONCURRENCY", "").strip() or "2"
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 16:
            raise ValueError(
                f"HIKAZE_DOWNLOAD_CONCURRENCY must be a number from 1 to 16, not {raw!r}"
            )
        return cls(concurrency=int(raw))


@dataclass(frozen=True)
class Config:
    data_dir: Path
    db_path: Path
    # The library's backend by URL (``database/open.py``; ``HIKAZE_DB_URL``, ``--db-url``):
    # ``postgresql://user@host/db``; None: the SQLite file db_path.
    database_url: str | None = None
    model_roots: tuple[ModelRoot, ...] = ()
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Largest JSON/form request body the API accepts.
    max_request_bytes: int = 2 * 1024 * 1024
    # Largest uploaded image, and the pixel count past which an image is a decompression bomb.
    max_image_bytes: int = 32 * 1024 * 1024
    max_image_pixels: int = 64_000_000
    # Read size of the SHA-256 service.
    hash_chunk_bytes: int = 4 * 1024 * 1024
    # Threads that hash files in parallel (hashlib releases the GIL).
    hash_workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    # One of WORKER_STRATEGIES: "merge" (fill gaps in the existing model), "skip" (leave it
    # pending, marked conflict), "override" or "delete".
    worker_conf_strategy: str = DEFAULT_WORKER_STRATEGY
    # Following the model roots between scans (library/watcher.py): "on" (file-system
    # events; roots that cannot be watched are polled), "poll" (every root polled) or "off";
    # and the seconds between two rescans of a polled root.
    watch: str = "on"
    rescan_interval: float = DEFAULT_RESCAN_INTERVAL
    civitai: CivitaiSettings = field(default_factory=CivitaiSettings)
    # Hugging Face's address and token, for downloads (``HIKAZE_HF_*``).
    hf: HfSettings = field(default_factory=HfSettings)
    # HikazeSaveImage records each image it saves (``HIKAZE_RECORD_GENERATIONS=0``: off).
    record_generations: bool = True
    # ComfyUI's output folder, where recorded generations live (``HIKAZE_OUTPUT_DIR``; the
    # ComfyUI plugin sets it from ComfyUI and the library remembers it for ``serve``).
    output_dir: Path | None = None
    downloads: DownloadSettings = field(default_factory=DownloadSettings)
    # Where downloads and "Move to template folder" put a model below its type's folder
    # (``HIKAZE_DOWNLOAD_TEMPLATE``, e.g. ``{base_model}/{author}``; library/path_template.py
    # checks and renders it); None: straight into the type's folder.
    download_template: str | None = None
    # This host's name in a shared catalog (``HIKAZE_HOST_NAME``; default: the machine's):
    # what the change events say they came from.
    host_name: str = "localhost"
    # The roots this host mounts by the name every host of a studio gives them
    # (``HIKAZE_ROOT_NAMES``: ``NAME=DIR`` pairs): below them the catalog stores
    # ``(name, relative path)`` (``database/locations.py``).
    root_names: tuple[tuple[str, Path], ...] = ()
    # Where the models' images are (``HIKAZE_IMAGES_DIR``; default ``<data>/images``): in a
    # studio, one folder on the NAS that every host points at.
    images_folder: Path | None = None
    # How long a claim on a pending row holds without a heartbeat (``pending/claims.py``;
    # ``HIKAZE_CLAIM_LEASE_SECONDS``): a host that died leaves its rows to others then.
    claim_lease_seconds: float = 60.0

    @property
    def images_dir(self) -> Path:
        return self.images_folder or self.data_dir / "images"

    @property
    def pending_images_dir(self) -> Path:
        return self.images_dir / "pending"

    @property
    def legacy_work_dir(self) -> Path:
        """Stage 1's work folder: the private copies of the legacy databases it reads."""
        return Path(f"{self.db_path}.legacy-snapshots")

    @property
    def legacy_import_lock_path(self) -> Path:
        """The lock one Stage 1 import at a time holds, across processes."""
        return Path(f"{self.db_path}.legacy-import.lock")

    @property
    def lock_path(self) -> Path:
        """The lock file of the one process that writes this library."""
        return self.data_dir / LOCK_FILE_NAME

    def root_for(self, path: str | os.PathLike[str]) -> ModelRoot | None:
        """The model root that holds ``path`` (symlinks resolved), or None."""
        try:
            real = Path(path).resolve()
        except (OSError, RuntimeError):
            return None
        for root in self.model_roots:
            if real.is_relative_to(root.path):
                return root
        return None

    def ensure_dirs(self) -> None:
        self.pending_images_dir.mkdir(parents=True, exist_ok=True)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)

    @classmethod
    def load(
        cls,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        db_path: str | os.PathLike[str] | None = None,
        model_roots: Sequence[str] | None = None,
        host: str | None = None,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        address_from_env: bool = True,
        **overrides: object,
    ) -> Config:
        """Build a config from arguments, then ``env`` (default ``os.environ``), then defaults.

        ValueError names the setting at fault. ``address_from_env=False`` leaves
        ``HIKAZE_HOST``, ``HIKAZE_PORT``, ``HIKAZE_WATCH`` and ``HIKAZE_RESCAN_INTERVAL``
        unread (for callers that do not serve).
        ``civitai`` (a CivitaiSettings) replaces the ``HIKAZE_CIVITAI_*`` settings, ``hf``
        (an HfSettings) the ``HIKAZE_HF_*`` ones, and ``downloads`` (a DownloadSettings)
        ``HIKAZE_DOWNLOAD_CONCURRENCY``.
        """
        env = os.environ if env is None else env
        data = Path(data_dir or env.get("HIKAZE_DATA_DIR") or "./data").expanduser().resolve()
        db = db_path or env.get("HIKAZE_DB_PATH")
        db_file = Path(db).expanduser().resolve() if db else data / DB_FILE_NAME
        root_names = _root_names(env)
        roots = _with_named(_model_roots(model_roots, env), root_names)
        overrides.update(_studio_settings(overrides, env))
        if port is not None:
            port_value = _check_port(port, "port")
        elif address_from_env and env.get("HIKAZE_PORT"):
            port_value = _parse_port(env["HIKAZE_PORT"], "HIKAZE_PORT")
        else:
            port_value = DEFAULT_PORT
        env_host = env.get("HIKAZE_HOST") if address_from_env else None
        _check_worker_strategy(overrides.get("worker_conf_strategy", DEFAULT_WORKER_STRATEGY))
        civitai = overrides.pop("civitai", None) or CivitaiSettings.from_env(env)
        overrides["hf"] = overrides.get("hf") or HfSettings.from_env(env)
        overrides.setdefault("downloads", DownloadSettings.from_env(env))
        # Settings of a serving process, unread (like the address) by commands that do not.
        overrides.update(_watch_settings(overrides, env if address_from_env else {}))
        overrides.update(_generation_settings(overrides, env))
        overrides.setdefault("download_template", _download_template(env))
        if overrides.get("database_url") is None:
            overrides["database_url"] = env.get("HIKAZE_DB_URL") or None
        overrides.setdefault("host_name", host_name(env.get("HIKAZE_HOST_NAME")))
        return cls(
            data_dir=data,
            db_path=db_file,
            model_roots=roots,
            root_names=root_names,
            host=host or env_host or DEFAULT_HOST,
            port=port_value,
            civitai=civitai,  # type: ignore[arg-type]
            **overrides,  # type: ignore[arg-type]
        )


MAX_HOST_NAME_CHARS = 64


def host_name(given: str | None) -> str:
    """``given`` (``HIKAZE_HOST_NAME``) checked: 1 to 64 printable characters; without it,
    the machine's host name."""
    if not given:
        return socket.gethostname()[:MAX_HOST_NAME_CHARS] or "localhost"
    if len(given) > MAX_HOST_NAME_CHARS or not given.isprintable() or given != given.strip():
        raise ValueError(
            f"HIKAZE_HOST_NAME must be 1 to {MAX_HOST_NAME_CHARS} printable characters "
            "without spaces at either end"
        )
    return given


def _model_roots(given: Sequence[str] | None, env: Mapping[str, str]) -> tuple[ModelRoot, ...]:
    """The roots given (``--models-root``), else ``HIKAZE_MODEL_ROOTS``; each once."""
    if given:
        specs, source = list(given), "--models-root"
    else:
        raw = env.get("HIKAZE_MODEL_ROOTS", "")
        specs, source = [s for s in raw.split(os.pathsep) if s], "HIKAZE_MODEL_ROOTS"
    try:
        return tuple(dict.fromkeys(ModelRoot.parse(s) for s in specs))
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


ROOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _studio_settings(overrides: dict[str, object], env: Mapping[str, str]) -> dict[str, object]:
    """``images_folder`` (``HIKAZE_IMAGES_DIR``) and ``claim_lease_seconds``
    (``HIKAZE_CLAIM_LEASE_SECONDS``): the overrides', else the environment's."""
    found: dict[str, object] = {}
    lease = env.get("HIKAZE_CLAIM_LEASE_SECONDS", "").strip()
    if lease and "claim_lease_seconds" not in overrides:
        found["claim_lease_seconds"] = _interval(lease, "HIKAZE_CLAIM_LEASE_SECONDS")
    images = env.get("HIKAZE_IMAGES_DIR", "").strip()
    if images and "images_folder" not in overrides:
        found["images_folder"] = Path(images).expanduser().resolve()
    return found


def _root_names(env: Mapping[str, str]) -> tuple[tuple[str, Path], ...]:
    """``HIKAZE_ROOT_NAMES``: ``NAME=DIR`` pairs separated by ``os.pathsep``; a name is
    letters, digits, ``_``, ``.`` and ``-`` (64 at most), each name and folder once."""
    found: dict[str, Path] = {}
    for spec in filter(
        None, (s.strip() for s in env.get("HIKAZE_ROOT_NAMES", "").split(os.pathsep))
    ):
        name, sep, folder = spec.partition("=")
        name, folder = name.strip(), folder.strip()
        if not sep or not folder:
            raise ValueError(f"HIKAZE_ROOT_NAMES: {spec!r} is not NAME=DIR")
        if not ROOT_NAME.fullmatch(name):
            raise ValueError(
                f"HIKAZE_ROOT_NAMES: {name!r} is not a root name (1 to 64 letters, digits, "
                "'_', '.' or '-', starting with a letter or digit)"
            )
        path = Path(folder).expanduser().resolve()
        if path == Path(path.anchor):
            raise ValueError(f"HIKAZE_ROOT_NAMES: {name} cannot be the file system's root")
        if name in found or path in found.values():
            raise ValueError(f"HIKAZE_ROOT_NAMES: {name!r} or its folder is named twice")
        found[name] = path
    return tuple(found.items())


def _with_named(
    roots: tuple[ModelRoot, ...], named: tuple[tuple[str, Path], ...]
) -> tuple[ModelRoot, ...]:
    """The model roots, and after them each named root no model root holds (a named root
    is a root in ComfyUI's layout)."""
    extra = [
        ModelRoot(path)
        for _name, path in named
        if not any(path.is_relative_to(root.path) for root in roots)
    ]
    return roots + tuple(extra)


def _watch_settings(overrides: dict[str, object], env: Mapping[str, str]) -> dict[str, object]:
    """``watch`` and ``rescan_interval``: the overrides' (taken out of them), else the
    environment's (``HIKAZE_WATCH``, ``HIKAZE_RESCAN_INTERVAL``), else the defaults."""
    watch = overrides.pop("watch", None)
    watch = _watch_mode(env.get("HIKAZE_WATCH", "on")) if watch is None else watch
    if watch not in WATCH_MODES:
        raise ValueError(f"watch must be one of {', '.join(WATCH_MODES)}, not {watch!r}")
    interval = overrides.pop("rescan_interval", None)
    if interval is None:
        raw = env.get("HIKAZE_RESCAN_INTERVAL", "").strip()
        interval = _interval(raw, "HIKAZE_RESCAN_INTERVAL") if raw else None
    interval = DEFAULT_RESCAN_INTERVAL if interval is None else float(interval)  # type: ignore[arg-type]
    if not interval > 0:
        raise ValueError(
            f"the rescan interval must be a positive number of seconds, not {interval}"
        )
    return {"watch": watch, "rescan_interval": interval}


def _generation_settings(overrides: dict[str, object], env: Mapping[str, str]) -> dict[str, object]:
    """``record_generations`` (``HIKAZE_RECORD_GENERATIONS``: 1 or 0) and ``output_dir``
    (``HIKAZE_OUTPUT_DIR``): the overrides', else the environment's."""
    record = overrides.pop("record_generations", None)
    if record is None:
        raw = env.get("HIKAZE_RECORD_GENERATIONS", "1").strip().lower()
        if raw not in _TRUE and raw not in ("0", "off", "false", "no"):
            raise ValueError(f"HIKAZE_RECORD_GENERATIONS must be 1 or 0, not {raw!r}")
        record = raw in _TRUE
    output = overrides.pop("output_dir", None) or env.get("HIKAZE_OUTPUT_DIR") or None
    output_dir = Path(str(output)).expanduser().resolve() if output else None
    return {"record_generations": bool(record), "output_dir": output_dir}


def _download_template(env: Mapping[str, str]) -> str | None:
    """``HIKAZE_DOWNLOAD_TEMPLATE``, trimmed; None when unset or blank."""
    return env.get("HIKAZE_DOWNLOAD_TEMPLATE", "").strip() or None


def _watch_mode(raw: str) -> str:
    """``HIKAZE_WATCH``: 1/on/true (watch), 0/off/false (no), or poll."""
    value = raw.strip().lower()
    if value in ("", "1", "on", "true", "yes"):
        return "on"
    if value in ("0", "off", "false", "no"):
        return "off"
    if value == "poll":
        return "poll"
    raise ValueError(f"HIKAZE_WATCH must be 1, 0 or poll, not {raw!r}")


def _interval(raw: str, name: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds, not {raw!r}")
    return value


def _check_port(value: int, name: str) -> int:
    if not 0 <= value <= MAX_PORT:
        raise ValueError(f"{name} must be between 0 and {MAX_PORT}, not {value}")
    return value


def _parse_port(raw: str, name: str) -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name} must be an integer between 0 and {MAX_PORT}, not {raw!r}")
    return _check_port(int(text), name)


def _check_worker_strategy(value: object) -> None:
    if value not in WORKER_STRATEGIES:
        choices = ", ".join(WORKER_STRATEGIES)
        raise ValueError(f"worker conflict policy must be one of {choices}, not {value!r}")
