"""Every Redis key and channel name, in one place (one prefix per deployment)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisKeys:
    prefix: str = "live:"

    @property
    def events(self) -> str:
        """Pub/sub channel of msgpack bus events."""
        return f"{self.prefix}events"

    @property
    def control(self) -> str:
        """Pub/sub channel of media relay requests (``want:<call_id>``)."""
        return f"{self.prefix}control"

    @property
    def calls(self) -> str:
        """Hash call_id -> msgpack CallInfo (without listeners), written by the ingesting node."""
        return f"{self.prefix}calls"

    @property
    def listens(self) -> str:
        """Hash session_id -> msgpack ListenStarted, written by the listening node."""
        return f"{self.prefix}listens"

    @property
    def nodes(self) -> str:
        """Sorted set node_id -> last heartbeat (unix seconds)."""
        return f"{self.prefix}nodes"

    @property
    def revocations(self) -> str:
        """Pub/sub channel announcing revoked sessions and tokens (JSON ``Revocation``); the
        durable copy is in the shared database (``live.auth.revocation_store``)."""
        return f"{self.prefix}revocations"

    def limit(self, name: str, key: str) -> str:
        """Hash {tokens, stamp} of one cluster-wide rate limit bucket (``live.limits.store``)."""
        return f"{self.prefix}limit:{name}:{key}"

    def listening(self, user_id: str) -> str:
        """Sorted set member -> lease end (ms, Redis time): one person's listens at once,
        running (``s:<node>:<session>``) and being set up (``p:<node>:<request>``)."""
        return f"{self.prefix}listening:{user_id}"

    def media(self, call_id: str) -> str:
        """Pub/sub channel of one call's relayed packets."""
        return f"{self.prefix}media:{call_id}"
