"""An advisory lock file that at most one live process holds (``flock``).

Two uses: the process that owns a library's crash recovery holds ``<data>/hikaze_mm.lock``
(removing half-written images and converging half-done promotions must not run beside
another live process's writes: a second process, say ``hikaze-mm status`` while the server
runs, finds it taken and skips recovery); and a Stage 1 import holds its own lock for as
long as it runs, so two processes never import at once. The kernel drops a lock when its
process dies, so a crash never leaves one behind.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; every process recovers
    fcntl = None  # type: ignore[assignment]


class ProcessLock:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this process holds it."""
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
        return True

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
