"""insert, upsert and delete: shapes of data, schema inference, validation, and all-or-nothing calls."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from memora_lite import (
    DataType,
    DuplicateIdError,
    Field,
    FieldNotFoundError,
    InvalidArgumentError,
    Memora,
    SchemaError,
)


def _tree_digest(root: str) -> dict[str, str]:
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_insert_one_row_many_rows_and_columns(client: Memora) -> None:
    db = client.nosql
    assert db.insert("c", {"id": 1, "x": 1.5}) == {"insert_count": 1, "ids": [1]}
    assert db.insert("c", [{"id": 2, "x": 2.5}, {"id": 3, "x": 3.5}]) == {"insert_count": 2, "ids": [2, 3]}
    out = db.insert("c", {"id": np.array([4, 5]), "x": np.array([4.5, 5.5])})
    assert out == {"insert_count": 2, "ids": [4, 5]}
    assert [r["x"] for r in db.query("c")["data"]] == [1.5, 2.5, 3.5, 4.5, 5.5]


def test_inferred_schema_types(client: Memora) -> None:
    client.nosql.insert("c", {
        "id": 1, "n": 3, "f": 0.5, "b": True, "s": "text", "tokens": [101, 2000, 102],
        "mask": [1, 1, 0], "vec": [0.25, 0.5], "meta": {"k": [1, "x"]},
    })
    fields = {f["field_name"]: f for f in client.nosql.describe_collection("c")["fields"]}
    assert fields["id"]["data_type"] == "INT64" and fields["id"]["is_primary"]
    assert fields["n"]["data_type"] == "INT64"
    assert fields["f"]["data_type"] == "DOUBLE"
    assert fields["b"]["data_type"] == "BOOL"
    assert fields["s"]["data_type"] == "VARCHAR"
    assert (fields["tokens"]["data_type"], fields["tokens"]["element_data_type"]) == ("ARRAY", "INT16")
    assert fields["mask"]["element_data_type"] == "INT8"
    assert (fields["vec"]["data_type"], fields["vec"]["dim"]) == ("FLOAT_VECTOR", 2)
    assert fields["meta"]["data_type"] == "JSON"
    row = client.nosql.get("c", key=1)["data"][0]
    assert row == {"id": 1, "n": 3, "f": 0.5, "b": True, "s": "text", "tokens": [101, 2000, 102],
                   "mask": [1, 1, 0], "vec": [0.25, 0.5], "meta": {"k": [1, "x"]}}
    assert type(row["n"]) is int and type(row["b"]) is bool and type(row["tokens"][0]) is int


def test_inferred_int_arrays_widen_when_later_values_need_it(client: Memora) -> None:
    client.nosql.insert("c", {"id": 0, "tokens": [1, 2, 3]})
    client.nosql.insert("c", {"id": 1, "tokens": [50_265, 70_000]})
    client.nosql.insert("c", {"id": 2, "tokens": [-(2**40)]})
    rows = client.nosql.query("c")["data"]
    assert [r["tokens"] for r in rows] == [[1, 2, 3], [50_265, 70_000], [-(2**40)]]
    fields = {f["field_name"]: f for f in client.nosql.describe_collection("c")["fields"]}
    assert fields["tokens"]["element_data_type"] == "INT64"


def test_inferred_schema_grows_new_fields_as_nullable(client: Memora) -> None:
    client.nosql.insert("c", {"id": 0, "a": 1})
    client.nosql.insert("c", {"id": 1, "a": 2, "b": "new"})
    rows = client.nosql.query("c")["data"]
    assert rows == [{"id": 0, "a": 1, "b": None}, {"id": 1, "a": 2, "b": "new"}]
    assert client.nosql.query("c", filter="b is null")["data"][0]["id"] == 0


def test_declared_schema_rejects_unknown_fields_and_wrong_types(client: Memora) -> None:
    client.nosql.create_collection("c", fields=[
        Field("id", DataType.INT64, is_primary=True),
        Field("x", DataType.INT8),
        Field("tokens", DataType.ARRAY, element_data_type=DataType.INT16, max_capacity=4),
        Field("name", DataType.VARCHAR, max_length=5),
        Field("v", DataType.FLOAT_VECTOR, dim=2),
    ])
    good = {"id": 1, "x": 1, "tokens": [1], "name": "a", "v": [0.0, 1.0]}
    client.nosql.insert("c", good)
    cases = [
        ({**good, "id": 2, "extra": 1}, FieldNotFoundError, "no field 'extra'"),
        ({**good, "id": 3, "x": 300}, SchemaError, "value 300 does not fit INT8"),
        ({**good, "id": 4, "x": "1"}, SchemaError, "field 'x': expected INT8, got str"),
        ({**good, "id": 5, "tokens": [1, 2, 3, 4, 5]}, SchemaError, "exceed max_capacity=4"),
        ({**good, "id": 6, "tokens": [40_000]}, SchemaError, "does not fit INT16"),
        ({**good, "id": 7, "name": "toolong"}, SchemaError, "max_length=5"),
        ({**good, "id": 8, "v": [1.0]}, SchemaError, "dim 2"),
        ({k: v for k, v in good.items() if k != "x"} | {"id": 9}, SchemaError, "no value for field 'x'"),
        ({**good, "id": "ten"}, SchemaError, "field 'id': expected INT64"),
        ({**good, "id": 11, "x": True}, SchemaError, "expected INT8, got bool"),
    ]
    for row, error, words in cases:
        with pytest.raises(error, match=words) as info:
            client.nosql.insert("c", row)
        assert "'c'" in str(info.value)
    assert client.nosql.describe_collection("c")["row_count"] == 1


def test_duplicate_ids_raise_and_upsert_replaces(client: Memora) -> None:
    client.nosql.insert("c", [{"id": i, "v": i} for i in range(10)])
    with pytest.raises(DuplicateIdError, match="primary key 3 already exists"):
        client.nosql.insert("c", [{"id": 20, "v": 0}, {"id": 3, "v": 0}])
    with pytest.raises(DuplicateIdError, match="appears twice"):
        client.nosql.insert("c", [{"id": 30, "v": 0}, {"id": 30, "v": 1}])
    assert client.nosql.describe_collection("c")["row_count"] == 10
    assert client.nosql.upsert("c", [{"id": 3, "v": 33}, {"id": 40, "v": 4}]) == {"upsert_count": 2, "ids": [3, 40]}
    rows = {r["id"]: r["v"] for r in client.nosql.query("c")["data"]}
    assert rows[3] == 33 and rows[40] == 4 and len(rows) == 11


def test_a_rejected_batch_writes_nothing_to_disk(disk_client: Memora) -> None:
    db = disk_client.nosql
    db.insert("c", [{"id": i, "tokens": [i, i + 1]} for i in range(5)])
    before = _tree_digest(str(disk_client.path))
    bad_batches = [
        [{"id": 100, "tokens": [1]}, {"id": 101, "tokens": "oops"}],
        [{"id": 100, "tokens": [1]}, {"id": 2, "tokens": [1]}],
        [{"id": 100, "tokens": [1]}, {"id": 101}] * 1 + [{"id": 102, "tokens": [1.5]}],
    ]
    for batch in bad_batches:
        with pytest.raises((SchemaError, DuplicateIdError)):
            db.insert("c", batch)
    with pytest.raises(SchemaError):
        db.insert("newcoll", [{"id": 1, "a": 1}, {"a": 2}])
    with pytest.raises(DuplicateIdError):
        db.insert("newcoll", [{"id": 1}, {"id": 1}])
    assert _tree_digest(str(disk_client.path)) == before
    assert not db.has_collection("newcoll")
    assert [r["id"] for r in db.query("c")["data"]] == [0, 1, 2, 3, 4]


def test_delete_by_key_ids_and_filter(client: Memora) -> None:
    db = client.nosql
    db.insert("c", [{"id": i, "even": i % 2 == 0} for i in range(3000)])
    assert db.delete("c", key=5) == {"delete_count": 1}
    assert db.delete("c", key=5) == {"delete_count": 0}
    assert db.delete("c", ids=[1, 2, 3, 99_999]) == {"delete_count": 3}
    assert db.delete("c", filter="even == true and id < 100") == {"delete_count": 49}
    remaining = [r["id"] for r in db.query("c", filter="id < 12")["data"]]
    assert remaining == [7, 9, 11]
    assert db.describe_collection("c")["row_count"] == 3000 - 1 - 3 - 49
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        db.delete("c", key=1, ids=[2])
    db.insert("c", {"id": 5, "even": False})
    assert db.get("c", key=5)["data"] == [{"id": 5, "even": False}]


def test_deletes_and_upserts_survive_flush_compaction_and_reopen(disk_client: Memora, reopen) -> None:
    db = disk_client.nosql
    data = [{"id": i, "v": [i, i * 2]} for i in range(4000)]
    db.insert("c", data)
    db.delete("c", ids=list(range(0, 4000, 3)))
    db.upsert("c", [{"id": 1, "v": [-1]}, {"id": 3, "v": [-3]}])
    expected = {r["id"]: r["v"] for r in data if r["id"] % 3}
    expected.update({1: [-1], 3: [-3]})
    for step in ("live", "flush", "reopen", "compact", "reopen"):
        if step == "flush":
            disk_client.flush()
        elif step == "reopen":
            disk_client = reopen(disk_client)
        elif step == "compact":
            stats = disk_client.nosql.compact("c")
            assert stats["segments_after"] == 1
        got = {r["id"]: r["v"] for r in disk_client.nosql.query("c")["data"]}
        assert got == expected, step
    disk_client.close()


def test_get_by_key_sees_deletes_upserts_and_fields_added_later(client: Memora) -> None:
    db = client.nosql
    db.insert("c", [{"id": i, "t": [i, i]} for i in range(3000)])
    client.flush()
    db.delete("c", key=10)
    db.upsert("c", {"id": 11, "t": [-1]})
    db.insert("c", {"id": 5000, "t": [1], "note": "late"})
    assert db.get("c", key=10)["data"] == []
    assert db.get("c", key=11)["data"] == [{"id": 11, "t": [-1], "note": None}]
    assert db.get("c", key=12)["data"] == [{"id": 12, "t": [12, 12], "note": None}]
    assert db.get("c", key=5000, output_fields=["note"])["data"][0][0] == "late"
    assert db.get("c", key=99_999)["data"] == []


def test_inference_from_numpy_columns_follows_their_dtypes(client: Memora) -> None:
    n = 4
    client.nosql.insert("np", {
        "id": np.arange(n), "f32": np.ones(n, dtype=np.float32), "f64": np.ones(n), "b": np.ones(n, dtype=bool),
        "tokens": np.full((n, 3), 40_000, dtype=np.int64), "vec": np.zeros((n, 2), dtype=np.float32),
        "s": np.array(["a", "b", "c", "d"]),
    })
    kinds = {f["field_name"]: (f["data_type"], f.get("element_data_type"), f.get("dim"))
             for f in client.nosql.describe_collection("np")["fields"]}
    assert kinds == {
        "id": ("INT64", None, None), "f32": ("FLOAT", None, None), "f64": ("DOUBLE", None, None),
        "b": ("BOOL", None, None), "tokens": ("ARRAY", "INT32", None), "vec": ("FLOAT_VECTOR", None, 2),
        "s": ("VARCHAR", None, None),
    }
    assert client.nosql.get("np", key=3)["data"][0]["s"] == "d"


def test_numpy_columns_are_copied_so_the_caller_may_reuse_its_buffers(client: Memora) -> None:
    """A bulk insert that returned is stored: refilling the arrays it was given changes nothing,
    key column included (the memtable once kept views of them)."""
    keys = np.array([1, 2])
    ints, floats = np.array([10, 20], dtype=np.int64), np.array([0.5, 1.5])
    vectors = np.ones((2, 3), dtype=np.float32)
    tokens = np.full((2, 4), 2**40, dtype=np.int64)
    flags = np.array([[True, False], [False, True]])
    client.nosql.insert("c", {"id": keys, "x": ints, "f": floats, "v": vectors, "t": tokens, "b": flags})
    for array in (keys, ints, floats, vectors, tokens, flags):
        array[0] = array[1]
    rows = client.nosql.query("c", filter="id >= 0")["data"]
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["x"] == 10 and rows[0]["f"] == 0.5 and rows[0]["v"] == [1.0, 1.0, 1.0]
    assert rows[0]["t"] == [2**40] * 4 and rows[0]["b"] == [True, False]
    assert client.nosql.get("c", key=1)["data"][0]["x"] == 10
