"""deploy/compose.yaml read the way Docker Compose reads it, to run its services as local
processes: variables interpolated (``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``,
``$$``), ``<<`` merge keys resolved (PyYAML does), secrets mounted at ``/run/secrets``
mapped to a local directory."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
SECRETS_MOUNT = "/run/secrets"

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:-|:\?)(?P<arg>[^}]*))?\})")


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's variable syntax; a ``${VAR:?message}`` that is unset raises ``KeyError``."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group("name")
        if name is None:
            return "$"
        value = variables.get(name, "")
        if value:
            return value
        if match.group("op") == ":?":
            raise KeyError(f"{name}: {match.group('arg')}")
        return match.group("arg") or ""

    return _VARIABLE.sub(substitute, text)


def _interpolated(node: Any, variables: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, list):
        return [_interpolated(item, variables) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, variables) for key, value in node.items()}
    return node


def load_compose(variables: Mapping[str, str]) -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return dict(_interpolated(data, variables))


@dataclass(frozen=True)
class Service:
    """One compose service: its command and environment, secrets mapped to ``secrets``."""

    name: str
    command: tuple[str, ...]
    environment: dict[str, str]
    secrets: tuple[str, ...]

    @classmethod
    def of(cls, compose: Mapping[str, Any], name: str, secrets: Path) -> Service:
        spec = compose["services"][name]
        local = str(secrets)
        command = tuple(str(part).replace(SECRETS_MOUNT, local) for part in spec.get("command", ()))
        environment = {
            str(key): str(value).replace(SECRETS_MOUNT, local)
            for key, value in (spec.get("environment") or {}).items()
        }
        return cls(name, command, environment, tuple(spec.get("secrets", ())))
