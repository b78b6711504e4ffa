"""C2SP tlog-cosignature/v1: format, key IDs, round trips, and forgeries refused."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from live.audit.checkpoint import CheckpointError, CheckpointSigner, parse_note, verify_note
from live.audit.cosignature import (
    WitnessSigner,
    add_signature_lines,
    cosignatures,
    parse_witness_key,
)

ROOT = bytes(range(32))


def _note() -> tuple[CheckpointSigner, str, str]:
    log = CheckpointSigner.generate("example.com/log")
    note = log.sign("example.com/log", 5, ROOT)
    return log, note, note[: note.index("\n\n") + 1]


def test_the_line_is_key_id_timestamp_and_signature_over_the_spec_message() -> None:
    _, _, body = _note()
    witness = WitnessSigner.generate("witness.example/w1")
    line = witness.cosign(body, 1679315147)
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
    blob = base64.b64decode(line.split(" ")[2])
    public = witness.key.public_key
    assert blob[:4] == hashlib.sha256(b"witness.example/w1\n\x04" + public).digest()[:4]
    assert struct.unpack(">Q", blob[4:12]) == (1679315147,)
    message = b"cosignature/v1\ntime 1679315147\n" + body.encode()
    Ed25519PublicKey.from_public_bytes(public).verify(blob[12:], message)


def test_a_cosigned_note_still_opens_for_the_log_and_gives_the_witness() -> None:
    log, note, body = _note()
    witness = WitnessSigner.generate("witness.example/w1")
    other = WitnessSigner.generate("other.example/w2")
    cosigned = add_signature_lines(note, [witness.cosign(body, 100), other.cosign(body, 200)])
    assert verify_note(cosigned, log.verifier()).size == 5  # Go's note.Open accepts it too
    found = cosignatures(cosigned, [parse_witness_key(witness.key.encode())])
    assert [(c.witness.name, c.timestamp) for c in found] == [("witness.example/w1", 100)]
    assert add_signature_lines(cosigned, [witness.cosign(body, 100)]) == cosigned
    assert len(parse_note(cosigned).signatures) == 3


def test_a_cosignature_of_another_checkpoint_or_time_is_refused() -> None:
    log, note, body = _note()
    witness = WitnessSigner.generate("witness.example/w1")
    line = witness.cosign(body, 100)
    other = log.sign("example.com/log", 6, ROOT)
    with pytest.raises(CheckpointError):
        cosignatures(add_signature_lines(other, [line]), [witness.key])
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[11] ^= 1  # the timestamp
    forged = f"\u2014 witness.example/w1 {base64.b64encode(bytes(blob)).decode()}\n"
    with pytest.raises(CheckpointError):
        cosignatures(add_signature_lines(note, [forged]), [witness.key])


def test_witness_keys_round_trip_and_bad_ones_are_refused() -> None:
    witness = WitnessSigner.generate("witness.example/w1")
    assert parse_witness_key(witness.key.encode()) == witness.key
    assert WitnessSigner.from_pem("witness.example/w1", witness.to_pem()).key == witness.key
    log_key = CheckpointSigner.generate("witness.example/w1").verifier_key()  # type 0x01
    for bad in (log_key, "w+00000000+AA==", "nonsense", witness.key.encode().replace("w1+", "w2+")):
        with pytest.raises(CheckpointError):
            parse_witness_key(bad)
