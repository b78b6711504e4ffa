"""The time extension line the ledger writes in every checkpoint it signs.

tlog-checkpoint leaves extension lines to the log. This log adds exactly one,
``time <RFC 3339 UTC time, milliseconds>`` (e.g. ``time 2025-11-28T15:48:00.123Z``), so a
checkpoint says when it was signed. Because one is signed on a timer even when nothing is
appended, a gap in the checkpoint times (or a newest checkpoint that is old) shows that the
server was down or that checkpoints, and perhaps entries, were removed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .checkpoint import Checkpoint

TIME_PREFIX = "time "


def time_line(at: float) -> str:
    """The extension line for a checkpoint signed at ``at`` (unix seconds)."""
    moment = datetime.fromtimestamp(at, tz=UTC)
    return TIME_PREFIX + moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def checkpoint_time(checkpoint: Checkpoint) -> float | None:
    """When the checkpoint says it was signed, or ``None`` if it has no valid time line."""
    for line in checkpoint.extensions:
        if line.startswith(TIME_PREFIX):
            text = line[len(TIME_PREFIX) :]
            try:
                moment = datetime.fromisoformat(text)  # accepts "Z" since Python 3.11
            except ValueError:
                return None
            if moment.tzinfo is None:
                return None
            return moment.timestamp()
    return None
