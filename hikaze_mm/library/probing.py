"""``BaseProber``: the base model of every model, read from its file's header.

Scans, promotions, relinks and the Stage 1 import probe the files they come to know; this
job covers the rest. It runs

* once after an upgrade to schema revision 8 (the ``probe_backfill`` state is
  ``{"done": false}`` until it has run to the end), in the background, and
* on demand (``hikaze-mm probe [--all]``, ``POST /api/models/probe``): the models with no
  base, or with ``every`` all of them except those whose base a user set.

A probe reads the safetensors header only (``probe.probe_file``), never tensor data, and
sets the base only where ``ModelStore.set_probed_base`` allows (an empty base or one a
probe set); ``meta.sources.base`` records ``"probe"``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from hikaze_mm.database import now_ms
from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import ConflictError
from hikaze_mm.jobs import BackgroundJob, JobCancelled, JobProgress, JobRun, tidy_search_index
from hikaze_mm.probe import probe_file

log = logging.getLogger(__name__)

STATE_KEY = "probe_backfill"


class BaseProber:
    def __init__(self, db: Library) -> None:
        self.db = db
        self.job = BackgroundJob(
            "probe",
            progress=self._job_progress,
            after_run=tidy_search_index(db.listing),
            release=db.release_thread,
        )
        self._lock = threading.Lock()
        self._progress: dict[str, Any] = {"done": 0, "total": 0}
        self._mode: str | None = None

    # ------------------------------------------------------------ control
    def start_upgrade(self) -> bool:
        """Start the one-time backfill of an upgraded library; True if it started."""
        if self.db.read_only:
            return False
        state = self.db.state.get(STATE_KEY)
        if state is None or state.get("done"):
            return False
        try:
            run = self.job.begin()
        except ConflictError:
            return False
        self._set_mode("upgrade")
        self.job.start(lambda r: self._probe(r, every=False, upgrade=True), run)
        return True

    def start(self, *, every: bool = False) -> dict[str, Any]:
        """Probe in the background; returns the status. ConflictError while one runs."""
        run = self.job.begin()
        self._set_mode("all" if every else "missing")
        status = self.status()
        self.job.start(lambda r: self._probe(r, every=every), run)
        return status

    def run(self, *, every: bool = False) -> dict[str, Any]:
        """Probe in this thread and return the report (the CLI). ConflictError while busy."""
        run = self.job.begin()
        self._set_mode("all" if every else "missing")
        return self.job.run(lambda r: self._probe(r, every=every), run)

    def status(self) -> dict[str, Any]:
        """``{running, mode, progress: {done, total}, started_at, finished_at, error,
        last_report}``."""
        with self._lock:
            data: dict[str, Any] = {"mode": self._mode, "progress": dict(self._progress)}
        return {**self.job.status(), **data}

    def wait(self, timeout: float | None = None) -> bool:
        return self.job.wait(timeout)

    # ------------------------------------------------------------ the work
    def _job_progress(self) -> JobProgress:
        with self._lock:
            return JobProgress(self._progress["done"], self._progress["total"], "models")

    def _set_mode(self, mode: str) -> None:
        with self._lock:
            self._mode = mode
            self._progress = {"done": 0, "total": 0}

    def _probe(self, run: JobRun, *, every: bool, upgrade: bool = False) -> dict[str, Any]:
        targets = self.db.models.probe_targets(every=every)
        with self._lock:
            self._progress["total"] = len(targets)
        counts = {"probed": 0, "set": 0, "unknown": 0, "absent": 0}
        for i, (sha, path) in enumerate(targets):
            if run.cancelled:
                raise JobCancelled("probe stopped")
            if not os.path.isfile(path):
                counts["absent"] += 1
            else:
                counts["probed"] += 1
                base = probe_file(path).base
                if base is None:
                    counts["unknown"] += 1
                elif self.db.models.set_probed_base(sha, base):
                    counts["set"] += 1
            with self._lock:
                self._progress["done"] = i + 1
        if upgrade:
            self.db.state.set(STATE_KEY, {"done": True, "finished_at": now_ms()})
        report = {"mode": "all" if every else "missing", "total": len(targets), "counts": counts}
        log.info("probe: %s", report)
        return report
