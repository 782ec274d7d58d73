"""Moving one file safely, and where a model's file may go (the organizer's file steps).

* On one file system a move is one ``os.replace``: atomic, and the file keeps its inode
  and mtime (so its hash-cache row stays valid at the new path).
* Across file systems (``EXDEV``) it is a copy to ``<target>.hikaze-move`` (a name no scan
  takes for a model), hashed while written and read back, compared with the expected
  SHA-256, then renamed into place; only then is the source deleted.
* Never over an existing file: the target is checked just before the rename.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from hikaze_mm.config import ModelRoot
from hikaze_mm.library.scan_walk import MODEL_EXTENSIONS, SIDECAR_SUFFIXES
from hikaze_mm.model_types import canonical_type

TEMP_SUFFIX = ".hikaze-move"
COPY_CHUNK = 4 * 1024 * 1024
Stat = tuple[int, int, int]  # size, mtime_ns, inode
# Files beside a model that move with it besides the sidecars we read: notes, a
# checkpoint's config, a hash file.
MOVED_SUFFIXES = (".txt", ".md", ".yaml", ".yml", ".sha256")


class MoveRefused(Exception):
    """A move that must not happen (the reason is the message)."""


class CopyMismatch(MoveRefused):
    """A copy whose SHA-256 is not the expected one (it is deleted)."""


def stat_of(st: os.stat_result) -> Stat:
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def temp_path(target: str) -> str:
    return target + TEMP_SUFFIX


def _existing_ancestor(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return path


def same_device(source: str, target: str) -> bool:
    """Whether ``target`` (its nearest existing folder) is on the file system of ``source``."""
    return os.stat(source).st_dev == os.stat(_existing_ancestor(Path(target).parent)).st_dev


def _hash_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_verified(source: str, dest: str, sha256: str) -> Stat:
    """Copy ``source`` to ``dest`` (a new file: FileExistsError if one is there), hashing
    the bytes read, then reading the copy back: both must be ``sha256`` or the copy is
    deleted (CopyMismatch). The copy keeps the source's times; returns its stat."""
    read = hashlib.sha256()
    try:
        with open(source, "rb") as src, open(dest, "xb") as out:
            while chunk := src.read(COPY_CHUNK):
                read.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(source, dest)
        written = _hash_file(dest)
    except BaseException:
        _remove(dest)
        raise
    if read.hexdigest() != sha256 or written != sha256:
        _remove(dest)
        got = written if written != sha256 else read.hexdigest()
        raise CopyMismatch(f"the copy of {source} has SHA-256 {got}, not {sha256}")
    return stat_of(os.stat(dest))


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def replace_new(source: str, target: str) -> None:
    """``os.replace`` onto a target that does not exist (MoveRefused if it does)."""
    if os.path.lexists(target):
        raise MoveRefused(f"{target} exists; not overwriting it")
    os.replace(source, target)


def move_plain(source: str, target: str) -> None:
    """Move a small file (a sidecar): a rename, or across file systems a copy (times kept)
    renamed into place, then the source deleted."""
    try:
        replace_new(source, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    temp = temp_path(target)
    _remove(temp)
    shutil.copy2(source, temp)
    replace_new(temp, target)
    os.unlink(source)


def sidecars_beside(model_path: str) -> list[str]:
    """The files that go with ``model_path``: its sidecars (``SIDECAR_SUFFIXES`` after its
    stem) and ``MOVED_SUFFIXES`` (notes, a checkpoint's config); none when another model
    file in its folder has the same stem (they are shared)."""
    folder, name = os.path.split(model_path)
    stem = os.path.splitext(name)[0]
    for ext in MODEL_EXTENSIONS:
        other = os.path.join(folder, stem + ext)
        if other != model_path and os.path.exists(other):
            return []
    suffixes = {s.lower() for s in (*SIDECAR_SUFFIXES, *MOVED_SUFFIXES)}
    found = []
    with os.scandir(folder or ".") as entries:
        for entry in entries:
            name = entry.name
            ours = name.startswith(stem) and name[len(stem) :].lower() in suffixes
            if ours and entry.is_file(follow_symlinks=False):
                found.append(entry.path)
    return sorted(found)


def under_roots(path: str, roots: Sequence[ModelRoot]) -> bool:
    """Whether ``path``, as written and with its symlinks resolved, lies inside one root."""
    lexical = Path(os.path.abspath(path))
    real = Path(os.path.realpath(path))
    for root in roots:
        real_root = Path(os.path.realpath(root.path))
        inside = lexical.is_relative_to(root.path) and real.is_relative_to(real_root)
        if inside and lexical != root.path:
            return True
    return False


def _root_holding(path: Path, roots: Sequence[ModelRoot]) -> ModelRoot | None:
    for root in sorted(roots, key=lambda r: len(r.path.parts), reverse=True):
        if path.is_relative_to(root.path):
            return root
    return None


def _type_folder_in(root: ModelRoot, model_type: str) -> Path:
    """A ComfyUI-style root's folder of ``model_type``: an existing first-level folder
    that names it (``Lora/`` for loras), else ``<root>/<type>``."""
    try:
        names = sorted(e.name for e in os.scandir(root.path) if e.is_dir())
    except OSError:
        names = []
    for name in names:
        if canonical_type(name) == model_type:
            return root.path / name
    return root.path / model_type


def type_folder(path: str, model_type: str | None, roots: Sequence[ModelRoot]) -> Path | None:
    """The folder of a model's type: in the root that holds its file, the folder the file
    already sits in when that names its type (a ``TYPE=DIR`` root of its type: the root);
    else the type's folder in the first root that has its type. None when no root fits."""
    kind = canonical_type(model_type)
    here = _root_holding(Path(os.path.abspath(path)), roots)
    if here is not None:
        if here.type_key is not None and here.type_key == kind:
            return here.path
        if here.type_key is None:
            rel = Path(os.path.abspath(path)).relative_to(here.path).parts
            if len(rel) >= 2 and canonical_type(rel[0]) == kind:
                return here.path / rel[0]
            return _type_folder_in(here, kind)
    for root in roots:
        if root.type_key == kind:
            return root.path
    for root in roots:
        if root.type_key is None:
            return _type_folder_in(root, kind)
    return None
