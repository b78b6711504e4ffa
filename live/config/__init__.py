"""Settings, read once and typed: ``LIVE_*`` environment variables over an optional TOML file.

Nothing else in ``live`` reads ``os.environ``. Every setting has a documented default (see
the README's configuration reference); a malformed value raises ``ConfigError`` naming the
setting. Settings are grouped by the part they configure (``settings.oidc.issuer`` is
``LIVE_OIDC_ISSUER``); secrets are ``SecretStr`` and never show in a ``repr``.

| module | what |
|---|---|
| ``values`` | value types: flags, numbers, comma lists, ``name=value`` maps, networks, ICE servers, secrets |
| ``settings`` | ``Settings`` and its groups |
| ``load`` | ``load_settings``: TOML, environment, overrides; per-source errors |
| ``private`` | files created readable by their owner alone (keys) |
"""

from __future__ import annotations

from .load import SETTING_NAMES, load_settings
from .settings import (
    DEFAULT_PURPOSES,
    AudioHookConfig,
    AudioSocketConfig,
    IngestConfig,
    LedgerConfig,
    LimitConfig,
    OidcConfig,
    RtpConfig,
    SessionConfig,
    Settings,
    SiprecConfig,
    TlsConfig,
)
from .values import IceServer, Network, SecretUrl

__all__ = [
    "DEFAULT_PURPOSES",
    "SETTING_NAMES",
    "AudioHookConfig",
    "AudioSocketConfig",
    "IceServer",
    "IngestConfig",
    "LedgerConfig",
    "LimitConfig",
    "Network",
    "OidcConfig",
    "RtpConfig",
    "SecretUrl",
    "SessionConfig",
    "Settings",
    "SiprecConfig",
    "TlsConfig",
    "load_settings",
]
