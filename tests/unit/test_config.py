"""Settings: read once from TOML and LIVE_* variables, typed, loud about mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from live.config import DEFAULT_PURPOSES, SETTING_NAMES, IceServer, Settings, load_settings
from live.errors import ConfigError


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "live.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.redis_url.get_secret_value() == "" and settings.ice_servers == ()
    assert settings.purposes == DEFAULT_PURPOSES
    assert settings.ingest.loopback_trust is False and settings.ingest.max_message == 64 * 1024
    assert settings.ledger_path == Path("live-data/ledger.sqlite3")


def test_from_environment_typed() -> None:
    settings = load_settings(
        {
            "LIVE_HOST": "0.0.0.0",
            "LIVE_PORT": "9000",
            "LIVE_DATA_DIR": "/var/lib/live",
            "LIVE_INGEST_LOOPBACK_TRUST": "yes",
            "LIVE_PURPOSES": "quality, training ,",
            "LIVE_REDIS_URL": "redis://r:6379/0",
            "LIVE_LISTENER_QUEUE_PACKETS": "25",
            "PATH": "/usr/bin",  # not ours: ignored
            "LIVEX_PORT": "1",  # not ours either
        }
    )
    assert settings.host == "0.0.0.0" and settings.port == 9000
    assert settings.data_dir == Path("/var/lib/live")
    assert settings.ledger_path == Path("/var/lib/live/ledger.sqlite3")
    assert settings.ingest.loopback_trust is True
    assert settings.purposes == ("quality", "training")
    assert settings.redis_url.get_secret_value() == "redis://r:6379/0"
    assert settings.listener_queue_packets == 25


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("TRUE", True), ("on", True), ("no", False), ("", False)]
)
def test_boolean_spellings(raw: str, value: bool) -> None:
    assert load_settings({"LIVE_INGEST_LOOPBACK_TRUST": raw}).ingest.loopback_trust is value


def test_from_toml_file(tmp_path: Path) -> None:
    settings = load_settings(
        {},
        toml(
            tmp_path,
            'host = "0.0.0.0"\nport = 9001\ningest_loopback_trust = true\npurposes = ["training", "coaching"]\n'
            'data_dir = "/srv/live"\nledger_checkpoint_every = 8\n',
        ),
    )
    assert (settings.host, settings.port, settings.ingest.loopback_trust) == ("0.0.0.0", 9001, True)
    assert settings.purposes == ("training", "coaching")
    assert settings.data_dir == Path("/srv/live") and settings.ledger.checkpoint_every == 8


def test_precedence_env_over_file_over_defaults_overrides_last(tmp_path: Path) -> None:
    config = toml(tmp_path, 'port = 9000\nhost = "0.0.0.0"\npurposes = ["training"]\n')
    settings = load_settings({"LIVE_PORT": "9100", "OTHER": "ignored"}, config)
    assert settings.port == 9100  # environment over file
    assert settings.host == "0.0.0.0"  # file over default
    assert settings.purposes == ("training",)
    assert settings.node_id == ""  # default where neither says anything
    assert load_settings({"LIVE_PORT": "9100"}, config, port=9200).port == 9200  # overrides last
    assert load_settings({"LIVE_PORT": "9100"}, config, port=None).port == 9100  # None: not given


def test_overrides_are_coerced_like_everything_else(tmp_path: Path) -> None:
    settings = load_settings({}, None, port="9300", data_dir=tmp_path, ingest_loopback_trust="yes")
    assert settings.port == 9300 and settings.data_dir == tmp_path and settings.ingest.loopback_trust is True


def test_ice_servers_from_env_and_toml(tmp_path: Path) -> None:
    servers = "stun:10.0.0.1:3478, turn:turn.example:3478?transport=udp|u|p,,turns:t:5349|a"
    settings = load_settings({"LIVE_ICE_SERVERS": servers})
    assert settings.ice_servers == (
        IceServer("stun:10.0.0.1:3478"),
        IceServer("turn:turn.example:3478?transport=udp", "u", "p"),
        IceServer("turns:t:5349", "a", None),
    )
    config = toml(
        tmp_path,
        'ice_servers = [{urls = "turn:t:3478", username = "a", credential = "b"}, "stun:s:3478"]\n',
    )
    assert load_settings({}, config).ice_servers == (
        IceServer("turn:t:3478", "a", "b"),
        IceServer("stun:s:3478"),
    )
    assert load_settings({"LIVE_ICE_SERVERS": ""}).ice_servers == ()  # none: no hidden STUN


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"LIVE_PORT": "x"}, "port"),
        ({"LIVE_PORT": "70000"}, "port"),
        ({"LIVE_PORT": "0"}, "port"),
        ({"LIVE_PORT": ""}, "port"),
        ({"LIVE_NOPE": "1"}, "LIVE_NOPE"),
        ({"LIVE_EXTRA": "1"}, "LIVE_EXTRA"),
        ({"LIVE_INGEST_LOOPBACK_TRUST": "perhaps"}, "ingest_loopback_trust"),
        ({"LIVE_ICE_SERVERS": "http://stun.example"}, "ice_servers"),
        ({"LIVE_ICE_SERVERS": "stun:ok,stun.example:3478"}, "ice_servers"),
        ({"LIVE_PURPOSES": " , "}, "purposes"),
        ({"LIVE_LISTENER_QUEUE_PACKETS": "0"}, "listener_queue_packets"),
        ({"LIVE_SESSION_TTL_S": "8h"}, "session_ttl_s"),
    ],
)
def test_bad_environment_values_name_the_setting(environ: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        load_settings(environ)
    assert caught.value.fields["setting"] == name
    assert caught.value.code == "config_error"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("colour = 'blue'\n", "colour"),
        ("extra = 1\n", "extra"),
        ("port = 'x'\n", "port"),
        ("port = 70000\n", "port"),
        ("port = true\n", "port"),  # TOML has booleans: 1 is not what was meant
        ("port = 80.5\n", "port"),
        ("ingest_loopback_trust = 'maybe'\n", "ingest_loopback_trust"),
        ("demo = true\n", "demo"),  # a dead setting, removed
        ("purposes = []\n", "purposes"),
        ('ice_servers = [{urls = "http://x"}]\n', "ice_servers"),
        ('ice_servers = ["ftp:x"]\n', "ice_servers"),
        ('ice_servers = [{username = "u"}]\n', "ice_servers"),
    ],
)
def test_bad_toml_values_name_the_setting(tmp_path: Path, text: str, name: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        load_settings({}, toml(tmp_path, text))
    assert caught.value.fields["setting"] == name


def test_unreadable_or_broken_toml_file(tmp_path: Path) -> None:
    broken = toml(tmp_path, "port = \n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({}, broken)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({}, tmp_path / "missing.toml")


def test_bad_value_in_file_is_reported_even_when_env_sets_it(tmp_path: Path) -> None:
    """Every source is checked: a broken file is not hidden by an environment variable."""
    with pytest.raises(ConfigError, match="port"):
        load_settings({"LIVE_PORT": "9000"}, toml(tmp_path, "port = 'x'\n"))


@pytest.mark.parametrize(
    ("overrides", "name"), [({"colour": "blue"}, "colour"), ({"port": "x"}, "port")]
)
def test_bad_overrides_are_config_errors(overrides: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        load_settings({}, None, **overrides)
    assert caught.value.fields["setting"] == name


def test_every_setting_in_the_example_env_file_exists() -> None:
    """deploy/live.env.example must not teach a setting the server does not know."""
    import re

    text = (Path(__file__).resolve().parents[2] / "deploy" / "live.env.example").read_text(encoding="utf-8")
    names = set(re.findall(r"^#?LIVE_([A-Z_]+)=", text, flags=re.MULTILINE))
    known = {name.upper() for name in SETTING_NAMES}
    assert {"OIDC_ISSUER", "TRUSTED_PROXIES", "INGEST_SECRETS"} <= names
    assert names <= known, names - known


def test_settings_fall_into_groups_under_their_public_names() -> None:
    settings = load_settings(
        {
            "LIVE_OIDC_ISSUER": "https://login.example",
            "LIVE_OIDC_ROLE_CLAIM": "groups",
            "LIVE_WS_TOTAL": "50",
            "LIVE_INGEST_LOOPBACK_TRUST": "on",
            "LIVE_LEDGER_ORIGIN": "live.example/ledger",
            "LIVE_SIPREC_LISTEN": "127.0.0.1:5060",
            "LIVE_RTP_TIMEOUT_S": "9",
            "LIVE_AUDIOHOOK_AGENT_KEY": "agent",
            "LIVE_SESSION_TTL_S": "60",
            "LIVE_TLS_CERT": "/etc/live/cert.pem",
        }
    )
    assert settings.oidc.issuer == "https://login.example" and settings.oidc.role_claim == "groups"
    assert settings.limits.ws_total == 50 and settings.ingest.loopback_trust is True
    assert settings.ledger.origin == "live.example/ledger"
    assert settings.siprec.listen == "127.0.0.1:5060" and settings.rtp.timeout_s == 9
    assert settings.audiohook.agent_key == "agent" and settings.session.ttl_s == 60
    assert settings.tls.cert == "/etc/live/cert.pem"
    # The same names in a TOML file, and as overrides
    assert load_settings({}, None, oidc_issuer="https://x.example").oidc.issuer == "https://x.example"
    assert {"oidc_issuer", "ws_total", "ingest_secrets", "ledger_url", "port"} <= set(SETTING_NAMES)


def test_lists_and_maps_are_parsed_once_into_types(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "LIVE_INGEST_SECRET": "single",
            "LIVE_INGEST_SECRETS": "sbc-a=s=1, sbc-b=two,",
            "LIVE_OIDC_ROLE_MAP": "qa-supervisors=supervisor,works-council=auditor",
            "LIVE_OIDC_SCOPES": "openid  profile email",
            "LIVE_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2",
            "LIVE_LEDGER_TRUSTED_KEYS": "k1 k2,k3",
            "LIVE_LEDGER_WITNESSES": "w1",
            "LIVE_SIPREC_ALLOW": "10.0.0.5, 192.168.10.0/24,::1",
            "LIVE_SIPREC_DIGEST": "sbc1=pw1",
            "LIVE_AUDIOHOOK_API_KEYS": "genesys=key-1",
            "LIVE_AUDIOHOOK_CLIENT_SECRETS": "genesys=c2VjcmV0",
            "LIVE_AUDIOSOCKET_ALLOW": "10.1.0.0/16",
        }
    )
    # A secret may hold "=" (split at the first); a claim value may too (split at the last).
    by_source = {k: v.get_secret_value() for k, v in settings.ingest.secrets_by_source.items()}
    assert by_source == {"default": "single", "sbc-a": "s=1", "sbc-b": "two"}
    assert settings.oidc.role_map == {"qa-supervisors": "supervisor", "works-council": "auditor"}
    assert settings.oidc.scopes == ("openid", "profile", "email")
    assert settings.limits.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    assert settings.ledger.trusted_keys == ("k1", "k2", "k3") and settings.ledger.witnesses == ("w1",)
    assert [str(n) for n in settings.siprec.allow] == ["10.0.0.5/32", "192.168.10.0/24", "::1/128"]
    assert {k: v.get_secret_value() for k, v in settings.siprec.digest.items()} == {"sbc1": "pw1"}
    assert settings.audiohook.api_keys["genesys"].get_secret_value() == "key-1"
    assert settings.audiohook.client_secrets["genesys"].get_secret_value() == "c2VjcmV0"
    assert [str(n) for n in settings.audiosocket.allow] == ["10.1.0.0/16"]
    # TOML may say the same with arrays and tables
    config = toml(
        tmp_path,
        'trusted_proxies = ["10.0.0.1"]\noidc_scopes = ["openid"]\n'
        '[ingest_secrets]\nsbc-a = "one"\n[oidc_role_map]\nqa = "supervisor"\n',
    )
    from_file = load_settings({}, config)
    assert from_file.limits.trusted_proxies == ("10.0.0.1",) and from_file.oidc.scopes == ("openid",)
    assert from_file.ingest.secrets["sbc-a"].get_secret_value() == "one"
    assert from_file.oidc.role_map == {"qa": "supervisor"}


def test_a_role_map_entry_splits_at_its_last_equals_sign() -> None:
    settings = load_settings({"LIVE_OIDC_ROLE_MAP": "a=b=supervisor"})
    assert settings.oidc.role_map == {"a=b": "supervisor"}


@pytest.mark.parametrize(
    ("environ", "name", "says"),
    [
        ({"LIVE_INGEST_SECRETS": "no-equals-sign"}, "ingest_secrets", "source=secret"),
        ({"LIVE_INGEST_SECRETS": "a="}, "ingest_secrets", "source=secret"),
        ({"LIVE_OIDC_ROLE_MAP": "qa=boss"}, "oidc_role_map", "'boss' is not a role"),
        ({"LIVE_OIDC_ROLE_MAP": "supervisor"}, "oidc_role_map", "claim-value=role"),
        ({"LIVE_SIPREC_ALLOW": "10.0.0.5,not-a-network"}, "siprec_allow", "not-a-network"),
        ({"LIVE_AUDIOSOCKET_ALLOW": "300.1.1.1"}, "audiosocket_allow", "300.1.1.1"),
        ({"LIVE_SIPREC_DIGEST": "user-only"}, "siprec_digest", "user=password"),
        ({"LIVE_AUDIOHOOK_API_KEYS": "key-without-name"}, "audiohook_api_keys", "name=value"),
        (
            {"LIVE_AUDIOHOOK_API_KEYS": "g=k", "LIVE_AUDIOHOOK_CLIENT_SECRETS": "g=%%%"},
            "audiohook_client_secrets",
            "not base64",
        ),
        (
            {"LIVE_AUDIOHOOK_API_KEYS": "g=k", "LIVE_AUDIOHOOK_CLIENT_SECRETS": "other=c2VjcmV0"},
            "audiohook_client_secrets",
            "not a key name",
        ),
        ({"LIVE_AUDIOHOOK_RECONNECT_GRACE_S": "-1"}, "audiohook_reconnect_grace_s", "negative"),
        ({"LIVE_RTP_TIMEOUT_S": "0"}, "rtp_timeout_s", "at least 1"),
        ({"LIVE_LOG_LEVEL": "chatty"}, "log_level", "DEBUG"),
        ({"LIVE_WS_TOTAL": "many"}, "ws_total", "whole number"),
    ],
)
def test_bad_list_map_and_group_values_name_the_setting(environ: dict[str, str], name: str, says: str) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        load_settings(environ)
    assert caught.value.fields["setting"] == name
    assert says in caught.value.message


def test_settings_from_two_sources_are_checked_together(tmp_path: Path) -> None:
    """A client secret in the file may name a key given in the environment."""
    config = toml(tmp_path, 'audiohook_client_secrets = "g=c2VjcmV0"\n')
    settings = load_settings({"LIVE_AUDIOHOOK_API_KEYS": "g=k"}, config)
    assert set(settings.audiohook.client_secrets) == {"g"}


def test_log_level_is_a_setting() -> None:
    assert load_settings({}).log_level is None  # the command's own default
    assert load_settings({"LIVE_LOG_LEVEL": "debug"}).log_level == "DEBUG"


SECRETS = {
    "LIVE_SESSION_SECRET": "session-s3cret",
    "LIVE_INGEST_SECRET": "ingest-s3cret",
    "LIVE_INGEST_SECRETS": "sbc=sbc-s3cret",
    "LIVE_TWILIO_AUTH_TOKEN": "twilio-s3cret",
    "LIVE_AUDIOHOOK_API_KEYS": "g=apikey-s3cret",
    "LIVE_AUDIOHOOK_CLIENT_SECRETS": "g=Y2xpZW50LXMzY3JldA==",
    "LIVE_SIPREC_DIGEST": "sbc=digest-s3cret",
    "LIVE_OIDC_CLIENT_SECRET": "oidc-s3cret",
    "LIVE_REDIS_URL": "redis://:redis-s3cret@redis.internal:6379/0",
    "LIVE_LEDGER_URL": "postgresql://live:pg-s3cret@db.internal/live",
    "LIVE_WITNESS_TOKEN": "witness-s3cret",
    "LIVE_ICE_SERVERS": "turn:turn.example:3478|user|turn-s3cret",
}


def test_no_secret_shows_in_repr_or_str() -> None:
    settings = load_settings(SECRETS)
    for shown in (repr(settings), str(settings), repr(settings.ingest), str(settings.oidc)):
        assert "s3cret" not in shown and "Y2xpZW50" not in shown, shown
    # A URL keeps its host (for whoever reads a log), never its password.
    assert "redis.internal" in repr(settings.redis_url) and "db.internal" in repr(settings.ledger.url)
    # The values are there for the code that needs them.
    assert settings.session.secret.get_secret_value() == "session-s3cret"
    assert settings.redis_url.get_secret_value() == SECRETS["LIVE_REDIS_URL"]
    assert settings.ice_servers[0].credential == "turn-s3cret"


def test_a_bad_secret_is_not_repeated_in_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"LIVE_INGEST_SECRETS": "only-a-s3cret"})
    assert "s3cret" not in caught.value.message


def test_session_key_is_created_private_and_kept(tmp_path: Path) -> None:
    import os
    import stat

    from live.config.private import create_private_file, session_key

    old = os.umask(0)  # a careless umask: the file is private all the same
    try:
        first = session_key(tmp_path / "data")
    finally:
        os.umask(old)
    path = tmp_path / "data" / "session.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64 and session_key(tmp_path / "data") == first  # kept across starts
    assert create_private_file(path, b"other") is False and session_key(tmp_path / "data") == first


def test_user_store_file_is_private(tmp_path: Path) -> None:
    import os
    import stat

    from live.auth import UserStore
    from live.types import Role

    old = os.umask(0)
    try:
        UserStore(tmp_path / "users.json").add("kim", Role.SUPERVISOR)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "users.json").stat().st_mode) == 0o600
