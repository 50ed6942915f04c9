"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing over the journal.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); a tree of
``n`` leaves splits at the largest power of two smaller than ``n`` (RFC 9162 2.1.1).
``MerkleAccumulator`` keeps only the roots of the perfect subtrees ("compact
range"), so the sealer appends leaves and computes roots in O(log n) memory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """Merkle tree hash of leaf hashes, by the RFC's recursive definition."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = _split(n)
    return node_hash(tree_root(leaves[:k]), tree_root(leaves[k:]))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path of leaf ``index`` in the tree of ``leaves`` (RFC 9162 2.1.3.1)."""
    n = len(leaves)
    if not 0 <= index < n:
        raise IndexError(f"leaf {index} is outside a tree of {n} leaves")
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return [*inclusion_proof(leaves[:k], index), tree_root(leaves[k:])]
    return [*inclusion_proof(leaves[k:], index - k), tree_root(leaves[:k])]


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes],
                     root: bytes) -> bool:
    """RFC 9162 2.1.3.2 verification of an inclusion proof."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


class MerkleAccumulator:
    """Append-only tree state: the roots of its perfect subtrees, largest first."""

    def __init__(self, size: int = 0, frontier: Sequence[bytes] = ()) -> None:
        if len(frontier) != bin(size).count("1"):
            raise ValueError(f"a tree of {size} leaves has {bin(size).count('1')} "
                             f"perfect subtrees, not {len(frontier)}")
        self.size = size
        self.frontier = list(frontier)

    def append(self, leaf: bytes) -> None:
        node, n = leaf, self.size
        while n & 1:  # merge equal-size subtrees, like a binary counter carry
            node = node_hash(self.frontier.pop(), node)
            n >>= 1
        self.frontier.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.frontier:
            return hashlib.sha256(b"").digest()
        node = self.frontier[-1]
        for left in reversed(self.frontier[:-1]):
            node = node_hash(left, node)
        return node

    def state(self) -> dict:
        return {"size": self.size, "frontier": [h.hex() for h in self.frontier]}

    @classmethod
    def from_state(cls, state: dict) -> MerkleAccumulator:
        return cls(int(state["size"]), [bytes.fromhex(h) for h in state["frontier"]])
