"""The id range index: from a filter's primary-key constraint to the rows that can match.

Two levels, both binary searches, never a scan:

1. over segments — each segment's ``[min_pk, max_pk]`` from the manifest;
2. inside a segment — the first key of every 1,024-row block (in the footer), then
   the sorted keys of just the blocks in range (decoded on demand, cached).

So ``a <= id < b`` costs O(log segments + log blocks + rows returned), whatever the
store size, and works when ids arrived out of order (segments may overlap).

>>> import numpy as np
>>> keys = np.array([2, 3, 5, 8, 13])
>>> rows_in_sorted(keys, KeyConstraint(ranges=[(3, True, 8, False)]))
array([1, 2])
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memora_lite.codecs.backend import BACKEND

Range = tuple[Any, bool, Any, bool]  # lo, lo inclusive, hi, hi inclusive; None = open end

_INT64 = np.dtype(np.int64)
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)


def search_numpy(keys: np.ndarray, key: Any, right: bool) -> int:
    """Where ``key`` sits in sorted ``keys``: ``numpy.searchsorted`` for one key, any key type (the
    compiled ``search``'s twin)."""
    return int(np.searchsorted(keys, key, side="right" if right else "left"))


if BACKEND == "numpy":  # MEMORA_LITE_BACKEND=numpy runs every kernel's twin
    _search_int = search_numpy
else:
    from memora_lite.storage._rangeindex import search as _search_int


def search(keys: np.ndarray, key: Any, right: bool = False) -> int:
    """Where ``key`` sits in sorted ``keys`` (``numpy.searchsorted`` for one key, ``right`` as
    ``side="right"``): an int key in int64 keys by the compiled binary search, which skips
    numpy's per-call overhead (``benchmarks/test_key_lookup.py``); any other by numpy.

    >>> keys = np.array([2, 3, 3, 8])
    >>> search(keys, 3), search(keys, 3, right=True), search(keys, 9), search(np.array(["a", "c"]), "b")
    (1, 3, 4, 1)
    """
    if type(key) is int and keys.dtype == _INT64 and _INT64_MIN <= key <= _INT64_MAX:
        return _search_int(keys, key, right)  # type: ignore[no-any-return]
    return search_numpy(keys, key, right)


@dataclass(frozen=True)
class KeyConstraint:
    """Which primary keys a filter can match: ranges, points, or (both None) every key."""

    ranges: Sequence[Range] | None = None
    points: Sequence[Any] | None = None

    @property
    def unconstrained(self) -> bool:
        return self.ranges is None and self.points is None

    def overlaps(self, lo: Any, hi: Any) -> bool:
        """Whether any admitted key can lie in ``[lo, hi]``."""
        if self.unconstrained:
            return True
        for a, a_inc, b, b_inc in self.ranges or ():
            if (a is None or a < hi or (a_inc and a == hi)) and (b is None or b > lo or (b_inc and b == lo)):
                return True
        points = self.points or ()
        i = bisect_right(points, hi)
        return i > 0 and points[i - 1] >= lo

    def spans(self) -> list[Range]:
        """Ranges and points together, as ranges."""
        spans = list(self.ranges or ())
        spans.extend((p, True, p, True) for p in self.points or ())
        return spans


def rows_in_sorted(keys: np.ndarray, constraint: KeyConstraint, base: int = 0) -> np.ndarray:
    """Positions (plus ``base``) in sorted ``keys`` of the keys the constraint admits.

    Only the points between ``keys[0]`` and ``keys[-1]`` are looked up (points are
    sorted): a get of 32 ids touches up to 32 blocks, and each block then costs the
    ids that can be in it, not all 32.

    >>> rows_in_sorted(np.array([2, 3, 5, 8]), KeyConstraint(points=[1, 3, 8, 9]), base=100)
    array([101, 103])
    """
    if constraint.unconstrained:
        return np.arange(base, base + len(keys), dtype=np.int64)
    spans = list(constraint.ranges or ())
    points = constraint.points or ()
    if points and len(keys):
        inside = points[bisect_left(points, keys[0]) : bisect_right(points, keys[-1])]
        spans.extend((p, True, p, True) for p in inside)
    pieces = []
    for lo, lo_inc, hi, hi_inc in spans:
        start = 0 if lo is None else search(keys, lo, right=not lo_inc)
        stop = len(keys) if hi is None else search(keys, hi, right=hi_inc)
        if stop > start:
            pieces.append(np.arange(base + start, base + stop, dtype=np.int64))
    if not pieces:
        return np.zeros(0, dtype=np.int64)
    rows = np.concatenate(pieces)
    return rows if len(pieces) == 1 else np.unique(rows)


def blocks_in_range(first_keys: Sequence[Any], lo: Any, hi: Any) -> range:
    """Blocks whose keys may lie in ``[lo, hi]`` given each block's first key (None = open end)."""
    start = 0 if lo is None else max(0, bisect_right(first_keys, lo) - 1)
    stop = len(first_keys) if hi is None else bisect_right(first_keys, hi)
    return range(start, max(start, stop))


def segment_rows(segment: Any, constraint: KeyConstraint) -> np.ndarray:
    """Sorted row positions in a :class:`~memora_lite.storage.segment.SegmentReader` admitted by the constraint."""
    if constraint.unconstrained:
        return np.arange(segment.rows, dtype=np.int64)
    blocks: set[int] = set()
    for lo, _, hi, _ in constraint.spans():
        blocks.update(blocks_in_range(segment.first_keys, lo, hi))
    pieces = [
        rows_in_sorted(segment.keys(b), constraint, base=b * segment.block_rows) for b in sorted(blocks)
    ]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)


def segment_span(segment: Any, lo: Any, lo_inclusive: bool, hi: Any, hi_inclusive: bool) -> tuple[int, int]:
    """Row positions ``[start, stop)`` of the keys in one range of a segment (None = open end).

    Rows of a segment are in key order, so one range is one run of rows: two
    binary searches over block first keys, then one inside each end block.
    """
    start = 0 if lo is None else _row_at(segment, lo, right=not lo_inclusive)
    stop = segment.rows if hi is None else _row_at(segment, hi, right=hi_inclusive)
    return start, max(start, stop)


def _row_at(segment: Any, key: Any, right: bool) -> int:
    """Where ``key`` would sit among a segment's sorted keys (:func:`search` semantics)."""
    if segment.dense and type(key) is int:  # keys min_pk .. max_pk, one per row
        return min(max(key - segment.min_pk + right, 0), segment.rows)  # type: ignore[no-any-return]
    block = bisect_right(segment.first_keys, key) - 1
    if block < 0:
        return 0
    return block * segment.block_rows + search(segment.keys(block), key, right)  # type: ignore[no-any-return]
