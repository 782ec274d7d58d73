"""``AutoV3Backfill``: the AutoV3 of LoRAs and embeddings hashed before it was computed.

New files get their AutoV3 in the same read as their SHA-256 (``hashing.TailHash``); the
models a library held before (and any whose AutoV3 is unknown) get it from this job, which
a serving process (``serve``, ComfyUI) starts when there is work, and which ``GET
/api/jobs/autov3`` shows. It reads each file once, checks that its SHA-256 is still the
model's (a changed file is left to the scanner) and stores the AutoV3 on the model and in
the hash cache. Images made elsewhere name LoRAs and embeddings by it
(``POST /api/images/inspect``).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import ConflictError
from hikaze_mm.hashing import FileChangedError, HashCancelled, HashService
from hikaze_mm.jobs import BackgroundJob, JobCancelled, JobProgress, JobRun
from hikaze_mm.model_types import AUTOV3_TYPES

log = logging.getLogger(__name__)


class AutoV3Backfill:
    def __init__(self, db: Library, hashes: HashService) -> None:
        self.db = db
        self.hashes = hashes
        self.job = BackgroundJob("autov3", progress=self._job_progress, release=db.release_thread)
        self._lock = threading.Lock()
        self._done = self._total = 0

    def start_if_needed(self) -> bool:
        """Start the job when some LoRA or embedding lacks its AutoV3; True if it did."""
        if self.db.read_only or not self.db.models.without_autov3(sorted(AUTOV3_TYPES)):
            return False
        try:
            run = self.job.begin()
        except ConflictError:
            return False
        self.job.start(self._fill, run)
        return True

    def run(self) -> dict[str, Any]:
        """Fill them in this thread and return the report; ConflictError while one runs."""
        return self.job.run(self._fill, self.job.begin())

    def wait(self, timeout: float | None = None) -> bool:
        return self.job.wait(timeout)

    def _job_progress(self) -> JobProgress:
        with self._lock:
            return JobProgress(self._done, self._total, "models")

    def _fill(self, run: JobRun) -> dict[str, Any]:
        targets = self.db.models.without_autov3(sorted(AUTOV3_TYPES))
        with self._lock:
            self._done, self._total = 0, len(targets)
        counts = {"filled": 0, "none": 0, "absent": 0, "changed": 0}
        for sha, path in targets:
            if run.cancelled:
                raise JobCancelled("AutoV3 backfill stopped")
            counts[self._one(run, sha, path)] += 1
            with self._lock:
                self._done += 1
        report = {"total": len(targets), "counts": counts}
        log.info("autov3: %s", report)
        return report

    def _one(self, run: JobRun, sha: str, path: str) -> str:
        """Fill one model; which count it adds to."""
        if not os.path.isfile(path):
            return "absent"
        try:
            result = self.hashes.hash_file(path, control=run.control, use_cache=False, autov3=True)
        except HashCancelled:
            raise JobCancelled("AutoV3 backfill stopped") from None
        except (OSError, FileChangedError):
            return "absent"
        if result.sha256 != sha:
            return "changed"  # the scanner deals with a file whose content changed
        self.db.models.update(sha, autov3=result.autov3)  # "": known to have none
        return "filled" if result.autov3 else "none"
