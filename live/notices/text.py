"""The words of a notice, in English and German.

A notice is stored with its text in both languages (``texts``) and handed to each reader in
theirs (``localised``); the agent page may also render the structured fields itself. The
duration follows the one rule of ``live.l10n.durations`` (``spoken``), purposes and roles
read as in the console (``live.l10n.labels``), and the listener is what ``shown_listener``
decided when the listen started (a name, or a role id that is labelled here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..l10n import LANGUAGES, label, plural_form, spoken

TEXTS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "heard": "your call at {time} was listened to {length} — purpose: {purpose} — by {listener}",
        "attempt": (
            "someone tried to listen to your call at {time}; nothing was heard — "
            "purpose: {purpose} — by {listener}"
        ),
        "for": "for {duration}",
        "between": "until between {after} and {before} (the server stopped unexpectedly)",
        "digest.one": "{count} listen on your calls, {duration} in all:",
        "digest.other": "{count} listens on your calls, {duration} in all:",
    },
    "de": {
        "heard": (
            "bei Ihrem Gespräch um {time} wurde {length} mitgehört — Zweck: {purpose} — "
            "von: {listener}"
        ),
        "attempt": (
            "bei Ihrem Gespräch um {time} wurde versucht mitzuhören; es wurde nichts gehört — "
            "Zweck: {purpose} — von: {listener}"
        ),
        "for": "{duration} lang",
        "between": "bis zwischen {after} und {before} Uhr (der Server fiel unerwartet aus)",
        "digest.one": "{count} Mithör-Vorgang bei Ihren Gesprächen, insgesamt {duration}:",
        "digest.other": "{count} Mithör-Vorgänge bei Ihren Gesprächen, insgesamt {duration}:",
    },
}


def duration_text(seconds: float, lang: str = "en") -> str:
    """``3 min 12 s``, ``45 s``, ``1 h 2 min`` (German ``3 Min. 12 Sek.``): ``spoken``."""
    return spoken(seconds, lang)


def _clock(at: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, zone).strftime("%H:%M")


def _listener(item: Mapping[str, Any], lang: str) -> str:
    # A role id (the policy shows roles only) reads as its label; a name stays a name.
    return label("role", str(item.get("listener") or ""), lang, default=label("role", "listener", lang))


def after_call_text(item: Mapping[str, Any], zone: ZoneInfo, lang: str = "en") -> str:
    """"your call at 10:42 was listened to for 3 min 12 s — purpose: Training — by Sam".

    A session that never connected (``setup-failed``) is told as an attempt, nothing heard.
    A listen whose end is known only within bounds (the server died: ``ended_before`` is
    set) says "until between 10:45 and 10:52" instead of a duration."""
    words = TEXTS.get(lang, TEXTS["en"])
    params = {
        "time": _clock(item["call_started_at"], zone),
        "purpose": label("purpose", item.get("purpose"), lang),
        "listener": _listener(item, lang),
    }
    if item.get("reason") == "setup-failed":
        return words["attempt"].format(**params)
    if item.get("ended_before") is not None:
        length = words["between"].format(
            after=_clock(item["ended_after"], zone), before=_clock(item["ended_before"], zone)
        )
    else:
        length = words["for"].format(duration=spoken(float(item["duration_s"]), lang))
    return words["heard"].format(length=length, **params)


def digest_text(items: Sequence[Mapping[str, Any]], zone: ZoneInfo, lang: str = "en") -> str:
    """One line of totals, then one line per listen (``after_call_text``)."""
    words = TEXTS.get(lang, TEXTS["en"])
    total = sum(float(i["duration_s"]) for i in items if i.get("reason") != "setup-failed")
    head = words[f"digest.{plural_form(len(items))}"].format(
        count=len(items), duration=spoken(total, lang)
    )
    return "\n".join([head, *(f"- {after_call_text(i, zone, lang)}" for i in items)])


def texts_of(render: Any, *args: Any) -> dict[str, str]:
    """``render(*args, lang)`` in every language: what a notice stores as ``texts``."""
    return {lang: render(*args, lang) for lang in LANGUAGES}
