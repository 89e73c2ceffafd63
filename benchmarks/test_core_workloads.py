"""The engine's core workloads, on memora_lite and on every installed peer, in one pytest-benchmark run.

Each test is ``test_<workload>[<engine>]``. Every body checks what it reads back
against the data it stored, so a broken engine fails even in the smoke run
(benchmarks disabled, sizes cut; see ``conftest.py``). Nothing here asserts a
time: ``report.py`` turns the JSON into the issue's table and ratios.

Workloads (rows are SQuAD-shaped: id, two ints, two 384-int arrays):

* ``fillrow``: one insert call per row into an empty store, then close (the guide's loop).
* ``fillbulk_rows`` / ``fillbulk_numpy``: 4,096-row insert calls of row dicts / numpy columns, then close.

Read workloads reopen the store before each round (untimed): every round is one pass
of a fresh client, caches cold, the OS page cache warm. Rounds keep no batch.

* ``readrange_py``: consecutive 50-row id ranges as Python lists (the guide's ``fetch_batch``).
* ``readrange_np``: consecutive 1,024-row id ranges into numpy arrays.
* ``readrandom``: one row by id, at random ids.
* ``readbatch``: 32 rows by id per call, at random ids (a random sampler's batch).
* ``scan_np``: every row, streamed as 4,096-row numpy batches.
* ``size``: bytes on disk per row; ``open_and_first_query``: open a closed store, read 50 rows;
  ``scan_memory``: RSS over baseline while a fresh process scans the store into numpy.
* ``scaling``: memora_lite's range-read, get, insert, open and scan-memory costs at two store sizes.
* ``size_real_text``: bytes per row on real English text (``size_real_text.py``).

Each result carries ``extra_info``: ``workload``, ``engine``, ``rows`` (or ``calls``) per
round, and when measured ``rows_per_s`` / ``us_per_call`` from the median round.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from peers import FIELDS, Engine, MemoraLite

if TYPE_CHECKING:
    from conftest import Squad

ROUNDS = 3  # rounds per measured benchmark (the median is reported)
RANGE_ROWS = 50  # the guide's batch size
NUMPY_RANGE_ROWS = 1_024
RANDOM_GETS = 5_000
BATCH_IDS = 32
SCAN_BATCH = 4_096
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rounds(benchmark: Any, wanted: int = ROUNDS) -> int:
    return wanted if not benchmark.disabled else 1


def _rows(benchmark: Any, engine: type[Engine], workload: str, wanted: int) -> int:
    """Rows one round asks of ``engine``: ``wanted`` within its cap (a fifth of the cap in the smoke run)."""
    n = engine.cap(workload, wanted)
    if benchmark.disabled and workload in engine.caps:
        n = min(n, max(engine.caps[workload] // 5, 20))
    return n


def _record(benchmark: Any, workload: str, engine: str, rows: int | None = None, calls: int | None = None,
            **extra: Any) -> None:
    """Put what one round did in ``extra_info`` and, when measured, the rates of the median round."""
    info = benchmark.extra_info
    info.update(workload=workload, engine=engine, **extra)
    if rows is not None:
        info["rows"] = rows
    if calls is not None:
        info["calls"] = calls
    stats = getattr(benchmark, "stats", None)
    median = stats.stats.median if stats is not None else None
    if median:
        if rows is not None:
            info["rows_per_s"] = rows / median
        if calls is not None:
            info["us_per_call"] = median / calls * 1e6


def _check_lists(got: Sequence[Sequence[Any]], squad: Squad, lo: int) -> int:
    """Rows read as lists equal the stored rows ``lo, lo + 1, ...``; returns how many."""
    for j, row in enumerate(got):
        want = squad.rows[lo + j]
        assert isinstance(row[0], list) and isinstance(row[1], list), f"row {lo + j}: arrays must come back as lists"
        assert row[0] == want["input_ids"], f"row {lo + j}: input_ids differ"
        assert row[1] == want["attention_mask"], f"row {lo + j}: attention_mask differs"
        assert (row[2], row[3]) == (want["start_token"], want["end_token"]), f"row {lo + j}: start/end differ"
    return len(got)


def _check_numpy(got: dict[str, np.ndarray], squad: Squad, lo: int, hi: int) -> int:
    """Columns read into numpy equal rows ``lo <= id < hi``; returns how many rows."""
    for field in FIELDS:
        want = squad.cols[field][lo:hi]
        assert got[field].shape == want.shape, f"{field}: shape {got[field].shape}, stored {want.shape}"
        assert np.array_equal(got[field], want), f"{field}: values differ in rows {lo}..{hi}"
    return hi - lo


# --- writes ---------------------------------------------------------------------------------------


def _fill(benchmark: Any, engine: type[Engine], squad: Squad, new_store: Callable[..., Engine], workload: str,
          verb: str, n: int, batches: Sequence[Any]) -> None:
    """Time ``verb`` over ``batches`` into a fresh store, then close it; then check the store holds the rows.

    Also counts the process's minor page faults per round (first touches of fresh memory,
    a cost the time includes), recorded as ``minor_faults`` (the median over rounds).
    """
    if not engine.supports(verb):
        pytest.skip(f"n/a: {engine.label} has no {verb}")
    stores: list[Engine] = []
    faults: list[int] = []

    def setup() -> tuple[tuple[Engine], dict[str, Any]]:
        if stores:  # the previous round's store: close and drop, keep the disk small
            stores[-1].close()
            shutil.rmtree(stores[-1].path, ignore_errors=True)
        stores.append(new_store(engine, n))
        return (stores[-1],), {}

    def run(store: Engine) -> None:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        write = getattr(store, verb)
        for batch in batches:
            write(batch)
        store.close()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

    benchmark.pedantic(run, setup=setup, rounds=_rounds(benchmark), iterations=1)
    _record(benchmark, workload, engine.name, rows=n, minor_faults=sorted(faults)[len(faults) // 2])
    store = stores[-1]
    store.open()
    assert _check_numpy(store.read_range_numpy(0, n), squad, 0, n) == n
    store.close()


def test_fillrow(benchmark: Any, engine: type[Engine], squad: Squad, new_store: Callable[..., Engine]) -> None:
    """One insert call per row, each durable against ``kill -9`` where the engine can be, then close."""
    n = _rows(benchmark, engine, "fillrow", squad.n)
    _fill(benchmark, engine, squad, new_store, "fillrow", "fill_row", n, squad.rows[:n])


def test_fillbulk_rows(benchmark: Any, engine: type[Engine], squad: Squad, new_store: Callable[..., Engine]) -> None:
    """Insert calls of 4,096 row dicts (Python ints and int lists), then close."""
    n = _rows(benchmark, engine, "fillbulk_rows", squad.n)
    _fill(benchmark, engine, squad, new_store, "fillbulk_rows", "fill_bulk_rows", n, squad.row_batches(n))


def test_fillbulk_numpy(benchmark: Any, engine: type[Engine], squad: Squad,
                        new_store: Callable[..., Engine]) -> None:
    """Insert calls of 4,096 rows as numpy columns (``input_ids`` an ``(n, 384)`` int64 array), then close."""
    n = _rows(benchmark, engine, "fillbulk_numpy", squad.n)
    _fill(benchmark, engine, squad, new_store, "fillbulk_numpy", "fill_bulk_numpy", n, squad.column_batches(n))


# --- reads ----------------------------------------------------------------------------------------


def _ranges(read: Callable[[int, int], Any], offsets: range, step: int, hi: int) -> Callable[[], int]:
    """A round of consecutive range reads that keeps no batch, as the guide's loop does; returns the rows read.

    (Keeping every batch would time the kernel handing out fresh pages for
    millions of int objects, not the engine.)
    """

    def run() -> int:
        rows = 0
        for o in offsets:
            batch = read(o, min(o + step, hi))
            rows += len(batch["start_token"]) if isinstance(batch, dict) else len(batch)
        return rows

    return run


def test_readrange_py(benchmark: Any, engine: type[Engine], squad: Squad, filled: Engine) -> None:
    """The guide's read loop: consecutive 50-row id ranges, four fields, arrays as Python lists."""
    n = _rows(benchmark, engine, "readrange_py", squad.n)
    offsets = range(0, n, RANGE_ROWS)
    got = benchmark.pedantic(_ranges(filled.read_range_lists, offsets, RANGE_ROWS, n), setup=filled.reopen,
                             rounds=_rounds(benchmark), iterations=1)
    assert got == n
    assert sum(_check_lists(filled.read_range_lists(o, min(o + RANGE_ROWS, n)), squad, o) for o in offsets) == n
    _record(benchmark, "readrange_py", engine.name, rows=n, calls=len(offsets))


def test_readrange_np(benchmark: Any, engine: type[Engine], squad: Squad, filled: Engine) -> None:
    """Consecutive 1,024-row id ranges into numpy arrays (2-D for the token arrays)."""
    n = _rows(benchmark, engine, "readrange_np", squad.n)
    offsets = range(0, n, NUMPY_RANGE_ROWS)
    got = benchmark.pedantic(_ranges(filled.read_range_numpy, offsets, NUMPY_RANGE_ROWS, n), setup=filled.reopen,
                             rounds=_rounds(benchmark), iterations=1)
    assert got == n
    for o in offsets:
        hi = min(o + NUMPY_RANGE_ROWS, n)
        _check_numpy(filled.read_range_numpy(o, hi), squad, o, hi)
    _record(benchmark, "readrange_np", engine.name, rows=n, calls=len(offsets))


def test_readrandom(benchmark: Any, engine: type[Engine], squad: Squad, filled: Engine) -> None:
    """One row by id (``get(key=k)``), at uniformly random ids."""
    count = _rows(benchmark, engine, "readrandom", min(RANDOM_GETS, squad.n))
    keys = np.random.default_rng(7).integers(0, squad.n, count).tolist()

    def run() -> None:
        for k in keys:
            filled.get(k)

    benchmark.pedantic(run, setup=filled.reopen, rounds=_rounds(benchmark), iterations=1)
    for k in keys:
        row, want = filled.get(k), squad.rows[k]
        assert [row[f] for f in FIELDS] == [want[f] for f in FIELDS], f"get({k}) differs"
    _record(benchmark, "readrandom", engine.name, rows=len(keys), calls=len(keys))


def test_readbatch(benchmark: Any, engine: type[Engine], squad: Squad, filled: Engine) -> None:
    """32 rows by id per call (``get(ids=...)``), at uniformly random ids, in the order asked."""
    count = _rows(benchmark, engine, "readrandom", min(RANDOM_GETS, squad.n))
    keys = np.random.default_rng(8).integers(0, squad.n, count).tolist()
    batches = [keys[i : i + BATCH_IDS] for i in range(0, len(keys), BATCH_IDS)]

    def run() -> None:
        for batch in batches:
            filled.get_many(batch)

    benchmark.pedantic(run, setup=filled.reopen, rounds=_rounds(benchmark), iterations=1)
    for batch in batches:
        got = filled.get_many(batch)
        assert [[row[f] for f in FIELDS] for row in got] == [[squad.rows[k][f] for f in FIELDS] for k in batch]
    _record(benchmark, "readbatch", engine.name, rows=len(keys), calls=len(batches))


def _scan_sums(squad: Squad) -> tuple[int, int, int]:
    c = squad.cols
    return squad.n, int(c["id"].sum()), int(c["input_ids"].sum()) + int(c["end_token"].sum())


def test_scan_np(benchmark: Any, engine: type[Engine], squad: Squad, filled: Engine) -> None:
    """Every row, streamed as numpy batches of 4,096 rows (each batch checked against the stored rows)."""

    def scan() -> tuple[int, int, int]:
        rows, id_sum, checksum = 0, 0, 0
        for cols in filled.scan_numpy(SCAN_BATCH):
            rows += len(cols["id"])
            id_sum += int(cols["id"].sum())
            checksum += int(cols["input_ids"].sum(dtype=np.int64)) + int(cols["end_token"].sum())
        return rows, id_sum, checksum

    if engine.caps.get("scan_np", squad.n) < squad.n:
        pytest.skip(f"{engine.label}: a full scan of {squad.n:,} rows is too slow for this run")
    rounds = _rounds(benchmark, engine.caps.get("scan_rounds", ROUNDS))
    got = benchmark.pedantic(scan, setup=filled.reopen, rounds=rounds, iterations=1)
    assert got == _scan_sums(squad), "the scan returned other rows than were stored"
    _record(benchmark, "scan_np", engine.name, rows=squad.n)


def test_size(benchmark: Any, engine: type[Engine], squad: Squad, filled: Engine) -> None:
    """Bytes of every file of a closed-and-reopened store, per row (stored with the engine's bulk insert)."""
    size = benchmark.pedantic(filled.bytes_on_disk, rounds=1, iterations=1)
    last = max(squad.n - RANGE_ROWS, 0)
    assert _check_lists(filled.read_range_lists(last, squad.n), squad, last) == squad.n - last
    _record(benchmark, "size", engine.name, bytes_on_disk=size, bytes_per_row=size / squad.n, stored_rows=squad.n)


def test_open_and_first_query(benchmark: Any, engine: type[Engine], squad: Squad, filled_path: str) -> None:
    """Open a closed store holding every row and answer one 50-row range read as lists."""
    opened: list[Engine] = []

    def setup() -> None:
        while opened:
            opened.pop().close()

    def run() -> Sequence[Sequence[Any]]:
        opened.append(engine(filled_path, squad.n))
        return opened[-1].read_range_lists(0, RANGE_ROWS)

    got = benchmark.pedantic(run, setup=setup, rounds=_rounds(benchmark, engine.caps.get("open_rounds", 5)),
                             iterations=1)
    setup()
    assert _check_lists(got, squad, 0) == min(RANGE_ROWS, squad.n)
    _record(benchmark, "open_and_first_query", engine.name, calls=1, stored_rows=squad.n)


def _scan_rss(name: str, path: str, capacity: int) -> dict[str, Any]:
    """Run ``peers.py scan-rss`` in a fresh interpreter: memory over a baseline taken there, not polluted here."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    probe = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers.py")
    done = subprocess.run([sys.executable, probe, "scan-rss", name, path, str(capacity), str(SCAN_BATCH)],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"scan-rss {name} failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_scan_memory(benchmark: Any, engine: type[Engine], squad: Squad, filled_path: str) -> None:
    """RSS (the process and its children) over the baseline while a fresh process scans every row into numpy.

    The baseline is taken after importing the engine's libraries (``import_mb``
    records what that cost); ``rss_over_baseline_mb`` includes mapped file pages,
    ``anon_over_baseline_mb`` leaves them out.
    """
    if engine.caps.get("scan_np", squad.n) < squad.n:
        pytest.skip(f"{engine.label}: a full scan of {squad.n:,} rows is too slow for this run")
    got = benchmark.pedantic(_scan_rss, args=(engine.name, filled_path, squad.n), rounds=1, iterations=1)
    n, id_sum, checksum = _scan_sums(squad)
    assert (got["rows"], got["id_sum"], got["checksum"]) == (n, id_sum, checksum), "the scan read other rows"
    _record(benchmark, "scan_memory", engine.name, stored_rows=n,
            **{k: got[k] for k in ("rss_over_baseline_mb", "anon_over_baseline_mb", "import_mb", "seconds")})


# --- scaling: memora_lite at two store sizes ------------------------------------------------------

SCALING_OPS = ("open", "readrange_py", "readrange_np", "readrandom", "fillrow", "scan_memory")
SCALING_WINDOW = 10_240  # rows a sequential-read round covers, whatever the store size
SCALING_GETS = 1_000
SCALING_INSERTS = 2_000
SCALING_BATCH = 8_192  # rows per insert call while building a scaling store
_scaling_stores: dict[int, str] = {}


def _tiled(squad: Squad, lo: int, hi: int) -> dict[str, np.ndarray]:
    """Rows ``lo <= id < hi`` of a store of any size: the SQuAD rows repeated, ids counting on."""
    pick = np.arange(lo, hi) % squad.n
    cols = {k: v[pick] for k, v in squad.cols.items()}
    cols["id"] = np.arange(lo, hi, dtype=np.int64)
    return cols


def _scaling_store(squad: Squad, size: int, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A closed memora_lite store of ``size`` rows, built once per run with 8,192-row numpy inserts."""
    if size not in _scaling_stores:
        path = str(tmp_path_factory.mktemp(f"scaling-{size}"))
        store = MemoraLite(path, size)
        for lo in range(0, size, SCALING_BATCH):
            store.fill_bulk_numpy(_tiled(squad, lo, min(lo + SCALING_BATCH, size)))
        store.close()
        _scaling_stores[size] = path
    return _scaling_stores[size]


@pytest.mark.parametrize("op", SCALING_OPS)
def test_scaling(benchmark: Any, op: str, scaling_size: int, squad: Squad, tmp_path: Any,
                 tmp_path_factory: pytest.TempPathFactory) -> None:
    """memora_lite's cost per call at each store size: flat when reads are O(log segments + rows returned).

    ``readrange_py`` / ``readrange_np`` read consecutive ranges over a 10,240-row
    window in the middle of the store; ``readrandom`` gets 1,000 random ids across
    the whole store (block cache misses grow with the store); each read round
    starts from a reopened store (cold block cache); ``fillrow`` times
    2,000 one-row inserts into a copy of the store (calls only, no close);
    ``open`` opens the closed store and reads 50 rows; ``scan_memory`` is
    :func:`test_scan_memory` at this size.
    """
    size = scaling_size
    path = _scaling_store(squad, size, tmp_path_factory)
    rounds = _rounds(benchmark)
    window_lo = (size // 2 - SCALING_WINDOW // 2) // NUMPY_RANGE_ROWS * NUMPY_RANGE_ROWS if size > SCALING_WINDOW else 0
    window = range(window_lo, min(window_lo + SCALING_WINDOW, size))
    extra: dict[str, Any] = {"store_rows": size}

    if op == "scan_memory":
        got = benchmark.pedantic(_scan_rss, args=("memora_lite", path, size), rounds=1, iterations=1)
        assert got["rows"] == size and got["id_sum"] == size * (size - 1) // 2
        _record(benchmark, "scaling", "memora_lite", rows=size, op=op, **extra,
                **{k: got[k] for k in ("rss_over_baseline_mb", "anon_over_baseline_mb", "seconds")})
        return
    if op == "fillrow":
        copy = os.path.join(tmp_path, "store")
        shutil.copytree(path, copy)
        store = MemoraLite(copy, size)
        extra["segments"] = store.nosql.describe_collection("finetune_data")["segments"]
        batches: list[list[dict[str, Any]]] = []

        def setup() -> tuple[tuple[list[dict[str, Any]]], dict[str, Any]]:
            lo = size + len(batches) * SCALING_INSERTS
            cols = _tiled(squad, lo, lo + SCALING_INSERTS)
            rows = [{"id": int(i), "start_token": int(s), "end_token": int(e), "input_ids": a, "attention_mask": m}
                    for i, s, e, a, m in zip(cols["id"], cols["start_token"], cols["end_token"],
                                             cols["input_ids"].tolist(), cols["attention_mask"].tolist())]
            batches.append(rows)
            return (rows,), {}

        def insert(rows: list[dict[str, Any]]) -> None:
            for row in rows:
                store.fill_row(row)

        benchmark.pedantic(insert, setup=setup, rounds=rounds, iterations=1)
        assert store.count() == size + len(batches) * SCALING_INSERTS
        last = batches[-1][-1]
        assert store.get(last["id"])["input_ids"] == last["input_ids"]
        store.close()
        _record(benchmark, "scaling", "memora_lite", rows=SCALING_INSERTS, calls=SCALING_INSERTS, op=op, **extra)
        return

    store = MemoraLite(path, size)
    extra["segments"] = store.nosql.describe_collection("finetune_data")["segments"]
    expected = _tiled(squad, window.start, window.stop)
    try:
        if op == "open":
            store.close()
            opened: list[MemoraLite] = []

            def open_and_query() -> Any:
                while opened:
                    opened.pop().close()
                opened.append(MemoraLite(path, size))
                return opened[-1].read_range_lists(window.start, window.start + RANGE_ROWS)

            got = benchmark.pedantic(open_and_query, rounds=rounds, iterations=1)
            store = opened.pop()
            assert [r[0] for r in got] == expected["input_ids"][:RANGE_ROWS].tolist()
            _record(benchmark, "scaling", "memora_lite", calls=1, op=op, **extra)
        elif op in ("readrange_py", "readrange_np"):
            step = RANGE_ROWS if op == "readrange_py" else NUMPY_RANGE_ROWS
            read = store.read_range_lists if op == "readrange_py" else store.read_range_numpy
            offsets = range(window.start, window.stop, step)
            got = benchmark.pedantic(_ranges(read, offsets, step, window.stop), setup=store.reopen, rounds=rounds,
                                     iterations=1)
            assert got == len(window)
            if op == "readrange_py":
                ids = [r[0] for o in offsets for r in read(o, min(o + step, window.stop))]
                assert ids == expected["input_ids"].tolist()
            else:
                got_ids = np.concatenate([read(o, min(o + step, window.stop))["input_ids"] for o in offsets])
                assert np.array_equal(got_ids, expected["input_ids"])
            _record(benchmark, "scaling", "memora_lite", rows=len(window), calls=len(offsets), op=op, **extra)
        else:  # readrandom
            keys = np.random.default_rng(11).integers(0, size, SCALING_GETS).tolist()

            def gets() -> None:
                for k in keys:
                    store.get(k)

            benchmark.pedantic(gets, setup=store.reopen, rounds=rounds, iterations=1)
            for k in keys:
                assert store.get(k)["input_ids"] == squad.rows[k % squad.n]["input_ids"], f"get({k}) differs"
            _record(benchmark, "scaling", "memora_lite", rows=len(keys), calls=len(keys), op=op, **extra)
    finally:
        store.close()


# --- size on real English text --------------------------------------------------------------------


def test_size_real_text(benchmark: Any, tmp_path: Any) -> None:
    """Bytes per row of stdlib docstrings tokenized by all-MiniLM-L6-v2's tokenizer, memora_lite vs Parquet+zstd."""
    import size_real_text

    reason = size_real_text.unavailable()
    if reason:
        pytest.skip(reason)
    rows = 5_000 if not benchmark.disabled else 300
    result = benchmark.pedantic(size_real_text.measure, args=(rows, str(tmp_path)), rounds=1, iterations=1)
    assert result["rows"] > 0
    assert result["memora_lite_bytes_per_row"] > 0
    _record(benchmark, "size_real_text", "memora_lite", **result)
