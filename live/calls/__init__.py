"""Calls on this node and in the cluster: the roster, local media, relay between nodes."""

from .gates import NOT_SENT, legs_state
from .registry import CallRegistry, CallStats, CallWatcher

__all__ = ["NOT_SENT", "CallRegistry", "CallStats", "CallWatcher", "legs_state"]
