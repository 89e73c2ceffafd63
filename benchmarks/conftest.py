"""Fixtures of the benchmark suite: SQuAD-shaped data, the engines to compare, and their stores.

Sizes: ``MEMORA_BENCH_ROWS`` rows (default 20,000; 87,599 is SQuAD-train, the
report's size) when benchmarks are measured (``--benchmark-enable``). With
benchmarks disabled -- the project's default ``addopts``, so CI runs each body
once as a smoke test -- every size is cut to ``SMOKE_ROWS`` so the folder runs
in seconds.

Measure::

    python -m pytest benchmarks --benchmark-enable --benchmark-only --benchmark-json=bench.json
    python benchmarks/report.py bench.json
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # peers.py, whatever pytest's import mode

from peers import ENGINES, Engine

from memora_lite.testing.squad import squad_columns, squad_rows

DEFAULT_ROWS = 20_000
SMOKE_ROWS = 1_000
BULK_BATCH = 4_096  # rows per bulk insert call, for every engine


def pytest_configure(config: pytest.Config) -> None:
    # Importing lance (a peer) registers a fork hook that warns in every later fork of this process,
    # such as a DataLoader's workers in another benchmark file; pytest would turn that into an error.
    config.addinivalue_line("filterwarnings", "ignore:lance is not fork-safe:UserWarning")


def measuring(config: pytest.Config) -> bool:
    """True when pytest-benchmark times the bodies (``--benchmark-enable``), False for the smoke run."""
    return not (config.getoption("benchmark_disable") and not config.getoption("benchmark_enable"))


def bench_rows(config: pytest.Config) -> int:
    """Rows in each engine's store: ``MEMORA_BENCH_ROWS`` (default 20,000), or ``SMOKE_ROWS`` when not measuring."""
    wanted = int(os.environ.get("MEMORA_BENCH_ROWS", DEFAULT_ROWS))
    return wanted if measuring(config) else min(wanted, SMOKE_ROWS)


def scaling_sizes(config: pytest.Config) -> list[int]:
    """Store sizes of ``test_scaling``: 20k and 200k rows; 100k, 1M and 10M with ``MEMORA_BENCH_BIG=1``."""
    if not measuring(config):
        return [1_000, 5_000]
    if os.environ.get("MEMORA_BENCH_BIG") == "1":
        return [100_000, 1_000_000, 10_000_000]
    return [20_000, 200_000]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``scaling_size`` (it depends on whether benchmarks are measured)."""
    if "scaling_size" in metafunc.fixturenames:
        metafunc.parametrize("scaling_size", scaling_sizes(metafunc.config))


@dataclass
class Squad:
    """The benchmark data: the same ``n`` rows as dicts (the guide's shape) and as numpy columns."""

    n: int
    rows: list[dict[str, Any]]
    cols: dict[str, np.ndarray]

    def column_batches(self, n: int, batch: int = BULK_BATCH) -> list[dict[str, np.ndarray]]:
        """The first ``n`` rows as column dicts of at most ``batch`` rows (views, no copies)."""
        return [{k: v[lo:min(lo + batch, n)] for k, v in self.cols.items()} for lo in range(0, n, batch)]

    def row_batches(self, n: int, batch: int = BULK_BATCH) -> list[list[dict[str, Any]]]:
        return [self.rows[lo:min(lo + batch, n)] for lo in range(0, n, batch)]


@pytest.fixture(scope="session")
def squad(request: pytest.FixtureRequest) -> Squad:
    """SQuAD-shaped rows from :mod:`memora_lite.testing.squad`, made once per run."""
    n = bench_rows(request.config)
    data = Squad(n, list(squad_rows(n)), squad_columns(n))
    gc.freeze()  # the rows' lists are never garbage: keep the collector from walking them during every benchmark
    return data


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest) -> type[Engine]:
    """Each engine's adapter class; optional peers that are not installed are skipped."""
    cls = ENGINES[request.param]
    reason = cls.available()
    if reason:
        pytest.skip(reason)
    return cls


@pytest.fixture
def new_store(tmp_path: Any) -> Iterator[Callable[[type[Engine], int], Engine]]:
    """Make an empty store of an engine in a fresh folder; every store made is closed and removed afterwards."""
    made: list[Engine] = []

    def make(cls: type[Engine], capacity: int) -> Engine:
        store = cls(os.path.join(tmp_path, f"{cls.name}-{len(made)}"), capacity)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
        shutil.rmtree(store.path, ignore_errors=True)


_filled: dict[str, str] = {}


@pytest.fixture
def filled_path(engine: type[Engine], squad: Squad, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Folder of a closed store of ``engine`` holding all ``squad.n`` rows, built once per run (bulk inserts)."""
    if engine.name not in _filled:
        path = str(tmp_path_factory.mktemp(f"filled-{engine.name}"))
        store = engine(path, squad.n)
        if engine.supports("fill_bulk_numpy"):
            for cols in squad.column_batches(squad.n):
                store.fill_bulk_numpy(cols)
        else:
            for rows in squad.row_batches(squad.n):
                store.fill_bulk_rows(rows)
        store.close()
        _filled[engine.name] = path
    return _filled[engine.name]


@pytest.fixture
def filled(engine: type[Engine], squad: Squad, filled_path: str) -> Iterator[Engine]:
    """The filled store of ``engine``, opened for this test and closed after it."""
    store = engine(filled_path, squad.n)
    yield store
    store.close()
