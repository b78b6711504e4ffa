"""What is wrong with a policy file: each problem with its line, key path and message."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError
from ._locate import KeyPath

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One thing wrong with a policy file: where (line, key path) and what."""

    line: int  # 1-based; 0 when the problem is with the file as a whole (cannot be read)
    key: str  # the TOML key path, e.g. ``hours.allowed[1]``; ``syntax`` for a syntax error
    message: str

    def format(self, source: str) -> str:
        """``file:line: key: message``, the form ``live policy check`` prints."""
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.key}: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {"line": self.line, "key": self.key, "message": self.message}


class PolicyError(ConfigError):
    """The policy file is not valid; ``problems`` lists everything found, in file order."""

    code = "policy_invalid"

    def __init__(self, source: str, problems: Sequence[PolicyProblem]) -> None:
        self.source = source
        self.problems = tuple(sorted(problems, key=lambda p: p.line))
        count = len(self.problems)
        lines = "\n".join(p.format(source) for p in self.problems)
        super().__init__(
            f"{source}: {count} problem{'s' if count != 1 else ''} in the monitoring policy\n{lines}",
            source=source,
            problems=[p.to_json() for p in self.problems],
        )

    def formatted(self) -> list[str]:
        return [p.format(self.source) for p in self.problems]


def key_name(path: KeyPath) -> str:
    """A key path as written in TOML: ``hours.allowed[1]``, ``supervisors."a.b".teams``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE.match(part) else json.dumps(part, ensure_ascii=False)
            out += f".{name}" if out else name
    return out
