"""Segment writing: blocks encode on several threads and the file is the same byte for byte."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from memora_lite.results import column_to_list
from memora_lite.schema import Schema
from memora_lite.storage import segment
from memora_lite.storage.fs import MemoryFileSystem

ROWS = 300
BLOCK_ROWS = 32  # 10 blocks per column: enough for every encoder thread
RealThread = segment.Thread


def _batch() -> tuple[object, Schema]:
    rng = np.random.default_rng(7)
    data = {
        "id": list(range(ROWS)),
        "n": [int(v) for v in rng.integers(-5, 10**6, ROWS)],
        "f": [float(v) for v in rng.random(ROWS)],
        "s": [f"row {i}" * (i % 4) for i in range(ROWS)],
        "tokens": [[int(v) for v in rng.integers(0, 30_000, i % 40)] + [0] * (i % 9) for i in range(ROWS)],
        "meta": [{"k": i} if i % 3 else None for i in range(ROWS)],
    }
    schema = Schema.infer(data, "id")
    batch, schema = schema.to_batch(data, "c")
    assert batch.null_mask("meta") is not None  # a column with nulls: its masks sit between blocks
    return batch, schema


class Refused(RealThread):  # type: ignore[misc,valid-type]
    """A thread that cannot start, as in Python 3.12.1 once the interpreter has begun to exit."""

    def start(self) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")


def _written(monkeypatch: pytest.MonkeyPatch, threads: int, thread_class: type = RealThread) -> tuple[bytes, list[str]]:
    """The segment file of ``_batch()`` encoded on ``threads`` threads, and the helper threads made."""
    helpers: list[str] = []

    def spy(**kwargs: object) -> object:
        helpers.append(str(kwargs["name"]))
        return thread_class(**kwargs)

    monkeypatch.setattr(segment, "ENCODE_THREADS", threads)
    monkeypatch.setattr(segment, "Thread", spy)
    batch, schema = _batch()
    fs = MemoryFileSystem()
    fs.makedirs("/c")
    segment.write_segment(fs, "/c/s.mls", batch, schema, block_rows=BLOCK_ROWS)
    return fs.read("/c/s.mls"), helpers


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_blocks_encoded_on_threads_give_the_same_file(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    serial, no_helpers = _written(monkeypatch, 1)
    parallel, helpers = _written(monkeypatch, threads)
    assert no_helpers == [] and helpers == [f"memora-encode-{k}" for k in range(1, threads)]
    assert parallel == serial

    batch, schema = _batch()
    fs = MemoryFileSystem()
    fs.makedirs("/c")
    fs.write_file("/c/s.mls", parallel)
    back = segment.SegmentReader(fs, "/c/s.mls").read_rows(schema.names, np.arange(ROWS), schema)
    for name in schema.names:
        got = column_to_list(back.columns[name], back.null_mask(name))
        assert got == column_to_list(batch.columns[name], batch.null_mask(name)), name


def test_an_error_on_an_encoder_thread_reaches_the_caller_and_writes_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real_encode = segment.codecs.encode_column
    calls: list[int] = []

    def failing(column: object, kind: str, level: int) -> tuple[str, bytes]:
        calls.append(1)
        if len(calls) == 7:
            raise MemoryError("block 7")
        return real_encode(column, kind, level)

    monkeypatch.setattr(segment, "ENCODE_THREADS", 2)
    monkeypatch.setattr(segment.codecs, "encode_column", failing)
    batch, schema = _batch()
    fs = MemoryFileSystem()
    fs.makedirs("/c")
    with pytest.raises(MemoryError, match="block 7"):
        segment.write_segment(fs, "/c/s.mls", batch, schema, block_rows=BLOCK_ROWS)
    assert not fs.exists("/c/s.mls")


@pytest.mark.parametrize("threads", [2, 4])
def test_encoder_threads_that_cannot_start_leave_their_blocks_to_the_calling_thread(
        monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    """A background flush still running when the interpreter exits must finish its segment
    (tests/storage/test_background_flush.py runs that exit for real)."""
    serial, _ = _written(monkeypatch, 1)
    refused, helpers = _written(monkeypatch, threads, Refused)
    assert len(helpers) == threads - 1
    assert refused == serial


def test_a_one_block_segment_encodes_on_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    helpers: list[int] = []
    monkeypatch.setattr(segment, "ENCODE_THREADS", 4)
    monkeypatch.setattr(segment, "Thread", lambda *a, **k: helpers.append(1))
    schema = Schema.infer({"id": [1], "t": [[1, 2]]}, "id")
    batch, _ = schema.to_batch({"id": [1, 2, 3], "t": [[1], [2, 3], []]}, "c")
    fs = MemoryFileSystem()
    fs.makedirs("/c")
    assert segment.write_segment(fs, "/c/s.mls", batch, schema) == (1, 3)
    assert helpers == []


@pytest.mark.parametrize("cuts", [[], [BLOCK_ROWS, 2 * BLOCK_ROWS], [1, 150, 151, 299], [0, ROWS // 2, ROWS]])
def test_batches_written_one_after_another_give_the_file_of_their_concatenation(cuts: list[int]) -> None:
    """A flush hands the memtable's batches over as they are; blocks that straddle two of them,
    empty batches, and null masks present in only some batches change nothing in the file."""
    batch, schema = _batch()
    edges = [0, *cuts, ROWS]
    chunks = [batch.take(np.arange(a, b)) for a, b in itertools.pairwise(edges)]
    fs = MemoryFileSystem()
    fs.makedirs("/c")
    whole = segment.write_segment(fs, "/c/whole.mls", batch, schema, block_rows=BLOCK_ROWS)
    joined = segment.write_segment(fs, "/c/joined.mls", chunks, schema, block_rows=BLOCK_ROWS)
    assert joined == whole and fs.read("/c/joined.mls") == fs.read("/c/whole.mls")


def test_a_chunk_without_nulls_next_to_one_with_them_keeps_its_rows_not_null() -> None:
    schema = Schema.infer({"id": [1], "meta": [{"a": 1}]}, "id")
    with_nulls, _ = schema.to_batch({"id": [1, 2], "meta": [None, {"a": 2}]}, "c")
    without, _ = schema.to_batch({"id": [3, 4], "meta": [{"a": 3}, {"a": 4}]}, "c")
    assert with_nulls.null_mask("meta") is not None and without.null_mask("meta") is None
    fs = MemoryFileSystem()
    fs.makedirs("/c")
    segment.write_segment(fs, "/c/s.mls", [with_nulls, without], schema)
    back = segment.SegmentReader(fs, "/c/s.mls").read_rows(["meta"], np.arange(4), schema)
    assert column_to_list(back.columns["meta"], back.null_mask("meta")) == [None, {"a": 2}, {"a": 3}, {"a": 4}]


@pytest.mark.parametrize("ids", [[0, 1, 2, 3, 4, 5], [3, 4, 5, 0, 1, 2]])
def test_a_flush_joins_the_memtable_only_when_ids_arrived_out_of_order(
        monkeypatch: pytest.MonkeyPatch, ids: list[int]) -> None:
    from memora_lite import Memora
    from memora_lite.storage.memtable import MemTable

    joined: list[int] = []
    real = MemTable.sorted_view
    monkeypatch.setattr(MemTable, "sorted_view", lambda self: joined.append(1) or real(self))
    with Memora(path=":memory:") as client:
        for lo in range(0, 6, 3):
            client.nosql.insert("c", {"id": ids[lo:lo + 3], "t": [[i, 0, 0] for i in ids[lo:lo + 3]]})
        client.nosql.flush("c")
        assert bool(joined) == (ids != sorted(ids))
        assert client.nosql.query("c", filter="id >= 0", output_fields=["t"])["data"][1]["t"] == [1, 0, 0]
