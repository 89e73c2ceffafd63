"""evaluate(): every filter form on a generated 200-row batch, checked against plain Python.

Each case pairs a filter with a hand-written reference over row dicts; the
reference encodes the documented rules (null or missing -> false, classes
never mix, ``not`` inverts) without using any of memora_lite's query code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from memora_lite.columns import Batch, Ragged, object_array
from memora_lite.errors import FieldNotFoundError
from memora_lite.models import DataType, Field
from memora_lite.query import evaluate, parse

N = 200
WORDS = [
    "apple",
    "apricot",
    "banana",
    "a_b",
    "axb",
    "ab",
    "axyb",
    "pple",
    "snapple",
    "100%",
    "1000",
    "",
    "Ab",
    "cherry pie",
    "été",
]
NAMES = ["red", "green", "blue", "rose"]

FIELDS = {
    "id": Field("id", DataType.INT64, is_primary=True),
    "a": Field("a", DataType.INT64),
    "f": Field("f", DataType.DOUBLE),
    "b": Field("b", DataType.BOOL),
    "s": Field("s", DataType.VARCHAR, nullable=True),
    "tags": Field("tags", DataType.ARRAY, element_data_type=DataType.INT16, nullable=True),
    "names": Field("names", DataType.ARRAY, element_data_type=DataType.VARCHAR),
    "meta": Field("meta", DataType.JSON, nullable=True),
    "vec": Field("vec", DataType.FLOAT_VECTOR, dim=2),
}


def _meta(rng: np.random.Generator) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    roll = rng.random()
    if roll < 0.7:
        doc["k"] = int(rng.integers(0, 7))
    elif roll < 0.8:
        doc["k"] = "7"  # a string: never equal to or ordered against a number
    elif roll < 0.85:
        doc["k"] = True  # a bool: not the number 1
    elif roll < 0.9:
        doc["k"] = None  # JSON null: like a missing key
    if rng.random() < 0.6:
        doc["name"] = str(rng.choice(WORDS))
    roll = rng.random()
    if roll < 0.5:
        doc["nested"] = {"x": int(rng.integers(-3, 4))}
    elif roll < 0.6:
        doc["nested"] = {"y": 1}
    roll = rng.random()
    if roll < 0.6:
        doc["list"] = [int(v) for v in rng.integers(0, 4, size=int(rng.integers(0, 4)))]
    elif roll < 0.65:
        doc["list"] = "abc"
    roll = rng.random()
    if roll < 0.5:
        doc["flag"] = bool(rng.random() < 0.5)
    elif roll < 0.6:
        doc["flag"] = 1
    return doc


def _make() -> tuple[list[dict[str, Any]], Batch]:
    rng = np.random.default_rng(20240611)
    rows: list[dict[str, Any]] = []
    for i in range(N):
        rows.append(
            {
                "id": i,
                "a": int(rng.integers(-20, 21)),
                "f": float(np.round(rng.normal(), 3)),
                "b": bool(rng.random() < 0.5),
                "s": None if rng.random() < 0.15 else str(rng.choice(WORDS)),
                "tags": None
                if rng.random() < 0.1
                else [int(v) for v in rng.integers(0, 10, size=int(rng.integers(0, 5)))],
                "names": [str(v) for v in rng.choice(NAMES, size=int(rng.integers(0, 3)))],
                "meta": None if rng.random() < 0.1 else _meta(rng),
            }
        )
    nulls = {name: np.array([r[name] is None for r in rows]) for name in ("s", "tags", "meta")}
    columns = {
        "id": np.array([r["id"] for r in rows], dtype=np.int64),
        "a": np.array([r["a"] for r in rows], dtype=np.int64),
        "f": np.array([r["f"] for r in rows], dtype=np.float64),
        "b": np.array([r["b"] for r in rows], dtype=bool),
        "s": object_array((r["s"] for r in rows), N),
        "tags": Ragged.from_lists([r["tags"] or [] for r in rows], np.dtype("int16")),
        "names": Ragged.from_lists([r["names"] for r in rows], np.dtype(object)),
        "meta": object_array((r["meta"] for r in rows), N),
        "vec": np.zeros((N, 2), dtype=np.float32),  # a column no filter may read
    }
    return rows, Batch(columns, N, nulls)


ROWS, BATCH = _make()

# -- reference helpers: plain Python, written from the documented rules --------------------------

MISSING = object()


def jget(row: dict[str, Any], *path: str | int) -> Any:
    value = row["meta"]
    if value is None:
        return MISSING
    for key in path:
        if isinstance(key, str):
            if not isinstance(value, dict) or key not in value:
                return MISSING
        elif not isinstance(value, list) or key >= len(value):
            return MISSING
        value = value[key]
    return MISSING if value is None else value


def isnum(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def s_like(row: dict[str, Any], regex: str) -> bool:
    return row["s"] is not None and re.fullmatch(regex, row["s"], re.DOTALL) is not None


def tags(row: dict[str, Any]) -> list[int]:
    return row["tags"] if row["tags"] is not None else []


Ref = Callable[[dict[str, Any]], bool]

CASES: list[tuple[str, Ref]] = [
    # comparisons
    ("a == 3", lambda r: r["a"] == 3),
    ("a != 3", lambda r: r["a"] != 3),
    ("a < 0", lambda r: r["a"] < 0),
    ("a <= 0", lambda r: r["a"] <= 0),
    ("a > 5", lambda r: r["a"] > 5),
    ("a >= 5", lambda r: r["a"] >= 5),
    ("3 == a", lambda r: r["a"] == 3),
    ("f > 0.5", lambda r: r["f"] > 0.5),
    ("f >= .5", lambda r: r["f"] >= 0.5),
    ("f < -1e-1", lambda r: r["f"] < -0.1),
    ("a < f", lambda r: r["a"] < r["f"]),
    ("id > a", lambda r: r["id"] > r["a"]),
    # chained comparisons
    ("0 <= id < 50", lambda r: 0 <= r["id"] < 50),
    ("50 > id >= 0", lambda r: 0 <= r["id"] < 50),
    ("-3 < a < 3 < id", lambda r: -3 < r["a"] < 3 and r["id"] > 3),
    ("10 <= id <= 20 != a", lambda r: 10 <= r["id"] <= 20 and r["a"] != 20),
    # in / not in
    ("a in [1, 2, 3]", lambda r: r["a"] in (1, 2, 3)),
    ("a not in [1, 2, 3]", lambda r: r["a"] not in (1, 2, 3)),
    ("a in []", lambda r: False),
    ("a not in []", lambda r: True),
    ("a in [1.0, 2.5, -4]", lambda r: r["a"] in (1, -4)),
    ("s in ['apple', 'banana']", lambda r: r["s"] in ("apple", "banana")),
    ("s not in ['apple', '']", lambda r: r["s"] is not None and r["s"] not in ("apple", "")),
    # booleans and logic
    ("b", lambda r: r["b"]),
    ("not b", lambda r: not r["b"]),
    ("!b", lambda r: not r["b"]),
    ("b == true", lambda r: r["b"]),
    ("b != TRUE", lambda r: not r["b"]),
    ("a > 0 and b", lambda r: r["a"] > 0 and r["b"]),
    ("a > 0 or b", lambda r: r["a"] > 0 or r["b"]),
    ("a > 0 && !b || id < 10", lambda r: (r["a"] > 0 and not r["b"]) or r["id"] < 10),
    ("(a > 0 or b) and id % 2 == 0", lambda r: (r["a"] > 0 or r["b"]) and r["id"] % 2 == 0),
    ("not (a > 0 and b)", lambda r: not (r["a"] > 0 and r["b"])),
    ("a > 0 AND b Or NOT id < 100", lambda r: (r["a"] > 0 and r["b"]) or not r["id"] < 100),
    ("(a > 1) == b", lambda r: (r["a"] > 1) == r["b"]),
    # arithmetic
    ("a % 2 == 0", lambda r: r["a"] % 2 == 0),
    ("a % 3 == 1", lambda r: r["a"] % 3 == 1),
    ("a % -3 == -1", lambda r: r["a"] % -3 == -1),
    ("a + 1 > 3", lambda r: r["a"] + 1 > 3),
    ("a * 2 - 1 <= 5", lambda r: r["a"] * 2 - 1 <= 5),
    ("a / 4 > 1.2", lambda r: r["a"] / 4 > 1.2),
    ("-a > 3", lambda r: -r["a"] > 3),
    ("2 * a + f > 0", lambda r: 2 * r["a"] + r["f"] > 0),
    ("a - -5 > 0", lambda r: r["a"] + 5 > 0),
    ("id / a > 2", lambda r: r["a"] != 0 and r["id"] / r["a"] > 2),
    ("id % a == 0", lambda r: r["a"] != 0 and r["id"] % r["a"] == 0),
    ("a > 2 * 3 - 1", lambda r: r["a"] > 5),
    # constants
    ("1 == 1", lambda r: True),
    ("1 == 2 or a > 0", lambda r: r["a"] > 0),
    ("true", lambda r: True),
    ("FALSE", lambda r: False),
    # like
    ("s like 'ap%'", lambda r: s_like(r, r"ap.*")),
    ("s like '%an%'", lambda r: s_like(r, r".*an.*")),
    ("s like '%a'", lambda r: s_like(r, r".*a")),
    ("s like '_pple'", lambda r: s_like(r, r".pple")),
    ("s like 'a_b'", lambda r: s_like(r, r"a.b")),
    ("s like 'a\\_b'", lambda r: s_like(r, r"a_b")),
    ("s like '100\\\\%'", lambda r: s_like(r, r"100%")),
    ("s like '%'", lambda r: r["s"] is not None),
    ("s like ''", lambda r: r["s"] == ""),
    ("s LIKE 'A%'", lambda r: s_like(r, r"A.*")),
    ("s like '%r%e'", lambda r: s_like(r, r".*r.*e")),
    # strings
    ('s == "apple"', lambda r: r["s"] == "apple"),
    ("s != 'apple'", lambda r: r["s"] is not None and r["s"] != "apple"),
    ("s > 'b'", lambda r: r["s"] is not None and r["s"] > "b"),
    ("s <= 'apple'", lambda r: r["s"] is not None and r["s"] <= "apple"),
    ("'b' < s", lambda r: r["s"] is not None and r["s"] > "b"),
    ("s == 'été'", lambda r: r["s"] == "été"),
    # nulls
    ("s is null", lambda r: r["s"] is None),
    ("s IS NOT NULL", lambda r: r["s"] is not None),
    ("s is null or a == 1", lambda r: r["s"] is None or r["a"] == 1),
    ("not (s == 'apple')", lambda r: r["s"] != "apple"),
    ("tags is null", lambda r: r["tags"] is None),
    ("a is null", lambda r: False),
    ("a is not null", lambda r: True),
    # ARRAY
    ("array_length(tags) == 2", lambda r: r["tags"] is not None and len(r["tags"]) == 2),
    ("array_length(tags) > 0", lambda r: bool(tags(r))),
    ("array_contains(tags, 3)", lambda r: 3 in tags(r)),
    ("ARRAY_CONTAINS(tags, 3) or array_contains(tags, 70000)", lambda r: 3 in tags(r)),
    ("array_contains_all(tags, [1, 2])", lambda r: {1, 2} <= set(tags(r))),
    ("array_contains_any(tags, [7, 8])", lambda r: bool({7, 8} & set(tags(r)))),
    ("array_contains_all(tags, [])", lambda r: r["tags"] is not None),
    ("array_contains_any(tags, [])", lambda r: False),
    ("not array_contains(tags, 3)", lambda r: 3 not in tags(r)),
    ("tags[0] == 1", lambda r: len(tags(r)) > 0 and tags(r)[0] == 1),
    ("tags[1] > 5", lambda r: len(tags(r)) > 1 and tags(r)[1] > 5),
    ("tags == [1, 2]", lambda r: r["tags"] == [1, 2]),
    ("tags != []", lambda r: r["tags"] is not None and r["tags"] != []),
    ("array_contains(names, 'red')", lambda r: "red" in r["names"]),
    ("array_contains_any(names, ['red', 'blue'])", lambda r: bool({"red", "blue"} & set(r["names"]))),
    ("names[0] like 'r%'", lambda r: bool(r["names"]) and r["names"][0].startswith("r")),
    # JSON
    ("meta['k'] == 3", lambda r: isnum(jget(r, "k")) and jget(r, "k") == 3),
    ('meta["k"] > 2', lambda r: isnum(jget(r, "k")) and jget(r, "k") > 2),
    ("meta['k'] != 3", lambda r: isnum(jget(r, "k")) and jget(r, "k") != 3),
    ("meta['k'] == '7'", lambda r: jget(r, "k") == "7"),
    ("meta['k'] == true", lambda r: jget(r, "k") is True),
    (
        "meta['k'] in [1, 2, '7']",
        lambda r: (isnum(jget(r, "k")) and jget(r, "k") in (1, 2)) or jget(r, "k") == "7",
    ),
    ("meta['k'] + 1 > 3", lambda r: isnum(jget(r, "k")) and jget(r, "k") + 1 > 3),
    (
        "meta['name'] like 'a%'",
        lambda r: isinstance(jget(r, "name"), str) and jget(r, "name").startswith("a"),
    ),
    ("meta['nested']['x'] < 0", lambda r: isnum(jget(r, "nested", "x")) and jget(r, "nested", "x") < 0),
    ("meta['list'][0] == 1", lambda r: jget(r, "list", 0) == 1),
    ("meta['list'][2] >= 0", lambda r: isnum(jget(r, "list", 2))),
    ("meta['flag'] == true", lambda r: jget(r, "flag") is True),
    ("meta['flag']", lambda r: jget(r, "flag") is True),
    ("not meta['flag']", lambda r: jget(r, "flag") is not True),
    ("meta['missing'] == 1", lambda r: False),
    ("json_contains(meta['list'], 2)", lambda r: isinstance(jget(r, "list"), list) and 2 in jget(r, "list")),
    (
        "array_contains_all(meta['list'], [0, 1])",
        lambda r: isinstance(jget(r, "list"), list) and {0, 1} <= set(jget(r, "list")),
    ),
    (
        "array_length(meta['list']) >= 2",
        lambda r: isinstance(jget(r, "list"), list) and len(jget(r, "list")) >= 2,
    ),
    ("meta['list'] == [1, 2]", lambda r: jget(r, "list") == [1, 2]),
    (
        "meta is not null and meta['list'] != 'abc'",
        lambda r: isinstance(jget(r, "list"), str) and jget(r, "list") != "abc",
    ),
]


@pytest.mark.parametrize(("text", "reference"), CASES, ids=[c[0] for c in CASES])
def test_filter_matches_the_python_reference(text: str, reference: Ref) -> None:
    got = evaluate(parse(text, FIELDS), BATCH)
    want = np.array([bool(reference(row)) for row in ROWS])
    assert got.dtype == bool and got.shape == (N,)
    mismatched = [ROWS[i] for i in np.flatnonzero(got != want)[:3]]
    assert not mismatched, f"{text!r} disagrees on rows {mismatched}"


def test_cases_are_not_trivial() -> None:
    # A case that matches no row (or every row) can hide a broken evaluator.
    informative = 0
    for _text, reference in CASES:
        want = [reference(row) for row in ROWS]
        informative += any(want) and not all(want)
    assert informative >= len(CASES) - 12


def test_none_expression_selects_every_row() -> None:
    assert evaluate(None, BATCH).all()
    assert evaluate(parse("  ", FIELDS), BATCH).shape == (N,)


def test_result_is_a_fresh_array_not_a_view_of_a_column() -> None:
    mask = evaluate(parse("b", FIELDS), BATCH)
    mask[:] = False
    assert BATCH.columns["b"].any()


def test_empty_batch_gives_an_empty_mask() -> None:
    empty = BATCH.take(np.zeros(0, dtype=np.int64))
    for text, _ in CASES:
        assert evaluate(parse(text, FIELDS), empty).shape == (0,)


def test_taken_rows_evaluate_like_the_original_rows() -> None:
    order = np.random.default_rng(3).permutation(N)
    part = BATCH.take(order)
    for text, _ in CASES[:40]:
        expr = parse(text, FIELDS)
        assert (evaluate(expr, part) == evaluate(expr, BATCH)[order]).all(), text


def test_missing_null_mask_means_no_nulls() -> None:
    batch = Batch({"a": np.array([1, 2, 3])}, 3)
    fields = {"a": Field("a", DataType.INT64, nullable=True)}
    assert evaluate(parse("a is null", fields), batch).tolist() == [False, False, False]
    assert evaluate(parse("a is not null", fields), batch).tolist() == [True, True, True]


def test_null_numeric_rows_are_false_under_every_operator_but_not_inverts() -> None:
    fields = {"a": Field("a", DataType.INT64, nullable=True)}
    batch = Batch({"a": np.array([0, 5, 0])}, 3, {"a": np.array([True, False, False])})
    assert evaluate(parse("a == 0", fields), batch).tolist() == [False, False, True]
    assert evaluate(parse("a != 5", fields), batch).tolist() == [False, False, True]
    assert evaluate(parse("a in [0, 5]", fields), batch).tolist() == [False, True, True]
    assert evaluate(parse("a not in [7]", fields), batch).tolist() == [False, True, True]
    assert evaluate(parse("a + 1 > 0", fields), batch).tolist() == [False, True, True]
    assert evaluate(parse("not a == 5", fields), batch).tolist() == [True, False, True]


def test_float_fields_compare_at_their_own_precision() -> None:
    fields = {"x": Field("x", DataType.FLOAT)}
    batch = Batch({"x": np.array([0.1, 0.2], dtype=np.float32)}, 2)
    assert evaluate(parse("x == 0.1", fields), batch).tolist() == [True, False]
    assert evaluate(parse("x in [0.1]", fields), batch).tolist() == [True, False]


def test_narrow_int_fields_meet_wide_literals_without_overflow() -> None:
    fields = {"x": Field("x", DataType.INT8)}
    batch = Batch({"x": np.array([100, -100, 5], dtype=np.int8)}, 3)
    assert evaluate(parse("x + 1000 > 1050", fields), batch).tolist() == [True, False, False]
    assert evaluate(parse("x < 1000", fields), batch).tolist() == [True, True, True]
    assert evaluate(parse("x in [5, 1000]", fields), batch).tolist() == [False, False, True]
    assert evaluate(parse("x * 2 == 200", fields), batch).tolist() == [True, False, False]


def test_large_int64_keys_are_not_rounded_through_float() -> None:
    fields = {"id": Field("id", DataType.INT64, is_primary=True)}
    big = 2**62 + 1
    batch = Batch({"id": np.array([big, big + 1], dtype=np.int64)}, 2)
    assert evaluate(parse(f"id in [{big}, 0.5]", fields), batch).tolist() == [True, False]


def test_a_column_the_batch_lacks_is_a_clear_error() -> None:
    with pytest.raises(FieldNotFoundError, match="'a'"):
        evaluate(parse("a > 1", FIELDS), Batch({"id": np.arange(3)}, 3))


def test_pathological_like_patterns_stay_fast() -> None:
    # '%a%a%...b' against 'aaaa...' makes a translated '.*a.*a...' regex backtrack for ages.
    fields = {"s": Field("s", DataType.VARCHAR)}
    batch = Batch({"s": object_array(["a" * 3000] * 20, 20)}, 20)
    pattern = "%a" * 40 + "%b"
    assert not evaluate(parse(f"s like '{pattern}'", fields), batch).any()
