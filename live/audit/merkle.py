"""Merkle tree hashing, inclusion and consistency proofs (RFC 9162 §2.1, same as RFC 6962 §2.1).

Every function here is pure and synchronous; hashes are raw 32-byte SHA-256 digests.

* ``leaf_hash(d)`` is ``SHA-256(0x00 || d)`` and ``node_hash(l, r)`` is
  ``SHA-256(0x01 || l || r)`` (§2.1.1): the distinct prefixes keep a leaf from ever being
  passed off as an interior node (second-preimage resistance).
* ``root_hash`` is MTH (§2.1.1); the root of the empty tree is ``SHA-256("")``.
* ``inclusion_proof`` / ``verify_inclusion`` are PATH (§2.1.3.1) and its verification
  algorithm (§2.1.3.2).
* ``consistency_proof`` / ``verify_consistency`` are PROOF/SUBPROOF (§2.1.4.1) and its
  verification algorithm (§2.1.4.2).

The functions taking a ``Sequence`` of leaf hashes are the reference forms: each costs O(n)
hashes. ``MerkleTree`` is the incremental form the ledger keeps in memory; it caches every
complete (perfect) subtree, so after the appends have been paid for (amortised O(1) hashes
per append) a root at any size, an inclusion proof or a consistency proof costs O(log n)
hashes. The cache holds about 2n digests (~15 MB of CPython objects for 100 000 leaves,
which take ~0.35 s to load; a root or proof then takes microseconds).

Verification failures raise ``ProofError`` (HTTP 400, code ``bad_proof``) whose message says
exactly what did not match; asking for a proof the tree cannot give (an index or size past
its end) raises ``TreeRangeError`` (HTTP 400, code ``out_of_range``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from ..errors import BadRequest

HASH_SIZE = 32
"""Length in bytes of every hash in this module (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() — the root hash of the empty tree (RFC 9162 §2.1.1)."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(BadRequest):
    """An inclusion or consistency proof does not verify, or its inputs are malformed."""

    code = "bad_proof"


class TreeRangeError(BadRequest):
    """A proof or root was asked for at an index or size the tree does not have."""

    code = "out_of_range"


# --------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 §2.1.1 leaf hash ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 §2.1.1 interior node hash ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k in RFC 9162 §2.1.1: the largest power of two strictly smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _fold(perfect_roots: list[bytes]) -> bytes:
    """Combine the roots of consecutive, decreasing perfect subtrees right to left.

    MTH of any range decomposes into the perfect subtrees given by the binary expansion of
    its size, largest (leftmost) first; hashing them together from the right reproduces the
    recursive definition of §2.1.1 exactly.
    """
    acc = perfect_roots[-1]
    for left in reversed(perfect_roots[:-1]):
        acc = node_hash(left, acc)
    return acc


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]) over the given leaf hashes (RFC 9162 §2.1.1).

    ``leaf_hashes`` are already-hashed leaves (see ``leaf_hash``). The empty sequence gives
    ``EMPTY_ROOT``. Costs n - 1 node hashes and O(log n) memory.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    # A stack of perfect-subtree roots with strictly decreasing sizes (a "compact range").
    stack: list[tuple[int, bytes]] = []
    for h in leaf_hashes:
        size, node = 1, h
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, node = left_size + size, node_hash(left, node)
        stack.append((size, node))
    return _fold([node for _, node in stack])


# --------------------------------------------------------------------------- incremental tree


class MerkleTree:
    """An append-only RFC 9162 Merkle tree over leaf hashes, with every perfect subtree cached.

    ``_levels[h][i]`` is the root of the perfect subtree over leaves ``[i*2^h, (i+1)*2^h)``;
    it exists as soon as all its leaves do. Complexity, for a tree of n leaves:

    * ``append``: amortised O(1) node hashes (at most log2 n in the worst case);
    * ``root(size)``: O(log n) node hashes, for any ``size <= n``;
    * ``inclusion_proof`` and ``consistency_proof``: O(log n) node hashes, because every
      sibling on a path is either a cached perfect subtree or (at most twice per proof) a
      right-edge range folded from O(log n) cached subtrees;
    * memory: about 2n digests (the leaf hashes and n - 1 cached interior nodes).
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append(h)

    def __len__(self) -> int:
        return len(self._levels[0])

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return len(self._levels[0])

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash (``leaf_hash(data)``, 32 bytes) and return its 0-based index.

        Raises ``BadRequest`` for anything that is not 32 bytes, leaving the tree unchanged.
        """
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
            raise BadRequest(f"a leaf hash must be {HASH_SIZE} bytes, got {leaf_hash!r:.80}")
        levels = self._levels
        index = len(levels[0])
        levels[0].append(leaf_hash)
        # Each time the new node is a right child, its perfect parent is now complete.
        i, level, node = index, 0, leaf_hash
        while i & 1:
            node = node_hash(levels[level][i - 1], node)
            level += 1
            i >>= 1
            if level == len(levels):
                levels.append([])
            levels[level].append(node)
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append every leaf hash in order."""
        for h in leaf_hashes:
            self.append(h)

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index`` (0-based)."""
        self._check_index(index, self.size)
        return self._levels[0][index]

    def leaf_hashes(self) -> list[bytes]:
        """A copy of all leaf hashes, oldest first."""
        return list(self._levels[0])

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all of them), in O(log n) hashes."""
        size = self._check_size(size)
        if size == 0:
            return EMPTY_ROOT
        return self._range_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) (RFC 9162 §2.1.3.1), ordered from the leaf up to the root.

        ``size`` defaults to the current size; ``0 <= index < size <= self.size``.
        """
        size = self._check_size(size)
        self._check_index(index, size)
        # Walk from the root down to the leaf, collecting each sibling subtree; PATH lists
        # them bottom-up, so the walk's order is reversed at the end.
        path: list[bytes] = []
        start, end, m = 0, size, index
        while end - start > 1:
            k = _largest_power_of_two_below(end - start)
            if m < k:
                path.append(self._range_hash(start + k, end))
                end = start + k
            else:
                path.append(self._range_hash(start, start + k))
                start, m = start + k, m - k
        path.reverse()
        return path

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1).

        ``new_size`` defaults to the current size; ``0 <= old_size <= new_size <= self.size``.
        The proof is empty when ``old_size`` is 0 or equal to ``new_size`` (nothing to prove).
        """
        new_size = self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise TreeRangeError(
                f"old size {old_size} must be between 0 and the new size {new_size}",
                old_size=old_size,
                new_size=new_size,
            )
        if old_size == 0 or old_size == new_size:
            return []
        # SUBPROOF(m, D[start:end], b), unrolled from the root downwards (see §2.1.4.1).
        proof: list[bytes] = []
        start, end, m, complete = 0, new_size, old_size, True
        while m != end - start:
            k = _largest_power_of_two_below(end - start)
            if m <= k:
                proof.append(self._range_hash(start + k, end))
                end = start + k
            else:
                proof.append(self._range_hash(start, start + k))
                start, m, complete = start + k, m - k, False
        if not complete:
            # m == n and b is false: the old tree's subtree root itself is part of the proof.
            proof.append(self._range_hash(start, end))
        proof.reverse()
        return proof

    # -- internals

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range that is a node of the RFC 9162 tree.

        Such ranges start at a multiple of the largest power of two not above their size,
        so they split into cached perfect subtrees along the binary expansion of the size.
        """
        pieces: list[bytes] = []
        remaining = end - start
        while remaining:
            height = remaining.bit_length() - 1
            pieces.append(self._levels[height][start >> height])
            start += 1 << height
            remaining -= 1 << height
        return _fold(pieces)

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise TreeRangeError(
                f"tree size {size} is outside 0..{self.size}", size=size, tree_size=self.size
            )
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            raise TreeRangeError(
                f"leaf index {index} is not in a tree of size {size}",
                index=index,
                tree_size=size,
            )


# --------------------------------------------------------------------------- proofs over sequences


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, tree_size: int) -> list[bytes]:
    """PATH(index, D[tree_size]) over the first ``tree_size`` of ``leaf_hashes`` (§2.1.3.1).

    Requires ``0 <= index < tree_size <= len(leaf_hashes)``, else ``TreeRangeError``.
    Costs O(tree_size) hashes; use ``MerkleTree`` for repeated proofs.
    """
    _check_prefix(leaf_hashes, tree_size)
    return MerkleTree(leaf_hashes[:tree_size]).inclusion_proof(index)


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[new_size]) over the first ``new_size`` of ``leaf_hashes`` (§2.1.4.1).

    Requires ``0 <= old_size <= new_size <= len(leaf_hashes)``, else ``TreeRangeError``;
    the proof is empty when ``old_size`` is 0 or ``new_size``. Costs O(new_size) hashes.
    """
    _check_prefix(leaf_hashes, new_size)
    return MerkleTree(leaf_hashes[:new_size]).consistency_proof(old_size)


def _check_prefix(leaf_hashes: Sequence[bytes], size: int) -> None:
    if not 0 <= size <= len(leaf_hashes):
        raise TreeRangeError(
            f"tree size {size} is outside 0..{len(leaf_hashes)}",
            size=size,
            tree_size=len(leaf_hashes),
        )


# --------------------------------------------------------------------------- verification


def _check_hash(what: str, value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        got = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise ProofError(f"{what} must be a {HASH_SIZE}-byte SHA-256 hash, got {got}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)


def _inclusion_path_length(index: int, last: int) -> int:
    """Number of hashes in an inclusion path for leaf ``index`` when the last leaf is ``last``.

    The path has one hash per level where the leaf's and the last leaf's paths from the root
    have diverged (``inner``), plus one per left sibling above that (``border``).
    """
    inner = (index ^ last).bit_length()
    border = (index >> inner).bit_count()
    return inner + border


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``tree_size`` with ``root``.

    Follows RFC 9162 §2.1.3.2 step by step. Returns ``None`` when the proof verifies and
    raises ``ProofError`` otherwise: index outside the tree, a hash that is not 32 bytes,
    a proof with the wrong number of hashes, or a computed root that differs from ``root``.
    """
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root hash", root)
    _check_proof_hashes(proof)
    # §2.1.3.2 step 1.
    if tree_size < 1 or not 0 <= index < tree_size:
        raise ProofError(
            f"leaf index {index} is not in a tree of size {tree_size}",
            index=index,
            tree_size=tree_size,
        )
    want = _inclusion_path_length(index, tree_size - 1)
    if len(proof) != want:
        raise ProofError(
            f"inclusion proof for leaf {index} in a tree of size {tree_size} needs "
            f"{want} hashes, got {len(proof)}",
            index=index,
            tree_size=tree_size,
        )
    # Steps 2-4.
    fn, sn, r = index, tree_size - 1, leaf_hash
    for p in proof:
        if sn == 0:  # Step 4a; unreachable after the length check, kept as the RFC says.
            raise ProofError("inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # Step 5.
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path to the root")
    if r != root:
        raise ProofError(
            f"inclusion proof for leaf {index} in a tree of size {tree_size} gives root "
            f"{r.hex()}, expected {root.hex()}",
            index=index,
            tree_size=tree_size,
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (``new_size``, ``new_root``) extends (``old_size``, ``old_root``).

    Follows RFC 9162 §2.1.4.2 for ``0 < old_size < new_size``. The edge cases the RFC leaves
    to the caller are decided strictly: equal sizes need an empty proof and equal roots;
    ``old_size == 0`` needs an empty proof and ``old_root == EMPTY_ROOT`` (every tree extends
    the empty one). Raises ``ProofError`` on any mismatch, naming which root or which part
    of the proof failed.
    """
    _check_hash("old root hash", old_root)
    _check_hash("new root hash", new_root)
    _check_proof_hashes(proof)
    if not 0 <= old_size <= new_size:
        raise ProofError(
            f"old tree size {old_size} must be between 0 and the new tree size {new_size}",
            old_size=old_size,
            new_size=new_size,
        )
    if old_size == new_size or old_size == 0:
        if proof:
            raise ProofError(
                f"consistency proof from size {old_size} to {new_size} must be empty, "
                f"got {len(proof)} hashes"
            )
        expected_old = EMPTY_ROOT if old_size == 0 else new_root
        if old_root != expected_old:
            raise ProofError(
                f"old root {old_root.hex()} is not the root of the tree of size {old_size} "
                f"(expected {expected_old.hex()})"
            )
        if new_size == 0 and new_root != EMPTY_ROOT:
            raise ProofError(
                f"new root {new_root.hex()} is not the root of the empty tree "
                f"(expected {EMPTY_ROOT.hex()})"
            )
        return
    # Now 0 < old_size < new_size. The proof is the old tree's rightmost perfect subtree
    # (omitted when the old tree is itself perfect) followed by an inclusion path for it.
    shift = (old_size & -old_size).bit_length() - 1
    old_is_perfect = old_size == 1 << shift
    want = (0 if old_is_perfect else 1) + _inclusion_path_length(
        (old_size - 1) >> shift, (new_size - 1) >> shift
    )
    if len(proof) != want:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} needs {want} hashes, "
            f"got {len(proof)}",
            old_size=old_size,
            new_size=new_size,
        )
    # §2.1.4.2 step 1 (an empty path) cannot happen here: want >= 1 when old < new.
    # Step 2.
    path = list(proof)
    if old_is_perfect:
        path.insert(0, old_root)
    # Steps 3-4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:  # Step 6a; unreachable after the length check, kept as the RFC says.
            raise ProofError("consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path to the root")
    if fr != old_root:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} gives old root "
            f"{fr.hex()}, expected {old_root.hex()}",
            old_size=old_size,
            new_size=new_size,
        )
    if sr != new_root:
        raise ProofError(
            f"consistency proof from size {old_size} to {new_size} gives new root "
            f"{sr.hex()}, expected {new_root.hex()}",
            old_size=old_size,
            new_size=new_size,
        )
