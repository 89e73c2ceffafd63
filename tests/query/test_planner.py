"""plan(): the key ranges and points a filter admits, and KeyPlan.contains()."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memora_lite.columns import Batch
from memora_lite.models import DataType, Field
from memora_lite.query import KeyPlan, evaluate, parse, plan
from memora_lite.query.ast import And, Compare, Literal
from memora_lite.query.ast import Field as F

FIELDS = {
    "id": Field("id", DataType.INT64, is_primary=True),
    "a": Field("a", DataType.INT64),
    "flag": Field("flag", DataType.BOOL),
}
STR_FIELDS = {"pk": Field("pk", DataType.VARCHAR, is_primary=True), "a": Field("a", DataType.INT64)}

INF = None
PLANS: list[tuple[str, list[Any] | None, list[Any] | None, bool]] = [
    # the guide's filters
    ("0 <= id < 50", [(0, True, 50, False)], None, True),
    ("50 > id >= 0", [(0, True, 50, False)], None, True),
    ("id >= 0 and id < 50", [(0, True, 50, False)], None, True),
    ("id in [5, 1, 3, 1]", [], [1, 3, 5], True),
    ("id == 3", [], [3], True),
    ("3 == id", [], [3], True),
    # single comparisons
    ("id < 7", [(INF, False, 7, False)], None, True),
    ("id <= 7", [(INF, False, 7, True)], None, True),
    ("7 < id", [(7, False, INF, False)], None, True),
    ("id >= 7", [(7, True, INF, False)], None, True),
    ("id != 7", [(INF, False, 7, False), (7, False, INF, False)], None, True),
    ("id < 2.5", [(INF, False, 2.5, False)], None, True),
    # and: intersection
    ("id < 0 and id > 5", [], None, True),
    ("id > 5 and id < 5", [], None, True),
    ("id >= 5 and id <= 5", [], [5], True),
    ("id in [1, 2, 3] and id >= 2", [], [2, 3], True),
    ("id in [1, 2] and id in [2, 3]", [], [2], True),
    ("0 <= id < 50 and a > 3", [(0, True, 50, False)], None, False),
    ("id == 3 and flag", [], [3], False),
    ("id < 10 and id < 5 and id > 1", [(1, False, 5, False)], None, True),
    # or: union
    ("id < 3 or id > 10", [(INF, False, 3, False), (10, False, INF, False)], None, True),
    ("id < 5 or id < 3", [(INF, False, 5, False)], None, True),
    ("id in [1, 20] or 0 <= id < 10", [(0, True, 10, False)], [20], True),
    ("id < 5 or id == 5", [(INF, False, 5, True)], None, True),
    ("id < 5 or id > 5", [(INF, False, 5, False), (5, False, INF, False)], None, True),
    ("id < 5 or id >= 5", None, None, True),
    ("id < 5 or a > 3", None, None, False),
    ("(id < 5 and a > 1) or id > 10", [(INF, False, 5, False), (10, False, INF, False)], None, False),
    ("0 <= id < 10 or 5 <= id < 20", [(0, True, 20, False)], None, True),
    ("0 <= id < 10 or 10 <= id < 20", [(0, True, 20, False)], None, True),
    ("0 <= id < 10 or 10 < id < 20", [(0, True, 10, False), (10, False, 20, False)], None, True),
    # not: complement when the key alone decides, else unconstrained
    ("not id < 5", [(5, True, INF, False)], None, True),
    ("not (0 <= id < 50)", [(INF, False, 0, False), (50, True, INF, False)], None, True),
    ("id not in [1, 3]", [(INF, False, 1, False), (1, False, 3, False), (3, False, INF, False)], None, True),
    (
        "not (id in [1, 3] or id > 10)",
        [(INF, False, 1, False), (1, False, 3, False), (3, False, 10, True)],
        None,
        True,
    ),
    ("not (id < 5 and a > 1)", None, None, False),
    ("not not id == 4", [], [4], True),
    # constants fold
    ("1 == 1", None, None, True),
    ("1 == 2", [], None, True),
    ("id < 5 and 1 == 2", [], None, True),
    ("id < 5 or 1 == 1", None, None, True),
    ("true and id == 2", [], [2], True),
    # other filters on the key: still correct, just unplanned
    ("a > 3", None, None, False),
    ("id % 2 == 0", None, None, False),
    ("id + 1 < 5", None, None, False),
    ("id < a", None, None, False),
    ("flag", None, None, False),
]


@pytest.mark.parametrize(("text", "ranges", "points", "exact"), PLANS, ids=[p[0] for p in PLANS])
def test_filter_plans_to_the_expected_keys(
    text: str, ranges: list[Any] | None, points: list[Any] | None, exact: bool
) -> None:
    assert plan(parse(text, FIELDS), "id") == KeyPlan(ranges, points, exact)


@pytest.mark.parametrize(("text", "ranges", "points", "exact"), PLANS, ids=[p[0] for p in PLANS])
def test_planned_keys_agree_with_evaluate(
    text: str, ranges: list[Any] | None, points: list[Any] | None, exact: bool
) -> None:
    ids = np.arange(-30, 60, dtype=np.int64)
    rng = np.random.default_rng(1)
    batch = Batch(
        {"id": ids, "a": rng.integers(0, 6, len(ids)), "flag": rng.random(len(ids)) < 0.5}, len(ids)
    )
    expr = parse(text, FIELDS)
    p = plan(expr, "id")
    matched, admitted = evaluate(expr, batch), p.contains(ids)
    assert not (matched & ~admitted).any()
    if p.exact:
        assert (matched == admitted).all()


def test_no_filter_admits_everything_exactly() -> None:
    p = plan(None, "id")
    assert p.unconstrained and p.exact and not p.empty
    assert p.contains(np.array([1, 2])).all()


def test_empty_plan_says_so() -> None:
    p = plan(parse("id < 0 and id > 5", FIELDS), "id")
    assert p.empty and p.ranges == [] and p.points is None
    assert not p.contains(np.arange(-10, 10)).any()


def test_string_keys_plan_like_numbers() -> None:
    p = plan(parse("'b' <= pk < 'd' or pk in ['x', 'a']", STR_FIELDS), "pk")
    assert p == KeyPlan([("b", True, "d", False)], ["a", "x"], True)
    keys = np.array(["a", "b", "bz", "c", "d", "e", "x"], dtype=object)
    assert p.contains(keys).tolist() == [True, True, True, True, False, False, True]
    assert plan(parse("pk like 'a%'", STR_FIELDS), "pk") == KeyPlan(None, None, False)


def test_keys_of_mixed_classes_fall_back_to_unconstrained() -> None:
    # parse() rejects id == "x" on an INT64 key, but plan() must stay safe on any tree.
    mixed = And((Compare("<", F("id"), Literal(3)), Compare("==", F("id"), Literal("x"))))
    assert plan(mixed, "id") == KeyPlan(None, None, False)


def test_nan_bounds_are_not_planned() -> None:
    expr = Compare("<", F("id"), Literal(float("nan")))
    assert plan(expr, "id") == KeyPlan(None, None, False)


def test_contains_with_many_ranges_uses_the_sorted_search_path() -> None:
    values = list(range(0, 100, 7))
    p = plan(parse(f"id not in {values} and id < 90 or id == 200", FIELDS), "id")
    assert p.ranges is not None and len(p.ranges) > 4 and p.exact
    keys = np.arange(-5, 210, dtype=np.int64)
    want = np.array([(k not in values and k < 90) or k == 200 for k in keys.tolist()])
    assert (p.contains(keys) == want).all()
    # Same answer from the few-ranges loop, forced through a plan with the same ranges.
    assert all(p.admits(int(k)) == bool(w) for k, w in zip(keys, want, strict=True))


def test_contains_on_string_keys_with_many_ranges() -> None:
    p = plan(parse("pk not in ['b', 'd', 'f', 'h', 'j', 'l']", STR_FIELDS), "pk")
    assert p.ranges is not None and len(p.ranges) == 7
    keys = np.array(list("abcdefghijklm"), dtype=object)
    assert p.contains(keys).tolist() == [k not in "bdfhjl" for k in "abcdefghijklm"]


def test_large_int_points_are_matched_exactly() -> None:
    big = 2**62 + 1
    p = plan(parse(f"id in [{big}, 1.5]", FIELDS), "id")
    assert p.contains(np.array([big, big + 1, 1], dtype=np.int64)).tolist() == [True, False, False]


def test_long_in_lists_plan_correctly() -> None:
    # 5,000 points and ranges: a quadratic merge would show in --durations, not in an assertion on time.
    values = list(range(0, 15_000, 3))
    text = f"id not in {values} and id in {values[::2]} or id > 100"
    p = plan(parse(text, FIELDS), "id")
    assert p == KeyPlan([(100, False, None, False)], None, True)


# -- property: evaluate() never selects a row the plan leaves out --------------------------------

KEY_LEAVES = st.one_of(
    st.tuples(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), st.integers(-8, 8)).map(
        lambda t: f"id {t[0]} {t[1]}"
    ),
    st.tuples(st.integers(-8, 8), st.sampled_from(["<", "<=", ">", ">="]), st.integers(-8, 8)).map(
        lambda t: f"{t[0]} {t[1]} id {t[1]} {t[2]}"
    ),
    st.lists(st.integers(-8, 8), max_size=4).map(lambda v: f"id in {v}"),
    st.lists(st.integers(-8, 8), max_size=4).map(lambda v: f"id not in {v}"),
    st.floats(-8, 8, allow_nan=False).map(lambda v: f"id < {v!r}"),
    st.integers(-3, 3).map(lambda v: f"a > {v}"),
    st.integers(2, 4).map(lambda v: f"id % {v} == 0"),
    st.sampled_from(["flag", "1 == 1", "1 == 2", "id < a"]),
)
KEY_FILTERS = st.recursive(
    KEY_LEAVES,
    lambda c: st.one_of(
        st.tuples(c, st.sampled_from(["and", "or"]), c).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        c.map(lambda x: f"not ({x})"),
    ),
    max_leaves=8,
)
PROPERTY_IDS = np.arange(-12, 13, dtype=np.int64)
PROPERTY_BATCH = Batch(
    {
        "id": PROPERTY_IDS,
        "a": np.resize(np.array([0, 3, -2, 1, 5]), len(PROPERTY_IDS)),
        "flag": np.resize(np.array([True, False, False]), len(PROPERTY_IDS)),
    },
    len(PROPERTY_IDS),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(KEY_FILTERS)
def test_evaluated_rows_always_lie_inside_the_plan(text: str) -> None:
    expr = parse(text, FIELDS)
    p = plan(expr, "id")
    matched = evaluate(expr, PROPERTY_BATCH)
    admitted = p.contains(PROPERTY_IDS)
    assert not (matched & ~admitted).any(), (text, p)
    if p.exact:
        assert (matched == admitted).all(), (text, p)
    # The plan is canonical: sorted, disjoint, merged ranges; sorted points outside them.
    if p.ranges is not None:
        for left, right in zip(p.ranges, p.ranges[1:], strict=False):
            assert left[2] is not None and right[0] is not None
            assert left[2] < right[0] or (left[2] == right[0] and not (left[3] or right[1]))
        points = p.points or []
        assert points == sorted(set(points))
        assert not any(KeyPlan(p.ranges, None).admits(x) for x in points)
    else:
        assert p.points is None
