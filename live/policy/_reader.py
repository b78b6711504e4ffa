"""Typed reads from a parsed TOML document that collect problems instead of stopping.

``PolicyReader`` is the vocabulary ``parse.py`` checks a policy with: each read returns the
value, or ``None`` after recording a ``PolicyProblem`` that points at the offending key (its
line found by ``key_lines``), so one pass reports every mistake in a file.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from ._locate import KeyPath, key_lines
from .problems import PolicyProblem, key_name

_T = TypeVar("_T")

_TOML_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    (list, "an array"),
    (dict, "a table"),
)


def describe(value: object) -> str:
    for kind, name in _TOML_TYPES:
        if isinstance(value, kind):
            return (
                f"{name} ({json.dumps(value, default=str)[:40]})"
                if kind not in (list, dict)
                else name
            )
    return f"a date/time ({value})"


class PolicyReader:
    """Reads a parsed document against the format, collecting problems instead of stopping."""

    def __init__(self, text: str) -> None:
        self.lines = key_lines(text)
        self.problems: list[PolicyProblem] = []

    # --- reporting ------------------------------------------------------------------------

    def line_of(self, path: KeyPath) -> int:
        """The line of ``path``, or of the nearest enclosing key or table that is written."""
        while path:
            line = self.lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return 1

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(PolicyProblem(self.line_of(path), key_name(path), message))

    # --- typed reads ----------------------------------------------------------------------

    def known_keys(self, table: Mapping[str, Any], path: KeyPath, allowed: Sequence[str]) -> None:
        for key in table:
            if key in allowed:
                continue
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
            hint = (
                f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
            )
            self.problem(path + (key,), f"unknown key; {hint}")

    def value(
        self,
        table: Mapping[str, Any],
        key: str,
        path: KeyPath,
        kind: type[_T],
        *,
        required: bool,
        hint: str = "",
    ) -> _T | None:
        where = path + (key,)
        if key not in table:
            if required:
                self.problem(where, f"missing; {hint}" if hint else "missing (required)")
            return None
        value = table[key]
        # bool is an int in Python, but not in TOML.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            name = dict(_TOML_TYPES)[kind]
            extra = (
                f' (quote it: {key} = "{value}")'
                if kind is str and isinstance(value, (int, float))
                else ""
            )
            self.problem(where, f"expected {name}, found {describe(value)}{extra}")
            return None
        return value

    def table(
        self, parent: Mapping[str, Any], key: str, path: KeyPath, *, required: bool
    ) -> dict[str, Any] | None:
        return self.value(
            parent,
            key,
            path,
            dict,
            required=required,
            hint=f"add a [{key_name(path + (key,))}] table",
        )

    def text(
        self,
        table: Mapping[str, Any],
        key: str,
        path: KeyPath,
        *,
        required: bool = True,
        hint: str = "",
    ) -> str | None:
        value = self.value(table, key, path, str, required=required, hint=hint)
        if value is not None and not value.strip():
            self.problem(path + (key,), "must not be empty")
            return None
        return value

    def choice(
        self,
        table: Mapping[str, Any],
        key: str,
        path: KeyPath,
        choices: Sequence[_T],
        hint: str = "",
    ) -> _T | None:
        value = self.text(table, key, path, hint=hint)
        if value is None:
            return None
        if value not in choices:
            self.problem(
                path + (key,),
                f"{value!r} is not allowed; use one of: {', '.join(map(str, choices))}",
            )
            return None
        return cast(_T, value)

    def boolean(self, table: Mapping[str, Any], key: str, path: KeyPath, hint: str) -> bool | None:
        return self.value(table, key, path, bool, required=True, hint=hint)

    def count(
        self, table: Mapping[str, Any], key: str, path: KeyPath, *, minimum: int, hint: str
    ) -> int | None:
        value = self.value(table, key, path, int, required=True, hint=hint)
        if value is not None and value < minimum:
            self.problem(path + (key,), f"must be {minimum} or more, found {value}")
            return None
        return value

    def texts(
        self,
        table: Mapping[str, Any],
        key: str,
        path: KeyPath,
        *,
        required: bool,
        non_empty: bool = False,
        hint: str = "",
    ) -> list[str] | None:
        """An array of non-empty strings without duplicates (problems point at the element)."""
        items = self.value(table, key, path, list, required=required, hint=hint)
        if items is None:
            return None
        where = path + (key,)
        if non_empty and not items:
            self.problem(
                where,
                f"must list at least one value; {hint}" if hint else "must list at least one value",
            )
            return None
        good: list[str] = []
        for index, item in enumerate(items):
            if not isinstance(item, str):
                self.problem(where + (index,), f"expected a string, found {describe(item)}")
            elif not item.strip():
                self.problem(where + (index,), "must not be empty")
            elif item in good:
                self.problem(where + (index,), f"{item!r} is listed twice")
            else:
                good.append(item)
        return good if len(good) == len(items) else None

    def text_or_texts(
        self, table: Mapping[str, Any], key: str, path: KeyPath
    ) -> frozenset[str] | None:
        """A string, or a non-empty array of strings: the accepted values of a match."""
        value = table.get(key)
        if isinstance(value, str):
            return frozenset([value])
        if isinstance(value, list):
            items = self.texts(table, key, path, required=True, non_empty=True)
            return None if items is None else frozenset(items)
        self.problem(
            path + (key,), f"expected a string or an array of strings, found {describe(value)}"
        )
        return None
