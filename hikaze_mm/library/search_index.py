"""``SearchIndexer``: builds the text index of an upgraded library in the background.

Schema revision 7 adds ``model_search`` (a trigram index of names, paths, tag names and
trigger words). A new library has it from the start; a library upgraded to revision 7 has
its models but no documents yet, and building them all would hold up the start. So the
library opens at once, listings use the LIKE scan meanwhile, and this job indexes the
models in batches (one short transaction each, so scans and edits go on beside it) until
the index is marked ready. Stopped early (the process exits), it resumes at the next open.
"""

from __future__ import annotations

import logging
from typing import Any

from hikaze_mm.database.interfaces import Library
from hikaze_mm.errors import ConflictError
from hikaze_mm.jobs import BackgroundJob, JobCancelled, JobRun, tidy_search_index

log = logging.getLogger(__name__)

BATCH_SIZE = 2000


class SearchIndexer:
    def __init__(self, db: Library, *, batch_size: int = BATCH_SIZE) -> None:
        self.db = db
        self.batch_size = batch_size
        self.job = BackgroundJob(
            "search-index",
            title="search index build",
            after_run=tidy_search_index(db.listing),
            release=db.release_thread,
        )

    def start(self) -> bool:
        """Start building when the index is not ready; True if a build started."""
        if self.db.read_only or self.db.listing.search_ready():
            return False
        try:
            self.job.start(self._build)
        except ConflictError:  # running already, or shut down
            return False
        return True

    def _build(self, run: JobRun) -> dict[str, Any]:
        batches = 0
        while not run.cancelled:
            batches += 1
            if self.db.listing.build_search_index(self.batch_size):
                log.info("search index built (%d batches)", batches)
                return {"ready": True, "batches": batches}
        raise JobCancelled("search index build stopped; it resumes at the next start")

    @property
    def ready(self) -> bool:
        return self.db.listing.search_ready()

    def status(self) -> dict[str, Any]:
        return {"ready": self.ready, **self.job.status()}

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running build; True when none is running."""
        return self.job.wait(timeout)
