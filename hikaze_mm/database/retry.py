"""``retrying``: run a store call again when the server aborted it for a lost race.

PostgreSQL aborts one of two transactions that deadlock (SQLSTATE 40P01) or that cannot be
serialized (40001); run again, it succeeds. A store method decorated with ``retrying``
is run again, up to ``ATTEMPTS`` times in all, when it failed so while it was the whole
unit of work (called outside any ``transaction()``: inside one, the caller's unit is what
failed, and only the caller could run it again). The library says which errors count
(``retryable``); SQLite's never do (a busy SQLite library waits in its busy timeout).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from hikaze_mm.database.errors import StorageBusyError

F = TypeVar("F", bound=Callable[..., Any])
ATTEMPTS = 4


def retrying(method: F) -> F:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        db = self.db
        outermost = not db.in_transaction()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return method(self, *args, **kwargs)
            except StorageBusyError as exc:
                if not outermost or attempt == ATTEMPTS or not db.retryable(exc):
                    raise
        raise AssertionError("unreachable")

    return call  # type: ignore[return-value]
