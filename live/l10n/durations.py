"""One rule for showing how long something lasted, in every document and page.

The rule: a duration is shown in whole seconds, rounded to the nearest second with halves
rounded up (59.5 s is 1:00; negative values are 0). ``web/shared/duration.js`` is the same
rule for the browser pages, so a listen reads the same on the agent page, the audit page,
in a notice, a CSV and a PDF.

Two renderings of the same whole seconds:

* ``clock``: ``m:ss``, or ``h:mm:ss`` from one hour on, for tables and timers (the same in
  English and German);
* ``spoken``: words for sentences, per language: ``3 min 12 s`` / ``3 Min. 12 Sek.``,
  ``1 h 2 min`` / ``1 Std. 2 Min.``; parts that are zero are left out.
"""

from __future__ import annotations

import math

UNITS = {
    "en": ("h", "min", "s"),
    "de": ("Std.", "Min.", "Sek."),
}


def whole_seconds(seconds: float) -> int:
    """The rule: nearest whole second, halves up, never below zero."""
    if not math.isfinite(seconds):
        return 0
    return max(0, math.floor(seconds + 0.5))


def _parts(seconds: float) -> tuple[int, int, int]:
    hours, rest = divmod(whole_seconds(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return hours, minutes, secs


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from one hour on."""
    hours, minutes, secs = _parts(seconds)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def clock_span(shortest: float, longest: float, sep: str = "–") -> str:
    """``m:ss–m:ss``: a duration known only within bounds (a listen cut by a crash). CSV
    files pass ``sep="-"`` and stay plain ASCII."""
    return f"{clock(shortest)}{sep}{clock(longest)}"


def spoken(seconds: float, lang: str = "en") -> str:
    """``3 min 12 s``, ``45 s``, ``1 h 2 min`` (German: ``3 Min. 12 Sek.``); zero parts are
    left out, and no time at all is ``0 s``."""
    h_unit, m_unit, s_unit = UNITS.get(lang, UNITS["en"])
    hours, minutes, secs = _parts(seconds)
    words = [
        f"{value} {unit}"
        for value, unit in ((hours, h_unit), (minutes, m_unit), (secs, s_unit))
        if value
    ]
    return " ".join(words) or f"0 {s_unit}"
