"""Identifiers and small enumerations shared by every layer."""

from __future__ import annotations

import enum
import secrets
from typing import Literal, NewType

CallId = NewType("CallId", str)
SessionId = NewType("SessionId", str)
NodeId = NewType("NodeId", str)
UserId = NewType("UserId", str)

LegName = Literal["agent", "caller"]
LEGS: tuple[LegName, LegName] = ("agent", "caller")


class Consent(str, enum.Enum):
    """The caller's consent to be listened to, as the telephony flow or a CTI reports it."""

    GRANTED = "granted"
    DENIED = "denied"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, value: object) -> Consent:
        text = str(value).strip().lower() if value is not None else ""
        for member in cls:
            if member.value == text:
                return member
        aliases = {"yes": cls.GRANTED, "true": cls.GRANTED, "no": cls.DENIED, "false": cls.DENIED}
        return aliases.get(text, cls.UNKNOWN)


class Role(str, enum.Enum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"


class EndReason(str, enum.Enum):
    """Why a listen session ended; every value is written to the ledger."""

    STOPPED = "stopped"
    CALL_ENDED = "call-ended"
    PEER_CLOSED = "peer-closed"
    PEER_FAILED = "peer-failed"
    SHUTDOWN = "shutdown"
    NODE_LOST = "node-lost"
    SETUP_FAILED = "setup-failed"


def new_id(prefix: str) -> str:
    """A short random id with a readable prefix, e.g. ``ls_9f2c...``."""
    return f"{prefix}_{secrets.token_hex(8)}"
