"""Named crash points inside flush, manifest install and compaction, each hit over and over.

``MEMORA_LITE_CRASH_AT=<name>`` makes the writer ``os._exit(99)`` at that step
(``storage/crashpoints.py``). For every name, a child process deletes, upserts and
inserts rows (each call acknowledged to the parent), then flushes or compacts and
dies at the named step; the parent opens the store and checks every acknowledged
row. For the background flush's steps, one last insert call fills the memtable: the
child dies inside that call (``freeze.*``) or on the flush thread (``background.*``),
so that call's rows may be stored or not, but never in part. The next child
recovers the same store and crashes again, so leftovers of one crash meet the next.
At the end a writer opens the store: the rows are all there and every file a crash
left behind is gone.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from typing import Any

import pytest

from memora_lite import Memora
from memora_lite.storage import crashpoints, filenames

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKGROUND = ("freeze.", "background.")  # the steps of a background flush


def row(key: int, version: int) -> dict[str, Any]:
    return {"id": key, "v": version, "tokens": [(key * 3 + i) % 500 for i in range(key % 9)], "s": f"{key}.{version}"}


def _crashing_writer(path: str, name: str, fd: int, seed: int) -> None:
    """The child: make acknowledged changes, then flush or compact into the crash point."""
    os.environ[crashpoints.ENV] = name
    rng = random.Random(seed)
    background = name.startswith(BACKGROUND)
    db = Memora(path=path, flush_bytes=(64 << 10) if background else 1 << 30).nosql
    state = {r["id"]: r["v"] for r in db.query("c", output_fields=["v"])["data"]}
    if background:
        db.flush("c")  # rows the last crash left in the log are flushed inline, so only the last call freezes
    gone = rng.sample(sorted(state), 5)
    db.delete("c", ids=gone)  # rows in segments: the flush writes deletion vectors
    os.write(fd, f"D {' '.join(map(str, gone))}\n".encode())
    for k in gone:
        del state[k]
    changed = rng.sample(sorted(state), 5)
    db.upsert("c", [row(k, state[k] + 1) for k in changed])
    os.write(fd, f"U {' '.join(map(str, changed))}\n".encode())
    start = max(state) + 1
    for k in range(start, start + 20):
        db.insert("c", row(k, 0))
        os.write(fd, f"I {k}\n".encode())
    db.insert("c", [row(k, 0) for k in range(start + 20, start + 60)])
    os.write(fd, f"I {' '.join(map(str, range(start + 20, start + 60)))}\n".encode())
    if background:  # ~90 KB of rows in one call: the memtable passes flush_bytes and freezes
        keys = ' '.join(map(str, range(start + 60, start + 1060)))
        os.write(fd, f"M {keys}\n".encode())  # maybe: the crash may come before the call returns
        db.insert("c", [row(k, 0) for k in range(start + 60, start + 1060)])
        os.write(fd, f"I {keys}\n".encode())
    if name.startswith("compact."):
        db.compact("c")
    else:
        db.flush("c")


def _fork() -> int:
    """``os.fork()``. Python 3.12+ warns when the process has other threads (numpy's BLAS pool counts);
    the children here touch no lock those threads hold: they open their own clients and end with _exit."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)
        return os.fork()


def _crash_once(path: str, name: str, seed: int) -> tuple[int, list[tuple[str, list[int]]]]:
    read_end, write_end = os.pipe()
    pid = _fork()
    if pid == 0:
        status = 0
        try:
            os.close(read_end)
            _crashing_writer(path, name, write_end, seed)
        except BaseException:
            import traceback

            traceback.print_exc()
            status = 4
        finally:
            os._exit(status)  # 0: the crash point was never reached
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 1 << 16):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    acks = [(line[0], [int(k) for k in line[2:].split()]) for line in b"".join(chunks).decode().splitlines()]
    return (os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1), acks


def _rows(path: str) -> dict[int, dict[str, Any]]:
    with Memora(path=path, read_only=True) as reader:
        return {r["id"]: dict(r) for r in reader.nosql.query("c")["data"]}


def _seed_store(path: str) -> dict[int, int]:
    with Memora(path=path, flush_bytes=16 << 10) as c:  # a few segments to delete from and compact
        c.nosql.insert("c", [row(k, 0) for k in range(600)])
    return dict.fromkeys(range(600), 0)


def crash_repeatedly(path: str, name: str, times: int) -> dict[str, int]:
    state = _seed_store(path)
    figures = {"crashes": 0, "failures": 0, "acked": 0}
    for rep in range(times):
        status, acks = _crash_once(path, name, seed=rep)
        figures["crashes"] += status == crashpoints.EXIT_STATUS
        maybe: list[int] = []  # the inserted keys of a call the crash may have cut short
        for kind, keys in acks:
            if kind == "M":
                maybe = keys
                continue
            maybe = []
            for k in keys:
                if kind == "D":
                    del state[k]
                else:
                    state[k] = state.get(k, -1) + 1
            figures["acked"] += len(keys)
        got = _rows(path)
        if maybe and set(got) >= set(maybe):  # the call was stored whole
            state.update(dict.fromkeys(maybe, 0))
        figures["failures"] += status != crashpoints.EXIT_STATUS or got != {k: row(k, v) for k, v in
                                                                             state.items()}
    with Memora(path=path) as writer:  # recovery as the writer: same rows, leftovers removed
        figures["failures"] += {r["id"]: dict(r) for r in writer.nosql.query("c")["data"]} != {
            k: row(k, v) for k, v in state.items()}
        folder = os.path.join(path, "default", "c")
        names = set(os.listdir(folder))
        manifest = writer._store.engines["c"].manifest
        expected = {filenames.MANIFEST, manifest.wal}
        for s in manifest.segments:
            expected.add(filenames.segment_name(s.number))
            if s.deletes is not None:
                expected.add(filenames.deletes_name(s.number, s.deletes))
        figures["leftovers"] = len(names - expected)
    return figures


@pytest.mark.parametrize("times", [3, pytest.param(25, marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", crashpoints.NAMES)
def test_a_crash_at_each_named_step_loses_no_acknowledged_row(
    name: str, times: int, tmp_path: os.PathLike[str], record_property: Callable[[str, object], None]
) -> None:
    f = crash_repeatedly(os.path.join(tmp_path, "s"), name, times)
    record_property("figure", f"crash point {name}: {f['crashes']} of {times} runs died there, "
                              f"{f['acked']} acknowledged row changes, {f['failures']} failures, "
                              f"{f['leftovers']} leftover files after recovery")
    assert f["crashes"] == times
    assert (f["failures"], f["leftovers"]) == (0, 0)


def test_the_environment_variable_crashes_a_fresh_interpreter_too(tmp_path: os.PathLike[str]) -> None:
    """The forked children above set the variable after start; a process started with it set dies the same way."""
    path = os.path.join(tmp_path, "s")
    script = textwrap.dedent(f"""
        from memora_lite import Memora
        db = Memora(path={path!r}).nosql
        db.insert("c", [{{"id": k}} for k in range(10)])
        print("acked", flush=True)
        db.flush("c")
        print("survived", flush=True)
    """)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env[crashpoints.ENV] = "flush.manifest_written"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == crashpoints.EXIT_STATUS, proc.stderr
    assert proc.stdout.split() == ["acked"]
    with Memora(path=path) as c:
        assert [r["id"] for r in c.nosql.query("c")["data"]] == list(range(10))
