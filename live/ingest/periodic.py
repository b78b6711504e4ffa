"""A job run every few seconds for the life of a task: media timeouts, session timers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(seconds: float, job: Callable[[], Awaitable[None]], what: str) -> None:
    """Run ``job`` every ``seconds`` until cancelled; a failure is logged and the next run
    goes on (a task boundary: one bad call must not stop the timeouts of all the others)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:
            log.exception("%s failed", what)
