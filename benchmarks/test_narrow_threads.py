"""What a bulk insert's first step costs: range-checking and narrowing the int64 token columns of
every 4,096-row numpy batch to their stored widths, on one thread and on every thread the
compiled kernel may use (``codecs.backend.NARROW_THREADS``), beside numpy doing the same job
(``min``, ``max``, ``astype``: three reads of the column), all in the same run.

The kernel splits a column of megabytes into parts on 64-value boundaries, one per thread
(``mlite_ints_narrow_parallel`` in ``csrc/mlite_tokens.c``): one core's loads cannot use all
of the machine's memory bandwidth. The outputs are allocated once, outside the timing, so
the rows time the reads and writes, not the kernel handing out fresh pages.

Measure::

    MEMORA_BENCH_ROWS=87599 python -m pytest benchmarks/test_narrow_threads.py --benchmark-enable \\
        --benchmark-only --benchmark-columns=min,median,rounds
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from memora_lite.codecs import backend
from memora_lite.schema import Schema, element_dtype

if TYPE_CHECKING:
    from conftest import Squad

TOKEN_COLUMNS = ("input_ids", "attention_mask")


def _numpy_narrow(values: np.ndarray, out: np.ndarray, threads: int) -> tuple[int, int, bool]:
    lo, hi = int(values.min()), int(values.max())
    info = np.iinfo(out.dtype)
    out[:] = values.astype(out.dtype)
    return lo, hi, bool(info.min <= lo and hi <= info.max)


@pytest.mark.parametrize("how", [*sorted({f"kernel-{t}" for t in (1, backend.NARROW_THREADS)}), "numpy"])
def test_narrow_token_columns(benchmark: Any, squad: Squad, how: str) -> None:
    """Both token columns of every batch of ``squad.column_batches``, as a bulk insert narrows them."""
    schema = Schema.infer(squad.cols, "id")
    work = [(b[name].reshape(-1), np.empty(b[name].size, dtype=element_dtype(schema.field(name))))
            for b in squad.column_batches(squad.n) for name in TOKEN_COLUMNS]
    if how == "numpy":
        narrow, threads = _numpy_narrow, 1
    elif backend.BACKEND == "numpy":
        pytest.skip("MEMORA_LITE_BACKEND=numpy: no compiled kernels")
    else:
        narrow, threads = backend.KERNELS.narrow, int(how.split("-")[1])

    def run() -> bool:
        return all(narrow(values, out, threads)[2] for values, out in work)

    assert benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
    for values, out in work:
        assert np.array_equal(out, values)
    benchmark.extra_info.update(workload="narrow_threads", engine="memora_lite" if how != "numpy" else "numpy",
                                threads=threads, rows=squad.n)
