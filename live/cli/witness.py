"""``live witness``: an independent witness of a node's ledger (c2sp.org/tlog-cosignature).

Run by the works council on its own machine, with its own key and an auditor's API token::

    live witness keygen --name council.example/witness --out witness.pem
    live witness --node https://live.example --token TOKEN --key witness.pem \\
        --log-key '<the log's verifier key>' --state witness-state [--once | --interval 300]

Each round: fetch the node's checkpoint; verify it with the log's verifier key *given here*
(never the one the node sends); if the witness has a stored checkpoint, fetch the RFC 9162
consistency proof from it and verify it (a shorter or rewritten log is refused, loudly, and
never cosigned); cosign (``cosignature/v1``, the time now); POST the cosignature to the node;
store the cosigned checkpoint as ``STATE/checkpoint`` (atomically), where ``live audit
verify --checkpoint STATE --witness KEY`` can use it. Exit status of ``--once``: 0 cosigned,
1 refused (inconsistent log, bad signature) or unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import sys
import time
from pathlib import Path
from typing import Any

from ..audit.checkpoint import CheckpointError, parse_verifier_key, verify_note
from ..audit.cosignature import WitnessSigner, add_signature_lines
from ..audit.merkle import ProofError, verify_consistency
from ..audit.witnessed import write_atomically
from ..config.private import create_private_file
from ..errors import LiveError
from .runtime import settings_of

log = logging.getLogger("live.witness")

STATE_FILE = "checkpoint"


class WitnessRefused(LiveError):
    """The node's log is not consistent with what this witness saw, or is not signed."""

    code = "witness_refused"


def register(subparsers: Any) -> argparse.ArgumentParser:
    witness = subparsers.add_parser("witness", help="cosign a node's checkpoints (works council)")
    add_arguments(witness)
    return witness  # type: ignore[no-any-return]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="witness_command")
    keygen = sub.add_parser("keygen", help="create a witness key")
    keygen.add_argument("--name", required=True, help="the witness's name, e.g. council.example/w1")
    keygen.add_argument("--out", required=True, metavar="PEM", help="private key file to create")
    keygen.set_defaults(func=cmd_keygen)
    parser.add_argument("--node", help="the node's base URL")
    parser.add_argument("--token", help="an auditor's API token (default LIVE_WITNESS_TOKEN)")
    parser.add_argument("--key", metavar="PEM", help="the witness key (see keygen)")
    parser.add_argument("--name", help="the witness name (default: from KEY.pub)")
    parser.add_argument("--log-key", metavar="VKEY", help="the log's published verifier key")
    parser.add_argument("--state", metavar="DIR", help="where the last cosigned checkpoint is kept")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one round, then exit")
    mode.add_argument("--interval", type=float, default=300.0, help="seconds between rounds")
    parser.set_defaults(func=cmd_witness)


def cmd_keygen(args: argparse.Namespace) -> int:
    signer = WitnessSigner.generate(args.name)
    out = Path(args.out)
    if not create_private_file(out, signer.to_pem()):
        raise LiveError(f"{out} exists; not overwriting a key", code="io_error")
    Path(f"{out}.pub").write_text(signer.key.encode() + "\n", encoding="utf-8")
    print(signer.key.encode())
    print(f"private key in {out}, witness key (give it to verifiers) in {out}.pub", file=sys.stderr)
    return 0


def _signer(args: argparse.Namespace) -> WitnessSigner:
    key_path = Path(args.key)
    name = args.name
    if not name:
        try:
            name = Path(f"{key_path}.pub").read_text(encoding="utf-8").strip().split("+")[0]
        except OSError:
            raise LiveError(
                "give --name, or keep KEY.pub beside the key", code="io_error"
            ) from None
    try:
        return WitnessSigner.from_pem(name, key_path.read_bytes())
    except OSError as exc:
        raise LiveError(f"cannot read {key_path}: {exc}", code="io_error") from exc


async def witness_once(
    session: Any, node: str, token: str, signer: WitnessSigner, log_key: str, state: Path
) -> tuple[int, str]:
    """One round; returns the cosigned size and note. Raises ``WitnessRefused``."""
    headers = {"Authorization": f"Bearer {token}"}
    base = node.rstrip("/")

    async def get(path: str) -> dict[str, Any]:
        async with session.get(f"{base}{path}", headers=headers) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                raise LiveError(f"GET {path}: {response.status} {body}", code="node_error")
            return body  # type: ignore[no-any-return]

    key = parse_verifier_key(log_key)
    answer = await get("/api/audit/checkpoint")
    note = str(answer.get("checkpoint", ""))
    try:
        checkpoint = verify_note(note, key)
    except CheckpointError as exc:
        raise WitnessRefused(f"the node's checkpoint does not verify: {exc.message}") from exc
    previous_path = state / STATE_FILE
    if previous_path.is_file():
        previous = verify_note(previous_path.read_text(encoding="utf-8"), key)
        if previous.origin != checkpoint.origin:
            raise WitnessRefused(f"the node now serves log {checkpoint.origin!r}")
        if checkpoint.size < previous.size:
            raise WitnessRefused(
                f"the log shrank from {previous.size} to {checkpoint.size} entries since this "
                "witness last saw it: entries were removed"
            )
        proof = await get(f"/api/audit/proof/consistency?from={previous.size}&to={checkpoint.size}")
        hashes = [base64.b64decode(h) for h in proof.get("hashes", [])]
        try:
            verify_consistency(
                previous.size, checkpoint.size, previous.root, checkpoint.root, hashes
            )
        except ProofError as exc:
            raise WitnessRefused(
                f"the log at size {checkpoint.size} is not an extension of the log this witness "
                f"saw at size {previous.size}: it was rewritten ({exc})"
            ) from exc
    body = note[: note.index("\n\n") + 1]
    line = signer.cosign(body, int(time.time()))
    async with session.post(
        f"{base}/api/audit/cosignatures",
        headers=headers,
        json={"checkpoint": note, "cosignature": line, "witness_key": signer.key.encode()},
    ) as response:
        if response.status != 200:
            log.warning("the node did not take the cosignature: %s", await response.text())
    own = note[: note.index("\n\n") + 2] + "".join(
        f"{s}\n"
        for s in note[note.index("\n\n") + 2 :].splitlines()
        if s.startswith(f"\u2014 {key.name} ")
    )
    cosigned = add_signature_lines(own, [line])
    state.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (one directory, once a round)
    write_atomically(previous_path, cosigned)
    return checkpoint.size, cosigned


def cmd_witness(args: argparse.Namespace) -> int:
    import aiohttp

    token = args.token or settings_of(args).witness_token.get_secret_value()
    missing = [
        n
        for n, v in (
            ("--node", args.node),
            ("--token", token),
            ("--key", args.key),
            ("--log-key", args.log_key),
            ("--state", args.state),
        )
        if not v
    ]
    if missing:
        raise LiveError(f"live witness needs {', '.join(missing)}", code="bad_arguments")
    signer = _signer(args)
    state = Path(args.state)

    async def run() -> int:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    size, _ = await witness_once(
                        session, args.node, token, signer, args.log_key, state
                    )
                    print(f"cosigned {args.node} at tree size {size}", flush=True)
                    status = 0
                except WitnessRefused as exc:
                    print(f"REFUSED: {exc.message}", file=sys.stderr, flush=True)
                    status = 1
                except (LiveError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    print(f"live witness: {exc}", file=sys.stderr, flush=True)
                    status = 1
                if args.once:
                    return status
                await asyncio.sleep(args.interval)

    return asyncio.run(run())


__all__ = ["WitnessRefused", "register", "witness_once"]
