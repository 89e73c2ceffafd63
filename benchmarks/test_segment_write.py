"""What a flush costs: writing all SQuAD-shaped rows as one segment, on one encoder thread and on
every thread ``storage/segment.py`` uses (``ENCODE_THREADS``), in the same run.

memora_lite only (no peer has a segment writer to compare): the ratio of the two rows is
what encoding blocks on several threads buys. The segment goes to a real file and is synced.

Measure::

    MEMORA_BENCH_ROWS=87599 python -m pytest benchmarks/test_segment_write.py --benchmark-enable \\
        --benchmark-only --benchmark-columns=min,median,rounds
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from memora_lite.schema import Schema
from memora_lite.storage import segment
from memora_lite.storage.fs import OsFileSystem

if TYPE_CHECKING:
    from conftest import Squad


@pytest.mark.parametrize("threads", sorted({1, segment.ENCODE_THREADS}))
def test_segment_write(benchmark: Any, squad: Squad, threads: int, tmp_path: Any,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """One segment of ``squad.n`` rows, from a batch already in key order (a flush)."""
    schema = Schema.infer(squad.cols, "id")
    batch, schema = schema.to_batch(squad.cols, "bench")
    monkeypatch.setattr(segment, "ENCODE_THREADS", threads)
    fs = OsFileSystem()
    path = os.path.join(tmp_path, "seg.mls")
    keys = benchmark.pedantic(segment.write_segment, args=(fs, path, batch, schema), rounds=5, iterations=1)
    assert keys == (0, squad.n - 1)
    reader = segment.SegmentReader(fs, path)
    back = reader.read_rows(["input_ids"], np.array([squad.n - 1]), schema)
    reader.close()
    assert back.columns["input_ids"].to_lists() == [squad.cols["input_ids"][-1].tolist()]
    benchmark.extra_info.update(workload="segment_write", engine="memora_lite", threads=threads, rows=squad.n)
