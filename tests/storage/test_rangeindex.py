"""The id range index finds exactly the admitted keys, at both levels."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memora_lite import BACKEND
from memora_lite.storage import rangeindex
from memora_lite.storage.rangeindex import KeyConstraint, blocks_in_range, rows_in_sorted, search

NUMPY_REQUESTED = os.environ.get("MEMORA_LITE_BACKEND", "").strip().lower() == "numpy"
I64_MIN, I64_MAX = -(2**63), 2**63 - 1

keys_st = st.lists(st.integers(-50, 50), max_size=60, unique=True).map(sorted)
span_st = st.tuples(st.one_of(st.none(), st.integers(-60, 60)), st.booleans(),
                    st.one_of(st.none(), st.integers(-60, 60)), st.booleans())


@settings(max_examples=300, deadline=None)
@given(keys=keys_st, spans=st.lists(span_st, max_size=3), points=st.one_of(st.none(), st.lists(st.integers(-60, 60))))
def test_rows_in_sorted_matches_a_plain_scan(keys: list[int], spans: list, points: list[int] | None) -> None:
    constraint = KeyConstraint(ranges=spans, points=sorted(set(points)) if points is not None else None)

    def admitted(k: int) -> bool:
        if constraint.unconstrained:
            return True
        for lo, lo_inc, hi, hi_inc in spans:
            if (lo is None or k > lo or (lo_inc and k == lo)) and (hi is None or k < hi or (hi_inc and k == hi)):
                return True
        return k in (points or [])

    got = rows_in_sorted(np.array(keys, dtype=np.int64), constraint).tolist()
    assert got == [i for i, k in enumerate(keys) if admitted(k)]


@settings(max_examples=300, deadline=None)
@given(keys=st.lists(st.integers(-1000, 1000), min_size=1, max_size=200, unique=True).map(sorted),
       block=st.integers(1, 16), lo=st.integers(-1100, 1100), width=st.integers(0, 300))
def test_blocks_in_range_never_misses_a_block_holding_a_key_in_range(keys, block, lo, width) -> None:
    hi = lo + width
    first_keys = keys[::block]
    chosen = set(blocks_in_range(first_keys, lo, hi))
    for i, k in enumerate(keys):
        if lo <= k <= hi:
            assert i // block in chosen


def test_overlaps_uses_ranges_and_points() -> None:
    assert KeyConstraint(ranges=[(0, True, 50, False)]).overlaps(49, 100)
    assert not KeyConstraint(ranges=[(0, True, 50, False)]).overlaps(50, 100)
    assert KeyConstraint(points=[3, 70]).overlaps(60, 80)
    assert not KeyConstraint(points=[3, 70]).overlaps(4, 69)
    assert KeyConstraint().overlaps(1, 2)


int64s = st.one_of(st.integers(-40, 40), st.sampled_from([I64_MIN, I64_MIN + 1, I64_MAX - 1, I64_MAX]))


@settings(max_examples=500, deadline=None)
@given(keys=st.lists(int64s, max_size=40).map(sorted), key=int64s, right=st.booleans(), step=st.sampled_from([1, 2, 3]))
def test_compiled_search_is_numpy_searchsorted(keys: list[int], key: int, right: bool, step: int) -> None:
    """Duplicates, int64's ends, empty arrays and strided views: one answer, numpy's."""
    if NUMPY_REQUESTED:
        pytest.skip("MEMORA_LITE_BACKEND=numpy: no compiled kernels")
    from memora_lite.storage._rangeindex import search as compiled

    array = np.array(keys, dtype=np.int64)[::step]
    want = int(np.searchsorted(array, key, side="right" if right else "left"))
    assert compiled(array, key, right) == want
    assert search(array, key, right) == want


def test_search_takes_any_key_numpy_can_order() -> None:
    assert search(np.array(["a", "c", "e"]), "d") == 2
    assert search(np.array([1.5, 2.5]), 2.0, right=True) == 1
    assert search(np.array([1, 5], dtype=np.int32), 3) == 1
    assert search(np.array([1, 5], dtype=np.int64), 2**70) == 2  # beyond int64: numpy's answer, not an overflow


def test_the_compiled_search_is_the_one_in_use() -> None:
    if NUMPY_REQUESTED:
        assert BACKEND == "numpy" and rangeindex._search_int is rangeindex.search_numpy
    else:
        from memora_lite.storage import _rangeindex

        assert rangeindex._search_int is _rangeindex.search


def test_compiled_search_refuses_arrays_it_cannot_read() -> None:
    if NUMPY_REQUESTED:
        pytest.skip("MEMORA_LITE_BACKEND=numpy: no compiled kernels")
    from memora_lite.storage._rangeindex import search as compiled

    with pytest.raises(TypeError, match="1-D int64"):
        compiled(np.array([1, 2], dtype=np.int32), 1, False)
    with pytest.raises(TypeError, match="1-D int64"):
        compiled(np.zeros((2, 2), dtype=np.int64), 1, False)
    with pytest.raises(OverflowError):
        compiled(np.array([1, 2], dtype=np.int64), 2**64, False)
