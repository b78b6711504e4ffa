"""The call-state bus: in-process on one machine, Redis pub/sub across nodes."""

from .base import CallBus, EventHandler, MediaHandler
from .memory import MemoryCallBus

__all__ = ["CallBus", "EventHandler", "MediaHandler", "MemoryCallBus"]
