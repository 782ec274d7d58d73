"""Terminal progress bars (on stderr, only when it is a terminal)."""

from __future__ import annotations

import sys
import time


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    """A one-line bar: ``label [#####.....] done/total rate ETA``.

    ``unit="bytes"`` shows sizes and bytes/s. Silent when stderr is not a terminal.
    """

    def __init__(
        self, label: str, total: int = 0, *, unit: str = "items", enabled: bool | None = None
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._start = time.monotonic()
        self._last_draw = 0.0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, done: int, total: int | None = None, label: str | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if label is not None:
            self.label = label
        now = time.monotonic()
        if self.enabled and (now - self._last_draw > 0.1 or (self.total and done >= self.total)):
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-6)
        rate = self.done / elapsed
        fmt = _fmt_bytes if self.unit == "bytes" else (lambda n: str(int(n)))
        width = 24
        frac = min(1.0, self.done / self.total) if self.total else 0.0
        bar = "#" * int(frac * width) + "." * (width - int(frac * width))
        eta = ""
        if self.total and rate > 0 and self.done < self.total:
            eta = f" ETA {int((self.total - self.done) / rate)}s"
        speed = f"{fmt(rate)}/s"
        label = self.label if len(self.label) <= 40 else "…" + self.label[-39:]
        line = f"\r{label} [{bar}] {fmt(self.done)}/{fmt(self.total)} {speed}{eta}"
        sys.stderr.write(line.ljust(100)[:120])
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()


class ByteProgress(Progress):
    def __init__(self, label: str, total: int = 0, enabled: bool | None = None) -> None:
        super().__init__(label, total, unit="bytes", enabled=enabled)
