"""Listen sessions: decided, recorded, connected and ended (architecture decisions 4, 10)."""

from .service import ListenService, ListenStats
from .session import ListenLeg, ListenSession, heard_fields

__all__ = ["ListenLeg", "ListenService", "ListenSession", "ListenStats", "heard_fields"]
