"""A batch's log payload, written in parts, is byte for byte the msgpack map docs/format.md describes."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from memora_lite import codecs
from memora_lite.schema import Schema, column_kind
from memora_lite.storage.records import WAL_CODEC_LEVEL, decode_rows, encode_rows


def _reference_payload(batch, schema: Schema, grown: Schema | None) -> bytes:
    """The payload as one msgpack.packb call writes it."""
    target = grown or schema
    cols = {f.field_name: list(codecs.encode_column(batch.columns[f.field_name], column_kind(f), WAL_CODEC_LEVEL))
            for f in target.fields}
    nulls = {name: np.packbits(mask, bitorder="little").tobytes() for name, mask in batch.nulls.items()}
    record = {"n": len(batch), "cols": cols, "nulls": nulls}
    if grown is not None:
        record["schema"] = grown.to_dict()
    return msgpack.packb(record, use_bin_type=True)


@pytest.mark.parametrize("rows", [0, 1, 7, 200, 4096, 40_000])
def test_parts_join_to_the_msgpack_map_and_decode_back(rows: int) -> None:
    rng = np.random.default_rng(rows)
    tokens = [rng.integers(0, 30_000, int(rng.integers(0, 40))).tolist() for _ in range(rows)]
    data = {"id": list(range(rows)), "t": tokens,
            "s": [f"row {i}" for i in range(rows)], "j": [None if i % 3 else {"i": i} for i in range(rows)]}
    schema = Schema.infer({"id": [0], "t": [[0, 29_999]], "s": ["a"], "j": [{"a": 1}]}, "id")
    batch, grown = schema.to_batch(data, "c")
    assert grown == schema
    parts = encode_rows(batch, schema, None)
    assert b"".join(parts) == _reference_payload(batch, schema, None)
    again, grown = decode_rows(b"".join(parts), schema, "wal")
    assert grown is None and len(again) == rows
    assert again.columns["t"].to_lists() == batch.columns["t"].to_lists()


def test_a_call_that_grew_the_schema_logs_the_new_schema_last() -> None:
    schema = Schema.infer({"id": [0], "x": [1]}, "id")
    batch, grown = schema.to_batch({"id": [1, 2], "x": [3, 2**40], "new": ["a", "b"]}, "c")
    assert grown != schema
    payload = b"".join(encode_rows(batch, schema, grown))
    assert payload == _reference_payload(batch, schema, grown)
    assert decode_rows(payload, schema, "wal")[1] == grown


def test_sixteen_or_more_fields_take_the_long_map_header() -> None:
    names = [f"f{i:02d}" for i in range(20)]
    schema = Schema.infer({"id": [0], **{n: [1] for n in names}}, "id")
    batch, _ = schema.to_batch({"id": [5], **{n: [i] for i, n in enumerate(names)}}, "c")
    assert b"".join(encode_rows(batch, schema, None)) == _reference_payload(batch, schema, None)
