"""The conflict strategy of a request: ``conf_strategy`` on every route.

Two routes took it under another name before, and still do: ``conflict_policy``
(``POST /api/migration/start``) and ``conflict_strategy`` (``POST /api/scan``). A body
may give the strategy under either name, or under both with the same value; two
different values are a 400.
"""

from __future__ import annotations

from typing import Any

from hikaze_mm.errors import ValidationError
from hikaze_mm.params import check_strategy
from hikaze_mm.policy import STRATEGY_FIELD


def strategy_of(
    body: dict[str, Any], allowed: tuple[str, ...], *, alias: str | None = None
) -> str | None:
    """The body's strategy (None when it gives none, or null): one of ``allowed``, under
    ``conf_strategy`` or the route's older name ``alias``."""
    names = (STRATEGY_FIELD, alias) if alias else (STRATEGY_FIELD,)
    given = {name: body[name] for name in names if name in body}
    values = list(given.values())
    if len(values) == 2 and (type(values[0]), values[0]) != (type(values[1]), values[1]):
        raise ValidationError(
            f"{STRATEGY_FIELD} and {alias} name the same setting but differ "
            f"({values[0]!r:.40} and {values[1]!r:.40}); give one"
        )
    name, value = next(iter(given.items()), (STRATEGY_FIELD, None))
    return check_strategy(value, allowed, name=name)
