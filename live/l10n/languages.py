"""Which of the two languages a reader gets (``en``, the default, or ``de``)."""

from __future__ import annotations

from ..errors import LiveError

LANGUAGES = ("en", "de")
DEFAULT = "en"


class LanguageError(LiveError):
    """A language was asked for that ``live`` does not speak. A request error: the HTTP
    layer answers 400, the command line prints the message."""

    code = "bad_lang"


def check_language(lang: str | None) -> str:
    """``en`` (default, also for an empty value) or ``de``; ``LanguageError`` otherwise."""
    value = (lang or DEFAULT).strip().lower()
    if value not in LANGUAGES:
        raise LanguageError(f"language must be one of {', '.join(LANGUAGES)}")
    return value


def language_from_header(accept_language: str | None) -> str:
    """The reader's language from an ``Accept-Language`` header (RFC 9110, section 12.5.4):
    the supported language with the highest weight, ``en`` when none is acceptable. Like the
    pages, only the primary subtag counts (``de-AT`` is ``de``)."""
    best, best_q = DEFAULT, -1.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower()[:2]
        if primary not in LANGUAGES:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        # Equal weights: the earlier one wins (a stable choice for "de, en").
        if q > best_q and q > 0:
            best, best_q = primary, q
    return best
