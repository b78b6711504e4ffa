"""Pure data: calls, listen sessions and the events that travel on the bus.

Nothing here does I/O. ``CallInfo`` is the roster's view of a call (what every node knows);
the audio itself lives in ``media`` on the node that ingests the call.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from .types import LEGS, CallId, Consent, LegName, NodeId, SessionId

Codec = Literal["PCMU", "PCMA"]


@dataclass(frozen=True, slots=True)
class ListenerInfo:
    """Who is listening to a call, as shown in the roster."""

    session_id: SessionId
    user_id: str
    display_name: str
    purpose: str
    started_at: float
    node_id: NodeId
    # What the agent's live indicator shows, for a node that learns of the listen from the
    # roster (it started before that node, or its announcement was lost): the listener as
    # the policy discloses them, and the notice mode decided for it. Absent from older nodes.
    label: str | None = None
    notice_mode: str | None = None


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_id: CallId
    source: str
    agent_id: str
    started_at: float
    node_id: NodeId
    consent: Consent = Consent.UNKNOWN
    pci_paused: bool = False
    codec: Codec = "PCMU"
    queue: str = ""
    private: bool = False
    attributes: dict[str, str] = field(default_factory=dict)
    listeners: tuple[ListenerInfo, ...] = ()
    # The legs the source really sends (a Twilio stream with one track sends one); a leg not
    # listed here is never heard and is reported as not sent. Both, unless the source says.
    legs: tuple[LegName, ...] = LEGS

    def with_listener(self, listener: ListenerInfo) -> CallInfo:
        others = tuple(x for x in self.listeners if x.session_id != listener.session_id)
        return dataclasses.replace(self, listeners=others + (listener,))

    def without_listener(self, session_id: SessionId) -> CallInfo:
        return dataclasses.replace(
            self, listeners=tuple(x for x in self.listeners if x.session_id != session_id)
        )


# --- bus events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    kind: ClassVar[str] = "call.started"
    call: CallInfo


@dataclass(frozen=True, slots=True)
class CallUpdated:
    kind: ClassVar[str] = "call.updated"
    call: CallInfo


@dataclass(frozen=True, slots=True)
class CallEnded:
    kind: ClassVar[str] = "call.ended"
    call_id: CallId
    ended_at: float


@dataclass(frozen=True, slots=True)
class ListenStarted:
    kind: ClassVar[str] = "listen.started"
    call_id: CallId
    listener: ListenerInfo
    legs: tuple[LegName, ...]
    # What the agent's notice board needs, on whichever node serves the agent's page: the
    # listener as the policy discloses them, and the agent's notice mode for this listen.
    agent_id: str = ""
    label: str = ""
    notice_mode: str | None = None


@dataclass(frozen=True, slots=True)
class ListenEnded:
    kind: ClassVar[str] = "listen.ended"
    call_id: CallId
    session_id: SessionId
    reason: str
    ended_at: float
    # For the agent's notice board on the other nodes: whose call, which node ended it (that
    # node told its own pages already) and the notice it kept in the shared store, if any.
    agent_id: str = ""
    node_id: str = ""
    notice_id: str | None = None


BusEvent = CallStarted | CallUpdated | CallEnded | ListenStarted | ListenEnded

EVENT_TYPES: dict[str, type[Any]] = {
    cls.kind: cls for cls in (CallStarted, CallUpdated, CallEnded, ListenStarted, ListenEnded)
}


class Roster:
    """The calls known to a node, kept current by applying bus events in order."""

    def __init__(self) -> None:
        self.calls: dict[CallId, CallInfo] = {}

    def apply(self, event: BusEvent) -> None:
        if isinstance(event, (CallStarted, CallUpdated)):
            # Call state comes from the ingesting node, listeners from the listening nodes
            # (listen.* events): a call update never replaces the listeners known here.
            known = self.calls.get(event.call.call_id)
            listeners = known.listeners if known is not None else event.call.listeners
            self.calls[event.call.call_id] = dataclasses.replace(event.call, listeners=listeners)
        elif isinstance(event, CallEnded):
            self.calls.pop(event.call_id, None)
        elif isinstance(event, ListenStarted):
            known = self.calls.get(event.call_id)
            if known is not None:
                self.calls[event.call_id] = known.with_listener(event.listener)
        elif isinstance(event, ListenEnded):
            known = self.calls.get(event.call_id)
            if known is not None:
                self.calls[event.call_id] = known.without_listener(event.session_id)


def call_to_json(call: CallInfo) -> dict[str, Any]:
    """The JSON shape of a call in ``GET /api/calls`` and on ``/api/events``."""
    return {
        "call_id": call.call_id,
        "source": call.source,
        "agent_id": call.agent_id,
        "started_at": call.started_at,
        "node_id": call.node_id,
        "consent": call.consent.value,
        "pci_paused": call.pci_paused,
        "codec": call.codec,
        "queue": call.queue,
        "legs": list(call.legs),
        "listeners": [
            {
                "session_id": x.session_id,
                "user_id": x.user_id,
                "display_name": x.display_name,
                "purpose": x.purpose,
                "started_at": x.started_at,
            }
            for x in call.listeners
        ],
    }
