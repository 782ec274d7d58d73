"""An advisory lock file that at most one live process holds (``flock``), and who holds it.

Two uses: the one process that may write a library holds ``<data>/hikaze_mm.lock`` for as
long as it runs (it alone recovers what a killed process left half done, and the CLI
refuses to write, or hands its command to the holder, while another process holds it);
and a Stage 1 import holds its own lock for as long as it runs, so two processes never
import at once. The kernel drops a lock when its process dies, so a crash never leaves one
behind.

The holder writes one JSON line into the file after taking the lock: its ``pid``, and the
``command`` it runs and the ``address`` (``host:port``) it serves HTTP on when it does.
Other processes read it with ``owner()`` to say who holds the library, or to reach it.
The holder empties the file when it lets go; a line a killed process left behind names a
dead pid and is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; every process recovers
    fcntl = None  # type: ignore[assignment]

LOCK_FILE_NAME = "hikaze_mm.lock"
# The largest holder line read back (it is a few dozen bytes).
MAX_INFO_BYTES = 4096


@dataclass(frozen=True)
class LockOwner:
    """What the holder of a lock wrote about itself."""

    pid: int
    command: str | None = None
    address: str | None = None  # "host:port" while it serves HTTP

    @property
    def url(self) -> str | None:
        return f"http://{self.address}/" if self.address else None

    def describe(self) -> str:
        """``hikaze-mm serve (pid 12, http://127.0.0.1:8789/)``, or ``a process (pid 12)``."""
        who = f"hikaze-mm {self.command}" if self.command else "another process"
        where = f", {self.url}" if self.url else ""
        return f"{who} (pid {self.pid}{where})"


def _parse(data: bytes) -> LockOwner | None:
    try:
        info = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    pid, command, address = info.get("pid"), info.get("command"), info.get("address")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    return LockOwner(
        pid,
        command if isinstance(command, str) and command else None,
        address if isinstance(address, str) and address else None,
    )


class ProcessLock:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._info: dict[str, object] = {}

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this process holds it.

        On success the file names this process (its pid). Raises OSError when the file
        cannot be opened for writing (a read-only folder).
        """
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        self._fd = fd
        self._info = {"pid": os.getpid()}
        self._write()
        return True

    @property
    def held(self) -> bool:
        return self._fd is not None

    def set_info(self, **info: str | None) -> None:
        """Add ``command`` or ``address`` to what the file says about this process (a None
        value removes the key); only while this process holds the lock."""
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not held by this process")
        for key, value in info.items():
            if value is None:
                self._info.pop(key, None)
            else:
                self._info[key] = value
        self._write()

    def _write(self) -> None:
        assert self._fd is not None
        data = (json.dumps(self._info) + "\n").encode()
        # Best effort: the lock itself is the flock; the line only tells others who holds it.
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, data)

    def owner(self) -> LockOwner | None:
        """Who holds the lock, from its file: None when the file is missing or empty, or
        names a process that is gone. Reads only; never creates the file."""
        try:
            with open(self.path, "rb") as f:
                data = f.read(MAX_INFO_BYTES)
        except OSError:
            return None
        owner = _parse(data)
        if owner is None or not pid_alive(owner.pid):
            return None
        return owner

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)  # nobody holds it any more
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
            self._info = {}


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (never sends it a signal on Windows)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # pragma: no cover - exercised on Windows only
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        alive = bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259
        kernel32.CloseHandle(handle)
        return alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
