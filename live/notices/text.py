"""The words of a notice (English; the agent page shows the structured fields localised)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo


def duration_text(seconds: float) -> str:
    """``3 min 12 s``, ``45 s``, ``1 h 2 min``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _clock(at: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, zone).strftime("%H:%M")


def after_call_text(item: dict[str, Any], zone: ZoneInfo) -> str:
    """"your call at 10:42 was listened to for 3 min 12 s — purpose: training — by Sam".

    A session that never connected (``setup-failed``) is told as an attempt, nothing heard.
    A listen whose end is known only within bounds (the server died: ``ended_before`` is
    set) says "until between 10:45 and 10:52" instead of a duration."""
    if item.get("reason") == "setup-failed":
        return (
            f"someone tried to listen to your call at {_clock(item['call_started_at'], zone)}; "
            f"nothing was heard — purpose: {item['purpose']} — by {item['listener']}"
        )
    if item.get("ended_before") is not None:
        length = (
            f"until between {_clock(item['ended_after'], zone)} and "
            f"{_clock(item['ended_before'], zone)} (the server stopped unexpectedly)"
        )
    else:
        length = f"for {duration_text(item['duration_s'])}"
    return (
        f"your call at {_clock(item['call_started_at'], zone)} was listened to {length}"
        f" — purpose: {item['purpose']} — by {item['listener']}"
    )


def digest_text(items: Sequence[dict[str, Any]], zone: ZoneInfo) -> str:
    total = sum(float(i["duration_s"]) for i in items if i.get("reason") != "setup-failed")
    lines = [f"{len(items)} listen(s) on your calls, {duration_text(total)} in all:"]
    lines += [f"- {after_call_text(i, zone)}" for i in items]
    return "\n".join(lines)
