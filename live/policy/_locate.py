"""Where each key of a TOML document is written: line numbers for policy error messages.

``tomllib`` reports a position only for syntax errors; a *valid* document that breaks the
policy's rules (an unknown key, a bad time range) comes back as plain dicts and lists without
positions. ``key_lines`` walks the text of a document that ``tomllib`` has already accepted
and records the line on which every key, table header and array element begins, under the
same path the parsed value has (``("hours", "allowed", 1)``, ``("exclusions", 0, "queue")``).

Because the syntax is known to be valid (TOML 1.0, https://toml.io/en/v1.0.0), the scanner
only has to recognise structure: comments, table headers, array-of-tables headers (each
``[[name]]`` opens element ``n`` of that array, TOML 1.0 "Array of Tables"), dotted and quoted
keys, the four string forms (so that ``#``, ``[``, ``=`` inside strings are skipped), arrays
and inline tables. Scalars other than strings are skipped up to the next delimiter.
"""

from __future__ import annotations

from typing import TypeAlias

KeyPath: TypeAlias = tuple[str | int, ...]

_BARE_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every key path of a valid TOML document to the 1-based line it starts on.

    A path's enclosing tables are mapped too: to their header's line, or, when a table is
    only created implicitly by a dotted key or a deeper header, to the first line that
    mentions it. On text that is not valid TOML the result is partial, never an exception.
    """
    scanner = _Scanner(text)
    try:
        scanner.document()
    except (IndexError, ValueError):  # only on invalid input; keep what was found
        pass
    return scanner.lines


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self._explicit: set[KeyPath] = set()
        self._array_tables: dict[KeyPath, int] = {}  # path -> number of [[path]] seen so far
        self._table: KeyPath = ()

    # --- moving through the text ----------------------------------------------------------

    def _at(self, token: str) -> bool:
        return self.text.startswith(token, self.pos)

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _advance(self, count: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + count)
        self.pos += count

    def _skip_blank(self, *, newlines: bool) -> None:
        """Skip spaces, tabs, comments and (if asked) line breaks."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self._advance()
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def _expect(self, token: str) -> None:
        if not self._at(token):
            raise ValueError(f"expected {token!r} at offset {self.pos}")
        self._advance(len(token))

    # --- recording ------------------------------------------------------------------------

    def _record(self, path: KeyPath, line: int) -> None:
        """Record ``path`` (explicitly written here) and its enclosing tables (if still new)."""
        for end in range(1, len(path)):
            self.lines.setdefault(path[:end], line)
        if path not in self._explicit:
            self._explicit.add(path)
            self.lines[path] = line

    def _resolve(self, key: list[str]) -> KeyPath:
        """The parsed-value path of a header key: arrays of tables resolve to their last element."""
        path: KeyPath = ()
        for part in key:
            path += (part,)
            count = self._array_tables.get(path)
            if count:
                path += (count - 1,)
        return path

    # --- grammar --------------------------------------------------------------------------

    def document(self) -> None:
        while True:
            self._skip_blank(newlines=True)
            if self.pos >= len(self.text):
                return
            line = self.line
            if self._at("[["):
                self._advance(2)
                key = self._key()
                self._expect("]]")
                array = self._resolve(key[:-1]) + (key[-1],)
                index = self._array_tables.get(array, 0)
                self._array_tables[array] = index + 1
                self._record(array, line)
                self._table = array + (index,)
                self._record(self._table, line)
            elif self._at("["):
                self._advance()
                self._table = self._resolve(self._key())
                self._expect("]")
                self._record(self._table, line)
            else:
                self._key_value(self._table)

    def _key_value(self, table: KeyPath) -> None:
        line = self.line
        path = table + tuple(self._key())
        self._expect("=")
        self._skip_blank(newlines=False)
        self._record(path, line)
        self._value(path)

    def _key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self._skip_blank(newlines=False)
            char = self._peek()
            if char == '"':
                parts.append(self._basic_string())
            elif char == "'":
                self._advance()
                end = self.text.index("'", self.pos)
                parts.append(self.text[self.pos : end])
                self._advance(end + 1 - self.pos)
            else:
                start = self.pos
                while self._peek() in _BARE_KEY and self._peek():
                    self._advance()
                if self.pos == start:
                    raise ValueError(f"expected a key at offset {start}")
                parts.append(self.text[start : self.pos])
            self._skip_blank(newlines=False)
            if self._peek() != ".":
                return parts
            self._advance()

    def _basic_string(self) -> str:
        """A one-line basic string, decoded (keys may be quoted with escapes)."""
        self._advance()
        out: list[str] = []
        while True:
            char = self.text[self.pos]
            if char == '"':
                self._advance()
                return "".join(out)
            if char == "\\":
                code = self.text[self.pos + 1]
                if code in ("u", "U"):
                    width = 4 if code == "u" else 8
                    out.append(chr(int(self.text[self.pos + 2 : self.pos + 2 + width], 16)))
                    self._advance(2 + width)
                    continue
                out.append(_ESCAPES.get(code, code))
                self._advance(2)
                continue
            out.append(char)
            self._advance()

    def _value(self, path: KeyPath) -> None:
        if self._at('"""') or self._at("'''"):
            self._multiline_string(self.text[self.pos])
        elif self._at('"'):
            self._basic_string()
        elif self._at("'"):
            end = self.text.index("'", self.pos + 1)
            self._advance(end + 1 - self.pos)
        elif self._at("["):
            self._array(path)
        elif self._at("{"):
            self._inline_table(path)
        else:  # number, boolean, date-time (which may contain a space): up to a delimiter
            start = self.pos
            while self._peek() and self._peek() not in ",]}\n#":
                self._advance()
            if self.pos == start:
                raise ValueError(f"expected a value at offset {start}")

    def _multiline_string(self, quote: str) -> None:
        self._advance(3)
        delimiter = quote * 3
        while True:
            if quote == '"' and self._at("\\"):
                self._advance(2)  # an escape, or a line-ending backslash with its newline
            elif self._at(delimiter):
                self._advance(3)
                # Up to two quotes may end the content right before the delimiter.
                for _ in range(2):
                    if self._peek() == quote:
                        self._advance()
                return
            else:
                if not self._peek():
                    raise ValueError("unterminated multi-line string")
                self._advance()

    def _array(self, path: KeyPath) -> None:
        self._advance()
        index = 0
        while True:
            self._skip_blank(newlines=True)
            if self._at("]"):
                self._advance()
                return
            if self.pos >= len(self.text):
                raise ValueError("unterminated array")
            element = path + (index,)
            self._record(element, self.line)
            self._value(element)
            index += 1
            self._skip_blank(newlines=True)
            if self._at(","):
                self._advance()

    def _inline_table(self, path: KeyPath) -> None:
        self._advance()
        while True:
            self._skip_blank(newlines=True)
            if self._at("}"):
                self._advance()
                return
            if self.pos >= len(self.text):
                raise ValueError("unterminated inline table")
            self._key_value(path)
            self._skip_blank(newlines=True)
            if self._at(","):
                self._advance()
