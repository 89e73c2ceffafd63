"""The background flush (storage/flushjob.py): inserts go on while a full memtable's rows
become a segment, reads see every row once throughout, and nothing that waits for it is lost.

A gated in-memory file system holds the flush thread inside its segment write for
as long as a test needs, so each test looks at the store mid-flush on purpose
rather than by luck of timing.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from typing import Any

import pytest

from memora_lite import Memora, ReadOnlyError
from memora_lite.nosql import NoSQL
from memora_lite.storage import filenames
from memora_lite.storage.engine import CollectionEngine, Options
from memora_lite.storage.fs import MemoryFileSystem, OsFileSystem
from memora_lite.storage.manifest import Manifest
from memora_lite.storage.store import Store

ROOT = "/p"
FOLDER = f"{ROOT}/default/c"
FLUSH_BYTES = 32 << 10
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def row(key: int, version: int = 0) -> dict[str, Any]:
    return {"id": key, "v": version, "tokens": [(key * 7 + i) % 900 for i in range(30 + key % 40)]}


class GatedDisk(MemoryFileSystem):
    """Segment writes wait at a gate while it is closed; ``fail_with`` makes the next one raise instead."""

    def __init__(self) -> None:
        super().__init__()
        self.open = threading.Event()
        self.open.set()
        self.waiting = threading.Event()  # a segment write is held at the gate
        self.fail_with: OSError | None = None

    def write_file(self, path: str, data: bytes) -> None:
        if path.endswith(".mls"):  # a segment file (storage/filenames.py)
            if self.fail_with is not None:
                exc, self.fail_with = self.fail_with, None
                raise exc
            self.waiting.set()
            assert self.open.wait(30), "the test never opened the gate"
        super().write_file(path, data)


def writer(fs: MemoryFileSystem) -> tuple[NoSQL, CollectionEngine]:
    """A writer client whose collection ``c`` holds row 0, and that collection's engine."""
    store = Store(ROOT, None, Options(flush_bytes=FLUSH_BYTES), fs=fs)
    db = NoSQL(store)
    db.insert("c", row(0))
    return db, store.engines["c"]


def fill_until_frozen(db: NoSQL, engine: CollectionEngine, first: int = 0) -> int:
    """Insert rows (batches of 20) until a background flush starts; returns the next free key."""
    key = first
    while engine.flush_job is None:
        db.insert("c", [row(k) for k in range(key, key + 20)])
        key += 20
        assert key < first + 10_000, "the memtable never filled"
    return key


def failed_flush(disk: GatedDisk, error: OSError) -> tuple[NoSQL, CollectionEngine, int]:
    """A writer whose first background flush failed with ``error``, and the next free key."""
    db, engine = writer(disk)
    disk.fail_with = error
    key = fill_until_frozen(db, engine, first=1)
    engine.flush_job.thread.join(30)  # type: ignore[union-attr]
    return db, engine, key


def ids(db: NoSQL) -> list[int]:
    return [r["id"] for r in db.query("c", output_fields=["id"])["data"]]


@pytest.fixture
def disk() -> GatedDisk:
    return GatedDisk()


def test_inserts_and_reads_go_on_while_a_full_memtable_is_written_in_the_background(disk: GatedDisk) -> None:
    db, engine = writer(disk)
    disk.open.clear()
    key = fill_until_frozen(db, engine, first=1)  # returned while the flush thread waits at the gate
    job = engine.flush_job
    assert job is not None and disk.waiting.wait(30) and not job.done.is_set()
    frozen = engine.frozen_rows
    segments_before = len(engine.segments)

    db.insert("c", [row(k) for k in range(key, key + 50)])  # into the new log, the flush still held
    db.insert("c", row(key + 50))
    expected = list(range(key + 51))
    assert ids(db) == expected  # memtable and segments: each row once
    on_disk = Manifest.load(disk, FOLDER)
    assert on_disk.wal_before is not None and on_disk.wal != on_disk.wal_before
    reader = NoSQL(Store(ROOT, None, Options(read_only=True), fs=disk))  # replays both logs
    assert ids(reader) == expected

    disk.open.set()
    job.thread.join(30)
    assert engine.flush_job is None  # the flush thread took its result in itself
    assert len(engine.segments) == segments_before + 1
    assert engine.segments[-1].entry.rows == frozen
    assert len(engine.memtable) == len(expected) - frozen - sum(s.entry.rows for s in engine.segments[:-1])
    installed = Manifest.load(disk, FOLDER)
    assert installed.wal_before is None and not disk.exists(f"{FOLDER}/{on_disk.wal_before}")
    assert ids(db) == ids(reader) == expected
    db.insert("c", row(key + 51))
    assert ids(NoSQL(Store(ROOT, None, Options(read_only=True), fs=disk))) == [*expected, key + 51]


def test_deletes_and_upserts_wait_for_the_running_flush_and_stay_applied_after_a_crash(disk: GatedDisk) -> None:
    db, engine = writer(disk)
    disk.open.clear()
    key = fill_until_frozen(db, engine, first=1)
    assert disk.waiting.wait(30)
    done: list[str] = []

    def change() -> None:  # rows 3 and 5 sit in the rows being flushed
        db.delete("c", ids=[3])
        db.upsert("c", row(5, version=1))
        done.append("changed")

    worker = threading.Thread(target=change)
    worker.start()
    worker.join(0.3)
    assert not done  # held until the segment holding rows 3 and 5 is in place
    disk.open.set()
    worker.join(30)
    assert done == ["changed"]
    expected = [k for k in range(key) if k != 3]
    assert ids(db) == expected
    after = NoSQL(Store(ROOT, None, Options(), fs=disk))  # the writer never closed: as after kill -9
    assert ids(after) == expected
    assert after.get("c", ids=[5], output_fields=["v"])["data"][0]["v"] == 1


def test_each_background_flush_leaves_only_the_files_its_manifest_names(disk: GatedDisk) -> None:
    db, engine = writer(disk)
    key = fill_until_frozen(db, engine, first=1)
    for gone in (3, 7, 11):  # each delete dirties the first segment; the next flush replaces its deletion vector
        db.delete("c", ids=[gone])  # waits for the running flush
        key = fill_until_frozen(db, engine, first=key)
        engine.flush_job.thread.join(30)  # type: ignore[union-attr]
        manifest = Manifest.load(disk, FOLDER)
        named = {filenames.MANIFEST, manifest.wal}
        for s in manifest.segments:
            named.add(filenames.segment_name(s.number))
            if s.deletes is not None:
                named.add(filenames.deletes_name(s.number, s.deletes))
        assert set(disk.listdir(FOLDER)) == named
    assert manifest.segments[0].deleted == 3
    assert ids(db) == [k for k in range(key) if k not in (3, 7, 11)]


def test_a_flush_that_hits_a_full_disk_keeps_its_rows_and_a_later_flush_writes_them(disk: GatedDisk) -> None:
    db, engine, key = failed_flush(disk, OSError(errno.ENOSPC, "No space left on device"))
    assert engine.failure is None and Manifest.load(disk, FOLDER).wal_before is not None
    assert ids(db) == list(range(key))
    db.insert("c", row(key))  # still writable
    db.flush("c")  # inline: both logs' rows into segments
    assert Manifest.load(disk, FOLDER).wal_before is None
    assert sorted(disk.listdir(FOLDER)) == sorted(
        [filenames.MANIFEST, engine.manifest.wal, *(filenames.segment_name(s.entry.number) for s in engine.segments)])
    assert ids(NoSQL(Store(ROOT, None, Options(read_only=True), fs=disk))) == list(range(key + 1))


def test_a_flush_that_fails_otherwise_turns_the_collection_read_only_and_loses_nothing(disk: GatedDisk) -> None:
    db, engine, key = failed_flush(disk, OSError(errno.EIO, "Input/output error"))
    assert isinstance(engine.failure, OSError) and engine.failure.errno == errno.EIO
    with pytest.raises(ReadOnlyError, match=r"collection 'c' turned read-only after .*Input/output error"):
        db.insert("c", row(key))
    assert ids(db) == list(range(key))
    assert ids(NoSQL(Store(ROOT, None, Options(), fs=disk))) == list(range(key))  # the next writer recovers


def test_a_fork_waits_for_the_running_flush(disk: GatedDisk) -> None:
    db, engine = writer(disk)
    disk.open.clear()
    fill_until_frozen(db, engine, first=1)
    job = engine.flush_job
    assert job is not None and disk.waiting.wait(30)
    threading.Timer(0.2, disk.open.set).start()
    with warnings.catch_warnings():  # Python 3.12+ warns on fork with threads; the hook is why it is safe
        warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        os._exit(0 if job.done.is_set() and not job.thread.is_alive() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_a_process_that_exits_without_closing_finishes_or_replays_its_flush(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "s")
    script = textwrap.dedent(f"""
        from memora_lite import Memora
        db = Memora(path={path!r}, flush_bytes={FLUSH_BYTES}).nosql
        for lo in range(0, 3000, 100):
            db.insert("c", [{{"id": k, "tokens": list(range(k % 50))}} for k in range(lo, lo + 100)])
        print("inserted", flush=True)
    """)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "inserted\n", "")
    with Memora(path=path) as client:
        rows = client.nosql.query("c", output_fields=["id", "tokens"])["data"]
        assert [r["id"] for r in rows] == list(range(3000))
        assert all(r["tokens"] == list(range(r["id"] % 50)) for r in rows)


def test_a_flush_still_running_when_the_interpreter_exits_writes_its_segment(tmp_path: os.PathLike[str]) -> None:
    """The main thread returns while the flush thread is still on its way to the segment
    encoder; the interpreter waits for it (it is not a daemon), and by then thread pools
    refuse work: the segment is written anyway, and the store opens with one log."""
    path = os.path.join(tmp_path, "s")
    script = textwrap.dedent(f"""
        import threading, time
        from memora_lite.storage import flushjob
        started, write_segment = threading.Event(), flushjob.write_segment

        def slow_write_segment(*args, **kwargs):  # still writing when the main thread returns
            started.set()
            time.sleep(0.3)
            return write_segment(*args, **kwargs)

        flushjob.write_segment = slow_write_segment
        from memora_lite import Memora
        db = Memora(path={path!r}, flush_bytes=256 << 10).nosql  # a flush of several blocks: encoder threads
        key = 0
        while not started.is_set():
            db.insert("c", [{{"id": k, "tokens": list(range(k % 50))}} for k in range(key, key + 500)])
            key += 500
        print(key, flush=True)
    """)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert (proc.returncode, proc.stderr) == (0, "")
    manifest = Manifest.load(OsFileSystem(), os.path.join(path, "default", "c"))
    assert manifest.wal_before is None and manifest.segments
    with Memora(path=path) as client:
        rows = client.nosql.query("c", output_fields=["id", "tokens"])["data"]
        assert [r["id"] for r in rows] == list(range(int(proc.stdout)))
        assert all(r["tokens"] == list(range(r["id"] % 50)) for r in rows)


def test_a_frozen_log_that_lost_its_tail_hides_the_newer_log(disk: GatedDisk) -> None:
    """On a real disk the unsynced pages of two files can reach it in either order. If a power
    cut tore the frozen log's last record but kept the new log's records, replaying the new
    log would keep later calls and drop an earlier one: recovery stops at the tear instead."""
    db, engine = writer(disk)
    disk.open.clear()
    key = fill_until_frozen(db, engine, first=1)  # its last call, rows key-20..key-1, ends the frozen log
    db.insert("c", [row(k) for k in range(key, key + 10)])  # the new log's only record
    manifest = Manifest.load(disk, FOLDER)
    image = MemoryFileSystem()
    for folder in disk.dirs:
        image.makedirs(folder)
    for path, f in list(disk.files.items()):
        cut = 10 if path == f"{FOLDER}/{manifest.wal_before}" else 0
        image.write_file(path, bytes(f.data[: len(f.data) - cut]))
    assert ids(NoSQL(Store(ROOT, None, Options(read_only=True), fs=image))) == list(range(key - 20))
    recovered = NoSQL(Store(ROOT, None, Options(), fs=image))  # a writer flushes what it recovered, then goes on
    recovered.insert("c", row(10**6))
    assert Manifest.load(image, FOLDER).wal_before is None
    assert ids(NoSQL(Store(ROOT, None, Options(read_only=True), fs=image))) == [*range(key - 20), 10**6]
    disk.open.set()
    engine.flush_job.thread.join(30)  # type: ignore[union-attr]


def test_a_schema_that_grew_in_the_frozen_log_replays_from_the_schema_that_log_began_with(
        disk: GatedDisk) -> None:
    db, engine = writer(disk)  # the log begins with the schema of row 0
    db.insert("c", {**row(1), "note": "grown"})  # a new field: the frozen log's record grows the schema
    disk.open.clear()
    key = fill_until_frozen(db, engine, first=2)
    assert disk.waiting.wait(30)
    reader = NoSQL(Store(ROOT, None, Options(read_only=True), fs=disk))  # replays both logs from the manifest
    assert ids(reader) == list(range(key))
    assert reader.get("c", ids=[1], output_fields=["note"])["data"][0]["note"] == "grown"
    disk.open.set()
    engine.flush_job.thread.join(30)  # type: ignore[union-attr]
    assert "note" in Manifest.load(disk, FOLDER).schema["fields"][-1].values()


def test_describing_a_collection_while_a_flush_renames_its_files_counts_what_is_there() -> None:
    """The flush thread holds no collection lock, so a file listed a moment ago may be gone
    (``MANIFEST.tmp`` renamed) by the time its size is read."""

    class RenamingDisk(MemoryFileSystem):
        def listdir(self, path: str) -> list[str]:
            return [*super().listdir(path), filenames.MANIFEST + filenames.TEMP_SUFFIX]  # listed, then gone

    disk = RenamingDisk()
    db, _engine = writer(disk)
    stored = sum(disk.file_size(f"{FOLDER}/{name}") for name in MemoryFileSystem.listdir(disk, FOLDER))
    assert db.describe_collection("c")["bytes_on_disk"] == stored > 0
