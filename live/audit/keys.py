"""The log's Ed25519 signing key on disk, and entry signatures.

The key is created at the first start in the data directory as ``ledger-signing.pem``
(unencrypted PKCS#8, mode 0600) and read at every later start. Creation is atomic: the PEM
is written and fsynced under a temporary name and then hard-linked into place, so two
processes starting at once end up with the same key, and a crash never leaves half a key.
Nodes that share one PostgreSQL log should share this file too (one log, one origin, one
published key); otherwise ``verify`` must be given the other nodes' verifier keys.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..config.private import create_private_file, private_temporary
from .checkpoint import CheckpointError, CheckpointSigner, VerifierKey, parse_verifier_key
from .entry import entry_signing_message

log = logging.getLogger(__name__)

KEY_FILE = "ledger-signing.pem"
"""File name of the signing key in the data directory."""

KEY_ID_SIZE = 4
SIGNATURE_SIZE = 64


class LogKey:
    """The log's private key: signs checkpoints (as ``signer``) and entries."""

    __slots__ = ("_private", "signer")

    def __init__(self, name: str, pem: bytes) -> None:
        self.signer = CheckpointSigner.from_pem(name, pem)  # validates: Ed25519, PKCS#8
        private = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(private, Ed25519PrivateKey)
        self._private = private

    def sign_entry(self, origin: str, leaf_digest: bytes) -> bytes:
        """The stored entry signature: 4-byte key ID || Ed25519 signature (see ``entry``)."""
        return self.signer.key_id + self._private.sign(entry_signing_message(origin, leaf_digest))

    def verifier_key(self) -> str:
        return self.signer.verifier_key()


def load_or_create_key(path: Path, name: str) -> LogKey:
    """The key in ``path`` under key name ``name``, creating it if the file is absent.

    Raises ``CheckpointError`` (reason ``bad_key``) if the file exists but holds no
    Ed25519 private key, and ``OSError`` if it cannot be read or written.
    """
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        pem = _create(path)
    else:
        _warn_if_readable_by_others(path)
    return LogKey(name, pem)


def replace_key_file(path: Path, pem: bytes) -> None:
    """Atomically replace the key file with ``pem`` (mode 0600; the old key is kept beside
    it as ``<name>.<random>.old`` so checkpoints it signed can still be re-checked)."""
    temporary = private_temporary(path, pem)
    try:
        if path.exists():  # keep the old key; the file name never goes missing
            os.link(path, path.with_name(f"{path.name}.{secrets.token_hex(4)}.old"))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(path.parent)


def _create(path: Path) -> bytes:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if not create_private_file(path, pem):
        # Another process created it first: use theirs, so both sign with one key.
        return path.read_bytes()
    _fsync_directory(path.parent)
    log.info("created the ledger signing key %s", path)
    return pem


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _warn_if_readable_by_others(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "the ledger signing key %s is accessible by group or others (mode %o); "
            "it should be 0600",
            path,
            stat.S_IMODE(mode),
        )


# --------------------------------------------------------------------------- trust


class TrustedKeys:
    """The verifier keys whose checkpoints and entry signatures ``verify`` accepts."""

    def __init__(self, keys: Iterable[VerifierKey | str]) -> None:
        self.keys: list[VerifierKey] = []
        self._first_seq: dict[VerifierKey, int] = {}
        for key in keys:
            self.add(key)

    def add(self, key: VerifierKey | str, *, first_seq: int = 0) -> VerifierKey:
        """Trust ``key`` for entries from ``first_seq`` on (and checkpoints covering them):
        a key named by a ``key.rotated`` entry signs only what comes after that entry."""
        parsed = key if isinstance(key, VerifierKey) else parse_verifier_key(key)
        if parsed not in self.keys:
            self.keys.append(parsed)
            self._first_seq[parsed] = first_seq
        return parsed

    def first_seq(self, key: VerifierKey) -> int:
        """The first entry ``key`` may sign (0 for keys trusted from the start)."""
        return self._first_seq.get(key, 0)

    def entry_problem(
        self, origin: str, leaf_digest: bytes, signature: bytes | None, seq: int | None = None
    ) -> str | None:
        """Why ``signature`` is not a trusted entry signature of ``leaf``, or ``None``.

        With ``seq``, a key is trusted only from the entry its rotation named on."""
        if not signature:
            return "has no entry signature"
        if len(signature) != KEY_ID_SIZE + SIGNATURE_SIZE:
            return f"has an entry signature of {len(signature)} bytes, expected 68"
        key_id, sig = signature[:KEY_ID_SIZE], signature[KEY_ID_SIZE:]
        candidates = [k for k in self.keys if k.key_id == key_id]
        if seq is not None:
            early = [k for k in candidates if self.first_seq(k) > seq]
            candidates = [k for k in candidates if k not in early]
            if early and not candidates:
                return (
                    f"is signed by key ID {key_id.hex()}, which is trusted only from entry "
                    f"{self.first_seq(early[0])} on (after its key.rotated entry)"
                )
        if not candidates:
            return f"is signed by key ID {key_id.hex()}, which is not a trusted key"
        message = entry_signing_message(origin, leaf_digest)
        if any(k.verifies(message, sig) for k in candidates):
            return None
        return "has an entry signature that does not match its contents"

    def describe(self) -> list[str]:
        return [k.encode() for k in self.keys]


__all__ = [
    "KEY_FILE",
    "CheckpointError",
    "LogKey",
    "TrustedKeys",
    "load_or_create_key",
    "replace_key_file",
]
