"""Walking the model roots: every model file once, one ``stat`` each, problems reported.

The roots are an input (a sequence of ``ModelRoot``: a path and a type key, or None for
a ComfyUI-style ``models/`` folder whose first-level folders name the types), so the
configured roots today and ComfyUI's ``folder_paths`` later feed the same walk.

* Symlinks are followed, to folders and to files. Each folder is entered at most once,
  keyed on its ``(st_dev, st_ino)``, which stops symlink loops and aliases (a link to a
  folder walked elsewhere, roots that overlap).
* Per file: ``os.scandir`` gives the name and whether it is a folder (no syscall for a
  plain entry); a name with a model extension costs one ``stat`` (following links).
* A folder that cannot be listed (permission denied, vanished, I/O error), a broken
  symlink or a file that vanishes between listing and ``stat`` becomes a ``WalkProblem``
  and the walk goes on. Folders that could not be listed are remembered in
  ``unreadable``: whether a model below one of them still exists is unknown, so the
  scanner must not flag it missing.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from hikaze_mm.config import Config, ModelRoot
from hikaze_mm.model_types import canonical_type

MODEL_EXTENSIONS: tuple[str, ...] = (
    ".safetensors",
    ".sft",
    ".ckpt",
    ".pt",
    ".pt2",
    ".pth",
    ".bin",
    ".gguf",
)
# Files directly inside a ComfyUI-style root belong to no type folder.
ROOT_LEVEL_TYPE = "other"


@dataclass(slots=True)  # not frozen: built once per file, and frozen init is 4x slower
class SeenFile:
    """A model file as the walk found it (``path`` as reached from its root)."""

    path: str
    size: int
    mtime_ns: int
    inode: int
    type: str


@dataclass(frozen=True, slots=True)
class WalkProblem:
    """Something the walk could not read. ``kind`` is one of:

    ``permission`` (access denied), ``vanished`` (gone between listing and reading),
    ``broken_symlink``, ``loop`` (a folder already walked: not an error), ``error``.
    """

    path: str
    kind: str
    detail: str

    @classmethod
    def from_error(cls, path: str, exc: OSError) -> WalkProblem:
        return cls(path, _problem_kind(exc), exc.strerror or str(exc))

    @property
    def is_error(self) -> bool:
        return self.kind != "loop"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "detail": self.detail}


def roots_from_config(config: Config) -> tuple[ModelRoot, ...]:
    """The configured roots (the standalone source; ComfyUI will supply its own)."""
    return config.model_roots


def _problem_kind(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission"
    if isinstance(exc, FileNotFoundError):
        return "vanished"
    if exc.errno == errno.ELOOP:
        return "broken_symlink"
    return "error"


@dataclass
class Walker:
    """One walk over some roots. Iterate ``walk()``; read ``problems`` and ``unreadable``.

    ``cancelled`` is polled once per folder; when it returns True the walk stops early.
    """

    roots: Sequence[ModelRoot]
    cancelled: Callable[[], bool] = lambda: False
    problems: list[WalkProblem] = field(default_factory=list, init=False)
    unreadable: list[str] = field(default_factory=list, init=False)
    folders: int = field(default=0, init=False)
    _visited: set[tuple[int, int]] = field(default_factory=set, init=False)

    def _report(self, path: str, exc: OSError) -> None:
        self.problems.append(WalkProblem.from_error(path, exc))

    def walk(self) -> Iterator[SeenFile]:
        for root in self.roots:
            yield from self._walk_root(os.fspath(root.path), root.type_key)

    def _walk_root(self, root_path: str, type_key: str | None) -> Iterator[SeenFile]:
        try:
            st = os.stat(root_path)
        except OSError as exc:
            self._report(root_path, exc)
            self.unreadable.append(root_path)
            return
        if not stat.S_ISDIR(st.st_mode):
            self.problems.append(WalkProblem(root_path, "error", "model root is not a folder"))
            self.unreadable.append(root_path)
            return
        key = (st.st_dev, st.st_ino)
        if key in self._visited:
            self.problems.append(WalkProblem(root_path, "loop", "root already walked"))
            return
        self._visited.add(key)
        extensions = MODEL_EXTENSIONS
        visited = self._visited
        # (folder, type of files in it, whether its subfolders name types)
        stack: list[tuple[str, str, bool]] = [
            (root_path, type_key or ROOT_LEVEL_TYPE, type_key is None)
        ]
        while stack:
            if self.cancelled():
                return
            folder, folder_type, typed_children = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError as exc:
                self._report(folder, exc)
                if not isinstance(exc, FileNotFoundError):  # gone means its files are gone
                    self.unreadable.append(folder)
                continue
            self.folders += 1
            subfolders: list[tuple[str, str, bool]] = []
            for entry in entries:
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    try:
                        dst = entry.stat()
                    except OSError as exc:
                        self._report(entry.path, exc)
                        self.unreadable.append(entry.path)
                        continue
                    key = (dst.st_dev, dst.st_ino)
                    if key in visited:
                        self.problems.append(
                            WalkProblem(entry.path, "loop", "folder already walked (symlink)")
                        )
                        continue
                    visited.add(key)
                    child_type = canonical_type(entry.name) if typed_children else folder_type
                    subfolders.append((entry.path, child_type, False))
                    continue
                name = entry.name
                if not name.lower().endswith(extensions):
                    continue
                try:
                    st = entry.stat()
                except OSError as exc:
                    if isinstance(exc, FileNotFoundError) and entry.is_symlink():
                        self.problems.append(
                            WalkProblem(entry.path, "broken_symlink", "link target missing")
                        )
                    else:
                        self._report(entry.path, exc)
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield SeenFile(entry.path, st.st_size, st.st_mtime_ns, st.st_ino, folder_type)
            # Reverse so the pop order walks folders in listing order.
            stack.extend(reversed(subfolders))
