"""Waiting for a condition with a deadline: the one polling loop of the tests.

``wait_until(probe)`` calls ``probe`` until its value satisfies ``until`` (by default: the
value is true) and returns that value; at the deadline it raises AssertionError naming what
it waited for and the last value seen. ``wait_until_async`` does the same in a coroutine,
sleeping on the event loop so that the server under test keeps running; its probe may be a
coroutine function (a request to that server) or a plain one.

A test never sleeps to let something happen: it waits for the thing itself. An exception
from ``probe`` (a server that died, a bad answer) ends the wait at once. In a browser test,
wait on the page with Playwright (``expect``, ``wait_for_function``, ``expect_request``):
those also dispatch the page's events, which a Python sleep would hold back.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

TIMEOUT = 30.0
INTERVAL = 0.02


def _is_true(value: Any) -> bool:
    return bool(value)


def _timed_out(message: str | Callable[[], str], timeout: float, last: Any) -> AssertionError:
    text = message() if callable(message) else message
    return AssertionError(f"timed out after {timeout:g} s waiting for {text}; last value: {last!r}")


def wait_until(
    probe: Callable[[], T],
    until: Callable[[T], object] = _is_true,
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    message: str | Callable[[], str] = "the awaited condition",
) -> T:
    """Call ``probe`` every ``interval`` seconds until ``until(value)``; return that value.

    ``message`` (or a function that builds it, called only on failure) names what is
    awaited in the AssertionError raised after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(message, timeout, value)
        time.sleep(interval)


async def wait_until_async(
    probe: Callable[[], Awaitable[T] | T],
    until: Callable[[T], object] = _is_true,
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    message: str | Callable[[], str] = "the awaited condition",
) -> T:
    """``wait_until`` inside a coroutine; ``probe`` may return an awaitable."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if until(value):
            return value
        if loop.time() >= deadline:
            raise _timed_out(message, timeout, value)
        await asyncio.sleep(interval)
