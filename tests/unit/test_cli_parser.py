"""The ``live`` command line: real subcommands, each with its own options, read in-process."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from live.cli import build_parser
from live.cli.runtime import read_settings


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def every_command() -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, child in subcommands(parser).items():
            walk(child, (*path, name))

    walk(build_parser(), ())
    return paths


def test_the_documented_commands_exist() -> None:
    commands = set(every_command())
    for path in [
        ("demo",), ("serve",), ("users", "list"), ("users", "add"), ("users", "remove"),
        ("users", "passwd"), ("users", "token"), ("users", "signout"), ("audit", "verify"),
        ("audit", "export"), ("audit", "verify-bundle"), ("audit", "rotate-key"),
        ("audit", "report"), ("witness",), ("witness", "keygen"), ("policy", "check"),
    ]:  # fmt: skip
        assert path in commands, path


@pytest.mark.parametrize("path", every_command(), ids=lambda p: " ".join(p) or "live")
def test_every_command_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args([*path, "--help"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: live {' '.join(path)}".rstrip())


def test_users_actions_have_their_own_options() -> None:
    parser = build_parser()
    add = parser.parse_args(["users", "add", "kim", "--role", "agent", "--teams", "a,b", "--data", "D"])
    assert (add.user, add.role, add.teams, add.data) == ("kim", "agent", "a,b", "D")
    assert parser.parse_args(["users", "--data", "D", "list"]).data == "D"  # before the action too
    assert parser.parse_args(["users", "signout", "kim", "--tokens"]).tokens is True
    for wrong in (["users", "list", "--role", "agent"], ["users", "token"], ["users", "add", "kim", "--tokens"]):
        with pytest.raises(SystemExit) as caught:
            parser.parse_args(wrong)
        assert caught.value.code == 2, wrong


def test_log_level_is_checked_and_audit_is_quiet_by_default() -> None:
    parser = build_parser()
    assert parser.parse_args(["--log-level", "debug", "serve"]).log_level == "DEBUG"
    with pytest.raises(SystemExit):
        parser.parse_args(["--log-level", "chatty", "serve"])
    assert parser.parse_args(["audit", "verify"]).log_default == "WARNING"
    assert getattr(parser.parse_args(["serve"]), "log_default", "INFO") == "INFO"


def test_command_options_become_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in [n for n in os.environ if n.startswith("LIVE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LIVE_PORT", "9000")
    parser = build_parser()
    serve = read_settings(parser.parse_args(["serve", "--data", str(tmp_path), "--host", "0.0.0.0"]))
    assert (serve.host, serve.port, serve.data_dir) == ("0.0.0.0", 9000, tmp_path)
    assert read_settings(parser.parse_args(["serve", "--port", "9100"])).port == 9100
    assert read_settings(parser.parse_args(["serve", "--port", "0"])).port == 9000  # 0: not given
    demo = read_settings(parser.parse_args(["demo", "--siprec-port", "5099"]))
    assert demo.ingest.loopback_trust is True and demo.port == 8080
    assert demo.data_dir == Path("live-demo-data") and demo.policy_path.name == "policy.toml"
    assert demo.siprec.listen == "127.0.0.1:5099" and len(demo.siprec.allow) == 2
    assert read_settings(parser.parse_args(["demo", "--siprec-port", "0"])).siprec.listen == ""
    assert not tmp_path.joinpath("session.key").exists()  # reading settings writes nothing
