"""The column encoding registry: every kind round-trips, and every inconsistency is a CodecError."""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from memora_lite.codecs import decode_column, encode_column
from memora_lite.codecs.backend import worth_compressing, zstd_compress
from memora_lite.codecs.column import KINDS
from memora_lite.columns import Column, Ragged, object_array
from memora_lite.errors import CodecError

FIXED_DTYPES = [
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
]


def _round_trip(column: Column, kind: str, dtype: Any, dim: int | None = None) -> tuple[str, Column]:
    name, data = encode_column(column, kind)
    assert isinstance(data, bytes)
    decoded = decode_column(name, data, len(column), kind, np.dtype(dtype), dim)
    assert decoded_equal(decoded, column)
    return name, decoded


def decoded_equal(a: Column, b: Column) -> bool:
    if isinstance(b, Ragged):
        return (
            isinstance(a, Ragged)
            and a.values.dtype == b.values.dtype
            and np.array_equal(a.offsets, b.offsets)
            and a.to_lists() == b.to_lists()
        )
    return (
        isinstance(a, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()
    )


# --- round trips ------------------------------------------------------------------------------


def _random_column(dtype: np.dtype, n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype.kind == "b":
        return rng.integers(0, 2, n).astype(bool)
    if dtype.kind in "iu":
        return rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, n, dtype=dtype, endpoint=True)
    if dtype.kind == "c":
        return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dtype)
    return rng.standard_normal(n).astype(dtype)


@pytest.mark.parametrize("dtype", FIXED_DTYPES)
def test_fixed_columns_round_trip_as_writable_arrays_of_their_own(dtype: str) -> None:
    for column in (_random_column(np.dtype(dtype), 1000), np.zeros(1000, dtype), np.zeros(0, dtype)):
        name, decoded = _round_trip(column, "fixed", dtype)
        assert name in ("plain", "plain+zstd", "narrow", "narrow+zstd")
        assert decoded.flags.writeable and decoded.flags.owndata


@pytest.mark.parametrize(("values", "dtype", "expected"), [
    ([5, 7, 300], "int64", ("narrow", 9 + 3 * 2)),  # a span of 295 takes 2 bytes
    ([-2**40, -2**40 + 255], "int64", ("narrow", 9 + 2)),  # narrowed from the minimum, not from 0
    ([-5, 250], "int16", ("narrow", 9 + 2)),
    ([0, 70_000], "int32", ("plain", 8)),  # 4 bytes are no narrower than int32
    ([-2**63, 2**63 - 1], "int64", ("plain", 16)),
    ([2**63 + 5, 2**63 + 9], "uint64", ("plain", 16)),  # a base above int64 cannot be stored
    ([1, 2], "int8", ("plain", 2)),
])
def test_int_columns_are_stored_narrowed_to_the_bytes_their_span_needs(values: list[int], dtype: str,
                                                                       expected: tuple[str, int]) -> None:
    column = np.array(values, dtype=dtype)
    name, data = encode_column(column, "fixed", level=None)
    assert (name, len(data)) == expected
    assert decode_column(name, data, len(column), "fixed", np.dtype(dtype)).tolist() == values


@given(st.sampled_from(["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]),
       st.data())
@settings(max_examples=200, deadline=None)
def test_int_columns_round_trip_whatever_their_span(dtype: str, data: st.DataObject) -> None:
    info = np.iinfo(dtype)
    lo = data.draw(st.integers(int(info.min), int(info.max)))
    span = data.draw(st.sampled_from([0, 1, 255, 256, 65535, 65536, 2**32 - 1, 2**32, int(info.max) - int(info.min)]))
    hi = min(lo + span, int(info.max))
    values = data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=50))
    _round_trip(np.array(values, dtype=dtype), "fixed", dtype)


@pytest.mark.parametrize(("data", "dtype", "message"), [
    (b"\x00" * 8, "int64", "cannot hold its 9-byte header"),
    (b"\x00" * 8 + b"\x03" + b"\x00" * 6, "int64", "value width 3 is not 1, 2, 4 or 8"),
    (b"\x00" * 8 + b"\x02" + b"\x00" * 3, "int64", "12 bytes where 2 rows of 2 bytes need 13"),
    ((32000).to_bytes(8, "little") + b"\x02" + (1000).to_bytes(2, "little") * 2, "int16",
     "values 32000..33000 do not fit int16"),
    ((-1).to_bytes(8, "little", signed=True) + b"\x01" + b"\x00\x01", "uint8", "values -1..0 do not fit uint8"),
    (b"\x00" * 9 + b"\x00" * 2, "float32", "decodes to an int dtype"),
])
def test_narrow_columns_refuse_bytes_that_do_not_fit(data: bytes, dtype: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode_column("narrow", data, 2, "fixed", np.dtype(dtype))


def test_fixed_columns_are_compressed_only_when_that_is_smaller() -> None:
    assert _round_trip(_random_column(np.dtype("int64"), 1000), "fixed", "int64")[0] == "plain"
    assert _round_trip(np.zeros(1000, np.float64), "fixed", "float64")[0] == "plain+zstd"
    assert _round_trip(np.zeros(1000, np.int64), "fixed", "int64")[0] == "narrow+zstd"


def test_a_zstd_frame_is_kept_only_when_it_saves_an_eighth() -> None:
    """leveldb's rule: a frame saving ~10% costs more at every read than it saves on disk."""
    rng = np.random.default_rng(3)
    barely = rng.integers(0, 120, 1024)  # 1-byte narrow values that zstd shrinks by ~10%
    well = rng.integers(0, 64, 1024)  # ... by ~22%
    for values, wanted in ((barely, "narrow"), (well, "narrow+zstd")):
        raw = encode_column(values, "fixed", level=None)[1]
        saved = 1 - len(zstd_compress(raw, 3)) / len(raw)
        assert (saved >= 1 / 8) == (wanted == "narrow+zstd") and saved > 0.05  # each side of the line
        assert encode_column(values, "fixed")[0] == wanted
    assert worth_compressing(800, 700) and not worth_compressing(800, 701)


def test_fixed_columns_are_little_endian_on_disk() -> None:
    name, data = encode_column(np.array([1, 2**30], dtype=">i4"), "fixed")
    assert (name, data) == ("plain", b"\x01\x00\x00\x00\x00\x00\x00\x40")
    assert decode_column(name, data, 2, "fixed", np.dtype("int32")).tolist() == [1, 2**30]
    name, data = encode_column(np.array([1, 2], dtype=">i4"), "fixed")
    assert (name, data) == ("narrow", b"\x01" + b"\x00" * 7 + b"\x01" + b"\x00\x01")  # base 1, width 1
    assert decode_column(name, data, 2, "fixed", np.dtype("int32")).tolist() == [1, 2]


def test_matrix_columns_round_trip_with_their_dim() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    assert _round_trip(vectors, "matrix", np.float32, dim=16)[0] in ("plain", "plain+zstd")
    assert _round_trip(np.ones((300, 16), np.float32), "matrix", np.float32, dim=16)[0] == "plain+zstd"
    assert _round_trip(np.zeros((0, 4), np.float32), "matrix", np.float32, dim=4)[0] == "plain"


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64"])
def test_token_columns_use_tokens1(dtype: str) -> None:
    column = Ragged.from_lists([[101, 5, 102, 0, 0], [], [101, 102, 0, 0, 0]], np.dtype(dtype))
    assert _round_trip(column, "tokens", dtype)[0] == "tokens1"


@pytest.mark.parametrize("dtype", ["float32", "float64", "bool"])
def test_ragged_columns_round_trip(dtype: str) -> None:
    rows = [[0.5, 1.0], [], [1.0, 0.0, 1.0]] * 50
    column = Ragged.from_lists(rows, np.dtype(dtype))
    assert _round_trip(column, "ragged", dtype)[0] == "ragged_plain+zstd"
    noisy = Ragged.from_lists([np.random.default_rng(2).standard_normal(5).tolist()], np.dtype("float64"))
    assert _round_trip(noisy, "ragged", "float64")[0] == "ragged_plain"


def test_string_columns_round_trip_with_nulls_as_empty() -> None:
    column = object_array(["héllo", None, "", "日本語", "x"], 5)
    name, data = encode_column(column, "strings")
    assert name == "utf8"
    decoded = decode_column(name, data, 5, "strings", np.dtype(object))
    assert decoded.tolist() == ["héllo", "", "", "日本語", "x"]
    many = object_array(["the same title"] * 500, 500)
    assert _round_trip(many, "strings", object)[0] == "utf8+zstd"


def test_object_columns_round_trip_through_msgpack() -> None:
    values = [{"a": [1, 2.5, None], "b": {"c": "d"}}, None, [1, "x", True], "s", 3, 2.5, {1: "key"}, b"raw"]
    column = object_array(values, len(values))
    assert _round_trip(column, "objects", object)[0] == "msgpack"
    assert _round_trip(object_array([{"k": 1}] * 200, 200), "objects", object)[0] == "msgpack+zstd"


def test_numpy_values_in_object_columns_become_python_values() -> None:
    column = object_array([np.int64(3), np.array([1.5, 2.5]), {"x": np.float32(0.5)}], 3)
    name, data = encode_column(column, "objects")
    assert decode_column(name, data, 3, "objects", np.dtype(object)).tolist() == [3, [1.5, 2.5], {"x": 0.5}]


def test_ragged_rows_of_strings_round_trip_as_a_ragged() -> None:
    column = Ragged.from_lists([["a", "b"], [], ["c"]], np.dtype(object))
    assert _round_trip(column, "objects", object)[0] == "msgpack_ragged"


def test_objects_are_never_pickled() -> None:
    class Custom:
        pass

    for value in (Custom(), {1, 2}, 1j):
        with pytest.raises(TypeError, match="msgpack-able"):
            encode_column(object_array([value], 1), "objects")


@settings(max_examples=200)
@given(st.lists(st.one_of(st.none(), st.text()), max_size=30))
def test_any_strings_round_trip(values: list[str | None]) -> None:
    name, data = encode_column(object_array(values, len(values)), "strings")
    decoded = decode_column(name, data, len(values), "strings", np.dtype(object))
    assert decoded.tolist() == [v or "" for v in values]


@settings(max_examples=200)
@given(
    st.lists(st.lists(st.floats(allow_nan=False, width=32), max_size=6), max_size=20),
    st.sampled_from(["float32", "float64"]),
)
def test_any_float_rows_round_trip(rows: list[list[float]], dtype: str) -> None:
    _round_trip(Ragged.from_lists(rows, np.dtype(dtype)), "ragged", dtype)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=200)
@given(st.lists(JSON, max_size=10))
def test_any_json_values_round_trip(values: list[Any]) -> None:
    name, data = encode_column(object_array(values, len(values)), "objects")
    assert decode_column(name, data, len(values), "objects", np.dtype(object)).tolist() == values


# --- what the encoder refuses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "kind", "error"),
    [
        (np.zeros((2, 2)), "fixed", TypeError),
        (object_array(["a"], 1), "fixed", TypeError),
        (np.zeros(3, np.float32), "matrix", TypeError),
        (np.zeros((2, 2), np.int32), "matrix", TypeError),
        (np.zeros(3, np.int32), "tokens", TypeError),
        (Ragged.from_lists([[1.5]], np.dtype("float64")), "tokens", TypeError),
        (Ragged(np.zeros(2, np.int32), np.array([0, 3, 2])), "tokens", ValueError),
        (Ragged(np.zeros(2, np.float32), np.array([0, 1])), "ragged", ValueError),
        (object_array([3], 1), "strings", TypeError),
        (np.zeros(2), "nonsense", ValueError),
    ],
)
def test_columns_of_the_wrong_shape_are_refused(column: Column, kind: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        encode_column(column, kind)


# --- what the decoder refuses -----------------------------------------------------------------

SAMPLES: dict[str, tuple[Column, str, Any, int | None]] = {
    "fixed": (np.arange(40, dtype=np.int32), "fixed", np.int32, None),
    "bool": (np.array([True, False] * 20), "fixed", np.bool_, None),
    "matrix": (np.arange(48, dtype=np.float32).reshape(12, 4), "matrix", np.float32, 4),
    "tokens": (
        Ragged.from_lists([[1, 2, 0], [], [3, 0, 0]] * 4, np.dtype("int32")),
        "tokens",
        np.int32,
        None,
    ),
    "ragged": (
        Ragged.from_lists([[1.0, 2.0], [], [3.0]] * 4, np.dtype("float32")),
        "ragged",
        np.float32,
        None,
    ),
    "strings": (object_array(["ab", "", "c"] * 4, 12), "strings", object, None),
    "objects": (object_array([{"a": 1}, [2], None] * 4, 12), "objects", object, None),
    "string rows": (
        Ragged.from_lists([["a"], [], ["b", "c"]] * 4, np.dtype(object)),
        "objects",
        object,
        None,
    ),
}


def _encoded_samples() -> list[tuple[str, str, bytes, int, str, Any, int | None]]:
    """(sample, encoding, bytes, rows, kind, dtype, dim): each sample raw and as +zstd."""
    out = []
    for sample, (column, kind, dtype, dim) in SAMPLES.items():
        name, data = encode_column(column, kind)
        forms = [(name, data)]
        if name.endswith("+zstd"):
            forms.append((name.removesuffix("+zstd"), zstandard.decompress(data)))
        elif name != "tokens1":
            forms.append((name + "+zstd", zstd_compress(data, 3)))
        out += [(sample, form, raw, len(column), kind, dtype, dim) for form, raw in forms]
    return out


ENCODED = _encoded_samples()
ENCODED_IDS = [f"{e[0]}-{e[1]}" for e in ENCODED]


@pytest.mark.parametrize(("sample", "name", "data", "rows", "kind", "dtype", "dim"), ENCODED, ids=ENCODED_IDS)
def test_each_encoding_decodes_in_both_forms(
    sample: str, name: str, data: bytes, rows: int, kind: str, dtype: Any, dim: int | None
) -> None:
    assert decoded_equal(decode_column(name, data, rows, kind, np.dtype(dtype), dim), SAMPLES[sample][0])


@pytest.mark.parametrize(("sample", "name", "data", "rows", "kind", "dtype", "dim"), ENCODED, ids=ENCODED_IDS)
def test_a_wrong_row_count_is_a_codec_error(
    sample: str, name: str, data: bytes, rows: int, kind: str, dtype: Any, dim: int | None
) -> None:
    for wrong in (rows - 1, rows + 1, 0):
        with pytest.raises(CodecError):
            decode_column(name, data, wrong, kind, np.dtype(dtype), dim)


@pytest.mark.parametrize(("sample", "name", "data", "rows", "kind", "dtype", "dim"), ENCODED, ids=ENCODED_IDS)
def test_every_truncation_is_a_codec_error(
    sample: str, name: str, data: bytes, rows: int, kind: str, dtype: Any, dim: int | None
) -> None:
    for end in range(len(data)):
        with pytest.raises(CodecError):
            decode_column(name, data[:end], rows, kind, np.dtype(dtype), dim)


@pytest.mark.parametrize(("sample", "name", "data", "rows", "kind", "dtype", "dim"), ENCODED, ids=ENCODED_IDS)
def test_every_bit_flip_is_refused_or_decodes_to_a_well_formed_column(
    sample: str, name: str, data: bytes, rows: int, kind: str, dtype: Any, dim: int | None
) -> None:
    buf = bytearray(data)
    for bit in range(8 * len(buf)):
        buf[bit // 8] ^= 1 << (bit % 8)
        try:
            column = decode_column(name, bytes(buf), rows, kind, np.dtype(dtype), dim)
        except CodecError:
            pass
        else:
            _assert_well_formed(column, rows, kind, np.dtype(dtype), dim)
        buf[bit // 8] ^= 1 << (bit % 8)


def _assert_well_formed(column: Column, rows: int, kind: str, dtype: np.dtype, dim: int | None) -> None:
    assert len(column) == rows
    if isinstance(column, Ragged):
        assert column.values.dtype == dtype
        assert column.offsets[0] == 0 and column.offsets[-1] == len(column.values)
        assert np.all(np.diff(column.offsets) >= 0)
    else:
        assert column.dtype == dtype
        assert column.shape == ((rows, dim) if kind == "matrix" else (rows,))
        if dtype.kind == "b":
            assert set(column.view(np.uint8).tolist()) <= {0, 1}
        if kind == "strings":
            assert all(isinstance(s, str) for s in column.tolist())


@settings(max_examples=300)
@given(st.binary(max_size=120), st.sampled_from(sorted({e[1] for e in ENCODED})), st.integers(0, 12))
def test_random_bytes_under_any_encoding_are_refused_or_well_formed(
    data: bytes, name: str, rows: int
) -> None:
    sample = next(e for e in ENCODED if e[1] == name)
    kind, dtype, dim = sample[4], np.dtype(sample[5]), sample[6]
    try:
        column = decode_column(name, data, rows, kind, dtype, dim)
    except CodecError:
        return
    _assert_well_formed(column, rows, kind, dtype, dim)


@pytest.mark.parametrize(
    ("encoding", "kind", "message"),
    [
        ("plain9", "fixed", "unknown column encoding 'plain9'"),
        ("tokens1+zstd", "tokens", "unknown column encoding"),
        ("+zstd", "fixed", "unknown column encoding"),
        ("utf8", "fixed", "does not apply to a fixed column"),
        ("plain", "tokens", "does not apply to a tokens column"),
    ],
)
def test_unknown_or_misapplied_encodings_are_codec_errors(encoding: str, kind: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode_column(encoding, b"", 0, kind, np.dtype(np.int32))


def test_inconsistent_chunks_name_what_is_wrong() -> None:
    with pytest.raises(CodecError, match="a bool value is neither 0 nor 1"):
        decode_column("plain", b"\x00\x02", 2, "fixed", np.dtype(bool))
    with pytest.raises(CodecError, match=r"8 bytes where 1 rows of float32 x 3 need 12"):
        decode_column("plain", bytes(8), 1, "matrix", np.dtype(np.float32), 3)
    with pytest.raises(CodecError, match="row lengths add up to 3 values"):
        decode_column("ragged_plain", b"\x03\x00\x00\x00" + bytes(8), 1, "ragged", np.dtype(np.float32))
    with pytest.raises(CodecError, match="offsets must rise from 0"):
        decode_column("utf8", b"\x00\x00\x00\x00\x05\x00\x00\x00abc", 1, "strings", np.dtype(object))
    with pytest.raises(CodecError, match="row 0 is not valid UTF-8"):
        decode_column("utf8", b"\x00\x00\x00\x00\x02\x00\x00\x00\xc3\x28", 1, "strings", np.dtype(object))
    with pytest.raises(CodecError, match="holds dict where a list of 1 rows"):
        decode_column("msgpack", msgpack.packb({"a": 1}), 1, "objects", np.dtype(object))
    with pytest.raises(CodecError, match="row 1 is int, not a list"):
        decode_column("msgpack_ragged", msgpack.packb([["a"], 3]), 2, "objects", np.dtype(object))
    with pytest.raises(CodecError, match="extension type 5"):
        decode_column("msgpack", msgpack.packb([msgpack.ExtType(5, b"")]), 1, "objects", np.dtype(object))
    with pytest.raises(CodecError, match="zstd frame header is malformed"):
        decode_column("msgpack+zstd", b"\x91\xc0", 1, "objects", np.dtype(object))


def test_kinds_are_the_documented_six() -> None:
    assert KINDS == ("fixed", "matrix", "tokens", "ragged", "strings", "objects")


def test_documented_narrow_example_is_the_exact_bytes_written() -> None:
    """docs/format.md#narrow shows these bytes; the layout may never change under them."""
    name, data = encode_column(np.array([5, 7, 300]), "fixed", level=None)
    assert (name, data.hex(" ")) == ("narrow", "05 00 00 00 00 00 00 00 02 00 00 02 00 27 01")
