"""Listens made on other nodes, from the bus to this node's notice board.

The node that makes a listen tells its own board directly (``ListenService``, ``record_end``)
and keeps the notice in the shared store; ``ListenStarted`` / ``ListenEnded`` carry what the
other boards need (the agent, the listener as the policy discloses them, the notice mode, the
kept notice's id). Events this node published are skipped here: its board knew them first,
and applying them twice would show an agent the same notice twice.

Bus handlers must not wait, so events are queued (bounded, drop-oldest, counted) and applied
in order by one task that the relay owns.
"""

from __future__ import annotations

import asyncio
import logging

from ..errors import LiveError
from ..model import BusEvent, ListenEnded, ListenStarted
from .board import NoticeBoard

log = logging.getLogger(__name__)

RELAY_QUEUE = 1024

RemoteListen = ListenStarted | ListenEnded


class NoticeRelay:
    """Applies other nodes' listen starts and ends to ``board``."""

    def __init__(self, board: NoticeBoard, node_id: str) -> None:
        self.board = board
        self.node_id = node_id
        self.dropped = 0
        self._queue: asyncio.Queue[RemoteListen] = asyncio.Queue(RELAY_QUEUE)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._apply_all(), name="notice-relay")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def on_event(self, event: BusEvent) -> None:
        """The bus handler: queue a listen event made elsewhere, never wait."""
        if isinstance(event, ListenStarted):
            if event.listener.node_id == self.node_id or not event.agent_id:
                return
        elif isinstance(event, ListenEnded):
            if event.node_id == self.node_id or not event.agent_id:
                return
        else:
            return
        if self._queue.full():  # a stalled store loses the oldest event, never blocks the bus
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def settled(self) -> None:
        """Wait until every queued event is applied."""
        await self._queue.join()

    async def _apply_all(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._apply(event)
            except LiveError as exc:
                log.error("could not apply %s of listen %s: %s", event.kind, _session(event), exc.message)
            except Exception:  # task boundary: log, keep relaying
                log.exception("could not apply %s of listen %s", event.kind, _session(event))
            finally:
                self._queue.task_done()

    async def _apply(self, event: RemoteListen) -> None:
        if isinstance(event, ListenStarted):
            self.board.listen_started(
                agent_id=event.agent_id,
                session_id=event.listener.session_id,
                label=event.label,
                mode=event.notice_mode,
                purpose=event.listener.purpose,
            )
        else:
            await self.board.listen_ended_elsewhere(
                agent_id=event.agent_id, session_id=event.session_id, notice_id=event.notice_id
            )


def _session(event: RemoteListen) -> str:
    return event.listener.session_id if isinstance(event, ListenStarted) else event.session_id
