"""One writer: a second one is refused at once; after kill -9 of the first, a new one gets the lock.

The writer forks a child (as a data loader or ``multiprocessing`` would) that stays
alive, reads through the inherited client and is refused when it writes. The child
must not keep the writer lock alive: once the writer is killed, a new writer opens
the store while the child still runs. The test reports how long the refusal took
and how long after the kill the new writer got in.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest

from memora_lite import InvalidArgumentError, LockedError, Memora, ReadOnlyError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WRITER = textwrap.dedent("""
    import os, sys, time
    from memora_lite import Memora, ReadOnlyError
    client = Memora(path=sys.argv[1])
    client.nosql.insert("c", [{"id": k, "s": str(k)} for k in range(100)])
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        try:
            seen = len(client.nosql.query("c", filter="id < 50")["data"])
            try:
                client.nosql.insert("c", {"id": 1000, "s": "from the child"})
                outcome = "WRITE-ALLOWED"
            except ReadOnlyError as exc:
                outcome = "refused: " + str(exc).replace(chr(10), " ")
            os.write(write_end, f"{seen}|{outcome}".encode())
        finally:
            os.close(write_end)
        time.sleep(120)  # stays alive while the parent is killed
        os._exit(0)
    os.close(write_end)
    report = os.read(read_end, 4096).decode()
    print(os.getpid(), child, report, sep="|", flush=True)
    time.sleep(120)
""")


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_second_writer_is_refused_and_a_new_writer_gets_the_lock_after_kill_9_while_forked_children_live(
    tmp_path: os.PathLike[str], record_property: Callable[[str, object], None]
) -> None:
    path = os.path.join(tmp_path, "s")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = None
    errors = os.path.join(tmp_path, "writer.err")
    with open(errors, "wb") as err, subprocess.Popen([sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE,
                                                     stderr=err, env=env) as writer:
        try:
            assert writer.stdout is not None
            ready, _, _ = select.select([writer.stdout], [], [], 120)
            line = writer.stdout.readline().decode() if ready else ""
            if not line:
                with open(errors) as f:
                    pytest.fail(f"the writer did not start: {f.read()}")
            writer_pid, child_pid, seen, child_outcome = line.strip().split("|", 3)
            child = int(child_pid)
            start = time.perf_counter()
            with pytest.raises(LockedError) as refused:
                Memora(path=path)
            refusal_ms = (time.perf_counter() - start) * 1000
            assert f"process {writer_pid}" in str(refused.value)
            reader = Memora(path=path, read_only=True)  # readers need no lock, also now
            assert len(reader.nosql.query("c")["data"]) == 100
            reader.close()

            killed = time.perf_counter()
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=30)
            os.kill(child, 0)  # the forked child is still alive
            new_writer, tries = None, 0
            while new_writer is None and time.perf_counter() - killed < 10:
                tries += 1
                try:
                    new_writer = Memora(path=path)
                except LockedError:
                    time.sleep(0.002)
            takeover_ms = (time.perf_counter() - killed) * 1000
            record_property("figure", f"writer lock: second writer refused in {refusal_ms:.1f} ms; after kill -9 "
                                      + (f"a new writer got the lock in {takeover_ms:.1f} ms ({tries} tries)"
                                         if new_writer else "NO writer got the lock in 10 s")
                                      + " with the old writer's forked child alive")
            assert new_writer is not None, "the dead writer's forked child still holds the writer lock"
            new_writer.nosql.insert("c", {"id": 100, "s": "new writer"})
            assert new_writer.nosql.query("c", output_fields=["count(*)"])["data"] == [{"count(*)": 101}]
            new_writer.close()
            assert seen == "50", "the forked child could not read through its inherited client"
            assert child_outcome.startswith("refused: ") and f"process {writer_pid}" in child_outcome, child_outcome
        finally:
            _kill(writer.pid)
            writer.wait(timeout=30)
            if child is not None:
                _kill(child)


def test_a_pickled_client_is_a_read_only_client_of_the_same_store(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "s")
    with Memora(path=path) as client:
        client.nosql.insert("c", [{"id": k} for k in range(10)])
        copy = pickle.loads(pickle.dumps(client))
        try:
            assert [r["id"] for r in copy.nosql.query("c")["data"]] == list(range(10))
            with pytest.raises(ReadOnlyError):
                copy.nosql.insert("c", {"id": 99})
            client.nosql.insert("c", {"id": 10})
            assert len(copy.nosql.query("c")["data"]) == 11  # a reader moves forward with the writer
        finally:
            copy.close()
    with Memora(path=":memory:") as memory, pytest.raises(InvalidArgumentError):
        pickle.dumps(memory)


def test_copying_the_store_folder_inside_the_writer_process_keeps_the_writer_lock(tmp_path: os.PathLike[str]) -> None:
    """A backup made by the writing process opens and closes LOCK; a second writer must still be refused.

    (POSIX record locks, ``lockf``, are dropped when the process closes *any* descriptor of the file.)
    """
    path = os.path.join(tmp_path, "s")
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    second = f"from memora_lite import LockedError, Memora\ntry:\n Memora(path={path!r})\n print('OPENED')\n" \
             "except LockedError:\n print('REFUSED')"
    with Memora(path=path) as client:
        client.nosql.insert("c", {"id": 1})
        shutil.copytree(path, os.path.join(tmp_path, "backup"))
        with open(os.path.join(path, "default", "LOCK"), "rb") as f:  # or a look at the holder's pid
            f.read()
        proc = subprocess.run([sys.executable, "-c", second], capture_output=True, text=True, env=env, timeout=120)
        assert proc.stdout.strip() == "REFUSED", proc.stdout + proc.stderr
