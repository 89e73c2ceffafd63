"""Collections to Arrow and back: types, nulls, inference from foreign tables, streaming."""

from __future__ import annotations

import json

import numpy as np
import pytest
from every_type import ROWS, all_rows, make_row, same_collection

from memora_lite import CollectionNotFoundError, DuplicateIdError, FieldNotFoundError, FilterError, Memora, SchemaError
from memora_lite.interop import arrow_reader, from_arrow, iter_chunks, to_arrow
from memora_lite.interop.arrow import FIELD_METADATA, infer_fields
from memora_lite.models import DataType, Field

pa = pytest.importorskip("pyarrow")


def test_round_trip_through_arrow_keeps_every_value_dtype_and_field(client: Memora) -> None:
    table = to_arrow(client, "every", batch_rows=25)
    assert table.num_rows == ROWS
    assert from_arrow(client, "copy", table) == ROWS
    same_collection(client, "every", "copy")


def test_arrow_types_keep_the_stored_widths(client: Memora) -> None:
    schema = to_arrow(client, "every").schema
    types = {f.name: f.type for f in schema}
    assert types["i8"] == pa.int8() and types["i16"] == pa.int16() and types["f32"] == pa.float32()
    assert types["tokens"] == pa.list_(pa.int16())
    assert types["mask"] == pa.list_(pa.int8())  # uniform rows stay a list of ints, never strings
    assert types["words"] == pa.list_(pa.string())
    assert types["vec"] == pa.list_(pa.float32(), 4)
    assert types["meta"] == pa.string()
    assert json.loads(schema.field("meta").metadata[FIELD_METADATA])["data_type"] == "JSON"
    assert not schema.field("id").nullable and schema.field("i16").nullable


def test_nulls_and_empty_arrays_stay_apart(client: Memora) -> None:
    table = to_arrow(client, "every", batch_rows=25)
    maybe = table.column("maybe").to_pylist()
    assert maybe == [None if i % 2 else [] for i in range(ROWS)]
    assert table.column("vec").to_pylist()[4] is None
    assert table.column("text").to_pylist()[1] is None
    assert json.loads(table.column("meta").to_pylist()[0]) == make_row(0)["meta"]


def test_filter_and_fields_select_rows_and_columns(client: Memora) -> None:
    table = to_arrow(client, "every", filter="id >= 30 and flag == true", output_fields=["tokens"])
    assert table.column_names == ["id", "tokens"]
    assert table.column("id").to_pylist() == [r["id"] for r in map(make_row, range(ROWS))
                                             if r["id"] >= 30 and r["flag"]]


def test_reader_streams_batches_no_larger_than_asked(client: Memora) -> None:
    reader = arrow_reader(client, "every", batch_rows=25)
    sizes = [batch.num_rows for batch in reader]
    assert sizes == [25, 25, 7]


def test_iter_chunks_reads_each_key_range_once(client: Memora, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int | None] = []
    query = client.nosql.query

    def spy(*args: object, **kwargs: object) -> dict[str, object]:
        out = query(*args, **kwargs)  # type: ignore[arg-type]
        asked.append(len(next(iter(out["data"].values()))) if kwargs.get("output") == "numpy" else None)
        return out

    monkeypatch.setattr(client.nosql, "query", spy)
    assert sum(c.size for c in iter_chunks(client, "every", output_fields=["tokens"], batch_rows=20)) == ROWS
    assert asked[0] == ROWS  # the keys, alone
    assert max(asked[1:]) <= 20  # then never more than one batch of rows at a time


def test_empty_collection_exports_an_empty_table_with_its_schema(client: Memora) -> None:
    client.nosql.create_collection("empty", fields=[Field("id", DataType.VARCHAR, is_primary=True, max_length=8),
                                                    Field("v", DataType.FLOAT_VECTOR, dim=2)])
    table = to_arrow(client, "empty")
    assert table.num_rows == 0 and table.schema.field("v").type == pa.list_(pa.float32(), 2)
    assert from_arrow(client, "empty_copy", table) == 0
    assert client.nosql.describe_collection("empty_copy")["fields"] == client.nosql.describe_collection("empty")[
        "fields"]


def test_string_primary_keys_with_quotes_and_escapes_stream_in_order() -> None:
    keys = ['a"b', "a\\b", "é", "line\nbreak", "\x01ctl", "z"]
    with Memora(path=":memory:") as client:
        client.nosql.insert(collection_name="s", data=[{"id": k, "n": i} for i, k in enumerate(keys)])
        table = to_arrow(client, "s", batch_rows=2)
        assert table.column("id").to_pylist() == sorted(keys)
        from_arrow(client, "s2", table)
        assert all_rows(client, "s2") == all_rows(client, "s")


def test_foreign_table_gets_an_inferred_schema() -> None:
    table = pa.table({
        "id": pa.array([1, 2, 3], pa.int32()),
        "u8": pa.array([0, 255, 7], pa.uint8()),
        "emb": pa.array([[0.5, 1.0], [2.0, 3.0], None], pa.list_(pa.float32(), 2)),
        "tok": pa.array([[1, 2], [3], []], pa.list_(pa.int32())),
        "wide": pa.array([[0.1], [0.2, 0.3], None], pa.list_(pa.float64())),
        "lang": pa.array(["en", "de", "en"]).dictionary_encode(),
        "answer": pa.array([{"text": "a", "start": 1}, None, {"text": "c", "start": 3}]),
    })
    with Memora(path=":memory:") as client:
        assert from_arrow(client, "f", table) == 3
        fields = {f["field_name"]: f for f in client.nosql.describe_collection("f")["fields"]}
        assert fields["id"]["data_type"] == "INT64" and fields["id"]["is_primary"]
        assert fields["u8"]["data_type"] == "INT16" and not fields["u8"].get("nullable")
        assert fields["emb"] == {"field_name": "emb", "data_type": "FLOAT_VECTOR", "dim": 2, "nullable": True}
        assert fields["tok"]["element_data_type"] == "INT32"
        assert fields["wide"]["element_data_type"] == "DOUBLE"
        assert fields["lang"]["data_type"] == "VARCHAR"
        assert fields["answer"]["data_type"] == "JSON"
        rows = all_rows(client, "f")
        assert rows[2] == {"id": 3, "u8": 7, "emb": None, "tok": [], "wide": None, "lang": "en",
                           "answer": {"text": "c", "start": 3}}
        assert rows[0]["wide"] == [0.1]  # float64 lists stay exact


def test_into_an_existing_collection_the_data_must_fit_its_schema(client: Memora) -> None:
    table = to_arrow(client, "every", filter="id < 9")
    with pytest.raises(DuplicateIdError):
        from_arrow(client, "every", table)
    assert from_arrow(client, "every", table, upsert=True) == 3
    extra = pa.table({"id": [1000], "unknown": [1]})
    with pytest.raises(FieldNotFoundError):
        from_arrow(client, "every", extra)


def test_unstorable_and_keyless_data_is_refused_with_the_column_named() -> None:
    with Memora(path=":memory:") as client:
        with pytest.raises(SchemaError, match=r"'when'.*timestamp"):
            from_arrow(client, "t", pa.table({"id": [1], "when": pa.array([0], pa.timestamp("s"))}))
        with pytest.raises(SchemaError, match=r"no column 'id'.*primary_key="):
            from_arrow(client, "t", pa.table({"key": [1]}))
        assert from_arrow(client, "t", pa.table({"key": [1]}), primary_key="key") == 1
        with pytest.raises(SchemaError, match="null element"):
            from_arrow(client, "u", pa.table({"id": [1], "l": pa.array([[1, None]], pa.list_(pa.int64()))}))
        assert not client.nosql.has_collection("u")  # a failed first batch leaves no empty collection


def test_infer_fields_prefers_the_metadata_and_honours_a_new_primary_key() -> None:
    fields = [Field("id", DataType.INT64, is_primary=True), Field("name", DataType.VARCHAR, max_length=10)]
    from memora_lite.interop.arrow import arrow_schema

    schema = arrow_schema(fields)
    assert infer_fields(schema) == fields
    rekeyed = infer_fields(schema, primary_key="name")
    assert [f.field_name for f in rekeyed if f.is_primary] == ["name"]


def test_bad_arguments_raise_memora_errors(client: Memora) -> None:
    with pytest.raises(CollectionNotFoundError):
        to_arrow(client, "nope")
    with pytest.raises(FilterError) as info:
        to_arrow(client, "every", filter="id >")
    assert info.value.expression == "id >"  # positions point into the filter as written
    with pytest.raises(FieldNotFoundError):
        to_arrow(client, "every", output_fields=["nope"])
    with pytest.raises(ValueError, match="batch_rows"):
        to_arrow(client, "every", batch_rows=0)
    with pytest.raises(ValueError, match="Table, RecordBatch or RecordBatchReader"):
        from_arrow(client, "x", [{"id": 1}])  # type: ignore[arg-type]


def test_numpy_output_of_the_copy_matches(client: Memora) -> None:
    from_arrow(client, "copy", to_arrow(client, "every"))
    a = client.nosql.query(collection_name="every", filter="id < 60", output="numpy")["data"]
    b = client.nosql.query(collection_name="copy", filter="id < 60", output="numpy")["data"]
    np.testing.assert_array_equal(a["mask"], b["mask"])
    assert a["mask"].dtype == b["mask"].dtype == np.int8
