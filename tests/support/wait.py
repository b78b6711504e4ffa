"""Wait for a condition, or fail loudly: the only way tests here synchronise with a server."""

from __future__ import annotations

import asyncio
import inspect
from typing import Awaitable, Callable, TypeVar, Union

T = TypeVar("T")

Condition = Callable[[], Union[T, Awaitable[T]]]


async def wait_for(condition: Condition[T], timeout: float, what: str, *, every: float = 0.05) -> T:
    """Poll ``condition`` (plain or async) until it returns something truthy, and return it.

    Raises ``AssertionError`` naming ``what`` and the last value seen when ``timeout``
    seconds pass first: the timeout is a bound on a broken run, never a synchronisation.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        last = value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(every)
