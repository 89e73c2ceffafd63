"""What three unmet goals cost at their floors: each step this design takes for them, timed alone.

A goal of the issue is a rate for a whole workload. These benchmarks time, on the same
SQuAD-shaped rows and in the same run as the workloads, the steps the current design must
take for it, each alone with its input ready: compiled kernels on data already in memory,
no Python per row, nothing else running. ``report.py`` adds up each workload's steps to
the best rate they allow run back to back, beside the goal. Where that bound is below the
goal, no tuning of the Python around the steps can meet it on this machine: only doing less
work (a different design) or spreading it over more cores can.

* ``bulk_numpy``: an insert of 4,096-row numpy batches, then the flush --
  ``narrow`` (range-check and narrow both int64 token columns, one compiled read each,
  into a fresh memtable arena as the engine does),
  ``log_encode`` (their tokens1 bytes, as the log holds them), ``log_write`` (those bytes
  written to a file, one ``write()`` per batch and column) and ``segment`` (every row
  encoded, compressed and written as one segment, on ``ENCODE_THREADS`` threads).
* ``range_numpy``: 1,024-row reads of both token columns into 2-D arrays -- ``zstd``
  (decompress every block of both columns) and ``dense`` (expand the decompressed rows
  into ``(1024, 384)`` arrays of the stored dtypes).
* ``fillrow``: one row per call -- ``encode`` (check the row dict, frame its log record
  and hold its values: ``RowEncoder.encode`` into the memtable's ``PendingRows``, a batch
  in its arena every 4,096 rows) and ``write`` (one ``write()`` of each record).

Measure::

    MEMORA_BENCH_ROWS=87599 python -m pytest benchmarks/test_floors.py --benchmark-enable --benchmark-only \\
        --benchmark-json=floors.json && python benchmarks/report.py floors.json
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from memora_lite import codecs
from memora_lite.codecs import backend
from memora_lite.columns import Ragged
from memora_lite.schema import Schema, element_dtype
from memora_lite.storage import segment
from memora_lite.storage.arena import Arena
from memora_lite.storage.format import WAL_INSERT_ROW
from memora_lite.storage.fs import OsFileSystem
from memora_lite.storage.memtable import PENDING_ROWS

if TYPE_CHECKING:
    from conftest import Squad

TOKEN_COLUMNS = ("input_ids", "attention_mask")
ROUNDS = 5


def _record(benchmark: Any, workload: str, step: str, rows: int) -> None:
    benchmark.extra_info.update(workload="floor", floor_of=workload, step=step, rows=rows)


def _narrowed(squad: Squad, schema: Schema) -> list[tuple[str, np.ndarray]]:
    """Both token columns of every 4,096-row batch, narrowed to their stored dtype: what the log encodes."""
    out = []
    for batch in squad.column_batches(squad.n):
        for name in TOKEN_COLUMNS:
            values = batch[name].reshape(-1)
            narrowed, _, _ = codecs.narrow_ints(values, element_dtype(schema.field(name)))
            out.append((name, narrowed))
    return out


@pytest.fixture(scope="module")
def stored(squad: Squad) -> tuple[Schema, Any]:
    """The schema a store infers for the rows, and all rows as one batch in its types."""
    schema = Schema.infer(squad.cols, "id")
    batch, schema = schema.to_batch(squad.cols, "floors")
    return schema, batch


def _write_each(path: str, blobs: list[bytes]) -> int:
    """Append each of ``blobs`` to a fresh file at ``path`` with a ``write()`` of its own, as the log does."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
    try:
        return sum(os.write(fd, blob) for blob in blobs)
    finally:
        os.close(fd)


def _ragged(values: np.ndarray, width: int) -> Ragged:
    return Ragged(values, np.arange(0, len(values) + 1, width, dtype=np.int64))


@pytest.mark.parametrize("step", ["narrow", "log_encode", "log_write", "segment"])
def test_floor_bulk_numpy(benchmark: Any, squad: Squad, stored: tuple[Schema, Any], step: str,
                          tmp_path: Any) -> None:
    """One step of inserting every row from numpy batches and flushing them, alone."""
    schema, batch = stored
    width = squad.cols["input_ids"].shape[1]
    run: Callable[[], Any]
    if step == "narrow":
        batches = [(b[name].reshape(-1), element_dtype(schema.field(name)))
                   for b in squad.column_batches(squad.n) for name in TOKEN_COLUMNS]

        def run() -> Any:
            arena = Arena()
            return [codecs.narrow_ints(values, dtype, arena.empty(len(values), dtype))[0] for values, dtype in batches]
    elif step == "log_encode":
        narrowed = _narrowed(squad, schema)

        def run() -> Any:
            return [codecs.encode_column(_ragged(values, width), "tokens", None) for _, values in narrowed]
    elif step == "log_write":
        blobs = [codecs.encode_column(_ragged(values, width), "tokens", None)[1]
                 for _, values in _narrowed(squad, schema)]

        def run() -> Any:
            return _write_each(os.path.join(tmp_path, "log"), blobs)
    else:
        fs, path = OsFileSystem(), os.path.join(tmp_path, "seg.mls")

        def run() -> Any:
            return segment.write_segment(fs, path, batch, schema)
    assert benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    _record(benchmark, "fillbulk_numpy", step, squad.n)


@pytest.fixture(scope="module")
def blocks(stored: tuple[Schema, Any]) -> list[tuple[bytes, np.ndarray]]:
    """Every 1,024-row block of both token columns as a segment stores it (zstd frame and header),
    with the array its rows decode into."""
    schema, batch = stored
    out = []
    for name in TOKEN_COLUMNS:
        column = batch.columns[name]
        dtype = element_dtype(schema.field(name))
        width = int(column.lengths()[0])
        for lo in range(0, len(batch), segment.SEGMENT_BLOCK_ROWS):
            rows = column.take(slice(lo, min(lo + segment.SEGMENT_BLOCK_ROWS, len(batch))))
            _, blob = codecs.encode_column(rows, "tokens", segment.SEGMENT_CODEC_LEVEL)
            out.append((blob, np.empty((len(rows), width), dtype=dtype)))
    return out


@pytest.mark.parametrize("step", ["zstd", "dense"])
def test_floor_range_numpy(benchmark: Any, squad: Squad, blocks: list[tuple[bytes, np.ndarray]], step: str) -> None:
    """One step of reading every row's token columns into 2-D arrays, block by block, alone."""
    frames = [blob[backend.HEADER_SIZE:] for blob, _ in blocks]
    sizes = [backend.open_block(blob).header.body_size() for blob, _ in blocks]
    run: Callable[[], Any]
    if step == "zstd":
        def run() -> Any:
            return [backend.zstd_decompress(frame, size, "floor", scratch=True) for frame, size in zip(frames, sizes)]
    else:
        opened = [(backend.open_block(blob), out) for blob, out in blocks]

        def run() -> Any:
            for block, out in opened:
                block.dense_into(0, len(out), out)
            return opened
    assert benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    _record(benchmark, "readrange_np", step, squad.n)


@pytest.mark.parametrize("step", ["encode", "write"])
def test_floor_fillrow(benchmark: Any, squad: Squad, stored: tuple[Schema, Any], step: str, tmp_path: Any) -> None:
    """One step of inserting every row by its own call, alone."""
    schema, _ = stored
    encoder = schema.row_encoder
    assert encoder is not None, "the benchmark rows take the one-row fast path"
    run: Callable[[], Any]
    if step == "encode":
        def run() -> Any:
            pending, arena, batches = schema.pending_rows(), Arena(), []
            for row in squad.rows:
                encoder.encode(row, WAL_INSERT_ROW, into=pending)
                pending.keep()
                if len(pending) == PENDING_ROWS:
                    batches.append(schema.pending_batch(pending, arena))  # the memtable keeps them
            return True
    else:
        records = [encoder.encode(row, WAL_INSERT_ROW)[2] for row in squad.rows]

        def run() -> Any:
            return _write_each(os.path.join(tmp_path, "log"), records)
    assert benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    _record(benchmark, "fillrow", step, squad.n)
