"""Parquet export and import: a round trip keeps every value and type; DuckDB and pyarrow read our files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from every_type import ROWS, all_rows, make_row, same_collection

from memora_lite import FieldNotFoundError, InvalidArgumentError, Memora
from memora_lite.interop import from_parquet, to_parquet

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def test_round_trip_through_parquet_keeps_every_value_dtype_and_field(client: Memora, tmp_path: Path) -> None:
    path = tmp_path / "every.parquet"
    assert to_parquet(client, "every", path, batch_rows=25) == ROWS
    assert from_parquet(client, "copy", path, batch_rows=10) == ROWS
    same_collection(client, "every", "copy")


def test_pyarrow_reads_int_lists_as_int_lists_of_the_stored_width(client: Memora, tmp_path: Path) -> None:
    path = tmp_path / "every.parquet"
    to_parquet(client, "every", path, batch_rows=25)
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    table = pq.read_table(path)
    assert table.schema.field("tokens").type.value_type == pa.int16()
    assert table.schema.field("mask").type.value_type == pa.int8()
    assert table.schema.field("vec").type == pa.list_(pa.float32(), 4)
    assert table.column("tokens").to_pylist() == [make_row(i)["tokens"] for i in range(ROWS)]


def test_duckdb_reads_the_export_with_sql_types(client: Memora, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "every.parquet"
    to_parquet(client, "every", path)
    con = duckdb.connect()
    types = dict(con.execute(f"select column_name, column_type from (describe select * from '{path}')").fetchall())
    assert types["tokens"] == "SMALLINT[]" and types["mask"] == "TINYINT[]" and types["i32"] == "INTEGER"
    assert types["f32"] == "FLOAT" and types["text"] == "VARCHAR"
    rows = con.execute(f"select id, tokens, text, meta->>'$.n' from '{path}' order by id").fetchall()
    expected = [make_row(i) for i in range(ROWS)]
    assert [r[0] for r in rows] == [e["id"] for e in expected]
    assert [r[1] for r in rows] == [e["tokens"] for e in expected]
    assert [r[2] for r in rows] == [e["text"] for e in expected]
    assert [r[3] for r in rows] == [None if e["meta"] is None else str(e["meta"]["n"]) for e in expected]


def test_a_file_written_by_duckdb_imports_with_inferred_types(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "duck.parquet"
    duckdb.execute(f"""copy (select i::bigint as id, [i, i + 1]::smallint[] as ids, 'x' || i as name,
                       case when i = 2 then null else i / 2 end as half from range(5) t(i))
                       to '{path}' (format parquet)""")
    with Memora(path=":memory:") as client:
        assert from_parquet(client, "duck", path) == 5
        fields = {f["field_name"]: f for f in client.nosql.describe_collection("duck")["fields"]}
        assert fields["ids"]["element_data_type"] == "INT16"
        assert fields["half"]["data_type"] == "DOUBLE" and fields["half"]["nullable"]
        assert all_rows(client, "duck")[2] == {"id": 2, "ids": [2, 3], "name": "x2", "half": None}


def test_export_of_a_filtered_projection(client: Memora, tmp_path: Path) -> None:
    path = tmp_path / "part.parquet"
    assert to_parquet(client, "every", path, filter="id < 30", output_fields=["vec"]) == 10
    assert pq.read_table(path).column_names == ["id", "vec"]


def test_a_failed_export_leaves_no_file_behind(client: Memora, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = out / "out.parquet"
    with pytest.raises(FieldNotFoundError):
        to_parquet(client, "every", path, output_fields=["nope"])

    def stop(rows: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        to_parquet(client, "every", path, batch_rows=10, progress=stop)
    assert os.listdir(out) == []


def test_import_of_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with Memora(path=":memory:") as client:
        with pytest.raises(InvalidArgumentError, match="cannot read it as Parquet"):
            from_parquet(client, "x", bad)
        with pytest.raises(InvalidArgumentError, match="cannot read it as Parquet"):
            from_parquet(client, "x", tmp_path / "missing.parquet")
        assert not client.nosql.has_collection("x")
