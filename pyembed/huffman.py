"""The Huffman tree of word2vec's hierarchical softmax, built from the word counts exactly as
gensim builds it (``gensim.models.word2vec._build_heap`` / ``_assign_binary_codes``), so that a
word's path (its inner nodes and left/right codes) is the same as in a gensim model of the same
vocabulary.

gensim merges the two smallest counts with ``heapq``, comparing counts only: with equal counts
the heap's own order decides, so the tree is reproduced by running ``heapq`` the same way (a
tuple whose second item never orders). Inner node i (0-based, in order of creation) is row i of
the tree's output table; the root is node V - 2. A left child gets code 0, a right child code 1.
"""
from __future__ import annotations

import heapq

import numpy as np

__all__ = ["huffman_tree"]


class _Unordered:
    """Compares as neither smaller nor equal: the tie of two equal counts stays a tie, as with
    gensim's Heapitem, whose ``__lt__`` reads the count alone."""

    __slots__ = ("node",)

    def __init__(self, node):
        self.node = node

    def __lt__(self, other):
        return False


def huffman_tree(counts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points int32 (P,), codes uint8 (P,), offsets int64 (V+1,)): word w's path from the root is
    ``points[offsets[w]:offsets[w+1]]`` (inner nodes in [0, V-1)) with ``codes[...]`` (0 left,
    1 right), for the V words of ``counts`` (as gensim's ``wv.get_vecattr(w, "point"/"code")``)."""
    counts = np.asarray(counts)
    V = int(counts.size)
    # parent and code bit of every node: leaves 0..V-1, inner nodes V..2V-2 in order of creation
    parent = np.full(max(2 * V - 1, 1), -1, np.int64)
    bit = np.zeros(max(2 * V - 1, 1), np.uint8)
    heap = [(c, _Unordered(i)) for i, c in enumerate(counts.tolist())]
    heapq.heapify(heap)
    for i in range(V - 1):
        c1, n1 = heapq.heappop(heap)
        c2, n2 = heapq.heappop(heap)
        parent[n1.node] = parent[n2.node] = V + i
        bit[n2.node] = 1
        heapq.heappush(heap, (c1 + c2, _Unordered(V + i)))
    # walk every leaf up to the root at once, one level per step
    depth = np.zeros(V, np.int64)
    cur = np.arange(V)
    active = parent[:V] >= 0
    while active.any():
        idx = np.flatnonzero(active)
        depth[idx] += 1
        cur[idx] = parent[cur[idx]]
        active[idx] = parent[cur[idx]] >= 0
    offsets = np.concatenate(([0], np.cumsum(depth))).astype(np.int64)
    points = np.empty(int(offsets[-1]), np.int32)
    codes = np.empty(int(offsets[-1]), np.uint8)
    cur = np.arange(V)
    pos = offsets[1:] - 1
    active = depth > 0
    while active.any():
        idx = np.flatnonzero(active)
        node = cur[idx]
        points[pos[idx]] = parent[node] - V
        codes[pos[idx]] = bit[node]
        cur[idx] = parent[node]
        pos[idx] -= 1
        active[idx] = parent[cur[idx]] >= 0
    return points, codes, offsets
