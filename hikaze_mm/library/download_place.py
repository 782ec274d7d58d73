"""Where a download goes, and putting it there without overwriting anything.

``target_folder``: the folder asked for (it must lie below a model root), else the folder
of the download's type under the first model root that has that type, with the
``HIKAZE_DOWNLOAD_TEMPLATE`` path below it. ``clean_file_name``: a source's file name as
one safe path segment. ``free_space_check``: refuse when less than the size plus 1 GiB is
free. ``place``: the verified part file renamed into place; an existing file is never
overwritten (the same content: that file is the download; other content: `` (1)``...).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from hikaze_mm.config import Config, ModelRoot
from hikaze_mm.errors import ValidationError
from hikaze_mm.library.path_template import render_template
from hikaze_mm.model_types import canonical_type

SPARE_BYTES = 1024**3  # free space kept beyond the file
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]')


def clean_file_name(name: str | None, fallback: str = "download") -> str:
    """One path segment: no separators, no control or reserved characters, no leading
    dots, at most 200 characters (the extension kept)."""
    text = _UNSAFE.sub("_", (name or "").strip()).strip(" .")
    if not text:
        text = fallback
    if len(text) > 200:
        stem, ext = os.path.splitext(text)
        text = stem[: 200 - len(ext[:20])] + ext[:20]
    return text


def _root_folder(root: ModelRoot, type_key: str) -> Path | None:
    if root.type_key is not None:
        return root.path if root.type_key == type_key else None
    return root.path / type_key


def type_folder(config: Config, type_key: str) -> Path:
    """The folder of ``type_key`` under the first model root that has it: a root of that
    type, or a ComfyUI-style root whose folder of that name exists; else the first
    ComfyUI-style root (its folder is created)."""
    if not config.model_roots:
        raise ValidationError("no model roots are configured: set HIKAZE_MODEL_ROOTS")
    candidates = [(r, _root_folder(r, type_key)) for r in config.model_roots]
    for root, folder in candidates:
        if folder is not None and (root.type_key is not None or folder.is_dir()):
            return folder
    for _root, folder in candidates:
        if folder is not None:
            return folder
    raise ValidationError(f"no model root holds {type_key!r} models (set HIKAZE_MODEL_ROOTS)")


def check_folder(config: Config, folder: str) -> tuple[Path, str]:
    """A folder asked for: ``(absolute path, its type)``; below a model root, else 400."""
    path = Path(folder).expanduser()
    if not path.is_absolute():
        raise ValidationError(f"the folder must be an absolute path, not {folder!r}")
    root = config.root_for(path)
    if root is None:
        raise ValidationError(f"the folder {folder} is not below a model root")
    real = path.resolve()
    if root.type_key is not None:
        return real, root.type_key
    rel = real.relative_to(root.path).parts
    if not rel:
        raise ValidationError(
            f"the folder {folder} is a model root laid out by type: name a type folder in it"
        )
    return real, canonical_type(rel[0])


def target_folder(config: Config, type_key: str, values: Mapping[str, str]) -> Path:
    """The type's folder, with the path of ``HIKAZE_DOWNLOAD_TEMPLATE`` below it."""
    folder = type_folder(config, type_key)
    if config.download_template:
        sub = render_template(config.download_template, values)
        if sub:
            folder = folder / sub
    return folder


def free_space_check(folder: Path, needed: int) -> None:
    """Refuse (ValidationError) when ``folder`` has less than ``needed`` + 1 GiB free."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed + SPARE_BYTES:
        raise ValidationError(
            f"not enough free space in {folder}: {_gib(needed)} needed plus 1 GiB kept free, "
            f"{_gib(free)} free"
        )


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB"


def candidates(final: Path) -> list[Path]:
    """``name.ext``, ``name (1).ext``, ... ``name (99).ext``."""
    stem, ext = final.stem, final.suffix
    return [final] + [final.with_name(f"{stem} ({i}){ext}") for i in range(1, 100)]


def place(part: Path, final: Path, same_content: Callable[[Path], bool]) -> Path:
    """Move the verified ``part`` to ``final`` or the first free suffixed name; never over
    an existing file. An existing file whose content is the same (``same_content``) is
    taken as the download: the part file is removed and that path returned."""
    for path in candidates(final):
        if path.exists():
            if same_content(path):
                part.unlink(missing_ok=True)
                return path
            continue
        try:
            os.link(part, path)  # fails if a file appeared meanwhile: never overwrites
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            os.rename(part, path)  # a file system without hard links
            return path
        part.unlink()
        return path
    raise ValidationError(f"{final} and 99 suffixed names exist already")
