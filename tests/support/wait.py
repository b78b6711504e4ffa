"""Wait for a condition, or fail loudly: the only way tests here synchronise with a server."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def wait_for(condition: Callable[[], Awaitable[T]], timeout: float, what: str, *, every: float = ...) -> T: ...
@overload
async def wait_for(condition: Callable[[], T], timeout: float, what: str, *, every: float = ...) -> T: ...


async def wait_for(condition: Callable[[], Any], timeout: float, what: str, *, every: float = 0.05) -> Any:
    """Poll ``condition`` (plain or async) until it returns something truthy, and return it.

    Raises ``AssertionError`` naming ``what`` and the last value seen when ``timeout``
    seconds pass first: the timeout is a bound on a broken run, never a synchronisation.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        await asyncio.sleep(every)


def wait_for_blocking(condition: Callable[[], T], timeout: float, what: str, *, every: float = 0.05) -> T:
    """``wait_for`` for code without an event loop (tests that drive a separate process).

    Returns the first truthy value of ``condition``; raises ``AssertionError`` naming
    ``what`` and the last value seen when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(every)
