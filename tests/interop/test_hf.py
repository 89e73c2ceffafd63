"""Hugging Face datasets in and out (runs only where ``datasets`` is installed: pip install 'memora_lite[hf]')."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from every_type import FIELDS, ROWS, all_rows, same_collection

from memora_lite import InvalidArgumentError, Memora
from memora_lite.interop import from_hf, to_hf
from memora_lite.models import DataType

datasets = pytest.importorskip("datasets")


def test_round_trip_into_the_same_schema_keeps_every_value_and_dtype(client: Memora) -> None:
    ds = to_hf(client, "every", batch_rows=25)
    assert isinstance(ds, datasets.Dataset) and ds.num_rows == ROWS
    client.nosql.create_collection("copy", fields=FIELDS)
    assert from_hf(client, "copy", ds, batch_rows=10) == ROWS
    same_collection(client, "every", "copy")


def test_into_a_new_collection_types_datasets_knows_survive(client: Memora) -> None:
    # datasets keeps no field metadata: JSON arrives as its text (VARCHAR), and lengths,
    # capacities and nullability are what the data shows.
    from_hf(client, "copy", to_hf(client, "every"))
    fields = {f["field_name"]: f for f in client.nosql.describe_collection("copy")["fields"]}
    original = {f.field_name: f for f in FIELDS}
    for name, f in fields.items():
        want = original[name]
        if want.data_type is DataType.JSON:
            assert f["data_type"] == "VARCHAR"
        else:
            assert (f["data_type"], f.get("element_data_type"), f.get("dim")) == (
                want.data_type.value, want.element_data_type and want.element_data_type.value, want.dim)
    copied = all_rows(client, "copy")
    for row, want in zip(copied, all_rows(client, "every")):
        assert row == {**want, "meta": None if want["meta"] is None else json.dumps(want["meta"], ensure_ascii=False)}


def test_a_dataset_dict_needs_a_split_unless_it_has_one() -> None:
    train = datasets.Dataset.from_dict({"id": ["q1", "q2"], "input_ids": [[101, 7, 102], [101, 102]]})
    test = datasets.Dataset.from_dict({"id": ["q3"], "input_ids": [[101, 9, 102]]})
    with Memora(path=":memory:") as client:
        with pytest.raises(InvalidArgumentError, match="test, train"):
            from_hf(client, "t", datasets.DatasetDict({"train": train, "test": test}))
        assert from_hf(client, "t", datasets.DatasetDict({"train": train, "test": test}), split="test") == 1
        assert from_hf(client, "single", datasets.DatasetDict({"train": train})) == 2
        assert client.nosql.describe_collection("single")["fields"][0]["data_type"] == "VARCHAR"
        assert all_rows(client, "single") == [{"id": "q1", "input_ids": [101, 7, 102]},
                                              {"id": "q2", "input_ids": [101, 102]}]


def test_selected_rows_of_a_dataset_are_what_is_imported(tmp_path: Path) -> None:
    ds = datasets.Dataset.from_dict({"id": list(range(10)), "label": [i % 3 for i in range(10)]})
    picked = ds.select([7, 2, 5])  # an indices mapping over the same Arrow table
    with Memora(path=":memory:") as client:
        assert from_hf(client, "p", picked) == 3
        assert [r["id"] for r in all_rows(client, "p")] == [2, 5, 7]


def test_a_saved_dataset_folder_imports_by_path(tmp_path: Path) -> None:
    ds = datasets.Dataset.from_dict({"id": [1, 2], "emb": [[0.5, 1.5], [2.5, 3.5]]},
                                    features=datasets.Features({"id": datasets.Value("int64"),
                                                                "emb": datasets.Sequence(datasets.Value("float32"),
                                                                                         length=2)}))
    ds.save_to_disk(str(tmp_path / "saved"))
    with Memora(path=":memory:") as client:
        assert from_hf(client, "e", tmp_path / "saved") == 2
        fields = client.nosql.describe_collection("e")["fields"]
        assert fields[1] == {"field_name": "emb", "data_type": "FLOAT_VECTOR", "dim": 2}
        with pytest.raises(InvalidArgumentError, match="not a saved Hugging Face dataset"):
            from_hf(client, "x", tmp_path / "nothing")
