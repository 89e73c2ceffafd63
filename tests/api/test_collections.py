"""Collection management: create, has, list, describe, drop, and names that must be refused."""

from __future__ import annotations

import os

import pytest

from memora_lite import (
    CollectionNotFoundError,
    DataType,
    Field,
    InvalidNameError,
    Memora,
    MemoraError,
    SchemaError,
)


def test_create_has_list_describe_drop(client: Memora) -> None:
    db = client.nosql
    assert db.list_collections() == []
    db.create_collection("books", fields=[Field("id", DataType.INT64, is_primary=True),
                                          Field("title", DataType.VARCHAR, max_length=100)])
    assert db.has_collection("books")
    assert not db.has_collection("films")
    assert db.list_collections() == ["books"]
    info = db.describe_collection("books")
    assert info["primary_key"] == "id"
    assert [f["field_name"] for f in info["fields"]] == ["id", "title"]
    assert info["row_count"] == 0
    db.insert("books", [{"id": 1, "title": "Dune"}, {"id": 2, "title": "Emma"}])
    assert db.describe_collection("books")["row_count"] == 2
    db.drop_collection("books")
    assert not db.has_collection("books")
    assert db.list_collections() == []
    with pytest.raises(CollectionNotFoundError):
        db.query("books")


def test_create_is_idempotent_for_the_same_fields_and_refuses_other_fields(client: Memora) -> None:
    fields = [Field("id", DataType.INT64, is_primary=True), Field("x", DataType.INT32)]
    client.nosql.create_collection("c", fields=fields)
    client.nosql.insert("c", {"id": 1, "x": 5})
    client.nosql.create_collection("c", fields=fields)
    assert client.nosql.describe_collection("c")["row_count"] == 1
    with pytest.raises(SchemaError, match="already exists"):
        client.nosql.create_collection("c", fields=[Field("id", DataType.INT64, is_primary=True)])


def test_string_primary_key(client: Memora) -> None:
    client.nosql.create_collection("s", primary_key="doc", fields=[Field("doc", DataType.VARCHAR),
                                                                   Field("n", DataType.INT64)])
    client.nosql.insert("s", [{"doc": "b", "n": 2}, {"doc": "a", "n": 1}])
    rows = client.nosql.query("s", filter='doc >= "a"')["data"]
    assert [r["doc"] for r in rows] == ["a", "b"]
    assert client.nosql.get("s", key="b")["data"][0]["n"] == 2


def test_missing_collection_suggests_the_close_name(client: Memora) -> None:
    client.nosql.insert("finetune_data", {"id": 0, "start_token": 1})
    with pytest.raises(CollectionNotFoundError) as err:
        client.nosql.query(collection_name="finetuning_data", filter="0 <= id < 50")
    assert "did you mean 'finetune_data'" in str(err.value)
    assert isinstance(err.value, MemoraError) and isinstance(err.value, KeyError)


@pytest.mark.parametrize("name", ["../x", "/etc", "a/b", "x\x00y", "", "a" * 256, ".hidden", "con fig",
                                  "name\n", 5, None])
def test_hostile_collection_names_are_refused_and_create_nothing(tmp_path: os.PathLike[str], name: object) -> None:
    root = os.path.join(tmp_path, "store")
    with Memora(path=root) as c:
        with pytest.raises(InvalidNameError):
            c.nosql.insert(collection_name=name, data={"id": 1})  # type: ignore[arg-type]
        with pytest.raises(InvalidNameError):
            c.nosql.create_collection(name)  # type: ignore[arg-type]
        if isinstance(name, str):
            assert c.nosql.has_collection(name) is False
        else:
            with pytest.raises(InvalidNameError):
                c.nosql.has_collection(name)  # type: ignore[arg-type]
    outside = sorted(os.listdir(tmp_path))
    assert outside == ["store"]
    assert os.listdir(os.path.join(root, "default")) == ["LOCK"]


@pytest.mark.parametrize("project", ["../up", "/abs", ".", "..", "a/b", "x" * 200])
def test_hostile_project_ids_are_refused(tmp_path: os.PathLike[str], project: str) -> None:
    with pytest.raises(InvalidNameError):
        Memora(project_id=project, path=os.path.join(tmp_path, "s"))
    assert os.listdir(tmp_path) == []


def test_projects_are_separate_folders(tmp_path: os.PathLike[str]) -> None:
    root = os.path.join(tmp_path, "s")
    with Memora(project_id="alpha", path=root) as a:
        a.nosql.insert("c", {"id": 1})
    with Memora(project_id="beta", path=root) as b:
        assert b.nosql.list_collections() == []
    assert sorted(os.listdir(root)) == ["alpha", "beta"]


def test_default_path_is_env_var_then_memora_data(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MEMORA_LITE_PATH", raising=False)
    with Memora(project_id="YOUR_PROJECT", api_key="YOUR_API_KEY") as c:
        c.nosql.insert("finetune_data", {"id": 0})
    assert os.path.isdir(os.path.join(tmp_path, "memora_data", "YOUR_PROJECT", "finetune_data"))
    monkeypatch.setenv("MEMORA_LITE_PATH", os.path.join(tmp_path, "elsewhere"))
    with Memora() as c:
        c.nosql.insert("x", {"id": 0})
    assert os.path.isdir(os.path.join(tmp_path, "elsewhere", "default", "x"))


def test_closed_client_raises(client: Memora) -> None:
    client.close()
    client.close()
    with pytest.raises(MemoraError, match="closed"):
        client.nosql.list_collections()


def test_unknown_option_is_an_error(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(MemoraError, match="unknown option"):
        Memora(path=":memory:", durabilty="full")
    with pytest.raises(MemoraError, match="durability"):
        Memora(path=":memory:", durability="sometimes")


def test_declared_schema_errors_name_the_problem() -> None:
    with pytest.raises(SchemaError, match="element_data_type"):
        Field("a", DataType.ARRAY)
    with pytest.raises(SchemaError, match="dim"):
        Field("v", DataType.FLOAT_VECTOR)
    with pytest.raises(SchemaError, match="unknown data type"):
        Field("v", "FLOAT16")
    with pytest.raises(SchemaError, match="primary key 'id' is not among"), Memora(path=":memory:") as c:
        c.nosql.create_collection("c", fields=[Field("x", DataType.INT64)])
