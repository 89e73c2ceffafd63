"""What the compiled key search buys: finding rows by key in a segment whose ids have gaps.

When a segment's ids are not ``min_pk, min_pk + 1, ...`` (ids chosen by the user, or
rows deleted before a compaction), a ``get`` finds its row by a binary search in a block's
keys. memora_lite only: the same lookups with the compiled search and with its numpy
twin, in the same run; the ratio of the two rows is what the compiled search buys.

Measure::

    MEMORA_BENCH_ROWS=87599 python -m pytest benchmarks/test_key_lookup.py --benchmark-enable \\
        --benchmark-only --benchmark-columns=min,median,rounds
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from memora_lite.columns import Batch
from memora_lite.schema import Schema
from memora_lite.storage import rangeindex, segment
from memora_lite.storage.fs import MemoryFileSystem

if TYPE_CHECKING:
    from conftest import Squad

LOOKUPS = 5_000


@pytest.mark.parametrize("kernel", ["compiled", "numpy"])
def test_key_lookup(benchmark: Any, squad: Squad, kernel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows of ``LOOKUPS`` random keys in one segment of ``squad.n`` rows whose ids step by 3."""
    if kernel == "compiled":
        if rangeindex.BACKEND == "numpy":
            pytest.skip("MEMORA_LITE_BACKEND=numpy: no compiled kernels")
        from memora_lite.storage._rangeindex import search
    else:
        search = rangeindex.search_numpy
    monkeypatch.setattr(rangeindex, "_search_int", search)
    ids = np.arange(squad.n, dtype=np.int64) * 3 + 7
    fs = MemoryFileSystem()
    fs.makedirs("/c")
    segment.write_segment(fs, "/c/s.mls", Batch({"id": ids, "start_token": squad.cols["start_token"]}, squad.n),
                          Schema.infer({"id": [1], "start_token": [1]}, "id"))
    reader = segment.SegmentReader(fs, "/c/s.mls")
    assert not reader.dense
    rows = np.random.default_rng(3).integers(0, squad.n, LOOKUPS)
    keys = ids[rows].tolist()

    def lookups() -> list[int]:
        return [reader.position(k) for k in keys]

    assert benchmark(lookups) == rows.tolist()
    benchmark.extra_info.update(workload="key_lookup", engine="memora_lite", kernel=kernel, calls=LOOKUPS)
