"""Runtime configuration: data paths, model roots, server address and limits.

Precedence for every setting: explicit argument (CLI flag) > environment > default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hikaze_mm.model_types import canonical_type
from hikaze_mm.process_lock import LOCK_FILE_NAME

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8789
DB_FILE_NAME = "hikaze_mm.db"
MAX_PORT = 65535
# What the background worker does when a pending model's content is already in the library.
WORKER_STRATEGIES = ("merge", "skip", "override", "delete")


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


@dataclass(frozen=True)
class Config:
    data_dir: Path
    db_path: Path
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
    worker_conf_strategy: str = "merge"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def pending_images_dir(self) -> Path:
        return self.images_dir / "pending"

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
        ``HIKAZE_HOST`` and ``HIKAZE_PORT`` unread (for callers that do not serve).
        """
        env = os.environ if env is None else env
        data = Path(data_dir or env.get("HIKAZE_DATA_DIR") or "./data").expanduser().resolve()
        db = db_path or env.get("HIKAZE_DB_PATH")
        db_file = Path(db).expanduser().resolve() if db else data / DB_FILE_NAME
        if model_roots:
            root_specs, source = list(model_roots), "--models-root"
        else:
            raw = env.get("HIKAZE_MODEL_ROOTS", "")
            root_specs, source = [s for s in raw.split(os.pathsep) if s], "HIKAZE_MODEL_ROOTS"
        try:
            roots = tuple(dict.fromkeys(ModelRoot.parse(s) for s in root_specs))
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
        if port is not None:
            port_value = _check_port(port, "port")
        elif address_from_env and env.get("HIKAZE_PORT"):
            port_value = _parse_port(env["HIKAZE_PORT"], "HIKAZE_PORT")
        else:
            port_value = DEFAULT_PORT
        env_host = env.get("HIKAZE_HOST") if address_from_env else None
        conf_strategy = overrides.get("worker_conf_strategy", "merge")
        if conf_strategy not in WORKER_STRATEGIES:
            choices = ", ".join(WORKER_STRATEGIES)
            raise ValueError(
                f"worker conflict policy must be one of {choices}, not {conf_strategy!r}"
            )
        return cls(
            data_dir=data,
            db_path=db_file,
            model_roots=roots,
            host=host or env_host or DEFAULT_HOST,
            port=port_value,
            **overrides,  # type: ignore[arg-type]
        )


def _check_port(value: int, name: str) -> int:
    if not 0 <= value <= MAX_PORT:
        raise ValueError(f"{name} must be between 0 and {MAX_PORT}, not {value}")
    return value


def _parse_port(raw: str, name: str) -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{name} must be an integer between 0 and {MAX_PORT}, not {raw!r}")
    return _check_port(int(text), name)
