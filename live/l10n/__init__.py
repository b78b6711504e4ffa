"""The words people read, in English and German: languages, durations, labels of ids.

Pure and at the bottom of the layers, so that notices, reports and the server all speak
with one voice: one duration rule (``durations``), one table of purpose, role, leg and
refusal labels (``labels``), one way to pick a reader's language (``languages``). The
browser pages follow the same rule in ``web/shared/duration.js``.
"""

from .durations import clock, clock_span, spoken, whole_seconds
from .labels import label, plural_form
from .languages import LANGUAGES, LanguageError, check_language, language_from_header

__all__ = [
    "LANGUAGES",
    "LanguageError",
    "check_language",
    "clock",
    "clock_span",
    "label",
    "language_from_header",
    "plural_form",
    "spoken",
    "whole_seconds",
]
