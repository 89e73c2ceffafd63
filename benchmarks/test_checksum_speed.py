"""What the compiled CRC-32 buys: checksumming what a store writes, against zlib's ``crc32``.

Every log record, segment block and footer is checksummed when written and again when
read. memora_lite's kernel (``csrc/mlite_crc32.c``, carry-less multiply folding) and
zlib's, its twin, run on the same bytes in the same run:

* ``log``: the log records of inserting every row in 4,096-row numpy batches (the
  ``fillbulk_numpy`` workload's records, ~30 MB for 87,599 SQuAD rows);
* ``rows``: the one-row records of the ``fillrow`` workload (~545 bytes each), one call each.

Measure::

    MEMORA_BENCH_ROWS=87599 python -m pytest benchmarks/test_checksum_speed.py --benchmark-enable \\
        --benchmark-only --benchmark-columns=min,median,rounds
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from memora_lite import BACKEND
from memora_lite.schema import Schema
from memora_lite.storage.format import WAL_INSERT_ROW
from memora_lite.storage.records import encode_rows

if TYPE_CHECKING:
    from conftest import Squad


def _kernel(kernel: str) -> Callable[..., int]:
    if kernel == "zlib":
        return zlib.crc32
    if BACKEND == "numpy":
        pytest.skip("MEMORA_LITE_BACKEND=numpy: no compiled kernels")
    from memora_lite.storage._checksum import crc32

    return crc32


@pytest.fixture(scope="module")
def records(squad: Squad) -> dict[str, list[bytes]]:
    schema = Schema.infer(squad.cols, "id")
    log = []
    for cols in squad.column_batches(squad.n):
        batch, _ = schema.to_batch(cols, "checksum")
        log.append(b"".join(encode_rows(batch, schema, None)))
    encoder = schema.row_encoder
    assert encoder is not None
    rows = [encoder.encode(row, WAL_INSERT_ROW)[2] for row in squad.rows]
    return {"log": log, "rows": rows}


@pytest.mark.parametrize("kernel", ["compiled", "zlib"])
@pytest.mark.parametrize("data", ["log", "rows"])
def test_checksum(benchmark: Any, records: dict[str, list[bytes]], data: str, kernel: str) -> None:
    """CRC-32 of each record of ``data``, one call per record."""
    crc32 = _kernel(kernel)
    blobs = records[data]

    def run() -> list[int]:
        return [crc32(blob) for blob in blobs]

    assert benchmark(run) == [zlib.crc32(blob) for blob in blobs]
    benchmark.extra_info.update(workload="checksum", engine="memora_lite", kernel=kernel, data=data,
                                calls=len(blobs), bytes=sum(map(len, blobs)))
