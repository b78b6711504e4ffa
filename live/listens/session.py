"""One listen session served here, and what its ledger entries say about what was heard."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import NamedTuple

from ..auth import Identity
from ..media.hub import CallMedia, ListenerQueue
from ..rtc import ListenPeer
from ..types import CallId, LegName, SessionId


class ListenLeg(NamedTuple):
    """One leg as a listen answer reports it: whether the policy lets it be heard, whether
    the source sends it at all, and why it is not heard (``None`` when it is)."""

    audible: bool
    available: bool
    reason: str | None

    @property
    def heard(self) -> bool:
        return self.audible and self.available


@dataclass(eq=False)
class ListenSession:
    session_id: SessionId
    call_id: CallId
    agent_id: str
    actor: Identity
    purpose: str
    started_at: float
    queues: dict[LegName, ListenerQueue]
    media: CallMedia
    peer: ListenPeer = field(init=False)
    ended: bool = False
    notice_mode: str | None = None
    label: str = ""
    policy_version: str = ""
    call_started_at: float = 0.0
    setup_timer: asyncio.TimerHandle | None = None

    @property
    def dropped(self) -> int:
        """Packets dropped for this listener (its queues were full)."""
        return sum(q.dropped for q in self.queues.values())


def heard_fields(queues: dict[LegName, ListenerQueue]) -> dict[str, float | None]:
    """What a listener was sent, for ``listen.ended``: the first and last packet handed out
    on any leg (``None`` when none was) and the time between them (``heard_s``)."""
    first = min((q.first_at for q in queues.values() if q.delivered), default=None)
    last = max((q.last_at for q in queues.values() if q.delivered), default=None)
    heard = round(last - first, 3) if first is not None and last is not None else 0.0
    return {"first_packet_at": first, "last_packet_at": last, "heard_s": heard}
