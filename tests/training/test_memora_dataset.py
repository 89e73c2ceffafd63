"""MemoraDataset: fields, renames, dtypes, filters, batch reads, pickling and other processes. Numpy only."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Iterator

import numpy as np
import pytest

from memora_lite import (
    CollectionNotFoundError,
    FieldNotFoundError,
    FilterError,
    InvalidArgumentError,
    Memora,
    MemoraError,
    SchemaError,
)
from memora_lite.models import DataType, Field
from memora_lite.testing.squad import squad_columns
from memora_lite.training import MemoraDataset, RowBatch, StaleDatasetError

N = 3000
SEQ = 24


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    return squad_columns(N, seed=5, seq_len=SEQ)


@pytest.fixture
def store(tmp_path: os.PathLike[str], expected: dict[str, np.ndarray]) -> Iterator[str]:
    path = os.path.join(tmp_path, "store")
    with Memora(path=path) as client:
        client.nosql.insert(collection_name="finetune_data", data=expected)
    yield path


def count_reads(monkeypatch: pytest.MonkeyPatch, ds: MemoraDataset) -> list[str]:
    """Record every store call the dataset makes from now on."""
    nosql = ds._nosql()
    calls: list[str] = []
    for name in ("query", "get"):
        original = getattr(nosql, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(nosql, name, spy)
    return calls


def test_rows_come_back_as_stored(store: str, expected: dict[str, np.ndarray]) -> None:
    ds = MemoraDataset(store, "finetune_data")
    assert len(ds) == N
    assert ds.names == ["input_ids", "attention_mask", "start_token", "end_token"]
    for i in (0, 1023, 1024, N - 1, -1):
        row = ds[i]
        for name in ds.names:
            np.testing.assert_array_equal(row[name], expected[name][i])
    picks = [2999, 0, 1500, 1500, 7]
    batch = ds.__getitems__(picks)
    assert isinstance(batch, RowBatch) and len(batch) == 5
    for name in ds.names:
        np.testing.assert_array_equal(batch.columns[name], expected[name][picks])
    np.testing.assert_array_equal(list(batch)[2]["input_ids"], expected["input_ids"][1500])


def test_fields_renames_and_dtypes(store: str, expected: dict[str, np.ndarray]) -> None:
    ds = MemoraDataset(store, "finetune_data", fields=["start_token", "input_ids"],
                       rename={"start_token": "start_positions"}, dtypes={"input_ids": "int32"})
    assert ds.names == ["start_positions", "input_ids"]
    batch = ds.fetch(np.arange(10))
    assert list(batch.columns) == ["start_positions", "input_ids"]
    assert batch.columns["input_ids"].dtype == np.int32
    assert batch.columns["start_positions"].dtype == np.int64  # ints default to what torch takes
    np.testing.assert_array_equal(batch.columns["start_positions"], expected["start_token"][:10])


def test_token_arrays_default_to_int64_though_stored_narrower(store: str) -> None:
    with Memora(path=store, read_only=True) as client:
        stored = client.nosql.query("finetune_data", filter="id < 2", output_fields=["input_ids"],
                                    output="numpy")["data"]["input_ids"].dtype
    assert stored.itemsize < 8
    assert MemoraDataset(store, "finetune_data")[0]["input_ids"].dtype == np.int64


def test_a_batch_is_one_read_and_a_cached_block_is_not_read_again(store: str, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    ds = MemoraDataset(store, "finetune_data")
    calls = count_reads(monkeypatch, ds)
    ds.__getitems__(list(range(32)))
    assert calls == ["query"]
    ds.__getitems__(list(range(32, 64)))
    assert calls == ["query"]  # same block: from the cache
    ds.__getitems__([5, 1100, 2100, 2200])
    assert calls == ["query", "query", "query"]  # blocks 1 and 2 were new


def test_the_cache_stays_within_its_bound(store: str) -> None:
    ds = MemoraDataset(store, "finetune_data", cache_bytes=1)
    for block in range(3):
        ds.fetch([block * 1024])
    assert len(ds._cache) == 1


def test_a_filter_picks_rows_and_their_keys_need_not_be_contiguous(store: str, expected: dict[str, np.ndarray]
                                                                     ) -> None:
    ds = MemoraDataset(store, "finetune_data", filter="start_token > 100", fields=["start_token"])
    want = np.flatnonzero(expected["start_token"] > 100)
    assert len(ds) == len(want)
    np.testing.assert_array_equal(ds.fetch(np.arange(len(ds))).columns["start_token"], expected["start_token"][want])
    with Memora(path=store) as client:
        client.nosql.delete("finetune_data", filter="id in [3, 1500, 2999]")
    ds = MemoraDataset(store, "finetune_data", fields=["input_ids"])
    kept = np.setdiff1d(np.arange(N), [3, 1500, 2999])
    assert len(ds) == len(kept)
    np.testing.assert_array_equal(ds.fetch(np.arange(len(ds))).columns["input_ids"], expected["input_ids"][kept])


def test_string_primary_keys_are_read_by_key() -> None:
    client = Memora(path=":memory:")
    client.nosql.create_collection("docs", primary_key="name", fields=[
        Field("name", DataType.VARCHAR, is_primary=True), Field("x", DataType.INT32)])
    client.nosql.insert("docs", [{"name": f"doc{i:03d}", "x": i} for i in range(50)])
    ds = MemoraDataset(client, "docs", block_rows=16)
    assert ds.fetch([49, 0, 17]).columns["x"].tolist() == [49, 0, 17]
    client.close()


def test_text_fields_pass_through_as_objects() -> None:
    client = Memora(path=":memory:")
    client.nosql.insert("qa", [{"id": i, "question": f"q{i}", "label": i % 2} for i in range(5)])
    ds = MemoraDataset(client, "qa")
    batch = ds.fetch([4, 1])
    assert batch.columns["question"].tolist() == ["q4", "q1"]
    with pytest.raises(InvalidArgumentError, match="holds text"):
        MemoraDataset(client, "qa", dtypes={"question": "int64"})
    client.close()


def test_mistakes_get_clear_errors(store: str) -> None:
    with pytest.raises(CollectionNotFoundError, match="did you mean 'finetune_data'"):
        MemoraDataset(store, "finetuning_data")
    with pytest.raises(FieldNotFoundError, match="did you mean 'start_token'"):
        MemoraDataset(store, "finetune_data", fields=["start_positions"])
    with pytest.raises(InvalidArgumentError, match="did you mean 'start_token'"):
        MemoraDataset(store, "finetune_data", rename={"start_tokens": "start_positions"})
    with pytest.raises(InvalidArgumentError, match="did you mean 'start_positions'"):
        MemoraDataset(store, "finetune_data", rename={"start_token": "start_positions"},
                      dtypes={"start_position": "int32"})
    with pytest.raises(InvalidArgumentError, match="not a numpy dtype"):
        MemoraDataset(store, "finetune_data", dtypes={"input_ids": "int77"})
    with pytest.raises(InvalidArgumentError, match="two fields one name"):
        MemoraDataset(store, "finetune_data", rename={"start_token": "end_token"})
    with pytest.raises(FilterError):
        MemoraDataset(store, "finetune_data", filter="start_token >")
    with pytest.raises(InvalidArgumentError, match="new, empty store"):
        MemoraDataset(":memory:", "finetune_data")
    with pytest.raises(IndexError, match="out of range"):
        MemoraDataset(store, "finetune_data")[N]


def test_null_values_are_refused_with_a_hint() -> None:
    client = Memora(path=":memory:")
    client.nosql.create_collection("t", fields=[Field("id", DataType.INT64, is_primary=True),
                                                Field("x", DataType.INT64, nullable=True)])
    client.nosql.insert("t", [{"id": 0, "x": 1}, {"id": 1}])
    with pytest.raises(SchemaError, match="is not null"):
        MemoraDataset(client, "t")[0]
    assert len(MemoraDataset(client, "t", filter="x is not null")) == 1
    client.close()


def test_rows_deleted_after_the_dataset_was_made_raise_stale(store: str) -> None:
    client = Memora(path=store)
    ds = MemoraDataset(client, "finetune_data")
    client.nosql.delete("finetune_data", ids=[10])
    with pytest.raises(StaleDatasetError, match="make a new MemoraDataset"):
        ds[0]
    assert isinstance(StaleDatasetError("x"), MemoraError)
    client.close()


def test_it_pickles_as_where_the_store_is_and_reopens_read_only(store: str, expected: dict[str, np.ndarray]
                                                                ) -> None:
    writer = Memora(path=store)
    ds = MemoraDataset(writer, "finetune_data")
    ds[0]
    blob = pickle.dumps(ds)
    assert len(blob) < 2000  # no rows, no key list for keys 0..n-1
    copy = pickle.loads(blob)
    np.testing.assert_array_equal(copy[2500]["input_ids"], expected["input_ids"][2500])
    assert copy._client is not writer and copy._client._options == {"read_only": True, "cache_bytes": 8 << 20}
    copy.close()
    writer.close()


def test_a_memory_store_dataset_refuses_to_leave_its_process() -> None:
    client = Memora(path=":memory:")
    client.nosql.insert("t", [{"id": i, "x": i} for i in range(10)])
    ds = MemoraDataset(client, "t")
    with pytest.raises(InvalidArgumentError, match="num_workers=0"):
        pickle.dumps(ds)
    if "fork" in multiprocessing.get_all_start_methods():  # a forked child inherits it without pickling
        assert "num_workers=0" in _in_child("fork", ds, [0])
    client.close()


def _read_rows(ds: MemoraDataset, indices: list[int], queue: multiprocessing.SimpleQueue) -> None:
    try:
        queue.put(ds.fetch(indices).columns)
    except MemoraError as exc:
        queue.put(str(exc))


def _in_child(method: str, ds: MemoraDataset, indices: list[int]) -> object:
    ctx = multiprocessing.get_context(method)
    queue = ctx.SimpleQueue()
    child = ctx.Process(target=_read_rows, args=(ds, indices, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_processes_of_every_start_method_read_the_store(method: str, store: str,
                                                        expected: dict[str, np.ndarray]) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    writer = Memora(path=store)
    ds = MemoraDataset(writer, "finetune_data")
    ds[0]  # read here first: the child must open its own read-only store, not use this writer
    columns = _in_child(method, ds, [0, 1024, 2999])
    np.testing.assert_array_equal(columns["input_ids"], expected["input_ids"][[0, 1024, 2999]])
    writer.close()
