"""JSON Lines export and import: values round-trip; with the schema file, types do too."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from every_type import ROWS, all_rows, make_row, same_collection

from memora_lite import InvalidArgumentError, Memora, SchemaError
from memora_lite.interop import from_jsonl, to_jsonl
from memora_lite.interop.jsonl import read_schema


def test_round_trip_with_the_schema_file_keeps_every_value_dtype_and_field(client: Memora, tmp_path: Path) -> None:
    rows, schema = tmp_path / "every.jsonl", tmp_path / "every.schema.json"
    assert to_jsonl(client, "every", rows, schema_path=schema, batch_rows=25) == ROWS
    assert from_jsonl(client, "copy", rows, schema_path=schema, batch_rows=10) == ROWS
    same_collection(client, "every", "copy")


def test_each_line_is_one_row_of_plain_json(client: Memora, tmp_path: Path) -> None:
    path = tmp_path / "every.jsonl"
    to_jsonl(client, "every", path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == ROWS
    for i, line in enumerate(lines):
        assert json.loads(line) == make_row(i)


def test_without_a_schema_values_survive_and_types_are_inferred(client: Memora, tmp_path: Path) -> None:
    path = tmp_path / "every.jsonl"
    to_jsonl(client, "every", path, output_fields=["tokens", "text", "f64"])
    assert from_jsonl(client, "inferred", path) == ROWS
    fields = {f["field_name"]: f for f in client.nosql.describe_collection("inferred")["fields"]}
    assert fields["tokens"]["data_type"] == "ARRAY" and fields["f64"]["data_type"] == "DOUBLE"
    original = [{k: r[k] for k in ("id", "tokens", "text", "f64")} for r in all_rows(client, "every")]
    assert all_rows(client, "inferred") == original


def test_a_json_array_file_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    array, lines = tmp_path / "rows.json", tmp_path / "rows.jsonl"
    array.write_text(' [{"id": 1, "x": [1, 2]}, {"id": 2, "x": []}]')
    lines.write_text('{"id": 1, "x": [1, 2]}\n\n{"id": 2, "x": []}\n')
    with Memora(path=":memory:") as client:
        assert from_jsonl(client, "a", array) == 2
        assert from_jsonl(client, "b", lines) == 2
        assert all_rows(client, "a") == all_rows(client, "b") == [{"id": 1, "x": [1, 2]}, {"id": 2, "x": []}]


def test_another_primary_key_without_a_schema(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"doc": 5, "title": "t"}\n')
    with Memora(path=":memory:") as client:
        from_jsonl(client, "docs", path, primary_key="doc")
        assert client.nosql.describe_collection("docs")["primary_key"] == "doc"
        assert client.nosql.get(collection_name="docs", ids=[5])["data"] == [{"doc": 5, "title": "t"}]


def test_bad_input_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\n{"id": 2,\n')
    with Memora(path=":memory:") as client:
        with pytest.raises(InvalidArgumentError, match=r"bad\.jsonl, line 2: not valid JSON"):
            from_jsonl(client, "t", path, batch_rows=1)
        path.write_text('{"id": 1}\n[1, 2]\n')
        with pytest.raises(InvalidArgumentError, match="line 2: expected a JSON object"):
            from_jsonl(client, "u", path)
        with pytest.raises(InvalidArgumentError, match="cannot read"):
            from_jsonl(client, "u", tmp_path / "missing.jsonl")
        path.write_bytes(b'{"id": 1, "t": "\xff"}\n')
        with pytest.raises(InvalidArgumentError, match="not UTF-8"):
            from_jsonl(client, "u", path)
        (tmp_path / "schema.json").write_text('{"fields": "nope"}')
        with pytest.raises(InvalidArgumentError, match="not a schema file"):
            read_schema(tmp_path / "schema.json")


def test_values_json_cannot_hold_are_refused_naming_the_row(tmp_path: Path) -> None:
    with Memora(path=":memory:") as client:
        client.nosql.insert(collection_name="b", data={"id": 7, "blob": {"raw": b"\x00"}})
        with pytest.raises(SchemaError, match="row id=7"):
            to_jsonl(client, "b", tmp_path / "b.jsonl")
        assert not (tmp_path / "b.jsonl").exists()


def test_export_to_an_open_text_stream(client: Memora) -> None:
    out = io.StringIO()
    assert to_jsonl(client, "every", out, filter="id == 3") == 1
    assert json.loads(out.getvalue()) == make_row(1)
