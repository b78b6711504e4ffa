"""``live policy check FILE``: every problem of a policy file as ``file:line: key: message``.

The one place in ``policy`` that touches a file: it reads the bytes and hands the text to the
pure ``load_policy``. The CLI prints the returned lines and exits non-zero when there are any.
"""

from __future__ import annotations

from pathlib import Path

from .model import Policy
from .parse import load_policy
from .problems import PolicyError, PolicyProblem


def read_policy_file(path: str | Path) -> Policy:
    """Load a policy file; ``PolicyError`` (a ``ConfigError``) lists its problems.

    A file that cannot be read or is not UTF-8 is a ``PolicyError`` with one problem too.
    """
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyError(
            source, [PolicyProblem(0, "file", f"cannot read: {exc.strerror or exc}")]
        ) from exc
    try:
        text = data.decode("utf-8-sig")  # tolerate the byte-order mark some editors write
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PolicyError(
            source, [PolicyProblem(line, "encoding", "not UTF-8 text; save the file as UTF-8")]
        ) from exc
    return load_policy(text, source)


def check_policy_file(path: str | Path) -> list[str]:
    """Every problem of the policy file at ``path``, formatted ``file:line: key: message``.

    An empty list means the file is a valid policy.
    """
    try:
        read_policy_file(path)
    except PolicyError as exc:
        return exc.formatted()
    return []
