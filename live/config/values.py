"""Value types of the settings: how one ``LIVE_*`` string (or TOML value) becomes typed.

Every list and map setting is parsed here, once: comma lists, ``name=value`` maps, networks,
ICE servers. A bad value raises ``ValueError`` with a message the loader prefixes with the
setting's name. Secrets are ``SecretStr`` (or ``SecretUrl``): their ``repr`` and ``str``
never show the value; code that needs it calls ``get_secret_value()``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BeforeValidator, SecretStr

from ..types import Role

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class IceServer:
    """A STUN or TURN server handed to the browsers (RTCIceServer)."""

    urls: str
    username: str | None = None
    credential: str | None = field(default=None, repr=False)


class SecretUrl(SecretStr):
    """A URL that may hold a password (``redis://:pw@host``, ``postgresql://u:pw@db/x``):
    shown with the password masked, so the host stays visible in logs and errors."""

    def _display(self) -> str:
        url = self.get_secret_value()
        try:
            parts = urlsplit(url)
            if parts.password is None:
                return url
            user = parts.username or ""
            host = parts.netloc.rpartition("@")[2]
            return urlunsplit(parts._replace(netloc=f"{user}:**********@{host}"))
        except ValueError:
            return "**********"


def _flag(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def _whole(raw: Any) -> int:
    # TOML has real numbers: a boolean or a fraction is a mistake, not a port.
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise ValueError(f"not a whole number: {raw!r}")
    try:
        return int(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise ValueError(f"not a whole number: {raw!r}") from None


def _tcp_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError(f"{port} is not a TCP port")
    return port


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _not_negative(value: int) -> int:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def items(raw: Any, separators: str = ",") -> tuple[str, ...]:
    """``"a, b,,c"`` (or a TOML array) -> ``("a", "b", "c")``; ``separators`` beyond the
    comma also split (``" "`` for lists that may be space-separated)."""
    if isinstance(raw, (list, tuple, set, frozenset)):
        values = [str(x) for x in raw]
    else:
        text = str(raw)
        for separator in separators[1:]:
            text = text.replace(separator, separators[0])
        values = text.split(separators[0])
    return tuple(v.strip() for v in values if v.strip())


def _purposes(raw: Any) -> tuple[str, ...]:
    purposes = items(raw)
    if not purposes:
        raise ValueError("at least one purpose is needed")
    return purposes


def pairs(raw: Any, entry: str, *, last: bool = False) -> dict[str, str]:
    """``"a=1,b=2"`` (or a TOML table) -> ``{"a": "1", "b": "2"}``; ``entry`` names the
    shape in the error (``source=secret``). ``last``: split at the last ``=`` (a claim value
    may hold one), else at the first (a secret may)."""
    if isinstance(raw, dict):
        found = {str(k).strip(): str(v).strip() for k, v in raw.items()}
        if not all(found) or not all(found.values()):
            raise ValueError(f"each entry is {entry}")
        return found
    found = {}
    for item in items(raw):
        name, sep, value = item.rpartition("=") if last else item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"each entry is {entry}")
        found[name.strip()] = value.strip()
    return found


def _secret_pairs(entry: str) -> BeforeValidator:
    return BeforeValidator(lambda raw: raw if isinstance(raw, dict) and _secrets(raw) else pairs(raw, entry))


def _secrets(raw: dict[Any, Any]) -> bool:
    return all(isinstance(v, SecretStr) for v in raw.values())


def _role_map(raw: Any) -> dict[str, str]:
    found = pairs(raw, "claim-value=role", last=True)
    known = {r.value for r in Role}
    for role in found.values():
        if role not in known:
            raise ValueError(f"{role!r} is not a role ({', '.join(sorted(known))})")
    return found


def _networks(raw: Any) -> tuple[Network, ...]:
    if isinstance(raw, tuple) and all(isinstance(n, (ipaddress.IPv4Network, ipaddress.IPv6Network)) for n in raw):
        return raw
    return tuple(ipaddress.ip_network(item, strict=False) for item in items(raw))


def _base64_values(found: dict[str, SecretStr]) -> dict[str, SecretStr]:
    for name, secret in found.items():
        try:
            base64.b64decode(secret.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"the secret of {name!r} is not base64") from None
    return found


def _ice_url(url: str) -> str:
    if not url.startswith(("stun:", "turn:", "turns:")):
        raise ValueError(f"ICE server url must start with stun:, turn: or turns:: {url!r}")
    return url


def _ice_servers(raw: Any) -> tuple[IceServer, ...]:
    """``turn:host:3478?transport=udp|user|pass,stun:host`` or TOML tables."""
    if isinstance(raw, (list, tuple)):
        listed = []
        for x in raw:
            if isinstance(x, IceServer):
                listed.append(IceServer(_ice_url(x.urls), x.username, x.credential))
            elif isinstance(x, dict):
                if "urls" not in x:
                    raise ValueError(f"an ICE server needs urls: {x!r}")
                username, credential = x.get("username"), x.get("credential")
                listed.append(
                    IceServer(
                        _ice_url(str(x["urls"])),
                        None if username is None else str(username),
                        None if credential is None else str(credential),
                    )
                )
            else:
                listed.append(IceServer(_ice_url(str(x))))
        return tuple(listed)
    servers = []
    for item in items(raw):
        parts = item.split("|")
        servers.append(
            IceServer(_ice_url(parts[0]), parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None)
        )
    return tuple(servers)


def _log_level(raw: Any) -> str:
    level = str(raw).strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{raw!r} is not one of {', '.join(LOG_LEVELS)}")
    return level


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

Flag = Annotated[bool, BeforeValidator(_flag)]
WholeNumber = Annotated[int, BeforeValidator(_whole)]
PositiveNumber = Annotated[int, BeforeValidator(_whole), AfterValidator(_positive)]
Seconds = Annotated[int, BeforeValidator(_whole), AfterValidator(_not_negative)]
TcpPort = Annotated[int, BeforeValidator(_whole), AfterValidator(_tcp_port)]
CommaList = Annotated[tuple[str, ...], BeforeValidator(items)]
WordList = Annotated[tuple[str, ...], BeforeValidator(lambda raw: items(raw, ", "))]
Purposes = Annotated[tuple[str, ...], BeforeValidator(_purposes)]
Networks = Annotated[tuple[Network, ...], BeforeValidator(_networks)]
IceServers = Annotated[tuple[IceServer, ...], BeforeValidator(_ice_servers)]
RoleMap = Annotated[dict[str, str], BeforeValidator(_role_map)]
SourceSecrets = Annotated[dict[str, SecretStr], _secret_pairs("source=secret")]
NamedSecrets = Annotated[dict[str, SecretStr], _secret_pairs("name=value")]
Base64Secrets = Annotated[dict[str, SecretStr], _secret_pairs("name=value"), AfterValidator(_base64_values)]
Passwords = Annotated[dict[str, SecretStr], _secret_pairs("user=password")]
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_log_level)]
