"""Witness cosignatures of checkpoints, in the C2SP ``tlog-cosignature`` format (v1, Ed25519).

A cosignature (https://c2sp.org/tlog-cosignature, "Format") is one more signature line on a
signed checkpoint note::

    — <witness name> base64(4-byte key ID || 8-byte big-endian timestamp || 64-byte signature)

* key ID = ``SHA-256(<name> || "\\n" || 0x04 || 32-byte Ed25519 public key)[:4]``;
* the Ed25519 signature is over ``"cosignature/v1\\ntime <timestamp>\\n"`` followed by the
  whole checkpoint body with its final newline ("Ed25519 signed message");
* keys travel as signed-note verifier keys with signature type ``0x04``:
  ``<name>+<hex key ID>+<base64(0x04 || public key)>``.

A v1 cosignature says: as of ``timestamp``, this is the largest consistent tree head the
witness has seen for the log. Everything here is pure; errors are ``CheckpointError``.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .checkpoint import (
    Checkpoint,
    CheckpointError,
    parse_checkpoint,
    parse_note,
)

COSIGNATURE_TYPE = 0x04
"""Signature type byte of an Ed25519 ``cosignature/v1`` (c2sp.org/signed-note, "Signature types")."""

_HEADER = "cosignature/v1\n"
_MAX_TIMESTAMP = 2**63 - 1
_SIG_PREFIX = "\u2014 "


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 cosigner key (tlog-cosignature, "Format")."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_TYPE]) + public_key
    ).digest()[:4]


def cosigned_message(body: str, timestamp: int) -> bytes:
    """The bytes a witness signs: header line, time line, then the checkpoint body."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise CheckpointError(f"cosignature time {timestamp} is out of range", reason="malformed")
    return f"{_HEADER}time {timestamp}\n{body}".encode()


@dataclass(frozen=True)
class WitnessKey:
    """A trusted witness: name, 4-byte key ID and 32-byte Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: bytes

    def encode(self) -> str:
        blob = base64.b64encode(bytes([COSIGNATURE_TYPE]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{blob}"


@dataclass(frozen=True)
class Cosignature:
    """One verified cosignature: who, and when they said they saw the checkpoint."""

    witness: WitnessKey
    timestamp: int


def parse_witness_key(text: str) -> WitnessKey:
    """Parse ``<name>+<8 hex digits>+<base64(0x04 || 32-byte key)>`` and check its key ID."""
    name, _, rest = text.strip().partition("+")
    id_hex, _, blob_text = rest.partition("+")
    bad = CheckpointError(
        f"witness key {text!r:.80} is not <name>+<8 hex digits>+<base64(0x04 || key)>",
        reason="bad_key",
    )
    if not name or len(id_hex) != 8 or not blob_text or any(c.isspace() for c in name):
        raise bad
    try:
        key_id = bytes.fromhex(id_hex)
        blob = base64.b64decode(blob_text.encode("ascii"), validate=True)
    except ValueError:
        raise bad from None
    if len(blob) != 33 or blob[0] != COSIGNATURE_TYPE:
        raise bad
    public_key = blob[1:]
    if cosigner_key_id(name, public_key) != key_id:
        raise CheckpointError(f"witness key {name}+{id_hex} has the wrong key ID", reason="bad_key")
    return WitnessKey(name=name, key_id=key_id, public_key=public_key)


class WitnessSigner:
    """A witness's Ed25519 key under its name; cosigns checkpoints."""

    __slots__ = ("_key", "key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not name or "+" in name or any(c.isspace() for c in name):
            raise CheckpointError(f"witness name {name!r:.80} is not a key name", reason="bad_key")
        self._key = private_key
        public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key = WitnessKey(name, cosigner_key_id(name, public), public)

    @classmethod
    def generate(cls, name: str) -> WitnessSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, name: str, pem: bytes) -> WitnessSigner:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"cannot read the witness key: {exc}", reason="bad_key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError("the witness key is not an Ed25519 key", reason="bad_key")
        return cls(name, key)

    def to_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cosign(self, body: str, timestamp: int) -> str:
        """The signature line (with its newline) cosigning checkpoint ``body`` at ``timestamp``."""
        parse_checkpoint(body)
        signature = self._key.sign(cosigned_message(body, timestamp))
        blob = self.key.key_id + struct.pack(">Q", timestamp) + signature
        return f"{_SIG_PREFIX}{self.key.name} {base64.b64encode(blob).decode('ascii')}\n"


def add_signature_lines(note: str, lines: list[str] | tuple[str, ...]) -> str:
    """``note`` with extra signature lines appended (signed-note allows several); lines
    already present are not repeated."""
    present = set(note.splitlines(keepends=True))
    return note + "".join(line for line in lines if line not in present)


def verify_cosignature_line(body: str, line: str, witness: WitnessKey) -> int:
    """The timestamp of a single cosignature line by ``witness`` over ``body``; raises
    ``CheckpointError`` (``unknown_key`` if the line is another key's, else ``bad_signature``)."""
    found = cosignatures(f"{body}\n{line}", [witness])
    if not found:
        raise CheckpointError(f"not a valid cosignature by {witness.name}", reason="bad_signature")
    return found[0].timestamp


def cosignatures(note: str, witnesses: Sequence[WitnessKey]) -> list[Cosignature]:
    """The verified cosignatures in a signed checkpoint note by any of ``witnesses``.

    Lines by other keys are ignored (signed-note "Signatures"); a line naming a trusted
    witness whose signature does not verify raises ``CheckpointError`` (``bad_signature``).
    """
    signed = parse_note(note)
    body = signed.text
    parse_checkpoint(body)
    found: list[Cosignature] = []
    for sig in signed.signatures:
        for witness in witnesses:
            if sig.name != witness.name or sig.key_id != witness.key_id:
                continue
            if len(sig.signature) != 8 + 64:
                raise CheckpointError(
                    f"cosignature by {witness.name} is not a timestamp and a signature",
                    reason="bad_signature",
                )
            (timestamp,) = struct.unpack(">Q", sig.signature[:8])
            try:
                Ed25519PublicKey.from_public_bytes(witness.public_key).verify(
                    sig.signature[8:], cosigned_message(body, timestamp)
                )
            except (InvalidSignature, CheckpointError):
                raise CheckpointError(
                    f"cosignature by {witness.name}+{witness.key_id.hex()} does not verify",
                    reason="bad_signature",
                ) from None
            found.append(Cosignature(witness, timestamp))
    return found


def cosigned_checkpoint(
    note: str, witnesses: Sequence[WitnessKey]
) -> tuple[Checkpoint, list[Cosignature]]:
    """The checkpoint of ``note`` and its verified cosignatures by ``witnesses``."""
    found = cosignatures(note, witnesses)
    return parse_checkpoint(parse_note(note).text), found


__all__ = [
    "COSIGNATURE_TYPE",
    "Cosignature",
    "WitnessKey",
    "WitnessSigner",
    "add_signature_lines",
    "cosignatures",
    "cosigned_checkpoint",
    "cosigned_message",
    "cosigner_key_id",
    "parse_witness_key",
    "verify_cosignature_line",
]
