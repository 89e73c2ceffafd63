"""kill -9 at random points, over and over: no acknowledged row is lost, no call is half applied.

A forked child opens the store as the writer (recovering whatever the last kill left),
then makes random calls with SQuAD-shaped rows: one-row inserts, batch inserts,
upserts, deletes, now and then a flush or a compaction (the memtable is small, so
flushes also start on their own). Before each call it writes what it is about to do
to a pipe, and after the call returns it writes an acknowledgement. The parent kills
it with SIGKILL at a random moment — during recovery, a write, a flush — then opens
the store read-only and checks that it holds exactly the acknowledged calls, plus
all or nothing of the one in flight.
"""

from __future__ import annotations

import os
import random
import select
import signal
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from memora_lite import Memora
from memora_lite.testing.squad import squad_columns

POOL = squad_columns(97, seed=3)  # 97 distinct SQuAD-shaped rows; a key picks one and marks it
FIELDS = ["start_token", "end_token", "input_ids", "attention_mask"]
LIVE_TARGET = 1500  # deletes keep the store near this many rows, so a long run stays quick


def row(key: int, version: int) -> dict[str, Any]:
    """Row ``key`` as written by its ``version``-th write (``start_token`` holds the version)."""
    base = key % len(POOL["id"])
    ids = POOL["input_ids"][base].tolist()
    ids[1] = 1000 + key % 28000
    return {"id": key, "start_token": version, "end_token": int(POOL["end_token"][base]),
            "input_ids": ids, "attention_mask": POOL["attention_mask"][base].tolist()}


def expected_columns(state: dict[int, int]) -> dict[str, np.ndarray]:
    keys = np.array(sorted(state), dtype=np.int64)
    base = keys % len(POOL["id"])
    ids = POOL["input_ids"][base].copy()
    if len(keys):
        ids[:, 1] = 1000 + keys % 28000
    return {"id": keys, "start_token": np.array([state[k] for k in keys.tolist()], dtype=np.int64),
            "end_token": POOL["end_token"][base], "input_ids": ids, "attention_mask": POOL["attention_mask"][base]}


def _writer(path: str, fd: int, seed: int) -> None:
    """The child: recover, then call and report until killed."""
    rng = random.Random(seed)
    client = Memora(path=path, flush_bytes=256 << 10, segment_rows=4096)
    db = client.nosql
    state: dict[int, int] = {}
    if db.has_collection("c"):
        got = db.query("c", output_fields=["start_token"], output="numpy")["data"]
        state = dict(zip(got["id"].tolist(), got["start_token"].tolist()))
    next_key = max(state, default=-1) + 1
    os.write(fd, b"R\n")
    while True:
        roll = rng.random()
        if roll < 0.45 or not state:
            keys, kind = [next_key], "I"
        elif roll < 0.70:
            keys, kind = list(range(next_key, next_key + rng.randint(2, 40))), "N"
        elif roll < 0.82:
            keys, kind = rng.sample(sorted(state), min(len(state), rng.randint(1, 12))), "U"
        elif roll < 0.96:
            share = 3 if len(state) > LIVE_TARGET else 30
            keys, kind = rng.sample(sorted(state), min(len(state), rng.randint(1, max(1, len(state) // share)))), "D"
        elif roll < 0.995:
            keys, kind = [], "F"
        else:
            keys, kind = [], "C"
        os.write(fd, f"B {kind} {' '.join(map(str, keys))}\n".encode())
        if kind == "I":
            db.insert("c", row(keys[0], 0))
        elif kind == "N":
            db.insert("c", [row(k, 0) for k in keys])
        elif kind == "U":
            db.upsert("c", [row(k, state[k] + 1) for k in keys])
        elif kind == "D":
            db.delete("c", ids=keys)
        elif kind == "F":
            db.flush("c")
        else:
            db.compact("c")
        os.write(fd, b"A\n")
        for k in keys:
            if kind == "D":
                del state[k]
            else:
                state[k] = state.get(k, -1) + 1
        next_key = max(next_key, max(keys, default=-1) + 1)


def _apply(state: dict[int, int], kind: str, keys: list[int]) -> dict[int, int]:
    after = dict(state)
    for k in keys:
        if kind == "D":
            after.pop(k, None)
        elif kind in "INU":
            after[k] = after.get(k, -1) + 1
    return after


def _fork() -> int:
    """``os.fork()``. Python 3.12+ warns when the process has other threads (numpy's BLAS pool counts);
    the children here touch no lock those threads hold: they open their own clients and end with _exit."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)
        return os.fork()


def _run_child(path: str, seed: int, delay: float) -> tuple[list[tuple[str, list[int], bool]], bool, int]:
    """Fork a writer, kill it ``delay`` seconds later; its calls as (kind, keys, acknowledged)."""
    read_end, write_end = os.pipe()
    pid = _fork()
    if pid == 0:  # the child never returns into pytest
        status = 3
        try:
            os.close(read_end)
            _writer(path, write_end, seed)
        except BaseException:
            import traceback

            traceback.print_exc()
            status = 4
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + delay
    try:
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([read_end], [], [], left)
            if ready:
                chunk = os.read(read_end, 1 << 16)
                if not chunk:
                    break  # the child died by itself
                chunks.append(chunk)
    finally:
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    while chunk := os.read(read_end, 1 << 16):
        chunks.append(chunk)
    os.close(read_end)
    calls: list[tuple[str, list[int], bool]] = []
    ready = False
    for line in b"".join(chunks).decode().splitlines():
        if line == "R":
            ready = True
        elif line.startswith("B "):
            kind, *keys = line[2:].split(" ")
            calls.append((kind, [int(k) for k in keys if k], False))
        elif line == "A":
            calls[-1] = (calls[-1][0], calls[-1][1], True)
    return calls, ready, status


def _stored(path: str) -> dict[str, np.ndarray] | None:
    with Memora(path=path, read_only=True) as reader:
        if not reader.nosql.has_collection("c"):
            return None
        return reader.nosql.query("c", output_fields=FIELDS, output="numpy")["data"]


def _same(got: dict[str, np.ndarray] | None, state: dict[int, int]) -> bool:
    """Whether the stored rows are ``state``'s. A collection that holds no row counts as none: a kill
    during the very first insert may leave the collection created and its first row not yet logged."""
    want = expected_columns(state)
    if got is None or len(got["id"]) == 0:
        return not state
    return all(np.array_equal(np.asarray(got[n], dtype=np.int64), want[n].astype(np.int64)) for n in want)


def kill_loop(path: str, kills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    state: dict[int, int] = {}
    figures = {"kills": 0, "calls": 0, "acked_rows": 0, "lost": 0, "partial": 0, "wrong": 0,
               "failed_opens": 0, "in_recovery": 0, "in_flight": 0}
    for _ in range(kills):
        delay = rng.uniform(0, 0.05) if rng.random() < 0.3 else rng.uniform(0.05, 0.4)  # some during recovery
        calls, ready, status = _run_child(path, rng.randrange(1 << 30), delay)
        figures["kills"] += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if os.WIFEXITED(status):  # the child raised (its traceback is in the captured output)
            figures["failed_opens"] += 1
            continue
        figures["in_recovery"] += not ready
        acked = state
        for kind, keys, done in calls:
            if done:
                acked = _apply(acked, kind, keys)
                figures["calls"] += 1
                figures["acked_rows"] += len(keys) if kind in "INU" else 0
        flight = [(kind, keys) for kind, keys, done in calls if not done]
        after = _apply(acked, *flight[0]) if flight else acked
        figures["in_flight"] += bool(flight) and after != acked
        try:
            got = _stored(path)
        except Exception:
            figures["failed_opens"] += 1
            break
        if _same(got, acked):
            state = acked
        elif _same(got, after):
            state = after
        else:  # say what went wrong: acknowledged rows missing or stale, half a call, or rows never written
            have = dict(zip(got["id"].tolist(), got["start_token"].tolist())) if got is not None else {}
            keys = set(acked) | set(after) | set(have)
            bad = [k for k in keys if have.get(k) not in (acked.get(k), after.get(k))]
            figures["lost"] += sum(1 for k in bad if k in acked)
            figures["wrong"] += sum(1 for k in bad if k not in acked)
            moved = {have.get(k) == after.get(k) != acked.get(k) for k in flight[0][1]} if flight else set()
            figures["partial"] += not bad and moved == {True, False}
            break
    with Memora(path=path) as final:  # and the writer's own recovery agrees with the reader
        got = final.nosql.query("c", output_fields=FIELDS, output="numpy")["data"] if state else None
        figures["final_ok"] = _same(got, state)
    figures["live_rows"] = len(state)
    return figures


@pytest.mark.parametrize("kills", [50, pytest.param(500, marks=pytest.mark.slow)])
def test_kill_9_at_random_points_loses_no_acknowledged_row_and_applies_no_partial_call(
    kills: int, tmp_path: os.PathLike[str], record_property: Callable[[str, object], None]
) -> None:
    f = kill_loop(os.path.join(tmp_path, "s"), kills, seed=kills)
    record_property("figure", f"kill -9 loop: {f['kills']} kills ({f['in_recovery']} during recovery, "
                              f"{f['in_flight']} with a call in flight), {f['calls']} acknowledged calls, "
                              f"{f['acked_rows']} acknowledged row writes, {f['lost']} lost, "
                              f"{f['wrong']} never-written rows seen, {f['partial']} partial calls, "
                              f"{f['failed_opens']} failed opens, "
                              f"{f['live_rows']} rows at the end")
    assert (f["lost"], f["wrong"], f["partial"], f["failed_opens"]) == (0, 0, 0, 0)
    assert f["kills"] == kills and f["final_ok"]
    assert f["acked_rows"] > kills  # the children did get work done between kills
