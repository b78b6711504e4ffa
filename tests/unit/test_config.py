"""Settings: read once from TOML and LIVE_* variables, typed, loud about mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from live.config import IceServer, load_settings
from live.errors import ConfigError


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.redis_url == "" and settings.ice_servers == ()
    assert settings.ledger_path == Path("live-data/ledger.sqlite3")


def test_precedence_file_then_env_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "live.toml"
    config.write_text('port = 9000\nhost = "0.0.0.0"\npurposes = ["training"]\n')
    settings = load_settings({"LIVE_PORT": "9100", "OTHER": "ignored"}, config)
    assert settings.port == 9100 and settings.host == "0.0.0.0"
    assert settings.purposes == ("training",)
    assert load_settings({"LIVE_PORT": "9100"}, config, port=9200).port == 9200


def test_ice_servers_from_env_and_toml(tmp_path: Path) -> None:
    settings = load_settings({"LIVE_ICE_SERVERS": "stun:10.0.0.1:3478,turn:turn.example:3478|u|p"})
    assert settings.ice_servers == (
        IceServer("stun:10.0.0.1:3478"),
        IceServer("turn:turn.example:3478", "u", "p"),
    )
    config = tmp_path / "c.toml"
    config.write_text('ice_servers = [{urls = "turn:t:3478", username = "a", credential = "b"}]\n')
    assert load_settings({}, config).ice_servers == (IceServer("turn:t:3478", "a", "b"),)


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"LIVE_PORT": "x"}, "port"),
        ({"LIVE_PORT": "70000"}, "port"),
        ({"LIVE_NOPE": "1"}, "LIVE_NOPE"),
        ({"LIVE_INGEST_LOOPBACK_TRUST": "perhaps"}, "ingest_loopback_trust"),
        ({"LIVE_ICE_SERVERS": "http://stun.example"}, "ice_servers"),
        ({"LIVE_PURPOSES": " , "}, "purposes"),
        ({"LIVE_LISTENER_QUEUE_PACKETS": "0"}, "listener_queue_packets"),
    ],
)
def test_bad_values_name_the_setting(environ: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(environ)


def test_bad_toml_file(tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("colour = 'blue'\n")
    with pytest.raises(ConfigError, match="colour"):
        load_settings({}, unknown)
    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({}, broken)
