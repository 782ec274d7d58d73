"""Running a job in the process that serves the library, and following it to its end.

The commands that start a background job (``scan``, ``civitai``, ``probe``, ``promote
--all``) hand it to the holder of the library when the holder serves HTTP: ``in_server``
starts it there with one request, follows that run (``GET /api/jobs/{name}?started_at=``)
with a progress bar until it ends, and returns its report. Ctrl-C stops the following,
not the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hikaze_mm.cli.common import FAILURE, CliError, note
from hikaze_mm.cli.progress import Progress
from hikaze_mm.cli.remote import Remote, Unreachable
from hikaze_mm.process_lock import LockOwner

INTERRUPTED = 130


@dataclass(frozen=True)
class ServerJob:
    """A job to run in the server: its ``name`` in ``/api/jobs``, what the note says it
    does there (``"scanning"``), and the request that starts it (given the ``Remote``,
    returns the answer, whose ``started_at`` names the run; None for a job that may
    already be running, such as a resumed Stage 2)."""

    name: str
    doing: str
    start: Callable[[Remote], Any]


def draw(bar: Progress, job: dict[str, Any]) -> None:
    """Show a job's ``progress`` (``GET /api/jobs/{name}``) on ``bar``."""
    progress = job["progress"]
    bar.unit = "bytes" if progress["unit"] == "bytes" else "items"
    label = f"{job['name']} {progress['phase']}" if progress["phase"] else job["name"]
    bar.update(progress["done"], progress["total"], label=label)


def in_server(owner: LockOwner, job: ServerJob) -> Any:
    """Run ``job`` in the server ``owner`` and return its run's report; None when that
    server does not answer (the caller then runs it here). A run that failed, or ended
    without a report, is a CliError; Ctrl-C exits with 130, the job going on."""
    remote = Remote(owner)
    try:
        started = job.start(remote)
    except Unreachable:
        return None
    note(f"the library is served by {owner.describe()}: {job.doing} there")
    mine = started.get("started_at") if isinstance(started, dict) else None
    path = f"/api/jobs/{job.name}" + (f"?started_at={mine}" if mine is not None else "")
    try:
        with Progress(job.name) as bar:
            status = remote.follow(
                path,
                done=lambda s: not s["running"],
                on_status=lambda s: s["running"] and draw(bar, s),
            )
    except KeyboardInterrupt:
        raise CliError(
            f"stopped following; the {job.name} job goes on in the server",
            INTERRUPTED,
            "Interrupted",
        ) from None
    if status["error"] or status["last_report"] is None:
        reason = status["error"] or "it ended without a report"
        raise CliError(f"the {job.name} job failed in the server: {reason}", FAILURE)
    return status["last_report"]
