"""The one-row fast path accepts exactly what the general path stores unchanged, and frames it exactly."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memora_lite._rows import PendingRows, RowEncoder
from memora_lite.columns import Ragged
from memora_lite.errors import CorruptionError
from memora_lite.models import Field
from memora_lite.schema import Schema
from memora_lite.storage.records import decode_row
from memora_lite.storage.wal import frame

WIDTHS = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}
I64 = (-(2**63), 2**63 - 1)


def _reference_pack(values: object, size: int, capacity: int) -> bytes | None:
    info = np.iinfo(WIDTHS[size])
    if type(values) is not list or len(values) > capacity:
        return None
    if not all(type(v) is int and info.min <= v <= info.max for v in values):
        return None
    return np.array(values, dtype=np.dtype(WIDTHS[size]).newbyteorder("<")).tobytes()


def _reference_logged(values: list[int], size: int, packed: bytes) -> object:
    """An int list as the log holds it: its bytes, or, when its trailing run of one value
    spans more than 8 bytes, ``[length, run value, bytes before the run]``."""
    run = 0
    while run < len(values) and values[-1 - run] == values[-1]:
        run += 1
    return [len(values), values[-1], packed[: (len(values) - run) * size]] if run * size > 8 else packed


def _schema(size: int, capacity: int) -> Schema:
    element = f"INT{8 * size}"
    return Schema((Field("id", "INT64", is_primary=True),
                   Field("t", "ARRAY", element_data_type=element, max_capacity=max(capacity, 1))))


element = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-(2**31) - 2, 2**31 + 2),
    st.sampled_from([0, 1, -1, 127, 128, -128, -129, 32767, 32768, 2**63 - 1, -(2**63), 2**30, -(2**30)]),
    st.booleans(),
    st.floats(allow_nan=False),
    st.just(np.int16(3)),
)


@settings(max_examples=500, deadline=None)
@given(key=st.integers(-(2**64), 2**64), values=st.lists(element, max_size=300),
       size=st.sampled_from([1, 2, 4, 8]), capacity=st.integers(0, 310))
def test_records_match_msgpack_and_the_python_framing(key: int, values: list, size: int, capacity: int) -> None:
    info = np.iinfo(WIDTHS[size])
    encoder = RowEncoder(("id", "t"), [("int", *I64), ("ints", int(info.min), int(info.max), size, capacity)], 0)
    packed = _reference_pack(values, size, capacity)
    got = encoder.encode({"id": key, "t": values}, 4)
    if packed is None or not I64[0] <= key <= I64[1]:
        assert got is None
        return
    assert got is not None
    assert got[:2] == (key, (key, packed)) and got[3] == len(msgpack.packb([key, packed], use_bin_type=True))
    assert got[2] == frame(4, msgpack.packb([key, _reference_logged(values, size, packed)], use_bin_type=True))
    assert decode_row(got[2][16:], _schema(size, capacity), "wal") == [key, packed]  # what recovery reads


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_a_padded_row_is_logged_without_its_padding_and_replays_whole(size: int) -> None:
    info = np.iinfo(WIDTHS[size])
    encoder = RowEncoder(("id", "t"), [("int", *I64), ("ints", int(info.min), int(info.max), size, 384)], 0)
    schema = _schema(size, 384)
    for values in ([101, 7, int(info.max)] + [0] * 381, [int(info.min)] * 384, [5] * 9 + [6], [3, 3], []):
        key, stored, record, _ = encoder.encode({"id": 1, "t": values}, 4)
        packed = _reference_pack(values, size, 384)
        assert key == 1 and stored == (1, packed)
        assert decode_row(record[16:], schema, "wal") == [1, packed]
    padded = encoder.encode({"id": 1, "t": [101, 7] + [0] * 382}, 4)[2]
    assert len(padded) < 16 + 16 + 2 * size  # header, array, [length, 0, two values]


def test_a_damaged_short_form_is_named_not_guessed() -> None:
    schema = _schema(2, 384)
    good = [1, [384, 0, b"\x05\x00"]]
    assert decode_row(msgpack.packb(good), schema, "wal")[1] == b"\x05\x00" + bytes(766)
    for bad in ([384, 0, b"\x05"], [1, 0, b"\x05\x00"], [385, 0, b"\x05\x00"], [384, 2**20, b"\x05\x00"],
                [384, "0", b"\x05\x00"], [384, 0], [384, 0, "ab"]):
        with pytest.raises(CorruptionError, match=r"wal: a logged row's field 't' does not decode"):
            decode_row(msgpack.packb([1, bad]), schema, "wal")
    for row, problem in (([1, b"\x05"], "1 bytes are not 2-byte values"), ([1, bytes(770)], "770 bytes"),
                         ([1, "ab"], "str is not packed values"), (["1", b""], "'1' is not an int")):
        with pytest.raises(CorruptionError, match=rf"wal: a logged row does not fit the schema \(row 0, .*{problem}"):
            decode_row(msgpack.packb(row, use_bin_type=True), schema, "wal")


@pytest.mark.parametrize("container", [tuple, np.array, lambda v: iter(v)])
def test_anything_but_a_list_is_declined(container) -> None:
    encoder = RowEncoder(("id", "t"), [("int", *I64), ("ints", -128, 127, 1, 10)], 0)
    assert encoder.encode({"id": 1, "t": container([1, 2])}, 4) is None


def test_the_encoder_agrees_with_the_general_path_on_every_row_it_accepts() -> None:
    schema = Schema.infer({"id": [0], "x": [1], "f": [0.5], "s": ["a"], "b": [True], "t": [[1, 2]]}, "id")
    rows = [
        {"id": 1, "x": 2, "f": 1.5, "s": "hé", "b": False, "t": [100, -5]},
        {"id": 2, "x": -(2**63), "f": 3, "s": "", "b": True, "t": []},
        {"id": 3, "x": 5, "f": 1.0, "s": "x", "b": True, "t": [1.5]},  # declined: float in int array
        {"id": 4, "x": 5, "f": 1.0, "s": "x", "b": 1, "t": [1]},  # declined: int for BOOL
        {"id": 5, "x": 5, "f": 1.0, "s": "x", "b": True},  # declined: missing field
        {"id": 6, "x": 5, "f": 1.0, "s": "x", "b": True, "t": [1], "extra": 0},  # declined: extra field
        {"id": 7, "x": 5, "f": 1.0, "s": "x", "b": True, "t": [300]},  # declined: needs widening
        [("id", 8)],  # declined: not a dict
    ]
    encoded = [schema.row_encoder.encode(r, 4) for r in rows]
    assert [e is not None for e in encoded] == [True, True, False, False, False, False, False, False]
    accepted = [e for e in encoded if e is not None]
    for (_, values, record, _), row in zip(accepted, rows):
        assert tuple(decode_row(record[16:], schema, "wal")) == values  # what recovery reads back
        assert values[schema.pk_index] == row["id"]
    replayed = schema.pending_rows()
    for _, values, _, _ in accepted:
        replayed.add(values)
    staged = schema.pending_rows()  # the live road: values staged by encode, kept once written
    for row in rows:
        if schema.row_encoder.encode(row, 4, into=staged) is not None:
            staged.keep()
    general, _ = schema.to_batch(rows[:2], "c")
    for fast in (schema.pending_batch(replayed), schema.pending_batch(staged)):
        for name in schema.names:
            a, b = fast.columns[name], general.columns[name]
            if hasattr(a, "to_lists"):
                assert a.to_lists() == b.to_lists() and a.dtype == b.dtype
            else:
                assert a.tolist() == b.tolist() and a.dtype == b.dtype


def test_a_schema_with_a_field_the_fast_path_cannot_take_has_no_encoder() -> None:
    schema = Schema.infer({"id": [0], "meta": [{"a": 1}]}, "id")  # JSON
    assert schema.row_encoder is None


def test_batches_take_exactly_the_rows_the_one_row_encoder_takes_and_equal_the_general_path() -> None:
    schema = Schema.infer({"id": [0], "x": [1], "f": [0.5], "s": ["a"], "b": [True], "t": [[1, 2]],
                           "m": [[1, 0]]}, "id")
    rng = np.random.default_rng(4)
    good = [{"id": i, "x": int(rng.integers(-(2**63), 2**63 - 1)), "f": float(i) / 7, "s": f"s{i}é",
             "b": bool(i % 2), "t": rng.integers(-128, 128, int(rng.integers(0, 9))).tolist(),
             "m": [1] * (i % 4) + [0] * 3} for i in range(300)]
    batch = schema.rows_to_batch_fast(good)
    general, _ = schema.to_batch(good, "c")
    assert batch is not None
    for name in schema.names:
        a, b = batch.columns[name], general.columns[name]
        if hasattr(a, "to_lists"):
            assert a.to_lists() == b.to_lists() and a.dtype == b.dtype
            np.testing.assert_array_equal(a.offsets, b.offsets)
        else:
            assert a.tolist() == b.tolist() and a.dtype == b.dtype
    pending = schema.pending_rows()
    for r in good:
        schema.row_encoder.encode(r, 4, into=pending)
        pending.keep()
    one_row = schema.pending_batch(pending)
    for name in ("t", "m"):  # the one-row path packs the same values
        np.testing.assert_array_equal(one_row.columns[name].values, batch.columns[name].values)
    declined = [
        {**good[0], "t": [1.5]}, {**good[0], "b": 1}, {**good[0], "t": [300]}, {**good[0], "t": (1,)},
        {k: v for k, v in good[0].items() if k != "s"}, {**good[0], "extra": 0}, {**good[0], "x": 2**63},
        {**good[0], "s": None}, [("id", 1)],
    ]
    for bad in declined:
        assert schema.row_encoder.encode(bad, 4) is None
        for where in (0, 150, 300):  # one bad row anywhere declines the whole batch
            assert schema.rows_to_batch_fast([*good[:where], bad, *good[where:]]) is None, (bad, where)
    assert schema.rows_to_batch_fast([]) is None and schema.rows_to_batch_fast(tuple(good)) is None


def test_a_batch_whose_lists_grow_under_a_check_is_declined() -> None:
    """A check of an "other" field is Python code; if it changes rows between the passes,
    the encoder declines instead of trusting the lengths it measured."""
    rows = [{"id": 1, "s": "a", "t": [1, 2]}, {"id": 2, "s": "b", "t": [3]}]

    def grow(value: object) -> object:
        rows[1]["t"].append(4)
        return value

    encoder = RowEncoder(("id", "s", "t"), [("int", *I64), ("other", grow), ("ints", -128, 127, 1, 10)], 0)
    assert encoder.encode_batch(rows) is None
    batch = [{"id": i, "s": "x", "t": [i]} for i in range(3)]
    shrink = RowEncoder(("id", "s", "t"), [("int", *I64), ("other", lambda v: batch.pop() and v),
                                            ("ints", -128, 127, 1, 10)], 0)
    assert shrink.encode_batch(batch) is None  # the batch shrinks under the encoder: no read past its end


def test_the_compiled_module_examples_run() -> None:
    """pytest's doctest collection does not import compiled modules: run their examples here."""
    import doctest

    import memora_lite._rows

    result = doctest.testmod(memora_lite._rows)
    assert result.attempted >= 10 and result.failed == 0


def _pending_lists(pending: PendingRows) -> tuple[list[int], list[list[int]]]:
    ids, (values, offsets) = pending.take()
    return ids.tolist(), Ragged(values, offsets).to_lists()


def test_pending_rows_grow_and_keep_every_row_exactly() -> None:
    encoder = RowEncoder(("id", "t"), [("int", *I64), ("ints", -(2**15), 2**15 - 1, 2, 3000)], 0)
    pending = PendingRows(encoder)
    rng = np.random.default_rng(5)
    rows = [{"id": i, "t": rng.integers(-(2**15), 2**15, int(rng.integers(0, 3000))).tolist()} for i in range(200)]
    for row in rows:  # 200 rows outgrow the first 64 row slots; ~600 KB outgrow the first 4 KB of values
        assert encoder.encode(row, 4, into=pending) is not None
        pending.keep()
    assert len(pending) == 200
    assert _pending_lists(pending) == ([r["id"] for r in rows], [r["t"] for r in rows])
    assert len(pending) == 0 and _pending_lists(pending) == ([], [])


def test_a_row_staged_but_not_kept_does_not_count_and_survives_a_take() -> None:
    encoder = RowEncoder(("id", "t"), [("int", *I64), ("ints", -128, 127, 1, 10)], 0)
    pending = PendingRows(encoder)
    encoder.encode({"id": 1, "t": [1, 2]}, 4, into=pending)
    pending.keep()
    encoder.encode({"id": 2, "t": [3]}, 4, into=pending)  # refused after encoding: never kept
    encoder.encode({"id": 3, "t": [4, 5, 6]}, 4, into=pending)  # staged; its record is being written ...
    assert len(pending) == 1
    assert _pending_lists(pending) == ([1], [[1, 2]])  # ... when a read takes the rows held
    pending.keep()
    assert _pending_lists(pending) == ([3], [[4, 5, 6]])


def test_pending_rows_refuse_misuse() -> None:
    encoder = RowEncoder(("id", "t"), [("int", *I64), ("ints", -128, 127, 1, 10)], 0)
    pending = PendingRows(encoder)
    with pytest.raises(RuntimeError, match="no row is staged"):
        pending.keep()
    assert encoder.encode({"id": 1, "t": [300]}, 4, into=pending) is None  # declined: nothing staged
    with pytest.raises(RuntimeError, match="no row is staged"):
        pending.keep()
    other = RowEncoder(("id", "t"), [("int", *I64), ("ints", -128, 127, 1, 10)], 0)
    with pytest.raises(ValueError, match="another encoder"):
        other.encode({"id": 1, "t": [1]}, 4, into=pending)
    with pytest.raises(ValueError, match="expected 2 values"):
        pending.add((1,))
    assert len(pending) == 0


def test_a_check_that_stages_again_while_a_row_is_staged_is_refused() -> None:
    """User code can run inside ``encode`` (a field's check); staging into the same rows then would
    move the buffers the half-staged row points into."""
    pending: list[PendingRows] = []

    def reenter(value: object) -> object:
        encoder.encode({"id": 9, "s": "x", "t": [1] * 10}, 4, into=pending[0])
        return value

    encoder = RowEncoder(("id", "s", "t"), [("int", *I64), ("other", reenter), ("ints", -128, 127, 1, 10)], 0)
    pending.append(PendingRows(encoder))
    with pytest.raises(RuntimeError, match="already being staged"):
        encoder.encode({"id": 1, "s": "a", "t": [2] * 10}, 4, into=pending[0])
    assert len(pending[0]) == 0

    def take(value: object) -> object:
        pending[1].take()
        return value

    taker = RowEncoder(("id", "s"), [("int", *I64), ("other", take)], 0)
    pending.append(PendingRows(taker))
    with pytest.raises(RuntimeError, match="take them after"):
        taker.encode({"id": 1, "s": "a"}, 4, into=pending[1])
