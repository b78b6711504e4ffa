"""The ``CallBus`` contract shared by the in-process and the Redis implementation.

Semantics every implementation keeps:

* ``publish`` delivers the event to every subscriber on every node, the publishing node
  included, in publish order per publisher. It also updates the shared roster so that a node
  (or a console) arriving later gets the current state from ``snapshot``.
* ``snapshot`` returns the calls alive in the cluster, each with its current listeners. Calls
  of a node that stopped heart-beating drop out. ``view`` adds the nodes alive, so that a
  reader can tell a call that ended from one whose node was lost.
* ``publish`` raises ``BusUnavailable`` when the shared roster cannot take the event now; what
  the publishing node asserts about its own calls and listens is still kept, and written back
  (ends announced again) once the bus is usable again: failed publishes are repaired, never
  lost for good. Other nodes catch up through their periodic resync (``CallRegistry``).
* Media relay: the node that ingests a call publishes that call's packets with
  ``publish_media`` only while some other node has asked for them with ``want_media``
  (renewed while it listens); ``media_wanted`` tells the ingesting node whether to bother.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from ..model import BusEvent, CallInfo
from ..types import CallId

EventHandler = Callable[[BusEvent], None]
MediaHandler = Callable[[bytes], None]
Unsubscribe = Callable[[], None]


@dataclass(frozen=True, slots=True)
class ClusterView:
    """The cluster's state as the bus has it at one moment."""

    calls: tuple[CallInfo, ...]  # alive, oldest first, each with its listeners
    nodes: frozenset[str]  # the nodes whose heartbeat is fresh
    # The nodes with a heartbeat on record, fresh or stale (None: the bus keeps none). A node
    # without one is not known to be lost: the store may have been emptied (Redis restarted)
    # and the node not have written its calls back yet; a reader gives it ``node_timeout_s``.
    heard: frozenset[str] | None = None
    node_timeout_s: float = 0.0


class CallBus(Protocol):
    async def start(self) -> None:
        """Connect and start delivering events; raise ``BusUnavailable`` if impossible."""

    async def aclose(self) -> None:
        """Stop delivering, withdraw this node's calls and listeners, release connections."""

    @property
    def problem(self) -> str | None:
        """Why this node cannot use the bus right now (``/readyz`` says it), or ``None``."""

    async def publish(self, event: BusEvent) -> None:
        """Apply ``event`` to the shared roster and deliver it to every subscriber."""

    async def snapshot(self) -> list[CallInfo]:
        """Every live call in the cluster with its listeners."""

    async def view(self) -> ClusterView:
        """Every live call with its listeners, and the nodes alive, read at one moment."""

    def subscribe(self, handler: EventHandler) -> Unsubscribe:
        """Call ``handler`` for every event from now on; returns the unsubscribe function."""

    async def want_media(self, call_id: CallId) -> None:
        """Ask the node that ingests ``call_id`` to relay its packets (renew every few s)."""

    def media_wanted(self, call_id: CallId) -> bool:
        """True while another node has asked for this call's packets recently."""

    def publish_media(self, call_id: CallId, data: bytes) -> None:
        """Relay one encoded packet (``codec.encode_media``) of a call ingested here.

        Called on the media path for every packet: queues and returns at once, never waits."""

    async def subscribe_media(
        self, call_id: CallId, handler: MediaHandler
    ) -> Callable[[], Awaitable[None]]:
        """Receive relayed packets of a call ingested elsewhere; returns async unsubscribe."""
