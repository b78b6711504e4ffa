"""The ledger layer never imports the documents made from it (ARCHITECTURE.md, "Layers"):
``live/audit`` knows nothing of ``live/reports``; the words (``live/l10n``) and the listener
rule (``live/policy/listener.py``) import neither."""

from __future__ import annotations

import ast
from pathlib import Path

LIVE = Path(__file__).resolve().parents[2] / "live"


def imported(package: Path) -> dict[str, set[str]]:
    """Module file → the ``live.*`` modules it imports (relative imports resolved)."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        parts = ["live", *path.relative_to(LIVE).with_suffix("").parts]
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = parts[: len(parts) - node.level]
                    names.add(".".join([*base, *([node.module] if node.module else [])]))
                elif node.module:
                    names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(LIVE))] = {n for n in names if n.startswith("live")}
    return found


def test_the_ledger_layer_does_not_import_reports() -> None:
    for module, names in imported(LIVE / "audit").items():
        assert not any(n.startswith("live.reports") for n in names), module


def test_words_and_the_listener_rule_sit_low() -> None:
    low = {**imported(LIVE / "l10n"), **imported(LIVE / "policy")}
    for module, names in low.items():
        upward = {n for n in names if n.split(".")[1:2] in (["reports"], ["server"], ["notices"])}
        assert not upward, (module, upward)
