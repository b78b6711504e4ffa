"""``live witness`` against a real node: it cosigns, the node serves the cosignature with
its checkpoint and lists the witness, a rewritten log is refused, and the witness's kept
checkpoint lets ``verify`` catch a truncation the node hides."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp

from live.audit.checkpoint import verify_note
from live.audit.cosignature import WitnessSigner, cosignatures
from live.cli.witness import WitnessRefused, witness_once
from tests.support.server import running_server

T0 = 1_772_442_000.0


async def _append(ledger: object, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        await ledger.append(  # type: ignore[attr-defined]
            "consent.changed",
            actor="system",
            at=T0 + i,
            call_id=f"CA{i}",
            agent_id="agent",
            consent="granted",
            source="test",
        )


async def test_a_witness_cosigns_and_the_node_serves_it(tmp_path: Path) -> None:
    signer = WitnessSigner.generate("council.example/w1")
    state = tmp_path / "witness"
    async with running_server(tmp_path / "node") as server, aiohttp.ClientSession() as http:
        ledger = server.state.node.ledger
        log_key = ledger.verifier_key()
        token = server.tokens["auditor"]
        await _append(ledger, 3)
        size, kept = await witness_once(http, server.base_url, token, signer, log_key, state)
        assert size == (await ledger.head())[0]
        assert cosignatures(kept, [signer.key]) and verify_note(kept, log_key).size == size

        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{server.base_url}/api/audit/checkpoint", headers=headers) as r:
            body = await r.json()
        assert [w["witness"] for w in body["witnesses"]] == ["council.example/w1"]
        assert body["witnesses"][0]["tree_size"] == size
        if verify_note(body["checkpoint"], log_key).size == size:
            assert cosignatures(body["checkpoint"], [signer.key])

        await _append(ledger, 2, start=3)  # the log grows: consistent, cosigned again
        size2, _ = await witness_once(http, server.base_url, token, signer, log_key, state)
        assert size2 == size + 2

        agent = {"Authorization": f"Bearer {server.tokens['agent']}"}
        async with http.post(
            f"{server.base_url}/api/audit/cosignatures", headers=agent, json={}
        ) as r:
            assert r.status == 403
        async with http.post(
            f"{server.base_url}/api/audit/cosignatures",
            headers=headers,
            json={"checkpoint": kept, "cosignature": "\u2014 x AAAA", "witness_key": "nope"},
        ) as r:
            assert r.status == 400


async def test_a_rewritten_log_is_refused_and_the_kept_checkpoint_catches_it(
    tmp_path: Path,
) -> None:
    signer = WitnessSigner.generate("council.example/w1")
    state = tmp_path / "witness"
    node = tmp_path / "node"
    async with running_server(node) as server, aiohttp.ClientSession() as http:
        ledger = server.state.node.ledger
        log_key = ledger.verifier_key()
        token = server.tokens["auditor"]
        await _append(ledger, 6)
        size, _ = await witness_once(http, server.base_url, token, signer, log_key, state)
        db = sqlite3.connect(node / "ledger.sqlite3", isolation_level=None)
        db.execute("DELETE FROM ledger_entries WHERE seq >= ?", (size - 2,))
        db.execute("DELETE FROM ledger_checkpoints WHERE tree_size > ?", (size - 2,))
        db.close()
        ledger._stale = True  # the node rebuilds its tree from what is stored
        await _append(ledger, 3, start=100)  # and writes on: the same size again, later
        try:
            await witness_once(http, server.base_url, token, signer, log_key, state)
        except WitnessRefused as exc:
            assert "rewritten" in exc.message or "shrank" in exc.message
        else:
            raise AssertionError("the witness cosigned a rewritten log")
    command = [
        sys.executable,
        "-m",
        "live.cli",
        "audit",
        "verify",
        "--data",
        str(node),
        "--key",
        log_key,
        "--witness",
        signer.key.encode(),
        "--checkpoint",
        str(state),
    ]
    result = await asyncio.to_thread(
        subprocess.run,
        command,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1, result.stdout
    assert "checkpoint" in result.stdout


def test_keygen_writes_a_key_and_prints_the_witness_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "live.cli",
            "witness",
            "keygen",
            "--name",
            "council.example/w",
            "--out",
            str(tmp_path / "w.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("council.example/w+")
    assert (tmp_path / "w.pem.pub").read_text().strip() == result.stdout.strip()


async def test_live_witness_once_on_the_command_line(tmp_path: Path) -> None:
    pem = tmp_path / "w.pem"
    signer = WitnessSigner.generate("council.example/cli")
    pem.write_bytes(signer.to_pem())
    (tmp_path / "w.pem.pub").write_text(signer.key.encode() + "\n")
    async with running_server(tmp_path / "node") as server:
        ledger = server.state.node.ledger
        await _append(ledger, 2)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "live.cli",
            "witness",
            "--node",
            server.base_url,
            "--token",
            server.tokens["auditor"],
            "--key",
            str(pem),
            "--log-key",
            ledger.verifier_key(),
            "--state",
            str(tmp_path / "state"),
            "--once",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        assert b"cosigned" in out
        kept = (tmp_path / "state" / "checkpoint").read_text()
        assert cosignatures(kept, [signer.key])


async def test_with_ledger_witnesses_set_the_node_checks_against_them(tmp_path: Path) -> None:
    signer = WitnessSigner.generate("council.example/w1")
    stranger = WitnessSigner.generate("someone.example/w")
    node = tmp_path / "node"
    async with (
        running_server(node, ledger_witnesses=signer.key.encode()) as server,
        aiohttp.ClientSession() as http,
    ):
        ledger = server.state.node.ledger
        log_key = ledger.verifier_key()
        token = server.tokens["auditor"]
        headers = {"Authorization": f"Bearer {token}"}
        await _append(ledger, 6)
        # Kept by the stranger; the node refuses it (403 unknown_witness).
        await witness_once(http, server.base_url, token, stranger, log_key, tmp_path / "s")
        async with http.get(f"{server.base_url}/api/audit/checkpoint", headers=headers) as r:
            assert (await r.json())["witnesses"] == []
        size, _ = await witness_once(http, server.base_url, token, signer, log_key, tmp_path / "w")
        db = sqlite3.connect(node / "ledger.sqlite3", isolation_level=None)
        db.execute("DELETE FROM ledger_entries WHERE seq >= ?", (size - 2,))
        db.execute("DELETE FROM ledger_checkpoints WHERE tree_size > ?", (size - 2,))
        db.close()
        async with http.get(f"{server.base_url}/api/audit/verify", headers=headers) as r:
            report = await r.json()
        assert report["ok"] is False and report["first_bad_seq"] == size - 2, report
