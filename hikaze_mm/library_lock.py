"""An advisory lock on a data dir, held by the process that owns crash recovery.

Startup recovery (removing half-written images, converging half-done promotions) must
only run in a process that no other live process is writing alongside. The first process
to open a library takes this lock and keeps it until it closes; a second process (say,
``hikaze-mm status`` while the server runs) finds it taken and skips recovery.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; every process recovers
    fcntl = None  # type: ignore[assignment]


class LibraryLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "hikaze_mm.lock"
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
