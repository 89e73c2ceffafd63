"""Readers query while the writer appends, flushes and compacts: consistent rows, a view that only moves forward.

Four readers, forked before the writer starts, open the store with
``read_only=True`` and loop: count the rows, then read a window of 200 ids at a
random place below that count. The writer appends rows with ever larger ids
(batches, and one-row calls), flushes now and then and compacts twice, so any
consistent view is a prefix of the ids. Each reader checks:

* every row it is given is the row written under that id (no torn or wrong row);
* a window is a run of consecutive ids starting where it was asked to, as a prefix is;
* its view never goes back: no count below an earlier count, no window shorter
  than an earlier count allows;
* once the writer is done, it sees every row.

It reports how many queries each reader made per second.
"""

from __future__ import annotations

import json
import os
import random
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from memora_lite import Memora

WINDOW = 200


def row(key: int) -> dict[str, Any]:
    return {"id": key, "a": key * 3, "t": [key % 97, key % 89, key], "s": f"s{key}"}


def _wait_for_collection(path: str) -> Any:
    """A read-only client, once the writer has created the collection."""
    while True:
        try:
            client = Memora(path=path, read_only=True)
        except Exception:  # the folder does not exist yet
            time.sleep(0.01)
            continue
        if client.nosql.has_collection("c"):
            return client.nosql
        client.close()
        time.sleep(0.01)


def _reader(path: str, done_flag: str, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    report: dict[str, Any] = {"queries": 0, "torn": 0, "gaps": 0, "backwards": 0, "errors": [], "final": -1}
    db = _wait_for_collection(path)
    start = time.monotonic()
    last = 0
    while True:
        finished = os.path.exists(done_flag)
        try:
            count = db.query("c", output_fields=["count(*)"])["data"][0]["count(*)"]
            report["backwards"] += count < last
            last = max(last, count)
            lo = rng.randrange(max(1, count))
            got = db.query("c", filter=f"{lo} <= id < {lo + WINDOW}", output_fields=["a", "t", "s"])["data"]
            report["queries"] += 2
        except Exception:
            report["errors"].append(traceback.format_exc(limit=3))
            if len(report["errors"]) > 20:
                break
            continue
        ids = [r["id"] for r in got]
        report["gaps"] += ids != list(range(lo, lo + len(ids)))
        report["backwards"] += len(ids) < min(WINDOW, last - lo)
        report["torn"] += sum(1 for r in got if dict(r) != row(r["id"]))
        if finished:
            report["final"] = count
            break
    report["seconds"] = time.monotonic() - start
    return report


def _fork() -> int:
    """``os.fork()``. Python 3.12+ warns when the process has other threads (numpy's BLAS pool counts);
    the children here touch no lock those threads hold: they open their own clients and end with _exit."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)
        return os.fork()


def _fork_reader(path: str, done_flag: str, seed: int) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    pid = _fork()
    if pid == 0:
        try:
            os.close(read_end)
            report = _reader(path, done_flag, seed)
        except BaseException:
            report = {"errors": [traceback.format_exc()]}
        try:
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    return pid, read_end


def _collect(pid: int, fd: int) -> dict[str, Any]:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"errors": ["the reader died"]}')


def write_rows(path: str, total: int) -> int:
    """Append ``total`` rows (ids 0..total-1) with flushes and two compactions; returns the row count."""
    with Memora(path=path, flush_bytes=1 << 20) as writer:
        db = writer.nosql
        key, calls = 0, 0
        while key < total:
            calls += 1
            if calls % 10 == 0:
                db.insert("c", row(key))
                key += 1
            else:
                n = min(997, total - key)
                db.insert("c", [row(k) for k in range(key, key + n)])
                key += n
            if calls % 37 == 0:
                db.flush("c")
            if calls in (total // 2000, total // 1100):
                db.compact("c")
        return db.query("c", output_fields=["count(*)"])["data"][0]["count(*)"]


@pytest.mark.parametrize("total", [100_000, pytest.param(1_000_000, marks=pytest.mark.slow)])
def test_readers_see_whole_rows_and_a_view_that_only_moves_forward_while_the_writer_appends(
    total: int, tmp_path: os.PathLike[str], record_property: Callable[[str, object], None]
) -> None:
    path = os.path.join(tmp_path, "s")
    done_flag = os.path.join(tmp_path, "done")
    readers = [_fork_reader(path, done_flag, seed) for seed in range(4)]
    try:
        start = time.monotonic()
        written = write_rows(path, total)
        write_seconds = time.monotonic() - start
    finally:
        with open(done_flag, "w"):
            pass
        reports = [_collect(pid, fd) for pid, fd in readers]
    errors = [e for r in reports for e in r["errors"]]
    queries = sum(r.get("queries", 0) for r in reports)
    rates = [r["queries"] / r["seconds"] for r in reports if r.get("seconds")]
    bad = {k: sum(r.get(k, 0) for r in reports) for k in ("torn", "gaps", "backwards")}
    record_property("figure", f"readers during writes: {total} rows appended in {write_seconds:.1f} s with flushes "
                              f"and 2 compactions; 4 readers made {queries} queries "
                              f"({', '.join(f'{q:.0f}' for q in rates)} queries/s each), {bad['torn']} torn or wrong "
                              f"rows, {bad['gaps']} non-prefix windows, {bad['backwards']} backward views, "
                              f"{len(errors)} reader errors")
    assert not errors, errors[:3]
    assert bad == {"torn": 0, "gaps": 0, "backwards": 0}
    assert written == total
    assert [r["final"] for r in reports] == [total] * 4
