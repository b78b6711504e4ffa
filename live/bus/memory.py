"""The in-process bus: one node, no network. Events are delivered synchronously."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ..model import BusEvent, CallInfo, Roster
from ..types import CallId
from .base import ClusterView, EventHandler, MediaHandler, Unsubscribe

log = logging.getLogger(__name__)


class MemoryCallBus:
    def __init__(self) -> None:
        self._roster = Roster()
        self._handlers: list[EventHandler] = []

    @property
    def problem(self) -> str | None:
        """An in-process bus is always usable."""
        return None

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        self._handlers.clear()

    async def publish(self, event: BusEvent) -> None:
        self._roster.apply(event)
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # a subscriber's bug must not stop delivery to the others
                log.exception("bus subscriber failed on %s", event.kind)

    async def snapshot(self) -> list[CallInfo]:
        return list(self._roster.calls.values())

    async def view(self) -> ClusterView:
        calls = tuple(self._roster.calls.values())
        return ClusterView(calls, frozenset(call.node_id for call in calls))

    def subscribe(self, handler: EventHandler) -> Unsubscribe:
        self._handlers.append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers:
                self._handlers.remove(handler)

        return unsubscribe

    # One node ingests every call, so nothing is ever relayed.
    async def want_media(self, call_id: CallId) -> None:
        return None

    def media_wanted(self, call_id: CallId) -> bool:
        return False

    def publish_media(self, call_id: CallId, data: bytes) -> None:
        return None

    async def subscribe_media(
        self, call_id: CallId, handler: MediaHandler
    ) -> Callable[[], Awaitable[None]]:
        async def unsubscribe() -> None:
            return None

        return unsubscribe
