"""Walking the model roots: every model file once, one ``stat`` each, problems reported.

The roots are an input (a sequence of ``ModelRoot``: a path and a type key, or None for
a ComfyUI-style ``models/`` folder whose first-level folders name the types), so the
configured roots today and ComfyUI's ``folder_paths`` later feed the same walk.

* Symlinks are followed, to folders and to files. Each folder is entered at most once,
  keyed on its ``(st_dev, st_ino)``, which stops symlink loops and aliases (a link to a
  folder walked elsewhere, roots that overlap).
* Per file: ``os.scandir`` gives the name and whether it is a folder (no syscall for a
  plain entry); a name with a model extension costs one ``stat`` (following links),
  relative to its open folder where the platform allows (``fstatat``). The walk hands
  out a folder at a time (its files' names and stats), not an object per file.
* Sidecars: a name ending like another tool's sidecar (``SIDECAR_SUFFIXES``) is kept
  from the listing; once the folder is listed, those whose stem is a model file's cost
  one ``stat`` each, and the folder carries their names, sizes and mtimes (nothing is
  read). A folder with no name ending like a sidecar pays nothing more.
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
from operator import itemgetter

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
_MODEL_EXTENSIONS_CASED = MODEL_EXTENSIONS + tuple(ext.upper() for ext in MODEL_EXTENSIONS)
# Other tools' files next to a model file ``<stem><ext>``, named ``<stem><suffix>``;
# longest suffixes first.
SIDECAR_SUFFIXES: tuple[str, ...] = (
    ".civitai.info",
    ".metadata.json",
    ".cm-info.json",
    ".preview.png",
    ".preview.jpg",
    ".preview.jpeg",
    ".preview.webp",
    ".json",
    ".png",
    ".jpg",
    ".jpeg",
    ".webp",
)
# What every name in SIDECAR_SUFFIXES ends with (one C-level test skips the rest).
SIDECAR_ENDINGS = (".info", ".json", ".png", ".jpg", ".jpeg", ".webp")
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


# os.scandir(fd) stats each entry relative to its folder (fstatat): the kernel resolves one
# name instead of the whole path.
_SCANDIR_FD = os.scandir in os.supports_fd and hasattr(os, "O_DIRECTORY")
# One folder as the walk found it: its path with a trailing separator, the type of its
# files, each model file's name and stat, and each sidecar's (name, stem, size, mtime_ns).
Sidecar = tuple[str, str, int, int]
Folder = tuple[str, str, list[tuple[str, os.stat_result]], Sequence[Sidecar]]
_NO_SIDECARS: tuple[Sidecar, ...] = ()
# A subfolder still to walk: (path, type of its files, whether its subfolders name types).
_Pending = tuple[str, str, bool]


@dataclass
class Walker:
    """One walk over some roots. Iterate ``folders()`` (or ``walk()``, a file at a time);
    read ``problems`` and ``unreadable``.

    ``scope``: walk only these folders (each with everything below it) instead of the
    whole roots; each must lie below a root, which gives its files their type. A scope
    folder that does not exist is no problem (its files are gone), unless its root is
    unreachable too (then it is unreadable: nothing below it is known).
    ``cancelled`` is polled once per folder; when it returns True the walk stops early.
    """

    roots: Sequence[ModelRoot]
    cancelled: Callable[[], bool] = lambda: False
    scope: Sequence[str] | None = None
    problems: list[WalkProblem] = field(default_factory=list, init=False)
    unreadable: list[str] = field(default_factory=list, init=False)
    folders_walked: int = field(default=0, init=False)
    _visited: set[tuple[int, int]] = field(default_factory=set, init=False)

    def _report(self, path: str, exc: OSError) -> None:
        self.problems.append(WalkProblem.from_error(path, exc))

    def walk(self) -> Iterator[SeenFile]:
        """Every model file, one at a time (the scanner takes ``folders()``)."""
        for prefix, folder_type, files, _ in self.folders():
            for name, st in files:
                yield SeenFile(prefix + name, st.st_size, st.st_mtime_ns, st.st_ino, folder_type)

    def folders(self) -> Iterator[Folder]:
        """Each folder that holds model files (or not), once."""
        if self.scope is None:
            for root in self.roots:
                yield from self._walk_root(os.fspath(root.path), root.type_key)
            return
        for folder in self.scope:
            start = self._scope_start(folder)
            if start is not None:
                yield from self._walk_from(*start)

    def _scope_start(self, folder: str) -> tuple[str, str, bool] | None:
        """(folder, type of its files, whether its subfolders name types) for a scope
        folder, from the root that holds it; None when none does or it cannot be walked."""
        folder = folder.rstrip(os.sep) or os.sep
        for root in self.roots:
            root_path = os.fspath(root.path)
            if folder != root_path and not folder.startswith(root_path.rstrip(os.sep) + os.sep):
                continue
            if not self._enter(folder, scoped_root=root_path):
                return None
            if root.type_key is not None:
                return folder, root.type_key, False
            if folder == root_path:
                return folder, ROOT_LEVEL_TYPE, True
            first = folder[len(root_path.rstrip(os.sep)) + 1 :].split(os.sep, 1)[0]
            return folder, canonical_type(first), False
        self.problems.append(WalkProblem(folder, "error", "not below a model root"))
        return None

    def _enter(self, folder: str, *, scoped_root: str | None = None) -> bool:
        """Stat a starting folder; False (reported) when it cannot be walked."""
        try:
            st = os.stat(folder)
        except OSError as exc:
            if scoped_root is not None and isinstance(exc, FileNotFoundError):
                if not os.path.isdir(scoped_root):  # the root is gone: unknown, not deleted
                    self._report(scoped_root, exc)
                    self.unreadable.append(scoped_root)
                return False  # a folder deleted since the event: its files are gone
            self._report(folder, exc)
            self.unreadable.append(folder)
            return False
        if not stat.S_ISDIR(st.st_mode):
            if scoped_root is not None:
                return False  # a folder replaced by a file: nothing of ours below it
            self.problems.append(WalkProblem(folder, "error", "model root is not a folder"))
            self.unreadable.append(folder)
            return False
        key = (st.st_dev, st.st_ino)
        if key in self._visited:
            if scoped_root is None:
                self.problems.append(WalkProblem(folder, "loop", "root already walked"))
            return False
        self._visited.add(key)
        return True

    def _walk_root(self, root_path: str, type_key: str | None) -> Iterator[Folder]:
        if self._enter(root_path):
            yield from self._walk_from(root_path, type_key or ROOT_LEVEL_TYPE, type_key is None)

    def _walk_from(self, start: str, start_type: str, typed_children: bool) -> Iterator[Folder]:
        sep = os.sep
        # (folder, type of files in it, whether its subfolders name types)
        stack: list[tuple[str, str, bool]] = [(start, start_type, typed_children)]
        while stack:
            if self.cancelled():
                return
            folder, folder_type, typed_children = stack.pop()
            prefix = folder if folder.endswith(sep) else folder + sep
            listed = self._list_folder(folder, prefix, folder_type, typed_children)
            if listed is None:
                continue
            files, sidecars, subfolders = listed
            yield prefix, folder_type, files, sidecars
            # Reverse so the pop order walks folders in listing order.
            stack.extend(reversed(subfolders))

    def _list_folder(
        self, folder: str, prefix: str, folder_type: str, typed_children: bool
    ) -> tuple[list[tuple[str, os.stat_result]], Sequence[Sidecar], list[_Pending]] | None:
        """One folder's model files, their sidecars and its subfolders still to walk;
        None (reported) when the folder cannot be listed."""
        fd = -1
        try:
            if _SCANDIR_FD:
                fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
                listing = os.scandir(fd)
            else:
                listing = os.scandir(folder)
            with listing as it:
                entries = list(it)
            self.folders_walked += 1
            files, maybe_sidecars, subfolders = self._sort_entries(
                entries, prefix, folder_type, typed_children
            )
            sidecars = _sidecars(files, maybe_sidecars) if maybe_sidecars else _NO_SIDECARS
        except OSError as exc:
            self._report(folder, exc)
            if not isinstance(exc, FileNotFoundError):  # gone means its files are gone
                self.unreadable.append(folder)
            return None
        finally:
            if fd >= 0:
                os.close(fd)
        return files, sidecars, subfolders

    def _sort_entries(
        self,
        entries: list[os.DirEntry[str]],
        prefix: str,
        folder_type: str,
        typed_children: bool,
    ) -> tuple[list[tuple[str, os.stat_result]], list[os.DirEntry[str]], list[_Pending]]:
        """A folder's entries as model files (name, stat), possible sidecars and
        subfolders; a model file costs one ``stat``, anything else none."""
        extensions = MODEL_EXTENSIONS
        files: list[tuple[str, os.stat_result]] = []
        maybe_sidecars: list[os.DirEntry[str]] = []
        subfolders: list[_Pending] = []
        for entry in entries:
            name = entry.name
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if self._first_visit(entry, prefix + name):
                    child_type = canonical_type(name) if typed_children else folder_type
                    subfolders.append((prefix + name, child_type, False))
                continue
            lower = name.lower()
            if not lower.endswith(extensions):
                if lower.endswith(SIDECAR_ENDINGS):
                    maybe_sidecars.append(entry)
                continue
            try:
                st = entry.stat()
            except OSError as exc:
                if isinstance(exc, FileNotFoundError) and entry.is_symlink():
                    self.problems.append(
                        WalkProblem(prefix + name, "broken_symlink", "link target missing")
                    )
                else:
                    self._report(prefix + name, exc)
                continue
            if stat.S_ISREG(st.st_mode):
                files.append((name, st))
        return files, maybe_sidecars, subfolders

    def _first_visit(self, entry: os.DirEntry[str], path: str) -> bool:
        """Whether the subfolder ``entry`` is walked: False (reported) when it cannot be
        stat'ed or was walked already (a symlink loop)."""
        try:
            dst = entry.stat()
        except OSError as exc:
            self._report(path, exc)
            self.unreadable.append(path)
            return False
        key = (dst.st_dev, dst.st_ino)
        if key in self._visited:
            self.problems.append(WalkProblem(path, "loop", "folder already walked (symlink)"))
            return False
        self._visited.add(key)
        return True


def _sidecars(
    files: list[tuple[str, os.stat_result]], entries: list[os.DirEntry[str]]
) -> Sequence[Sidecar]:
    """The sidecars among ``entries`` (of a model file in ``files``, its extension in lower
    or upper case), one ``stat`` each; one that vanished or is no regular file is left
    out. Costs a set of the folder's names (built in C), and a few lookups per candidate."""
    if not files:
        return _NO_SIDECARS
    names = set(map(itemgetter(0), files))
    found: list[Sidecar] = []
    for entry in entries:
        name = entry.name
        lower = name.lower()
        for suffix in SIDECAR_SUFFIXES:
            if not lower.endswith(suffix):
                continue
            stem = name[: -len(suffix)]
            if any(stem + ext in names for ext in _MODEL_EXTENSIONS_CASED):
                break
        else:
            continue
        try:
            st = entry.stat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            found.append((name, name[: -len(suffix)], st.st_size, st.st_mtime_ns))
    return found
