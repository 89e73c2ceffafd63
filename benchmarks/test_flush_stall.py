"""The slowest call of the guide's loop: one insert call per row, every call timed on its own.

An engine that writes its memtable (or checkpoints its log) inline makes one call now and
then wait for all of that work. memora_lite freezes a full memtable and writes it on a
background thread (``storage/flushjob.py``), so the call that fills it waits only for the
freeze. Each engine that takes one-row inserts runs the loop once into a fresh store,
as one benchmark round per call: ``max`` is the worst stall, ``median`` the usual call.
Slow peers do their ``fillrow`` cap of rows, as in ``test_core_workloads.py``.

Measure::

    MEMORA_BENCH_ROWS=87599 python -m pytest benchmarks/test_flush_stall.py --benchmark-enable \\
        --benchmark-only --benchmark-columns=median,max,rounds
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:
    from conftest import Squad
    from peers import Engine


def test_flush_stall(benchmark: Any, engine: type[Engine], squad: Squad,
                     new_store: Callable[..., Engine]) -> None:
    """Every one-row insert call of a fill, each one round: the slowest is the stall."""
    if not engine.supports("fill_row"):
        pytest.skip(f"n/a: {engine.label} has no fill_row")
    n = engine.cap("fillrow", squad.n)
    store = new_store(engine, n)
    rows = iter(squad.rows[:n])
    calls = [0]

    def next_row() -> tuple[tuple[Any], dict[str, Any]]:
        calls[0] += 1
        return (next(rows),), {}

    benchmark.pedantic(store.fill_row, setup=next_row, rounds=n, iterations=1)  # disabled (smoke run): one call
    store.close()
    store.open()
    done = calls[0]
    assert np.array_equal(store.read_range_numpy(0, done)["input_ids"], squad.cols["input_ids"][:done])
    benchmark.extra_info.update(workload="flush_stall", engine=engine.name, calls=done)
