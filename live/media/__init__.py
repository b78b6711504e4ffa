"""The packet hub: one source per leg, one bounded queue per listener."""

from .hub import CallMedia, EncodedPacket, LegSource, ListenerQueue, QueueClosed

__all__ = ["CallMedia", "EncodedPacket", "LegSource", "ListenerQueue", "QueueClosed"]
