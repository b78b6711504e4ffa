"""Settings, read once: ``LIVE_*`` environment variables over an optional TOML file.

Nothing else in the server reads ``os.environ``. Every setting has a documented default
(see the README's configuration reference); a malformed value raises ``ConfigError`` naming
the variable.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

DEFAULT_PURPOSES = ("quality", "training", "coaching", "complaint")


@dataclass(frozen=True, slots=True)
class IceServer:
    urls: str
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("live-data")
    public_url: str = ""
    node_id: str = ""
    redis_url: str = ""
    ledger_url: str = ""
    ledger_origin: str = ""
    ledger_key_file: str = ""
    ledger_checkpoint_every: int = 64
    ledger_checkpoint_interval_s: int = 60
    # Verifier keys `live audit verify` trusts instead of the key file beside the log, and
    # witness keys whose cosignatures it accepts (whitespace- or comma-separated)
    ledger_trusted_keys: str = ""
    ledger_witnesses: str = ""
    ice_servers: tuple[IceServer, ...] = ()
    purposes: tuple[str, ...] = DEFAULT_PURPOSES
    # The monitoring policy file (empty: the built-in default, live/policy/default.toml)
    policy_file: str = ""
    # Ingest
    ingest_secret: str = ""
    ingest_secrets: str = ""  # one per sending system: "sbc-a=secret,sbc-b=secret"
    twilio_auth_token: str = ""
    ingest_loopback_trust: bool = False
    max_ingest_message: int = 64 * 1024
    # SIPREC session recording server (off while siprec_listen is empty; see live/ingest/siprec.py)
    siprec_listen: str = ""  # "0.0.0.0:5060": UDP and TCP
    siprec_tls_listen: str = ""  # default: the SIP port + 1, when siprec_tls_cert and _key are set
    siprec_tls_cert: str = ""
    siprec_tls_key: str = ""
    siprec_allow: str = ""  # comma-separated addresses or networks that may record to us
    siprec_digest: str = ""  # optional digest authentication: "user=password,user=password"
    siprec_agent_aor: str = ""  # a regular expression on a participant's AoR that marks the agent
    siprec_agent_label: str = ""  # the stream label that carries the agent
    siprec_queue_header: str = "X-Live-Queue"
    siprec_consent_header: str = "X-Live-Consent"
    siprec_call_id_header: str = "X-Live-Call-Id"
    siprec_session_expires_s: int = 1800  # RFC 4028 session interval we ask for when none is offered
    # RTP media (SIPREC and plain RTP)
    rtp_ports: str = "40000-40999"
    rtp_address: str = ""  # the address senders send RTP to (default: the SIP or HTTP host)
    rtp_timeout_s: int = 30  # no RTP for this long ends the call
    # Genesys AudioHook and the WebSocket forks (see live/ingest/audiohook.py, live/ingest/fork.py)
    audiohook_api_keys: str = ""  # "name=key,name=key": accepted X-API-KEY values
    audiohook_client_secrets: str = ""  # "name=base64secret": HTTP message signature per key name
    audiohook_agent_key: str = "agentId"  # customConfig / participant keys read for the call
    audiohook_queue_key: str = "queue"
    audiohook_consent_key: str = "consent"
    audiohook_reconnect_grace_s: int = 5  # a dropped session's call waits this long for its successor
    audiosocket_listen: str = ""  # "0.0.0.0:9092": Asterisk AudioSocket over TCP (caller; agent on port + 1)
    audiosocket_allow: str = ""  # comma-separated addresses or networks besides loopback that may connect
    # Media
    listener_queue_packets: int = 10
    # Sign-in with OpenID Connect (off while oidc_issuer is empty)
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_redirect_uri: str = ""  # default: public URL + /auth/oidc/callback
    oidc_role_claim: str = "live_role"
    oidc_teams_claim: str = "live_teams"
    oidc_role_map: str = ""  # "claim-value=role,claim-value=role"; empty: claim values are role names
    oidc_scopes: str = "openid profile"
    # Sessions
    session_secret: str = ""
    session_ttl_s: int = 8 * 3600
    # Abuse limits, per node (see live/server/abuse.py)
    signin_failures_per_minute: int = 10  # per client address and per user name
    bad_tokens_per_minute: int = 30  # unknown bearer tokens per client address
    listens_per_minute: int = 30  # listen requests per person
    listens_per_supervisor: int = 4  # listen sessions at once per person
    ws_per_user: int = 8  # roster / agent WebSockets per person
    ws_total: int = 2000
    ingest_connections: int = 1000
    trusted_proxies: str = ""  # comma-separated proxy addresses whose X-Forwarded-For is believed
    tls_cert: str = ""
    tls_key: str = ""
    demo: bool = False
    log_level: str = "INFO"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def effective_node_id(self) -> str:
        return self.node_id or f"node-{self.port}"

    @property
    def ledger_path(self) -> Path:
        if self.ledger_url.startswith("sqlite:///"):
            return Path(self.ledger_url[len("sqlite:///") :])
        return self.data_dir / "ledger.sqlite3"

    @property
    def trusted_key_list(self) -> tuple[str, ...]:
        return tuple(k for k in self.ledger_trusted_keys.replace(",", " ").split() if k)

    @property
    def witness_list(self) -> tuple[str, ...]:
        return tuple(k for k in self.ledger_witnesses.replace(",", " ").split() if k)

    @property
    def ledger_key_path(self) -> Path:
        return Path(self.ledger_key_file) if self.ledger_key_file else self.data_dir / "ledger-signing.pem"

    @property
    def policy_path(self) -> Path:
        """The policy file in force: ``policy_file``, else the built-in default policy."""
        if self.policy_file:
            return Path(self.policy_file)
        return Path(__file__).parent / "policy" / "default.toml"

    @property
    def users_path(self) -> Path:
        return self.data_dir / "users.json"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, raw: Any) -> Any:
    kind = _FIELDS[name].type
    try:
        if kind == "int":
            # TOML has real numbers: a boolean or a fraction is a mistake, not a port.
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(f"not a whole number: {raw!r}")
            return int(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"not a boolean: {raw!r}")
        if kind == "Path":
            return Path(str(raw))
        if name == "purposes":
            items = raw if isinstance(raw, list) else str(raw).split(",")
            purposes = tuple(str(x).strip() for x in items if str(x).strip())
            if not purposes:
                raise ValueError("at least one purpose is needed")
            return purposes
        if name == "ice_servers":
            return _ice_servers(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: {exc}", setting=name) from exc


def _ice_servers(raw: Any) -> tuple[IceServer, ...]:
    """``LIVE_ICE_SERVERS=turn:host:3478?transport=udp|user|pass,stun:host`` or TOML tables."""
    if isinstance(raw, list):
        listed = []
        for x in raw:
            if isinstance(x, dict):
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
    for item in str(raw).split(","):
        if not item.strip():
            continue
        parts = item.strip().split("|")
        servers.append(
            IceServer(_ice_url(parts[0]), parts[1] if len(parts) > 1 else None, parts[2] if len(parts) > 2 else None)
        )
    return tuple(servers)


def _ice_url(url: str) -> str:
    if not url.startswith(("stun:", "turn:", "turns:")):
        raise ValueError(f"ICE server url must start with stun:, turn: or turns:: {url!r}")
    return url


def load_settings(
    environ: Mapping[str, str],
    config_file: Path | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from a TOML file, then ``LIVE_*`` variables, then explicit overrides."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_file}: {exc}") from exc
        for key, raw in data.items():
            if key not in _FIELDS or key == "extra":
                raise ConfigError(f"unknown setting {key!r} in {config_file}", setting=key)
            values[key] = _coerce(key, raw)
    for key, raw in environ.items():
        if not key.startswith("LIVE_"):
            continue
        name = key[len("LIVE_") :].lower()
        if name not in _FIELDS or name == "extra":
            raise ConfigError(f"unknown setting {key}", setting=key)
        values[name] = _coerce(name, raw)
    for key, raw in overrides.items():
        if key not in _FIELDS or key == "extra":
            raise ConfigError(f"unknown setting {key!r}", setting=key)
        if raw is not None:
            values[key] = _coerce(key, raw) if not isinstance(raw, (tuple, Path)) else raw
    settings = Settings(**values)
    if not (1 <= settings.port <= 65535):
        raise ConfigError(f"setting port: {settings.port} is not a TCP port", setting="port")
    if settings.rtp_timeout_s < 1:
        raise ConfigError("setting rtp_timeout_s must be at least 1", setting="rtp_timeout_s")
    if settings.listener_queue_packets < 1:
        raise ConfigError(
            "setting listener_queue_packets must be at least 1", setting="listener_queue_packets"
        )
    return settings
