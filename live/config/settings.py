"""The typed settings: a few general ones, and one group per part of the server.

Each setting keeps its public flat name (``LIVE_OIDC_ISSUER``, TOML ``oidc_issuer``) as the
``validation_alias`` of its field in a group (``settings.oidc.issuer``); ``load`` maps the
flat names onto the groups. Defaults are the README's configuration reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .values import (
    Base64Secrets,
    CommaList,
    Flag,
    IceServers,
    LogLevel,
    NamedSecrets,
    Networks,
    Passwords,
    PositiveNumber,
    Purposes,
    RoleMap,
    Seconds,
    SecretUrl,
    SourceSecrets,
    TcpPort,
    WholeNumber,
    WordList,
)

DEFAULT_PURPOSES = ("quality", "training", "coaching", "complaint")


def setting(default: Any, name: str) -> Any:
    """A grouped field read from the flat setting ``name``."""
    return Field(default, validation_alias=name)


class Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


class LedgerConfig(Group):
    url: SecretUrl = setting(SecretUrl(""), "ledger_url")
    origin: str = setting("", "ledger_origin")
    key_file: str = setting("", "ledger_key_file")
    checkpoint_every: WholeNumber = setting(64, "ledger_checkpoint_every")
    checkpoint_interval_s: WholeNumber = setting(60, "ledger_checkpoint_interval_s")
    # Verifier keys `live audit verify` trusts instead of the key file beside the log, and
    # witness keys whose cosignatures it accepts (whitespace- or comma-separated)
    trusted_keys: WordList = setting((), "ledger_trusted_keys")
    witnesses: WordList = setting((), "ledger_witnesses")


class IngestConfig(Group):
    secret: SecretStr = setting(SecretStr(""), "ingest_secret")
    secrets: SourceSecrets = setting({}, "ingest_secrets")  # one per sending system
    twilio_auth_token: SecretStr = setting(SecretStr(""), "twilio_auth_token")
    loopback_trust: Flag = setting(False, "ingest_loopback_trust")
    max_message: WholeNumber = setting(64 * 1024, "max_ingest_message")

    @property
    def secrets_by_source(self) -> dict[str, SecretStr]:
        """Every accepted ingest secret by its source; ``ingest_secret`` is ``default``."""
        single = {"default": self.secret} if self.secret.get_secret_value() else {}
        return single | self.secrets


class SiprecConfig(Group):
    """The SIPREC session recording server (off while ``listen`` is empty)."""

    listen: str = setting("", "siprec_listen")  # "0.0.0.0:5060": UDP and TCP
    tls_listen: str = setting("", "siprec_tls_listen")  # default: the SIP port + 1
    tls_cert: str = setting("", "siprec_tls_cert")
    tls_key: str = setting("", "siprec_tls_key")
    allow: Networks = setting((), "siprec_allow")  # who may record to us
    digest: Passwords = setting({}, "siprec_digest")  # optional digest authentication
    agent_aor: str = setting("", "siprec_agent_aor")  # a regular expression on the agent's AoR
    agent_label: str = setting("", "siprec_agent_label")  # the stream label of the agent
    queue_header: str = setting("X-Live-Queue", "siprec_queue_header")
    consent_header: str = setting("X-Live-Consent", "siprec_consent_header")
    call_id_header: str = setting("X-Live-Call-Id", "siprec_call_id_header")
    session_expires_s: WholeNumber = setting(1800, "siprec_session_expires_s")  # RFC 4028


class RtpConfig(Group):
    """RTP media of SIPREC and plain RTP."""

    ports: str = setting("40000-40999", "rtp_ports")
    address: str = setting("", "rtp_address")  # default: the SIP or HTTP host
    timeout_s: PositiveNumber = setting(30, "rtp_timeout_s")  # no RTP this long ends the call


class AudioHookConfig(Group):
    """Genesys AudioHook: API keys by name, and optional client secrets by key name."""

    api_keys: NamedSecrets = setting({}, "audiohook_api_keys")
    client_secrets: Base64Secrets = setting({}, "audiohook_client_secrets")
    agent_key: str = setting("agentId", "audiohook_agent_key")
    queue_key: str = setting("queue", "audiohook_queue_key")
    consent_key: str = setting("consent", "audiohook_consent_key")
    reconnect_grace_s: Seconds = setting(5, "audiohook_reconnect_grace_s")


class AudioSocketConfig(Group):
    listen: str = setting("", "audiosocket_listen")  # Asterisk AudioSocket: caller; agent on port + 1
    allow: Networks = setting((), "audiosocket_allow")  # besides loopback


class OidcConfig(Group):
    """Sign-in with OpenID Connect (off while ``issuer`` is empty)."""

    issuer: str = setting("", "oidc_issuer")
    client_id: str = setting("", "oidc_client_id")
    client_secret: SecretStr = setting(SecretStr(""), "oidc_client_secret")
    redirect_uri: str = setting("", "oidc_redirect_uri")  # default: public URL + callback
    role_claim: str = setting("live_role", "oidc_role_claim")
    teams_claim: str = setting("live_teams", "oidc_teams_claim")
    role_map: RoleMap = setting({}, "oidc_role_map")  # empty: claim values are role names
    scopes: WordList = setting(("openid", "profile"), "oidc_scopes")


class SessionConfig(Group):
    secret: SecretStr = setting(SecretStr(""), "session_secret")
    ttl_s: WholeNumber = setting(8 * 3600, "session_ttl_s")
    # Revoked sessions and tokens are read from the shared store this often; a node whose
    # last read is older than the bound refuses cookies and API tokens (fail closed).
    revocation_poll_s: PositiveNumber = setting(1, "revocation_poll_s")
    revocation_bound_s: PositiveNumber = Field(default=10, validation_alias="revocation_bound_s", validate_default=True)

    @field_validator("revocation_bound_s")
    @classmethod
    def _bound_above_poll(cls, bound: int, info: ValidationInfo) -> int:
        poll = info.data.get("revocation_poll_s")
        if poll is not None and bound <= poll:
            raise ValueError(f"must be above revocation_poll_s ({poll})")
        return bound


class LimitConfig(Group):
    """Abuse limits (see live/server/abuse.py): cluster-wide in Redis when ``redis_url`` is
    set, per node while Redis cannot be reached; sockets are always per node."""

    # Failed sign-ins refused (429) per (client address, user name), and per user name from
    # every address; per address they only slow the answers down, past a threshold a whole
    # floor of agents behind one NAT address stays under.
    signin_failures_per_minute: WholeNumber = setting(10, "signin_failures_per_minute")
    signin_user_failures_per_minute: WholeNumber = setting(30, "signin_user_failures_per_minute")
    signin_address_failures_per_minute: WholeNumber = setting(200, "signin_address_failures_per_minute")
    signin_backoff_max_ms: WholeNumber = setting(5000, "signin_backoff_max_ms")
    bad_tokens_per_minute: WholeNumber = setting(30, "bad_tokens_per_minute")
    listens_per_minute: WholeNumber = setting(30, "listens_per_minute")
    listens_per_supervisor: WholeNumber = setting(4, "listens_per_supervisor")
    ws_per_user: WholeNumber = setting(8, "ws_per_user")
    ws_total: WholeNumber = setting(2000, "ws_total")
    ingest_connections: WholeNumber = setting(1000, "ingest_connections")
    trusted_proxies: CommaList = setting((), "trusted_proxies")  # whose X-Forwarded-For counts


class TlsConfig(Group):
    cert: str = setting("", "tls_cert")  # PEM files: `live serve` terminates TLS itself
    key: str = setting("", "tls_key")


class Settings(BaseSettings):
    """Everything ``live`` is told. Built by ``load_settings``; never reads the environment
    itself (its only source is what the loader gives it)."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    host: str = "127.0.0.1"
    port: TcpPort = 8080
    data_dir: Path = Path("live-data")
    public_url: str = ""
    node_id: str = ""
    redis_url: SecretUrl = SecretUrl("")
    # With Redis: a node silent this long is lost; its calls leave every roster and listens
    # on them end as node-lost within this plus one heartbeat (min(2, this / 4) s).
    node_timeout_s: PositiveNumber = 8
    ice_servers: IceServers = ()
    purposes: Purposes = DEFAULT_PURPOSES
    # The monitoring policy file (empty: the built-in default, live/policy/default.toml)
    policy_file: str = ""
    listener_queue_packets: PositiveNumber = 10
    log_level: LogLevel | None = None  # None: the command's own default
    witness_token: SecretStr = SecretStr("")  # `live witness`: an auditor's API token
    ledger: LedgerConfig = LedgerConfig()
    ingest: IngestConfig = IngestConfig()
    siprec: SiprecConfig = SiprecConfig()
    rtp: RtpConfig = RtpConfig()
    audiohook: AudioHookConfig = AudioHookConfig()
    audiosocket: AudioSocketConfig = AudioSocketConfig()
    oidc: OidcConfig = OidcConfig()
    session: SessionConfig = SessionConfig()
    limits: LimitConfig = LimitConfig()
    tls: TlsConfig = TlsConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # TOML and LIVE_* are read by ``load_settings`` (flat names, per-source errors).
        return (init_settings,)

    @property
    def effective_node_id(self) -> str:
        return self.node_id or f"node-{self.port}"

    @property
    def ledger_path(self) -> Path:
        url = self.ledger.url.get_secret_value()
        if url.startswith("sqlite:///"):
            return Path(url[len("sqlite:///") :])
        return self.data_dir / "ledger.sqlite3"

    @property
    def ledger_key_path(self) -> Path:
        return Path(self.ledger.key_file) if self.ledger.key_file else self.data_dir / "ledger-signing.pem"

    @property
    def policy_path(self) -> Path:
        """The policy file in force: ``policy_file``, else the built-in default policy."""
        if self.policy_file:
            return Path(self.policy_file)
        return Path(__file__).parent.parent / "policy" / "default.toml"

    @property
    def users_path(self) -> Path:
        return self.data_dir / "users.json"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    def with_session_secret(self, secret: str) -> Settings:
        """These settings with ``session_secret`` set (the CLI's generated key)."""
        session = self.session.model_copy(update={"secret": SecretStr(secret)})
        return self.model_copy(update={"session": session})
