"""WebRTC listen sessions (aiortc): one peer connection, two receive-only legs per listener."""

from .peer import ListenPeer
from .track import PacketTrack

__all__ = ["ListenPeer", "PacketTrack"]
