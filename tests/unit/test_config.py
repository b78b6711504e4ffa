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
