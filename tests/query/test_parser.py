"""parse(): tree shapes, precedence, literals, the type check, error positions, limits, fuzzing."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import traceback
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memora_lite.columns import Batch, Ragged, object_array
from memora_lite.errors import FilterError, MemoraError
from memora_lite.models import DataType, Field
from memora_lite.query import evaluate, parse
from memora_lite.query.ast import (
    And,
    Arith,
    Call,
    Compare,
    Expr,
    In,
    IsNull,
    JsonPath,
    Like,
    Literal,
    Neg,
    Not,
    Or,
    referenced_fields,
)
from memora_lite.query.ast import Field as F

FIELDS = {
    "id": Field("id", DataType.INT64, is_primary=True),
    "age": Field("age", DataType.INT64),
    "score": Field("score", DataType.DOUBLE),
    "flag": Field("flag", DataType.BOOL),
    "title": Field("title", DataType.VARCHAR, nullable=True),
    "tags": Field("tags", DataType.ARRAY, element_data_type=DataType.INT16),
    "words": Field("words", DataType.ARRAY, element_data_type=DataType.VARCHAR),
    "bits": Field("bits", DataType.ARRAY, element_data_type=DataType.BOOL),
    "meta": Field("meta", DataType.JSON),
    "vec": Field("vec", DataType.FLOAT_VECTOR, dim=2),
    "start_token": Field("start_token", DataType.INT64),
}


def _batch() -> Batch:
    n = 6
    meta = object_array([{"k": 1, "l": [1, 2]}, {"k": "x"}, {}, {"k": 2.5}, [1], {"k": True}], n)
    return Batch(
        {
            "id": np.arange(n, dtype=np.int64),
            "age": np.array([0, 5, -3, 7, 2, 0], dtype=np.int64),
            "score": np.array([0.5, -1.0, 2.0, 0.0, 3.5, 1.0]),
            "flag": np.array([True, False, True, False, True, False]),
            "title": object_array(["ab", None, "abc", "", "b%", "x"], n),
            "tags": Ragged.from_lists([[1, 2], [], [3], [0, 0, 1], [5], [2]], np.dtype("int16")),
            "words": Ragged.from_lists([["a"], [], ["b", "a"], ["c"], [], ["a"]], np.dtype(object)),
            "bits": Ragged.from_lists([[True], [], [False], [True, False], [], [False]], np.dtype(bool)),
            "meta": meta,
            "vec": np.zeros((n, 2), dtype=np.float32),
            "start_token": np.arange(n, dtype=np.int64),
        },
        n,
        {"title": np.array([False, True, False, False, False, False])},
    )


BATCH = _batch()


def tree(text: str) -> Expr:
    expr = parse(text, FIELDS)
    assert expr is not None
    return expr


def C(op: str, left: Expr, right: Expr) -> Compare:
    return Compare(op, left, right)


def L(value: Any) -> Literal:
    return Literal(value)


AGE, ID, FLAG, TITLE = F("age"), F("id"), F("flag"), F("title")

# -- shapes ---------------------------------------------------------------------------------------

SHAPES: list[tuple[str, Expr]] = [
    ("age == 3", C("==", AGE, L(3))),
    ("0 <= id < 50", And((C("<=", L(0), ID), C("<", ID, L(50))))),
    ("50 > id >= 0", And((C(">", L(50), ID), C(">=", ID, L(0))))),
    ("1 < age < 5 <= id", And((C("<", L(1), AGE), C("<", AGE, L(5)), C("<=", L(5), ID)))),
    ("age in [1, 2]", In(AGE, (1, 2), False)),
    ("age NOT IN [1]", In(AGE, (1,), True)),
    ("title like 'a%'", Like(TITLE, "a%")),
    ("title is null", IsNull(TITLE, False)),
    ("title Is Not Null", IsNull(TITLE, True)),
    ("flag", FLAG),
    ("not flag", Not(FLAG)),
    ("!flag", Not(FLAG)),
    ("flag and age > 1 or id == 2", Or((And((FLAG, C(">", AGE, L(1)))), C("==", ID, L(2))))),
    ("flag && (age > 1 || id == 2)", And((FLAG, Or((C(">", AGE, L(1)), C("==", ID, L(2))))))),
    ("flag or flag or flag", Or((FLAG, FLAG, FLAG))),
    ("(flag or flag) or flag", Or((FLAG, FLAG, FLAG))),
    ("not age == 1 and flag", And((Not(C("==", AGE, L(1))), FLAG))),
    ("-age * 2 + 3 > 0", C(">", Arith("+", Arith("*", Neg(AGE), L(2)), L(3)), L(0))),
    ("age + 2 * 3 > 0", C(">", Arith("+", AGE, L(6)), L(0))),
    ("age - (1 - 4) > 0", C(">", Arith("-", AGE, L(-3)), L(0))),
    ("age % 2 == 0", C("==", Arith("%", AGE, L(2)), L(0))),
    ("age > 7 / 2", C(">", AGE, L(3.5))),
    ("age > -7 % 3", C(">", AGE, L(2))),
    ("1 == 1", L(True)),
    ("1 == 2 or flag", Or((L(False), FLAG))),
    ("'a' < 'b'", L(True)),
    ("2 in [1, 2]", L(True)),
    ("'abc' like 'a%'", L(True)),
    ("not true", L(False)),
    ("meta['a']['b'] == 1", C("==", JsonPath("meta", ("a", "b")), L(1))),
    ('meta["list"][0] > 2', C(">", JsonPath("meta", ("list", 0)), L(2))),
    ("tags[0] == 1", C("==", JsonPath("tags", (0,)), L(1))),
    ("array_length(tags) == 2", C("==", Call("array_length", (F("tags"),)), L(2))),
    ("ARRAY_CONTAINS(tags, 3)", Call("array_contains", (F("tags"), L(3)))),
    ("Array_Contains_All(tags, [1, 2])", Call("array_contains_all", (F("tags"), L((1, 2))))),
    ("json_contains_any(meta['l'], [1])", Call("array_contains_any", (JsonPath("meta", ("l",)), L((1,))))),
    ("tags == [1, 2]", C("==", F("tags"), L((1, 2)))),
    ("(age > 1) == flag", C("==", C(">", AGE, L(1)), FLAG)),
    ("age < score", C("<", AGE, F("score"))),
]


@pytest.mark.parametrize(("text", "expected"), SHAPES, ids=[s[0] for s in SHAPES])
def test_filter_parses_to_the_expected_tree(text: str, expected: Expr) -> None:
    assert tree(text) == expected


@pytest.mark.parametrize("text", [s[0] for s in SHAPES])
def test_canonical_text_parses_back_to_the_same_tree(text: str) -> None:
    expr = tree(text)
    assert tree(str(expr)) == expr


def test_canonical_text_spells_keywords_in_lower_case_and_strings_with_double_quotes() -> None:
    assert str(tree("title LIKE 'a%' AND NOT flag OR age IN [1]")) == (
        'title like "a%" and not flag or age in [1]'
    )
    assert str(tree("(age > 1 or flag) and id < 3")) == "(age > 1 or flag) and id < 3"
    assert str(tree("age - (id - 1) > 0")) == "age - (id - 1) > 0"


def test_nodes_record_the_position_of_their_token() -> None:
    expr = tree("flag and  age >= 10")
    assert isinstance(expr, And)
    compare = expr.items[1]
    assert isinstance(compare, Compare)
    assert (expr.items[0].pos, compare.pos, compare.left.pos, compare.right.pos) == (0, 14, 10, 17)


# -- literals -------------------------------------------------------------------------------------

LITERALS: list[tuple[str, Any]] = [
    ("7", 7),
    ("007", 7),
    ("1e3", 1000.0),
    ("1E-2", 0.01),
    (".5", 0.5),
    ("2.", 2.0),
    ("1.5e+2", 150.0),
    ("-9223372036854775808", -(2**63)),
    ("9223372036854775807", 2**63 - 1),
    ("'single'", "single"),
    ('"double"', "double"),
    ("'it\\'s'", "it's"),
    ('"say \\"hi\\""', 'say "hi"'),
    ("'tab\\there'", "tab\there"),
    ("'\\n\\r\\0'", "\n\r\0"),
    ("'\\u00e9\\x41'", "éA"),
    ("'back\\\\slash'", "back\\slash"),
    ("'keep\\%'", "keep\\%"),
    ("'émoji 🙂'", "émoji 🙂"),
    ("''", ""),
]


@pytest.mark.parametrize(("text", "value"), LITERALS, ids=[lit[0] for lit in LITERALS])
def test_literal_is_read_exactly(text: str, value: Any) -> None:
    field = "title" if isinstance(value, str) else "score"
    expr = tree(f"{field} == {text}")
    assert isinstance(expr, Compare) and isinstance(expr.right, Literal)
    assert expr.right.value == value and type(expr.right.value) is type(value)
    assert tree(str(expr)) == expr


@pytest.mark.parametrize("text", ["flag == true", "flag == TRUE", "flag == True", "flag == tRuE"])
def test_bool_literals_and_keywords_are_case_insensitive(text: str) -> None:
    assert tree(text) == C("==", FLAG, L(True))


def test_empty_or_blank_filter_means_all_rows() -> None:
    for text in ["", " ", "\t\n  ", "\u3000"]:
        assert parse(text, FIELDS) is None


def test_referenced_fields_lists_every_field_read() -> None:
    expr = tree("age > 1 and (meta['a'] == 1 or array_contains(tags, 1)) and title is null")
    assert referenced_fields(expr) == {"age", "meta", "tags", "title"}
    assert referenced_fields(tree("1 == 1")) == set()


# -- errors ---------------------------------------------------------------------------------------

ERRORS: list[tuple[str, int, list[str]]] = [
    # type errors name the field and the types
    ('age == "x"', 7, ["INT64 field 'age'", 'string literal "x"']),
    ('"x" == age', 0, ["INT64 field 'age'", "string literal"]),
    ("title > 5", 8, ["VARCHAR field 'title'", "number literal 5"]),
    ("flag == 1", 8, ["BOOL field 'flag'", "number"]),
    ("age == score == title", 16, ["DOUBLE field 'score'", "VARCHAR field 'title'"]),
    ("age like 'a%'", 0, ["'like' needs a VARCHAR field", "INT64 field 'age'"]),
    ("array_contains(age, 1)", 15, ["array_contains() needs an ARRAY field", "INT64 field 'age'"]),
    ("array_length(title) > 1", 13, ["ARRAY field", "VARCHAR field 'title'"]),
    ("age['k'] == 1", 0, ["INT64 field 'age'", "JSON"]),
    ("title[0] == 'a'", 0, ["VARCHAR field 'title'", "JSON"]),
    ("tags['k'] == 1", 0, ["ARRAY field 'tags'", "integer index"]),
    ("flag < true", 5, ["'<' cannot order BOOL field 'flag'"]),
    ("meta > 1", 5, ["'>' cannot order JSON field 'meta'"]),
    ("tags >= [1]", 5, ["cannot order ARRAY field 'tags'"]),
    ("meta['a'] < [1]", 10, ["cannot order list literal"]),
    ("tags == ['a']", 8, ["ARRAY field 'tags' holds number elements", "string literal"]),
    ("array_contains(tags, 'x')", 21, ["ARRAY field 'tags' holds number elements"]),
    ("array_contains(words, 1)", 22, ["ARRAY field 'words' holds string elements"]),
    ("array_contains(tags, [1])", 21, ["array_contains_any"]),
    ("array_contains_all(tags, 1)", 25, ["[...] list"]),
    ("array_contains(tags, age)", 21, ["must be a constant"]),
    ("age in [1, 'x']", 11, ["INT64 field 'age'", 'string literal "x"']),
    ("tags in [1]", 0, ["single value", "array_contains_any"]),
    ("tags[0] == 'x'", 11, ["INT16 element tags[0]"]),
    ("vec == 1", 0, ["FLOAT_VECTOR field 'vec'"]),
    ("age", 0, ["expected a condition", "INT64 field 'age'"]),
    ("5", 0, ["expected a condition", "number literal 5"]),
    ("age > 1 or 7", 11, ["expected a condition"]),
    ("array_length(tags)", 0, ["expected a condition"]),
    ("age + flag > 1", 6, ["'+' needs numbers", "BOOL field 'flag'"]),
    ("-title == 1", 1, ["'-' needs numbers", "VARCHAR field 'title'"]),
    ("age + 'x' > 1", 6, ["'+' needs numbers", "string literal"]),
    ("1 == 'a'", 5, ["number literal 1", 'string literal "a"']),
    ("true < false", 5, ["cannot order bool"]),
    ("not 5", 4, ["'not' needs a condition"]),
    ("-'x' == age", 1, ["unary '-' needs a number"]),
    ("1 in ['a']", 6, ["cannot compare number literal 1"]),
    ("5 like 'a'", 0, ["'like' needs a string"]),
    # arithmetic on constants
    ("age / 0 > 1", 6, ["division by zero"]),
    ("age % 0.0 > 1", 6, ["division by zero"]),
    ("age % (3 - 3) > 1", 7, ["division by zero"]),
    ("age == 9223372036854775807 + 1", 27, ["overflows INT64"]),
    ("age == 99999999999999999999", 7, ["out of the INT64 range"]),
    ("age == 9223372036854775808", 7, ["out of the INT64 range"]),
    # syntax
    ("(age > 1", 0, ["unclosed '('"]),
    ("(age > 1 flag", 9, ["expected ')'"]),
    ("age > 1)", 7, ["unmatched ')'"]),
    ("age > 1 flag", 8, ["unexpected 'flag'"]),
    ("title == 'abc", 9, ["unterminated string"]),
    ('title == "abc\\"', 9, ["unterminated string"]),
    ("title == 'abc\\", 9, ["unterminated string"]),
    ("title == '\\x4'", 10, ["2 hex digits"]),
    ("title == '\\u12'", 10, ["4 hex digits"]),
    ("age in 5", 7, ["'in' needs a [...] list"]),
    ("age in (1, 2)", 7, ["'in' needs a [...] list"]),
    ("age not in 5", 11, ["'not in' needs a [...] list"]),
    ("age in [1, 2", 7, ["unclosed '['"]),
    ("age in [1 2]", 10, ["expected ',' or ']'"]),
    ("age in [age]", 8, ["constants"]),
    ("age in [[1]]", 8, ["nested"]),
    ("meta[] == 1", 5, ["empty []"]),
    ("meta[-1] == 1", 5, ["non-negative integer"]),
    ("meta[1.5] == 1", 5, ["non-negative integer"]),
    ("meta['a' == 1", 9, ["expected ']'"]),
    ("(meta)['a'] == 1", 6, ["only a field name"]),
    ("age = 1", 4, ["'=='"]),
    ("age > 1 & flag", 8, ["'&&'"]),
    ("age > 1 | flag", 8, ["'||'"]),
    ("age ==", 6, ["end of the filter"]),
    ("age == -", 8, ["end of the filter"]),
    ("age > 1 and", 11, ["end of the filter"]),
    ("age > 1 and and flag", 12, ["expected a value"]),
    ("age @ 1", 4, ["unexpected character '@'"]),
    ("age == 1abc", 7, ["malformed number"]),
    ("age == 1.2.3", 7, ["malformed number"]),
    ("age is nul", 7, ["'is' must be followed by 'null'"]),
    ("age is not 5", 11, ["'is not' must be followed by 'null'"]),
    ("age + 1 is null", 8, ["field name"]),
    ("meta['k'] is null", 10, ["field name"]),
    ("null", 0, ["'null' is only valid"]),
    ("title like 5", 11, ["quoted pattern"]),
    ("title like title", 11, ["quoted pattern"]),
    ("age < 1 < 'x'", 10, ["number literal 1", "string literal"]),
    ("age in [1] == true", 11, ["add parentheses"]),
    ("age < id in [1]", 9, ["add parentheses"]),
    ("title like 'a' like 'b'", 15, ["add parentheses"]),
    ("flag == not flag", 8, ["needs parentheses"]),
    ("age + not flag", 6, ["needs parentheses"]),
    ("foo(age) > 1", 0, ["unknown function 'foo'", "array_contains"]),
    ("array_contans(tags, 1)", 0, ["did you mean 'array_contains'"]),
    ("array_contains(tags)", 0, ["takes 2 arguments, got 1"]),
    ("array_length(tags, 1) > 0", 0, ["takes 1 argument, got 2"]),
    ("array_contains(tags, 1", 14, ["unclosed '('"]),
    ("array_contains(tags 1)", 20, ["expected ',' or ')'"]),
]


@pytest.mark.parametrize(("text", "position", "fragments"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_filter_raises_filter_error_at_the_culprit(
    text: str, position: int, fragments: list[str]
) -> None:
    with pytest.raises(FilterError) as info:
        parse(text, FIELDS, "docs")
    err = info.value
    assert (err.position, err.expression) == (position, text)
    for fragment in fragments:
        assert fragment in err.reason
    # The rendered message carries the text and a caret under the culprit.
    lines = str(err).splitlines()
    assert lines[-2] == "  " + text and lines[-1] == "  " + " " * position + "^"


def test_unknown_field_names_the_collection_lists_fields_and_suggests() -> None:
    with pytest.raises(FilterError) as info:
        parse("flag and agee > 1", FIELDS, "people")
    err = info.value
    assert err.position == 9
    assert "collection 'people' has no field 'agee'" in err.reason
    assert "(did you mean 'age'?)" in err.reason
    assert "stored fields: id, age, score, flag, title" in err.reason
    assert isinstance(err, MemoraError) and isinstance(err, ValueError)


def test_unknown_field_suggestion_uses_shared_words() -> None:
    with pytest.raises(FilterError, match="did you mean 'start_token'"):
        parse("start_positions > 1", FIELDS, "docs")


def test_unknown_field_without_any_close_name_gets_no_suggestion() -> None:
    with pytest.raises(FilterError) as info:
        parse("zzz == 1", FIELDS)
    assert "did you mean" not in info.value.reason


def test_non_string_filter_is_a_filter_error() -> None:
    with pytest.raises(FilterError, match="must be a string"):
        parse(5, FIELDS)  # type: ignore[arg-type]


# -- limits ---------------------------------------------------------------------------------------


def test_moderate_nesting_parses_and_evaluates() -> None:
    for text in [
        "(" * 150 + "age > 1" + ")" * 150,
        "not " * 150 + "flag",
        "!" * 150 + "flag",
        "-" * 150 + "age > 1",
        "age" + " + 1" * 150 + " > 0",
    ]:
        assert evaluate(parse(text, FIELDS), BATCH).shape == (BATCH.size,)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 250 + "age > 1" + ")" * 250,
        "(" * 5000,
        "not " * 250 + "flag",
        "!" * 5000 + "flag",
        "-" * 250 + "age > 1",
        "age" + " + 1" * 250 + " > 0",
        "age" + " * id" * 3000 + " > 0",
        "age in " + "[" * 5000,
        "array_length(" * 300 + "tags" + ")" * 300,
        # each part alone is within the limit; the tree they build together is not
        "not " * 150 + "age" + " + 1" * 150 + " > 0",
    ],
    ids=lambda t: t[:20],
)
def test_deep_nesting_is_a_filter_error_not_a_recursion_error(text: str) -> None:
    with pytest.raises(FilterError):
        parse(text, FIELDS)


def test_deep_nesting_is_safe_even_when_the_caller_stack_is_deep() -> None:
    text = "(" * 199 + "not flag" + ")" * 199
    depth = len(traceback.extract_stack())
    budget = sys.getrecursionlimit() - depth - 60

    def descend(k: int) -> None:
        if k:
            descend(k - 1)
            return
        with contextlib.suppress(FilterError):
            parse(text, FIELDS)

    descend(budget)


def test_long_flat_filters_parse() -> None:
    text = " or ".join(f"id == {i}" for i in range(3000))
    expr = parse(text, FIELDS)
    assert isinstance(expr, Or) and len(expr.items) == 3000
    assert evaluate(expr, BATCH).all()
    text = "age in [" + ", ".join(str(i) for i in range(10_000)) + "]"
    assert len(text) < 65_536
    assert evaluate(parse(text, FIELDS), BATCH).tolist() == [True, True, False, True, True, True]


def test_long_digit_strings_are_read_or_rejected_without_python_int_limits() -> None:
    # int() refuses strings over 4,300 digits; leading zeros must not reach it.
    assert tree("age == " + "0" * 6000 + "7") == C("==", AGE, L(7))
    with pytest.raises(FilterError, match="INT64 range"):
        parse("age == " + "9" * 6000, FIELDS)
    assert tree("score < " + "9" * 6000 + ".5") == C("<", F("score"), L(float("inf")))


def test_filters_longer_than_64_kib_are_rejected() -> None:
    text = "flag and " * 7300 + "flag"
    assert len(text) > 65_536
    with pytest.raises(FilterError, match="65,536"):
        parse(text, FIELDS)


# -- cache ----------------------------------------------------------------------------------------


def test_repeated_text_reuses_the_parsed_tree() -> None:
    assert parse("17 <= id < 67", FIELDS) is parse("17 <= id < 67", FIELDS)


def test_cached_text_is_checked_again_against_a_changed_schema() -> None:
    fields = dict(FIELDS)
    assert parse("age > 41", fields) is not None
    del fields["age"]
    with pytest.raises(FilterError, match="no field 'age'"):
        parse("age > 41", fields)
    fields["age"] = Field("age", DataType.VARCHAR)
    with pytest.raises(FilterError, match="VARCHAR field 'age'"):
        parse("age > 41", fields)


def test_syntax_errors_are_raised_on_every_call() -> None:
    for _ in range(2):
        with pytest.raises(FilterError):
            parse("age >", FIELDS)


# -- fuzzing --------------------------------------------------------------------------------------

VALID = [s[0] for s in SHAPES] + [
    "0 <= id < 50 and title like 'ab%' or not (meta['x'][0] != 2.5)",
    "array_contains_any(words, ['a', 'b']) && age % 3 == 1 || title is not null",
    'title in ["a", "b\\"c"] and score >= -1e-3',
]
SYNTAX_CHARS = [
    *"()[]<>=!&|+-*/%,.'\"\\ _\t\n0123456789eE",
    "and ",
    " or ",
    "not ",
    " in ",
    " like ",
    " is ",
    "null",
    "age",
    "meta",
    "tags",
    "true",
]


def _parse_or_filter_error(text: str) -> Expr | None:
    """Parse ``text``; a FilterError is fine, anything else fails the test. Evaluate what parses."""
    try:
        expr = parse(text, FIELDS)
    except FilterError as err:
        assert 0 <= err.position <= len(text)
        return None
    mask = evaluate(expr, BATCH)
    assert mask.dtype == bool and mask.shape == (BATCH.size,)
    return expr


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=120))
def test_arbitrary_text_parses_or_raises_filter_error(text: str) -> None:
    _parse_or_filter_error(text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(SYNTAX_CHARS), max_size=40).map("".join))
def test_syntax_soup_parses_or_raises_filter_error(text: str) -> None:
    _parse_or_filter_error(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 6)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        piece = draw(st.sampled_from(SYNTAX_CHARS))
        if action == "delete":
            text = text[:i] + text[j:]
        elif action == "insert":
            text = text[:i] + piece + text[i:]
        elif action == "replace":
            text = text[:i] + piece + text[j:]
        else:
            text = text[:j] + text[i:j] + text[j:]
    return text


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_valid_filters_parse_or_raise_filter_error(text: str) -> None:
    _parse_or_filter_error(text)


NUMBERS = st.one_of(
    st.sampled_from(["age", "score", "id", "tags[0]", "array_length(tags)", "meta['k']", "meta['l'][1]"]),
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
)


def _binary(children: st.SearchStrategy[str], ops: list[str]) -> st.SearchStrategy[str]:
    return st.tuples(children, st.sampled_from(ops), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})")


NUMERIC = st.recursive(
    NUMBERS, lambda c: _binary(c, ["+", "-", "*"]) | c.map(lambda x: f"-{x}"), max_leaves=4
)
CONDITION_LEAVES = st.one_of(
    st.tuples(NUMERIC, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), NUMERIC).map(" ".join),
    st.tuples(NUMERIC, NUMERIC, NUMERIC).map(lambda t: f"{t[0]} < {t[1]} <= {t[2]}"),
    st.tuples(NUMERIC, st.lists(st.integers(-5, 5), max_size=4)).map(lambda t: f"{t[0]} in {t[1]}"),
    st.sampled_from(["a%", "%", "_b%", "a\\\\%", ""]).map(lambda p: f"title like '{p}'"),
    st.sampled_from(["title is null", "title is not null", "flag", "bits[0]", "meta['k']", "true"]),
    st.integers(-3, 6).map(lambda v: f"array_contains(tags, {v})"),
    st.lists(st.sampled_from(["a", "b", "c"]), max_size=3).map(lambda v: f"array_contains_all(words, {v})"),
)
CONDITIONS = st.recursive(
    CONDITION_LEAVES,
    lambda c: _binary(c, ["and", "or", "&&", "||", "AND"]) | c.map(lambda x: f"not ({x})"),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONDITIONS)
def test_generated_filters_parse_evaluate_and_round_trip(text: str) -> None:
    expr = _parse_or_filter_error(text)
    if expr is None:
        # Constant arithmetic can leave the INT64 range; nothing else may fail.
        with pytest.raises(FilterError, match="INT64"):
            parse(text, FIELDS)
        return
    again = parse(str(expr), FIELDS)
    assert again == expr
    assert (evaluate(again, BATCH) == evaluate(expr, BATCH)).all()


# -- security -------------------------------------------------------------------------------------

AUDIT_SCRIPT = textwrap.dedent(
    """
    import sys

    import numpy as np

    from memora_lite.columns import Batch, Ragged, object_array
    from memora_lite.models import Field
    from memora_lite.query import evaluate, parse
    from memora_lite.query.parser import _cached_syntax_tree

    fields = {
        "id": Field("id", "INT64", is_primary=True),
        "a": Field("a", "INT64"),
        "s": Field("s", "VARCHAR"),
        "t": Field("t", "ARRAY", element_data_type="INT16"),
        "m": Field("m", "JSON"),
    }
    n = 50
    batch = Batch(
        {
            "id": np.arange(n),
            "a": np.arange(n) % 7,
            "s": object_array([f"w{i}" for i in range(n)], n),
            "t": Ragged.from_lists([[i % 3, i % 5] for i in range(n)], np.dtype("int16")),
            "m": object_array([{"k": i, "l": [i]} for i in range(n)], n),
        },
        n,
    )

    def filters(k):
        return [
            f"{k} <= id < {k + 50}",
            f"a % {k % 5 + 2} == 1 and s like 'w{k % 10}%'",
            f"id in [{k}, {k + 1}] or not (a != {k % 7})",
            f"array_contains(t, {k % 4}) || m['k'] > {k} && m['l'][0] >= 0",
            f"array_length(t) == 2 and s != 'w{k}' and -a < {k} and a / 2 > 0.{k % 9}",
            f"s in ['w{k}', 'x'] or __import__('os').system('true') == 0 or 1 == {k % 2}",
            f"exec('{k}') or eval(\\"{k}\\")",
        ]

    def run(start, stop):
        for k in range(start, stop):
            for text in filters(k):
                try:
                    evaluate(parse(text, fields), batch)
                except Exception as exc:
                    if type(exc).__name__ != "FilterError":
                        raise

    run(0, 3)  # warm up: lazy imports inside numpy may legitimately exec module code
    _cached_syntax_tree.cache_clear()
    events = []

    def hook(event, args):
        if event in ("compile", "exec"):
            events.append(event)

    sys.addaudithook(hook)
    run(1000, 1060)
    print("EVENTS", len(events))
    """
)


def test_parsing_and_evaluating_never_compiles_or_executes_code() -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-c", AUDIT_SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "EVENTS 0" in result.stdout, result.stdout


def test_the_audit_probe_would_notice_a_compile() -> None:
    # Guards the test above: the same hook does fire for compile().
    script = AUDIT_SCRIPT.replace('print("EVENTS"', 'compile("1", "<x>", "eval")\nprint("EVENTS"')
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "EVENTS 1" in result.stdout, result.stdout
