"""The policy holder: the monitoring policy in force, loaded from its file and put on record.

The policy in force is always the content of one file (``LIVE_POLICY_FILE``, else the
built-in ``live/policy/default.toml``), read by the same parser, so the version and SHA-256
on record in ``policy.changed`` describe exactly what is enforced. ``reload`` (SIGHUP, the
admin API) keeps the last good policy when the file is invalid.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from .audit import Ledger
from .auth import Identity
from .errors import BadRequest, ConfigError, LedgerUnavailable
from .model import CallInfo
from .policy import Policy, PolicyError, ViewRosterCall, decide, read_policy_file
from .policy.decide import Action, Decision
from .policy.quota import QuotaState

log = logging.getLogger(__name__)


class PolicyHolder:
    """Owns the policy in force; ``start`` loads it (a server must not run without one)."""

    def __init__(self, path: Path, ledger: Ledger) -> None:
        self.path = path
        self._ledger = ledger
        self._policy: Policy | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Load the policy file; ``ConfigError`` listing its problems if it is invalid."""
        try:
            await self.reload(actor="system")
        except BadRequest as exc:
            raise ConfigError(exc.message, problems=exc.fields.get("problems", [])) from exc

    async def stop(self) -> None:
        return None

    @property
    def loaded(self) -> Policy | None:
        """The policy in force, ``None`` before the first load."""
        return self._policy

    def current(self) -> Policy:
        """The policy in force; ``LedgerUnavailable`` (503) before it is loaded."""
        if self._policy is None:
            raise LedgerUnavailable("the monitoring policy is not loaded yet")
        return self._policy

    async def reload(self, *, actor: str = "system") -> Policy:
        """Read the policy file again; keep the last good policy when it is invalid.

        A policy whose content hash differs from the last one on record appends
        ``policy.changed`` (also at start, comparing with the ledger's last such entry).
        Raises ``BadRequest`` listing the problems of an invalid file.
        """
        async with self._lock:
            try:
                policy = await asyncio.to_thread(read_policy_file, self.path)
            except PolicyError as exc:
                raise BadRequest(
                    f"the policy file {self.path} is invalid; the previous policy stays in force",
                    code="bad_policy",
                    problems=exc.formatted(),
                ) from exc
            previous_version: str | None = None
            previous_sha: str | None = None
            if self._policy is not None:
                previous_version, previous_sha = self._policy.version, self._policy.sha256
            else:
                changes = await self._ledger.entries(kind="policy.changed")
                if changes:
                    previous_version = changes[-1].fields.get("version")
                    previous_sha = changes[-1].fields.get("sha256")
            if policy.sha256 != previous_sha:
                await self._ledger.append(
                    "policy.changed",
                    actor=actor,
                    at=time.time(),
                    version=policy.version,
                    previous_version=previous_version,
                    sha256=policy.sha256,
                )
                log.info("monitoring policy %s in force (%s)", policy.version, self.path)
            self._policy = policy
            return policy

    def decide(
        self,
        actor: Identity,
        action: Action,
        call: CallInfo | None,
        quota: QuotaState | None = None,
    ) -> Decision:
        """The policy's answer now; quota counts (``Listen``) come from the caller."""
        return decide(actor, action, call, quota or QuotaState(), self.current(), datetime.now(UTC))

    def may_view(self, actor: Identity, call: CallInfo) -> bool:
        """Whether ``actor`` sees ``call`` in the roster."""
        return self.decide(actor, ViewRosterCall(), call).allowed
