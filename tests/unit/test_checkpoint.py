"""C2SP signed-note checkpoints: published notes, exact format, tampering, keys."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from live.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointSigner,
    VerifierKey,
    key_id,
    parse_checkpoint,
    parse_note,
    parse_verifier_key,
    verify_note,
    verify_note_text,
)
from live.audit.merkle import MerkleTree, leaf_hash, verify_consistency
from live.errors import LiveError

# Published test notes of golang.org/x/mod/sumdb/note (note_test.go: TestSign, TestOpen,
# TestNewVerifier, TestNewSigner, TestVerifierList), https://github.com/golang/mod/blob/
# 02c991387e35f9e4c0a9b7ce137717055f8d716d/sumdb/note/note_test.go
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

# The examples at the top of https://c2sp.org/signed-note and https://c2sp.org/tlog-checkpoint
# (C2SP/C2SP signed-note.md, tlog-checkpoint.md). Their public keys are not published, so
# they can be parsed but not verified.
C2SP_NOTE = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed è subito sera.\n"
    "\n"
    "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)
C2SP_CHECKPOINT = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)

ROOT = hashlib.sha256(b"a root").digest()
ORIGIN = "live.example/ledger"


def _reason(exc: pytest.ExceptionInfo[CheckpointError]) -> str:
    return exc.value.reason


# --------------------------------------------------------------------------- published notes


def test_go_note_verifies() -> None:
    assert verify_note_text(GO_TEXT + "\n" + PETER_SIG, PETER_VKEY) == GO_TEXT


def test_go_signer_key_reproduces_the_published_note_byte_for_byte() -> None:
    # Ed25519 is deterministic (RFC 8032), so the same key and text give the same bytes.
    signer = CheckpointSigner.from_signer_key(PETER_SKEY)
    assert signer.verifier_key() == PETER_VKEY
    assert signer.signer_key() == PETER_SKEY
    assert signer.key_id.hex() == "c74f20a3"
    assert signer.sign_note(GO_TEXT) == GO_TEXT + "\n" + PETER_SIG


def test_go_note_with_two_signatures() -> None:
    note = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert verify_note_text(note, PETER_VKEY) == GO_TEXT
    assert verify_note_text(note, ENOCH_VKEY) == GO_TEXT
    signed = parse_note(note)
    assert [(s.name, s.key_id.hex()) for s in signed.signatures] == [
        ("PeterNeumann", "c74f20a3"),
        ("EnochRoot", "af0cfe78"),
    ]
    # Signed by neither of these keys: unknown.
    with pytest.raises(CheckpointError) as info:
        verify_note_text(GO_TEXT + "\n" + ENOCH_SIG, PETER_VKEY)
    assert _reason(info) == "unknown_key"


def test_go_invalid_signature() -> None:
    # TestOpen "Invalid signature": four base64 characters inserted into the signature.
    bad = GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(
        CheckpointError, match="invalid signature for key PeterNeumann\\+c74f20a3"
    ) as info:
        verify_note_text(bad, PETER_VKEY)
    assert _reason(info) == "bad_signature"


@pytest.mark.parametrize(
    "note",
    [
        GO_TEXT,
        GO_TEXT + "\n",
        GO_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + GO_TEXT + "\n" + PETER_SIG,
        "\udcff" + GO_TEXT + "\n" + PETER_SIG,  # Go's "\xff": not valid UTF-8
        GO_TEXT
        + "\n"
        + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        GO_TEXT + "\n" + PETER_SIG * 101,
    ],
)
def test_go_malformed_notes(note: str) -> None:
    with pytest.raises(CheckpointError) as info:
        verify_note_text(note, PETER_VKEY)
    assert _reason(info) == "malformed"


def test_go_verifier_key_manglings_are_rejected() -> None:
    assert parse_verifier_key(PETER_VKEY).encode() == PETER_VKEY
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(CheckpointError):
                    parse_verifier_key(PETER_VKEY[i:j])
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(CheckpointError):
            parse_verifier_key(mangled)
    # Wrong key length and unknown algorithm, each with a key ID adjusted to match.
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(CheckpointError) as info:
            parse_verifier_key(bad)
        assert _reason(info) == "bad_key"


def test_go_signer_key_manglings_are_rejected() -> None:
    for i in range(len(PETER_SKEY) + 1):
        for j in range(i + 1, len(PETER_SKEY) + 1):
            if (i, j) != (0, len(PETER_SKEY)):
                with pytest.raises(CheckpointError):
                    CheckpointSigner.from_signer_key(PETER_SKEY[i:j])
    for i in range(len(PETER_SKEY)):
        mangled = PETER_SKEY[:i] + chr(ord(PETER_SKEY[i]) + 1) + PETER_SKEY[i + 1 :]
        with pytest.raises(CheckpointError):
            CheckpointSigner.from_signer_key(mangled)


def test_c2sp_examples_parse() -> None:
    # The note text may itself hold blank lines: it ends at the *last* one.
    note = parse_note(C2SP_NOTE)
    assert (
        note.text
        == "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
    )
    assert [s.name for s in note.signatures] == ["quasimodo.example/salvatore"]
    assert len(note.signatures[0].signature) == 64

    signed = parse_note(C2SP_CHECKPOINT)
    checkpoint = parse_checkpoint(signed.text)
    assert checkpoint == Checkpoint(
        origin="example.com/behind-the-sofa",
        size=20852163,
        root=base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="),
    )
    assert checkpoint.body() == signed.text
    # Without the log's key the checkpoint is not to be believed.
    with pytest.raises(CheckpointError) as info:
        verify_note(C2SP_CHECKPOINT, PETER_VKEY)
    assert _reason(info) == "unknown_key"


# --------------------------------------------------------------------------- our checkpoints


def test_signed_checkpoint_is_exactly_the_c2sp_format() -> None:
    signer = CheckpointSigner.generate(ORIGIN)
    note = signer.sign(ORIGIN, 1234, ROOT)

    public = signer.public_key
    expected_id = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    assert signer.key_id == expected_id == key_id(ORIGIN, public)
    typed_key = base64.b64encode(bytes([1]) + public).decode()
    assert signer.verifier_key() == f"{ORIGIN}+{expected_id.hex()}+{typed_key}"
    assert re.fullmatch(r"[^+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", signer.verifier_key())

    body = f"{ORIGIN}\n1234\n{base64.b64encode(ROOT).decode()}\n"
    assert note.startswith(body + "\n\u2014 " + ORIGIN + " ")
    assert note.endswith("\n") and note.count("\n") == 5
    blob = base64.b64decode(note[len(body) + 1 :].split(" ")[2])
    assert len(blob) == 4 + 64 and blob[:4] == expected_id
    Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], body.encode())
    # Byte for byte: the note is body, blank line, one signature line.
    assert note.encode() == (
        body.encode()
        + b"\n"
        + "\u2014 ".encode()
        + ORIGIN.encode()
        + b" "
        + base64.b64encode(blob)
        + b"\n"
    )


def test_round_trip() -> None:
    signer = CheckpointSigner.generate(ORIGIN)
    for size, extensions in [(0, ()), (1, ()), (2**64 - 1, ()), (42, ("ext one", "— two"))]:
        note = signer.sign(ORIGIN, size, ROOT, extensions)
        got = verify_note(note, signer.verifier_key(), origin=ORIGIN)
        assert got == Checkpoint(ORIGIN, size, ROOT, tuple(extensions))
        assert verify_note(note, signer.verifier()) == got


def test_tampered_checkpoints_are_rejected() -> None:
    signer = CheckpointSigner.generate(ORIGIN)
    note = signer.sign(ORIGIN, 1234, ROOT)
    other_root = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    tampered = {
        "size": note.replace("\n1234\n", "\n1235\n"),
        "root": note.replace(base64.b64encode(ROOT).decode(), other_root),
        "origin": note.replace(ORIGIN + "\n", "live.example/other\n", 1),
        "extension": note.replace("\n\n", "\nextra\n\n", 1),
    }
    for what, text in tampered.items():
        assert text != note, what
        with pytest.raises(CheckpointError) as info:
            verify_note(text, signer.verifier_key())
        assert _reason(info) == "bad_signature", what


def test_flipped_signature_bits_are_rejected() -> None:
    signer = CheckpointSigner.generate(ORIGIN)
    note = signer.sign(ORIGIN, 7, ROOT)
    body, line = note.split("\n\n")
    prefix, blob_text = line[:-1].rsplit(" ", 1)
    blob = base64.b64decode(blob_text)
    for byte in range(4, len(blob), 7):
        bad_blob = blob[:byte] + bytes([blob[byte] ^ 0x01]) + blob[byte + 1 :]
        bad = f"{body}\n\n{prefix} {base64.b64encode(bad_blob).decode()}\n"
        with pytest.raises(CheckpointError) as info:
            verify_note(bad, signer.verifier_key())
        assert _reason(info) == "bad_signature"


def test_wrong_keys_are_rejected() -> None:
    signer = CheckpointSigner.generate(ORIGIN)
    note = signer.sign(ORIGIN, 7, ROOT)
    # Another key under the same name: a different key ID, so the signature is not its own.
    impostor = CheckpointSigner.generate(ORIGIN)
    with pytest.raises(CheckpointError) as info:
        verify_note(note, impostor.verifier_key())
    assert _reason(info) == "unknown_key"
    # Another log's key.
    with pytest.raises(CheckpointError) as info:
        verify_note(note, CheckpointSigner.generate("elsewhere.example").verifier_key())
    assert _reason(info) == "unknown_key"
    # A key claiming our name and ID with another public key (only constructible directly:
    # parse_verifier_key checks the ID) must fail on the signature itself.
    forged = VerifierKey(ORIGIN, signer.key_id, impostor.public_key)
    with pytest.raises(CheckpointError) as info:
        verify_note(note, forged)
    assert _reason(info) == "bad_signature"
    # The impostor signing the same checkpoint does not make it ours.
    with pytest.raises(CheckpointError) as info:
        verify_note(impostor.sign(ORIGIN, 7, ROOT), signer.verifier_key())
    assert _reason(info) == "unknown_key"


def test_other_signatures_are_ignored_but_ours_must_all_verify() -> None:
    signer = CheckpointSigner.generate(ORIGIN)
    witness = CheckpointSigner.generate("witness.example")
    note = signer.sign(ORIGIN, 7, ROOT)
    cosigned = note + witness.sign_note(parse_note(note).text).split("\n\n")[1]
    assert len(parse_note(cosigned).signatures) == 2
    assert verify_note(cosigned, signer.verifier_key()).size == 7
    assert verify_note(cosigned, witness.verifier_key()).size == 7
    # A second, broken line from our own key spoils the note.
    ours = note.split("\n\n")[1]
    broken = ours[:-10] + ("A" if ours[-10] != "A" else "B") + ours[-9:]
    with pytest.raises(CheckpointError) as info:
        verify_note(note + broken, signer.verifier_key())
    assert _reason(info) == "bad_signature"


def test_origin_check() -> None:
    signer = CheckpointSigner.generate(ORIGIN)
    note = signer.sign("another.example/log", 7, ROOT)
    assert verify_note(note, signer.verifier_key()).origin == "another.example/log"
    with pytest.raises(CheckpointError, match=r"expected 'live\.example/ledger'"):
        verify_note(note, signer.verifier_key(), origin=ORIGIN)


def test_pem_round_trip() -> None:
    signer = CheckpointSigner.generate(ORIGIN)
    pem = signer.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = CheckpointSigner.from_pem(ORIGIN, pem)
    assert again.verifier_key() == signer.verifier_key()
    note = signer.sign(ORIGIN, 3, ROOT)
    assert again.sign(ORIGIN, 3, ROOT) == note  # deterministic signatures
    assert verify_note(note, again.verifier_key()).size == 3


def test_bad_keys_are_rejected() -> None:
    with pytest.raises(CheckpointError) as info:
        CheckpointSigner.from_pem(
            ORIGIN, b"-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n"
        )
    assert _reason(info) == "bad_key"
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CheckpointError, match="not an Ed25519"):
        CheckpointSigner.from_pem(ORIGIN, ec_pem)
    for name in ("", "two words", "a+b", "tab\there", "nbsp\u00a0here"):
        with pytest.raises(CheckpointError) as info:
            CheckpointSigner.generate(name)
        assert _reason(info) == "bad_key"


# --------------------------------------------------------------------------- parsing


def _body(size: str = "5", root: str | None = None, extra: str = "") -> str:
    root = base64.b64encode(ROOT).decode() if root is None else root
    return f"{ORIGIN}\n{size}\n{root}\n{extra}"


def test_parse_checkpoint() -> None:
    assert parse_checkpoint(_body()) == Checkpoint(ORIGIN, 5, ROOT)
    assert parse_checkpoint(_body("0")) == Checkpoint(ORIGIN, 0, ROOT)
    assert parse_checkpoint(_body(extra="a\nb c\n")).extensions == ("a", "b c")
    assert parse_checkpoint(_body(str(2**64 - 1))).size == 2**64 - 1


@pytest.mark.parametrize(
    "text",
    [
        _body("05"),
        _body("+5"),
        _body(" 5"),
        _body("-1"),
        _body("5.0"),
        _body("1_000"),
        _body("\u0665"),  # ARABIC-INDIC DIGIT FIVE: int() would take it
        _body(str(2**64)),
        _body(root=base64.b64encode(ROOT[:31]).decode()),
        _body(root=base64.b64encode(ROOT).decode().rstrip("=")),
        _body(root="CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J="),  # non-canonical bits
        _body(root="!" * 44),
        _body(extra="\n"),
        _body()[:-1],
        f"{ORIGIN}\n5\n",
        f"\n5\n{base64.b64encode(ROOT).decode()}\n",
        _body().replace(ORIGIN, ORIGIN + "\r"),
        _body() + "\n— sig AAAA\n",
    ],
)
def test_malformed_checkpoints_are_rejected(text: str) -> None:
    with pytest.raises(CheckpointError) as info:
        parse_checkpoint(text)
    assert _reason(info) == "malformed"


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [
        ("", 1, ROOT),
        ("a\nb", 1, ROOT),
        (ORIGIN, -1, ROOT),
        (ORIGIN, 2**64, ROOT),
        (ORIGIN, 1, ROOT[:16]),
    ],
)
def test_unsignable_checkpoints_are_refused(origin: str, size: int, root: bytes) -> None:
    signer = CheckpointSigner.generate(ORIGIN)
    with pytest.raises(CheckpointError) as info:
        signer.sign(origin, size, root)
    assert _reason(info) == "malformed"


def test_errors_are_live_errors() -> None:
    with pytest.raises(CheckpointError) as info:
        verify_note(GO_TEXT, PETER_VKEY)
    assert isinstance(info.value, LiveError)
    assert info.value.status == 400
    assert info.value.to_json()["error"] == {
        "code": "bad_checkpoint",
        "message": info.value.message,
        "reason": "malformed",
    }


# --------------------------------------------------------------------------- with the tree


def test_two_verified_checkpoints_prove_an_append_only_log() -> None:
    """What an agent holding an old checkpoint does with a new one (ARCHITECTURE.md §5)."""
    signer = CheckpointSigner.generate(ORIGIN)
    tree = MerkleTree(leaf_hash(f"entry {i}".encode()) for i in range(13))
    old_note = signer.sign(ORIGIN, 13, tree.root())
    tree.extend(leaf_hash(f"entry {i}".encode()) for i in range(13, 40))
    new_note = signer.sign(ORIGIN, 40, tree.root())

    old = verify_note(old_note, signer.verifier_key(), origin=ORIGIN)
    new = verify_note(new_note, signer.verifier_key(), origin=ORIGIN)
    verify_consistency(
        old.size, new.size, old.root, new.root, tree.consistency_proof(old.size, new.size)
    )
