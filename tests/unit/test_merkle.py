"""RFC 9162 §2.1 Merkle hashing and proofs: published vectors, tampering, properties."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from live.audit.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    ProofError,
    TreeRangeError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from live.errors import LiveError

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent.parent / "data" / "rfc6962_vectors.json").read_text()
)
LEAVES = [bytes.fromhex(h) for h in VECTORS["leaves"]]
LEAF_HASHES = [leaf_hash(d) for d in LEAVES]
ROOTS = [bytes.fromhex(h) for h in VECTORS["roots"]]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _hashes(hexes: Sequence[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


def _flip(proof: list[bytes], i: int, mask: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ mask]) + out[i][1:]
    return out


# --------------------------------------------------------------------------- reference
# The recursive definitions of RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1, written as literally
# as possible, to check the iterative implementation against.


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(n)
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


# --------------------------------------------------------------------------- known answers


def test_hasher_known_answers() -> None:
    h = VECTORS["hasher"]
    assert EMPTY_ROOT.hex() == h["empty_tree_root"]
    assert root_hash([]).hex() == h["empty_tree_root"]
    assert MerkleTree().root() == EMPTY_ROOT
    assert leaf_hash(b"").hex() == h["empty_leaf_hash"]
    assert leaf_hash(h["leaf"]["data_ascii"].encode()).hex() == h["leaf"]["hash"]
    node = node_hash(h["node"]["left_ascii"].encode(), h["node"]["right_ascii"].encode())
    assert node.hex() == h["node"]["hash"]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_published(size: int) -> None:
    assert root_hash(LEAF_HASHES[:size]) == ROOTS[size - 1]
    assert MerkleTree(LEAF_HASHES).root(size) == ROOTS[size - 1]
    assert MerkleTree(LEAF_HASHES[:size]).root() == ROOTS[size - 1]


def test_incremental_tree_root_after_each_append() -> None:
    tree = MerkleTree()
    for i, h in enumerate(LEAF_HASHES):
        assert tree.append(h) == i
        assert tree.root() == ROOTS[i]
        assert len(tree) == tree.size == i + 1
    assert tree.leaf_hashes() == LEAF_HASHES
    assert tree.leaf_hash(3) == LEAF_HASHES[3]


INCLUSION = [
    pytest.param(
        v["leaf_index"],
        v["tree_size"],
        _hashes(v["proof"]),
        id=f"{v['leaf_index']}@{v['tree_size']}",
    )
    for v in VECTORS["inclusion_proofs"]
]
CONSISTENCY = [
    pytest.param(
        v["old_size"], v["new_size"], _hashes(v["proof"]), id=f"{v['old_size']}->{v['new_size']}"
    )
    for v in VECTORS["consistency_proofs"]
]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proof_matches_published(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(LEAF_HASHES, index, size) == proof
    assert MerkleTree(LEAF_HASHES).inclusion_proof(index, size) == proof
    verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proof_matches_published(old: int, new: int, proof: list[bytes]) -> None:
    assert consistency_proof(LEAF_HASHES, old, new) == proof
    assert MerkleTree(LEAF_HASHES).consistency_proof(old, new) == proof
    verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


# --------------------------------------------------------------------------- tampering


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """Every way the published proof can be damaged; none may verify."""
    probes = [
        ("index - 1", index - 1, size, proof, root, leaf),
        ("index + 1", index + 1, size, proof, root, leaf),
        ("index ^ 2", index ^ 2, size, proof, root, leaf),
        ("size * 2", index, size * 2, proof, root, leaf),
        ("size // 2", index, size // 2, proof, root, leaf),
        ("wrong leaf", index, size, proof, root, leaf_hash(b"WrongLeaf")),
        ("short leaf", index, size, proof, root, b"WrongLeaf"),
        ("empty root", index, size, proof, EMPTY_ROOT, leaf),
        ("random root", index, size, proof, SOME_HASH, leaf),
        ("short root", index, size, proof, b"WrongRoot", leaf),
        ("trailing empty", index, size, [*proof, b""], root, leaf),
        ("trailing root", index, size, [*proof, root], root, leaf),
        ("preceding empty", index, size, [b"", *proof], root, leaf),
        ("preceding root", index, size, [root, *proof], root, leaf),
    ]
    for i in range(len(proof)):
        for bit in range(8):
            probes.append(
                (f"proof[{i}] bit {bit}", index, size, _flip(proof, i, 1 << bit), root, leaf)
            )
    if proof:
        probes.append(("removed last", index, size, proof[:-1], root, leaf))
        probes.append(("removed first", index, size, proof[1:], root, leaf))
    if len(proof) > 1:
        probes.append(("inserted", index, size, [proof[0], SOME_HASH, *proof[1:]], root, leaf))
        probes.append(("swapped", index, size, [proof[1], proof[0], *proof[2:]], root, leaf))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_tampered_inclusion_proofs_are_rejected(index: int, size: int, proof: list[bytes]) -> None:
    probes = _inclusion_probes(index, size, proof, ROOTS[size - 1], LEAF_HASHES[index])
    accepted = []
    for desc, i, n, p, root, leaf in probes:
        try:
            verify_inclusion(leaf, i, n, p, root)
        except ProofError as exc:
            assert exc.message  # every rejection says why
        else:
            accepted.append(desc)
    assert accepted == []


def _consistency_probes(
    old: int, new: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    probes = [
        ("old - 1", old - 1, new, root1, root2, proof),
        ("old + 1", old + 1, new, root1, root2, proof),
        ("old ^ 2", old ^ 2, new, root1, root2, proof),
        ("new * 2", old, new * 2, root1, root2, proof),
        ("new // 2", old, new // 2, root1, root2, proof),
        ("wrong old root", old, new, SOME_HASH, root2, proof),
        ("wrong new root", old, new, root1, SOME_HASH, proof),
        ("short old root", old, new, b"WrongRoot", root2, proof),
        ("swapped roots", old, new, root2, root1, proof),
        ("empty proof", old, new, root1, root2, []),
        ("trailing empty", old, new, root1, root2, [*proof, b""]),
        ("trailing root1", old, new, root1, root2, [*proof, root1]),
        ("trailing root2", old, new, root1, root2, [*proof, root2]),
        ("preceding empty", old, new, root1, root2, [b"", *proof]),
        ("preceding root1", old, new, root1, root2, [root1, *proof]),
        ("preceding root2", old, new, root1, root2, [root2, *proof]),
        ("preceding proof[0]", old, new, root1, root2, [proof[0], *proof]),
        ("truncated", old, new, root1, root2, proof[:-1]),
        ("removed first", old, new, root1, root2, proof[1:]),
    ]
    for i in range(len(proof)):
        for bit in range(8):
            probes.append(
                (f"proof[{i}] bit {bit}", old, new, root1, root2, _flip(proof, i, 1 << bit))
            )
    return probes


@pytest.mark.parametrize(("old", "new", "proof"), [p for p in CONSISTENCY if p.values[2]])
def test_tampered_consistency_proofs_are_rejected(old: int, new: int, proof: list[bytes]) -> None:
    accepted = []
    for desc, m, n, r1, r2, p in _consistency_probes(
        old, new, ROOTS[old - 1], ROOTS[new - 1], proof
    ):
        try:
            verify_consistency(m, n, r1, r2, p)
        except ProofError as exc:
            assert exc.message
        else:
            accepted.append(desc)
    assert accepted == []


def test_consistency_edge_cases() -> None:
    # Equal sizes: empty proof and equal roots, nothing else.
    verify_consistency(5, 5, ROOTS[4], ROOTS[4], [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(5, 5, ROOTS[4], ROOTS[4], [EMPTY_ROOT])
    with pytest.raises(ProofError, match="not the root"):
        verify_consistency(5, 5, ROOTS[3], ROOTS[4], [])
    # Every tree extends the empty tree, whose root is SHA-256("").
    verify_consistency(0, 8, EMPTY_ROOT, ROOTS[7], [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    with pytest.raises(ProofError):
        verify_consistency(0, 8, SOME_HASH, ROOTS[7], [])
    with pytest.raises(ProofError):
        verify_consistency(0, 0, EMPTY_ROOT, SOME_HASH, [])
    with pytest.raises(ProofError, match="must be empty"):
        verify_consistency(0, 1, EMPTY_ROOT, ROOTS[0], [EMPTY_ROOT])
    # Time travel.
    with pytest.raises(ProofError, match="between 0"):
        verify_consistency(2, 1, ROOTS[1], ROOTS[0], [])
    # The generators give empty proofs where nothing needs proving.
    assert consistency_proof(LEAF_HASHES, 0, 8) == []
    assert consistency_proof(LEAF_HASHES, 8, 8) == []


def test_tree_size_is_authenticated_by_the_root_not_by_the_proof() -> None:
    """Why the tampering probes change sizes by * 2 and // 2 only, as the reference suite does.

    Proof hashes are opaque, so when two sizes give paths of the same shape (leaf 1 in trees
    of 5 and 6 leaves: the last sibling is leaf 4 or node(4, 5)) the §2.1.3.2 computation is
    identical. The size is bound to its root by the signed checkpoint, and against the real
    root of the other size the proof fails.
    """
    proof = inclusion_proof(LEAF_HASHES, 1, 5)
    verify_inclusion(LEAF_HASHES[1], 1, 6, proof, ROOTS[4])
    with pytest.raises(ProofError):
        verify_inclusion(LEAF_HASHES[1], 1, 6, proof, ROOTS[5])


def test_inclusion_rejects_impossible_positions() -> None:
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)]:
        with pytest.raises(ProofError, match="not in a tree"):
            verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)


def test_errors_are_precise_and_in_the_hierarchy() -> None:
    proof = inclusion_proof(LEAF_HASHES, 5, 8)
    with pytest.raises(ProofError, match=r"needs 3 hashes, got 2") as info:
        verify_inclusion(LEAF_HASHES[5], 5, 8, proof[:2], ROOTS[7])
    assert isinstance(info.value, LiveError)
    assert info.value.status == 400
    assert info.value.code == "bad_proof"
    assert info.value.to_json()["error"]["code"] == "bad_proof"
    with pytest.raises(ProofError, match=f"gives root .*expected {ROOTS[6].hex()}"):
        verify_inclusion(LEAF_HASHES[5], 5, 8, proof, ROOTS[6])
    with pytest.raises(ProofError, match=r"proof\[1\] must be a 32-byte"):
        verify_inclusion(LEAF_HASHES[5], 5, 8, [proof[0], b"x", proof[2]], ROOTS[7])
    c = consistency_proof(LEAF_HASHES, 6, 8)
    with pytest.raises(ProofError, match="gives old root"):
        verify_consistency(6, 8, ROOTS[4], ROOTS[7], c)
    with pytest.raises(ProofError, match="gives new root"):
        verify_consistency(6, 8, ROOTS[5], ROOTS[6], c)


def test_out_of_range_requests() -> None:
    tree = MerkleTree(LEAF_HASHES)
    for call in (
        lambda: tree.inclusion_proof(8),
        lambda: tree.inclusion_proof(-1),
        lambda: tree.inclusion_proof(3, 3),
        lambda: tree.inclusion_proof(0, 9),
        lambda: tree.consistency_proof(5, 4),
        lambda: tree.consistency_proof(1, 9),
        lambda: tree.root(9),
        lambda: tree.leaf_hash(8),
        lambda: inclusion_proof(LEAF_HASHES, 0, 9),
        lambda: consistency_proof(LEAF_HASHES, 9, 9),
    ):
        with pytest.raises(TreeRangeError) as info:
            call()
        assert info.value.status == 400
    with pytest.raises(LiveError):
        tree.append(b"too short")


def test_large_tree() -> None:
    """100 000 leaves: roots and proofs at any size stay cheap and agree with MTH."""
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(100_000)]
    tree = MerkleTree(hashes)
    assert tree.root() == root_hash(hashes)
    old_root = tree.root(65_537)
    assert old_root == root_hash(hashes[:65_537])
    for index in (0, 1, 65_536, 77_777, 99_999):
        verify_inclusion(hashes[index], index, 100_000, tree.inclusion_proof(index), tree.root())
    verify_consistency(65_537, 100_000, old_root, tree.root(), tree.consistency_proof(65_537))


# --------------------------------------------------------------------------- properties

leaf_data = st.lists(st.binary(max_size=8), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(leaf_data)
def test_tree_matches_recursive_definition(data: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in data]
    tree = MerkleTree()
    for n, h in enumerate(hashes, start=1):
        tree.append(h)
        assert tree.root() == ref_mth(data[:n])
    for n in range(len(data) + 1):
        assert tree.root(n) == root_hash(hashes[:n]) == ref_mth(data[:n])


@settings(max_examples=40, deadline=None)
@given(leaf_data)
def test_every_inclusion_proof_verifies(data: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in data]
    tree = MerkleTree(hashes)
    for n in range(1, len(data) + 1):
        root = tree.root(n)
        for m in range(n):
            proof = tree.inclusion_proof(m, n)
            assert proof == ref_path(m, data[:n])
            verify_inclusion(hashes[m], m, n, proof, root)


@settings(max_examples=40, deadline=None)
@given(leaf_data)
def test_every_consistency_proof_verifies(data: list[bytes]) -> None:
    hashes = [leaf_hash(d) for d in data]
    tree = MerkleTree(hashes)
    roots = [tree.root(n) for n in range(len(data) + 1)]
    for new in range(len(data) + 1):
        for old in range(new + 1):
            proof = tree.consistency_proof(old, new)
            if 0 < old < new:
                assert proof == ref_subproof(old, data[:new], True)
            verify_consistency(old, new, roots[old], roots[new], proof)


@settings(max_examples=200, deadline=None)
@given(leaf_data, st.data())
def test_any_flipped_bit_breaks_a_proof(data: list[bytes], draw: st.DataObject) -> None:
    hashes = [leaf_hash(d) for d in data]
    tree = MerkleTree(hashes)
    new = draw.draw(st.integers(2, len(data) + 1)) if len(data) > 1 else None
    if new is None:
        return
    new = min(new, len(data))
    m = draw.draw(st.integers(0, new - 1))
    proof = tree.inclusion_proof(m, new)
    if proof:
        i = draw.draw(st.integers(0, len(proof) - 1))
        bit = draw.draw(st.integers(0, 255))
        bad = list(proof)
        bad[i] = (
            bad[i][: bit // 8]
            + bytes([bad[i][bit // 8] ^ (1 << (bit % 8))])
            + bad[i][bit // 8 + 1 :]
        )
        with pytest.raises(ProofError):
            verify_inclusion(hashes[m], m, new, bad, tree.root(new))
    old = draw.draw(st.integers(1, new - 1))
    cproof = tree.consistency_proof(old, new)
    i = draw.draw(st.integers(0, len(cproof) - 1))
    bit = draw.draw(st.integers(0, 255))
    bad = list(cproof)
    bad[i] = (
        bad[i][: bit // 8] + bytes([bad[i][bit // 8] ^ (1 << (bit % 8))]) + bad[i][bit // 8 + 1 :]
    )
    with pytest.raises(ProofError):
        verify_consistency(old, new, tree.root(old), tree.root(new), bad)
