"""What an ingest adapter needs from the rest of the server: somewhere to put calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..media.hub import CallMedia
from ..model import Codec
from ..types import LEGS, CallId, Consent, LegName


@dataclass(frozen=True, slots=True)
class CallAnnouncement:
    """What the telephony side tells us about a call when its media starts."""

    call_id: CallId
    source: str
    agent_id: str
    consent: Consent = Consent.UNKNOWN
    codec: Codec = "PCMU"
    queue: str = ""
    private: bool = False
    attributes: dict[str, str] = field(default_factory=dict)
    # The legs this source sends; a leg left out is shown as "not sent" and never heard.
    legs: tuple[LegName, ...] = LEGS


class CallSink(Protocol):
    async def call_started(self, announcement: CallAnnouncement) -> CallMedia:
        """Register a new call ingested on this node; raise ``Conflict`` if it exists."""

    async def call_ended(self, call_id: CallId) -> None:
        """The call's media ended: end its listen sessions and withdraw it."""

    async def consent_reported(self, call_id: CallId, consent: Consent) -> None:
        """The telephony side reported a new consent state for the caller."""

    async def legs_reported(self, call_id: CallId, legs: tuple[LegName, ...]) -> None:
        """The legs the source sends changed (a second connection brought the other leg,
        or the connection of one leg ended while the other goes on)."""
