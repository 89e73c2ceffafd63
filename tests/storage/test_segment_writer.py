"""Segment writing: blocks encode on several threads and the file is the same byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

from memora_lite.results import column_to_list
from memora_lite.schema import Schema
from memora_lite.storage import segment
from memora_lite.storage.fs import MemoryFileSystem

ROWS = 300
BLOCK_ROWS = 32  # 10 blocks per column: enough for the thread pool
REAL_POOL = segment.ThreadPoolExecutor


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


def _written(monkeypatch: pytest.MonkeyPatch, threads: int) -> tuple[bytes, list[int]]:
    pools: list[int] = []

    def spy(workers: int, **kwargs: object) -> object:
        pools.append(workers)
        return REAL_POOL(workers, **kwargs)

    monkeypatch.setattr(segment, "ENCODE_THREADS", threads)
    monkeypatch.setattr(segment, "ThreadPoolExecutor", spy)
    batch, schema = _batch()
    fs = MemoryFileSystem()
    fs.makedirs("/c")
    segment.write_segment(fs, "/c/s.mls", batch, schema, block_rows=BLOCK_ROWS)
    return fs.read("/c/s.mls"), pools


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_blocks_encoded_on_threads_give_the_same_file(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    serial, no_pools = _written(monkeypatch, 1)
    parallel, pools = _written(monkeypatch, threads)
    assert no_pools == [] and pools == [threads]
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


def test_a_one_block_segment_encodes_on_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    pools: list[int] = []
    monkeypatch.setattr(segment, "ENCODE_THREADS", 4)
    monkeypatch.setattr(segment, "ThreadPoolExecutor", lambda *a, **k: pools.append(1))
    schema = Schema.infer({"id": [1], "t": [[1, 2]]}, "id")
    batch, _ = schema.to_batch({"id": [1, 2, 3], "t": [[1], [2, 3], []]}, "c")
    fs = MemoryFileSystem()
    fs.makedirs("/c")
    assert segment.write_segment(fs, "/c/s.mls", batch, schema) == (1, 3)
    assert pools == []
