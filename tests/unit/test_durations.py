"""One duration rule and its renderings (live.l10n), the labels table and the reader's
language."""

from __future__ import annotations

import pytest

from live.l10n import (
    LanguageError,
    check_language,
    clock,
    clock_span,
    label,
    language_from_header,
    plural_form,
    spoken,
    whole_seconds,
)
from live.policy import ShownListener, shown_listener

# (seconds, whole seconds, clock, English words, German words)
CASES = [
    (0, 0, "0:00", "0 s", "0 Sek."),
    (0.49, 0, "0:00", "0 s", "0 Sek."),
    (0.5, 1, "0:01", "1 s", "1 Sek."),
    (59.5, 60, "1:00", "1 min", "1 Min."),
    (125, 125, "2:05", "2 min 5 s", "2 Min. 5 Sek."),
    (192.4, 192, "3:12", "3 min 12 s", "3 Min. 12 Sek."),
    (3600, 3600, "1:00:00", "1 h", "1 Std."),
    (3725, 3725, "1:02:05", "1 h 2 min 5 s", "1 Std. 2 Min. 5 Sek."),
    (-4, 0, "0:00", "0 s", "0 Sek."),
    (float("nan"), 0, "0:00", "0 s", "0 Sek."),
]


@pytest.mark.parametrize(("seconds", "whole", "clocked", "en", "de"), CASES)
def test_one_rule_two_renderings(seconds: float, whole: int, clocked: str, en: str, de: str) -> None:
    assert whole_seconds(seconds) == whole
    assert clock(seconds) == clocked
    assert spoken(seconds) == en and spoken(seconds, "en") == en
    assert spoken(seconds, "de") == de


def test_spans_and_plurals() -> None:
    assert clock_span(60, 300) == "1:00–5:00"
    assert clock_span(60, 300, sep="-") == "1:00-5:00"
    assert [plural_form(n) for n in (0, 1, 2)] == ["other", "one", "other"]


def test_labels_are_the_consoles() -> None:
    assert label("purpose", "quality") == "Quality assurance"
    assert label("purpose", "quality", "de") == "Qualitätssicherung"
    assert label("purpose", "site-own") == "site-own"  # a site's own purpose: as it is
    assert label("purpose", None) == "-"
    assert label("role", "supervisor", "de") == "Teamleitung"
    assert label("refusal", "outside_team", "fr") == "outside the listener's teams"


def test_the_readers_language() -> None:
    assert check_language(None) == "en" and check_language(" DE ") == "de"
    with pytest.raises(LanguageError) as caught:
        check_language("fr")
    assert caught.value.code == "bad_lang"
    assert language_from_header("de-DE,de;q=0.9,en;q=0.8") == "de"
    assert language_from_header("fr-FR, en;q=0.5, de;q=0.7") == "de"
    assert language_from_header("en-GB, de") == "en"
    assert language_from_header("fr, it") == "en"
    assert language_from_header("de;q=0") == "en"
    assert language_from_header(None) == "en"


def test_what_the_agent_sees_of_the_listener() -> None:
    def role_of(user_id: str) -> str | None:
        return {"sam": "admin"}.get(user_id)

    named = {"display_name": "Sam S", "user_id": "sam", "role": "supervisor"}
    assert shown_listener(names=True, **named) == ShownListener("Sam S", False)
    assert shown_listener(names=False, **named) == ShownListener("supervisor", True)
    # No role recorded: the user's role now; erased details: only "listener" remains.
    unrecorded = {"display_name": None, "user_id": "sam", "role": None}
    assert shown_listener(names=False, role_of=role_of, **unrecorded) == ShownListener("admin", True)
    erased = {"display_name": None, "user_id": None, "role": None}
    assert shown_listener(names=True, role_of=role_of, **erased) == ShownListener("listener", True)
