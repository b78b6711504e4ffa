"""Reading the settings, once: an optional TOML file, then ``LIVE_*`` variables, then
explicit overrides (the CLI's options, tests).

All three speak the public flat names (``oidc_issuer``, ``LIVE_OIDC_ISSUER``); this module
maps them onto the groups of ``Settings``. Each source is checked on its own, so a broken
file is not hidden by a variable that sets the same setting. A malformed value, an unknown
name or an unreadable file raises ``ConfigError`` naming the setting.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from .settings import Settings

PREFIX = "LIVE_"


def _flat_names() -> dict[str, tuple[str | None, str]]:
    """Every public setting name -> (its group or ``None``, its field)."""
    names: dict[str, tuple[str | None, str]] = {}
    for name, info in Settings.model_fields.items():
        group = info.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            for field, inner in group.model_fields.items():
                assert isinstance(inner.validation_alias, str), f"{name}.{field} has no flat name"
                names[inner.validation_alias] = (name, field)
        else:
            names[name] = (None, name)
    return names


SETTING_NAMES = _flat_names()
"""Public setting name (TOML key; ``LIVE_`` + upper case in the environment) -> its place."""


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        group, _ = SETTING_NAMES[name]
        if group is None:
            nested[name] = value
        else:
            nested.setdefault(group, {})[name] = value
    return nested


def _message(error: Any) -> str:
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _validated(flat: Mapping[str, Any]) -> Settings:
    try:
        return Settings.model_validate(_nested(flat))
    except ValidationError as exc:
        error = exc.errors()[0]
        names = [part for part in error["loc"] if isinstance(part, str) and part in SETTING_NAMES]
        name = names[-1] if names else ".".join(str(p) for p in error["loc"])
        raise ConfigError(f"setting {name}: {_message(error)}", setting=name) from None


def _from_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    for key in data:
        if key not in SETTING_NAMES:
            raise ConfigError(f"unknown setting {key!r} in {path}", setting=key)
    return data


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(PREFIX):
            continue
        name = key[len(PREFIX) :].lower()
        if name not in SETTING_NAMES:
            raise ConfigError(f"unknown setting {key}", setting=key)
        values[name] = raw
    return values


def _from_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key in overrides:
        if key not in SETTING_NAMES:
            raise ConfigError(f"unknown setting {key!r}", setting=key)
    return {key: raw for key, raw in overrides.items() if raw is not None}


def _check_together(settings: Settings) -> None:
    """Rules that join two settings, which may come from different sources."""
    audiohook = settings.audiohook
    for name in audiohook.client_secrets:
        if name not in audiohook.api_keys:
            raise ConfigError(
                f"setting audiohook_client_secrets: {name!r} is not a key name of audiohook_api_keys",
                setting="audiohook_client_secrets",
            )


def load_settings(
    environ: Mapping[str, str],
    config_file: Path | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from a TOML file, then ``LIVE_*`` variables, then explicit overrides
    (``None``: not given). Nothing else in ``live`` reads ``os.environ``."""
    layers = [
        _from_file(config_file) if config_file is not None else {},
        _from_environment(environ),
        _from_overrides(overrides),
    ]
    merged: dict[str, Any] = {}
    for layer in layers:
        _validated(layer)  # every source on its own: a bad value is never hidden
        merged.update(layer)
    settings = _validated(merged)
    _check_together(settings)
    return settings
