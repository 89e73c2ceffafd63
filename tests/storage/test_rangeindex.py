"""The id range index finds exactly the admitted keys, at both levels."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from memora_lite.storage.rangeindex import KeyConstraint, blocks_in_range, rows_in_sorted

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
