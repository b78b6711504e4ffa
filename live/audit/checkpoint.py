"""Signed checkpoints of the ledger's Merkle tree, in the C2SP formats Go's tooling speaks.

A *checkpoint* (https://c2sp.org/tlog-checkpoint, "Note text") is the text::

    <origin>\\n<tree size, decimal>\\n<base64 root hash>\\n[<extension line>\\n ...]

A *signed note* (https://c2sp.org/signed-note, "Format") is that text, one blank line, and
one or more signature lines ``— <key name> <base64(4-byte key ID || signature)>\\n`` (an em
dash U+2014 and a space first). Signatures here are Ed25519 (RFC 8032) over the UTF-8 note
text including its final newline, with signature type ``0x01`` and
``key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]`` (signed-note,
"Ed25519 signatures"). Keys travel as the strings of ``golang.org/x/mod/sumdb/note``:
verifier key ``<name>+<8 hex digits key ID>+<base64(0x01 || public key)>`` and signer key
``PRIVATE+KEY+<name>+<key ID>+<base64(0x01 || 32-byte seed)>``, so ``note.Open`` in Go and
this module accept each other's notes.

Everything here is pure: text in, text out. Parsing is strict (a checkpoint is evidence):
any deviation from the formats above raises ``CheckpointError`` (HTTP 400, code
``bad_checkpoint``) whose ``reason`` field is one of ``malformed`` (the note or checkpoint
text), ``bad_key`` (a key string or PEM), ``unknown_key`` (no signature by the trusted key)
or ``bad_signature`` (a signature by the trusted key that does not verify).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ..errors import BadRequest
from .merkle import HASH_SIZE

ED25519_TYPE = 0x01
"""Signature type byte of Ed25519 in c2sp.org/signed-note ("Signature types")."""

MAX_SIGNATURES = 100
"""Signature lines accepted per note (signed-note asks for at least 16; Go allows 100)."""

MAX_TREE_SIZE = 2**64 - 1
"""Tree sizes are unsigned 64-bit integers, as in RFC 9162 and every Go verifier."""

_SIG_PREFIX = "\u2014 "  # em dash, space
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")


class CheckpointError(BadRequest):
    """A checkpoint, signed note or key is malformed, unsigned by the trusted key, or forged."""

    code = "bad_checkpoint"

    def __init__(self, message: str, *, reason: str, **fields: Any) -> None:
        super().__init__(message, reason=reason, **fields)
        self.reason = reason


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: which log (``origin``), how many leaves (``size``), and their MTH."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The checkpoint note text (tlog-checkpoint "Note text"), ending in a newline.

        Raises ``CheckpointError`` (reason ``malformed``) if a field cannot be written in it.
        """
        _check_line("origin", self.origin)
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise _malformed(f"tree size must be an integer, got {self.size!r}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise _malformed(f"tree size {self.size} is outside 0..2**64-1")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise _malformed(f"root hash must be {HASH_SIZE} bytes, got {self.root!r:.80}")
        for i, line in enumerate(self.extensions):
            _check_line(f"extension line {i}", line)
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        return "".join(line + "\n" for line in [*lines, *self.extensions])


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text (the part above the blank line, not a signed note).

    Enforces tlog-checkpoint "Note text": at least three non-empty lines, each ending in a
    newline; a non-empty origin; the size in ASCII decimal with no leading zeros and at
    most 2**64-1; the root as canonical standard base64 of 32 bytes; non-empty extension
    lines. The text is *not* authenticated: use ``verify_note`` for anything received.
    """
    _check_note_characters(text)
    if not text.endswith("\n"):
        raise _malformed("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if "" in lines:
        hint = " (a signed note? use verify_note)" if _SIG_PREFIX in text else ""
        raise _malformed(f"checkpoint has an empty line{hint}")
    if len(lines) < 3:
        raise _malformed(f"checkpoint needs origin, size and root lines, got {len(lines)}")
    origin, size_text, root_text, *extensions = lines
    if not _DECIMAL.fullmatch(size_text):
        raise _malformed(f"tree size {size_text!r:.40} is not a decimal without leading zeros")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise _malformed(f"tree size {size_text} is larger than 2**64-1")
    root = _b64decode(root_text, "root hash")
    if len(root) != HASH_SIZE:
        raise _malformed(f"root hash is {len(root)} bytes, expected {HASH_SIZE}")
    return Checkpoint(origin=origin, size=size, root=root, extensions=tuple(extensions))


# --------------------------------------------------------------------------- keys


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 key (signed-note, "Ed25519 signatures")."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + public_key
    ).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A trusted Ed25519 note key: its name, 4-byte key ID and 32-byte public key."""

    name: str
    key_id: bytes
    public_key: bytes

    def encode(self) -> str:
        """``<name>+<hex key ID>+<base64(0x01 || public key)>``, as Go's ``note`` writes it."""
        blob = base64.b64encode(bytes([ED25519_TYPE]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_verifier_key(text: str) -> VerifierKey:
    """Parse a verifier key string ``<name>+<hex key ID>+<base64(0x01 || public key)>``.

    Checks what Go's ``note.NewVerifier`` checks: a valid name, 8 hex digits, base64 of the
    Ed25519 type byte and exactly 32 key bytes, and a key ID that matches name and key.
    """
    name, sep1, rest = text.partition("+")
    id_hex, sep2, blob_text = rest.partition("+")
    if not (sep1 and sep2) or not _HEX_KEY_ID.fullmatch(id_hex) or not _valid_name(name):
        raise _bad_key(f"verifier key {text!r:.80} is not <name>+<8 hex digits>+<base64 key>")
    blob = _b64decode(blob_text, "verifier key", reason="bad_key")
    if len(blob) != 33 or blob[0] != ED25519_TYPE:
        raise _bad_key(
            f"verifier key {name}+{id_hex} is not an Ed25519 key "
            "(type byte 0x01 followed by 32 bytes)"
        )
    public_key = blob[1:]
    expected = key_id(name, public_key)
    if bytes.fromhex(id_hex) != expected:
        raise _bad_key(
            f"verifier key {name}+{id_hex} has the wrong key ID (name and key give "
            f"{expected.hex()})"
        )
    return VerifierKey(name=name, key_id=expected, public_key=public_key)


class CheckpointSigner:
    """The log's Ed25519 signing key under a key name; signs checkpoints as C2SP notes.

    The key name should be the log's origin (tlog-checkpoint, "Signatures"). The private key
    lives in memory only; ``to_pem`` is for the caller to store it (unencrypted PKCS#8, so
    file permissions are the caller's concern).
    """

    __slots__ = ("_key", "_key_id", "_name", "_public")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        if not _valid_name(name):
            raise _bad_key(
                f"key name {name!r:.80} must be non-empty, without spaces, '+' or controls"
            )
        self._name = name
        self._key = private_key
        self._public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._key_id = key_id(name, self._public)

    @classmethod
    def generate(cls, name: str) -> CheckpointSigner:
        """A signer with a fresh random Ed25519 key."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, name: str, pem: bytes) -> CheckpointSigner:
        """A signer from an unencrypted PKCS#8 PEM Ed25519 private key (see ``to_pem``)."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise _bad_key(f"cannot read the PEM private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise _bad_key(f"PEM key is {type(key).__name__}, not an Ed25519 private key")
        return cls(name, key)

    @classmethod
    def from_signer_key(cls, text: str) -> CheckpointSigner:
        """A signer from Go's ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``."""
        parts = text.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise _bad_key("signer key is not PRIVATE+KEY+<name>+<key ID>+<base64 seed>")
        _, _, name, id_hex, blob_text = parts
        if not _HEX_KEY_ID.fullmatch(id_hex):
            raise _bad_key(f"signer key ID {id_hex!r:.20} is not 8 hex digits")
        blob = _b64decode(blob_text, "signer key", reason="bad_key")
        if len(blob) != 33 or blob[0] != ED25519_TYPE:
            raise _bad_key("signer key is not an Ed25519 seed (type 0x01 and 32 bytes)")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(blob[1:]))
        if bytes.fromhex(id_hex) != signer.key_id:
            raise _bad_key(f"signer key ID {id_hex} does not match its name and key")
        return signer

    @property
    def name(self) -> str:
        """The key name written in signature lines."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID written before each signature."""
        return self._key_id

    @property
    def public_key(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return self._public

    def to_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM (the name is not part of it)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def signer_key(self) -> str:
        """The private key as Go's ``note`` signer key string (secret!)."""
        seed = self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        blob = base64.b64encode(bytes([ED25519_TYPE]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self._name}+{self._key_id.hex()}+{blob}"

    def verifier(self) -> VerifierKey:
        """The public half, for ``verify_note``."""
        return VerifierKey(name=self._name, key_id=self._key_id, public_key=self._public)

    def verifier_key(self) -> str:
        """The verifier key string to publish: ``<name>+<hex key ID>+<base64(0x01 || key)>``."""
        return self.verifier().encode()

    def sign_note(self, text: str) -> str:
        """Sign arbitrary note text (ending in a newline) and return the signed note."""
        _check_note_characters(text)
        if not text.endswith("\n"):
            raise _malformed("note text must end with a newline")
        signature = self._key.sign(text.encode("utf-8"))
        blob = base64.b64encode(self._key_id + signature).decode("ascii")
        return f"{text}\n{_SIG_PREFIX}{self._name} {blob}\n"

    def sign(self, origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
        """The signed checkpoint note for the tree (``origin``, ``size``, ``root``)."""
        body = Checkpoint(origin, size, root, tuple(extensions)).body()
        return self.sign_note(body)


# --------------------------------------------------------------------------- signed notes


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note: key name, 4-byte key ID, signature bytes."""

    name: str
    key_id: bytes
    signature: bytes


@dataclass(frozen=True)
class SignedNote:
    """A signed note split into its text (with final newline) and its signature lines."""

    text: str
    signatures: tuple[NoteSignature, ...]


def parse_note(note: str) -> SignedNote:
    """Split a signed note (signed-note, "Format") without verifying anything.

    The text is everything up to and including the newline before the *last* blank line;
    each line after it must be ``— <name> <base64(key ID || signature)>\\n``.
    """
    _check_note_characters(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise _malformed("signed note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise _malformed("signed note must end with signature lines, each ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise _malformed(f"signed note has {len(lines)} signatures, more than {MAX_SIGNATURES}")
    signatures = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_SIG_PREFIX):
            raise _malformed(f"signature line {number} does not start with an em dash and a space")
        name, space, blob_text = line[len(_SIG_PREFIX) :].partition(" ")
        if not space or not _valid_name(name) or not blob_text:
            raise _malformed(f"signature line {number} is not '— <key name> <base64>'")
        # Not required to be canonical: lines from other keys must be tolerated, and a
        # re-encoded signature by our key still has to verify.
        blob = _b64decode(blob_text, f"signature line {number}", canonical=False)
        if len(blob) < 5:
            raise _malformed(f"signature line {number} is too short for a key ID and signature")
        signatures.append(NoteSignature(name=name, key_id=blob[:4], signature=blob[4:]))
    return SignedNote(text=text, signatures=tuple(signatures))


def verify_note_text(note: str, verifier_key: str | VerifierKey) -> str:
    """Verify a signed note against one trusted key and return its text.

    Follows signed-note "Signatures": lines from other keys (a different name or key ID)
    are ignored; every line from the trusted key must verify (else ``bad_signature``); at
    least one must be present (else ``unknown_key``).
    """
    key = (
        verifier_key if isinstance(verifier_key, VerifierKey) else parse_verifier_key(verifier_key)
    )
    signed = parse_note(note)
    message = signed.text.encode("utf-8")
    ours = [s for s in signed.signatures if s.name == key.name and s.key_id == key.key_id]
    if not ours:
        seen = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in signed.signatures)
        raise CheckpointError(
            f"note is not signed by {key.name}+{key.key_id.hex()} (signed by {seen})",
            reason="unknown_key",
        )
    for sig in ours:
        if not key.verifies(message, sig.signature):
            raise CheckpointError(
                f"invalid signature for key {key.name}+{key.key_id.hex()}",
                reason="bad_signature",
            )
    return signed.text


def verify_note(
    note: str, verifier_key: str | VerifierKey, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint against one trusted key and return the checkpoint.

    Raises ``CheckpointError`` if the note or checkpoint is malformed, is not signed by the
    key, carries a bad signature by it, or (when ``origin`` is given) is for another log.
    """
    checkpoint = parse_checkpoint(verify_note_text(note, verifier_key))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(
            f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}",
            reason="malformed",
        )
    return checkpoint


# --------------------------------------------------------------------------- helpers


def _malformed(message: str) -> CheckpointError:
    return CheckpointError(message, reason="malformed")


def _bad_key(message: str) -> CheckpointError:
    return CheckpointError(message, reason="bad_key")


def _valid_name(name: str) -> bool:
    """signed-note "Format": key names are non-empty, without Unicode spaces or '+'."""
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() or ord(ch) < 0x20 for ch in name)
        and _encodable(name)
    )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_note_characters(text: str) -> None:
    """signed-note "Format": valid UTF-8 with no ASCII controls other than newline."""
    if not isinstance(text, str):
        raise _malformed(f"note must be text, got {type(text).__name__}")
    if not _encodable(text):
        raise _malformed("note is not valid Unicode (lone surrogate)")
    for i, ch in enumerate(text):
        if ord(ch) < 0x20 and ch != "\n":
            raise _malformed(f"note has control character U+{ord(ch):04X} at position {i}")


def _check_line(what: str, line: str) -> None:
    if not isinstance(line, str) or not line:
        raise _malformed(f"{what} must be a non-empty string")
    if "\n" in line:
        raise _malformed(f"{what} must not contain a newline")
    _check_note_characters(line)


def _b64decode(text: str, what: str, *, reason: str = "malformed", canonical: bool = True) -> bytes:
    """Strict standard base64 (RFC 4648 §4): padded, no stray characters, and (unless
    ``canonical`` is false) the one encoding of its bytes (zero padding bits)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise CheckpointError(f"{what} is not standard base64", reason=reason) from None
    if canonical and base64.b64encode(raw).decode("ascii") != text:
        raise CheckpointError(f"{what} is not canonical base64", reason=reason)
    return raw
