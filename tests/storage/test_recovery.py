"""Reopening a store: after a clean close, after kill -9, with a torn log tail, and with damage."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from memora_lite import CorruptionError, LockedError, Memora
from memora_lite.storage.format import WAL_MAGIC, WAL_RECORD_HEADER
from memora_lite.storage.fs import MemoryFileSystem
from memora_lite.storage.wal import read_records


def _snapshot_while_open(client: Memora, dest: str) -> str:
    """Copy a store folder as a kill -9 would leave it: what reached the OS, nothing flushed at close."""
    shutil.copytree(str(client.path), dest, ignore=shutil.ignore_patterns("LOCK"))
    return dest


def _wal(path: str) -> str:
    (wal,) = glob.glob(os.path.join(path, "default", "c", "wal-*.log"))
    return wal


def test_reopen_after_clean_close_keeps_everything(tmp_path) -> None:
    path = os.path.join(tmp_path, "s")
    with Memora(path=path) as c:
        c.nosql.insert("c", [{"id": i, "t": [i] * 3, "s": str(i)} for i in range(1000)])
    with Memora(path=path) as c:
        assert c.nosql.query("c", filter="id >= 998")["data"] == [
            {"id": 998, "t": [998] * 3, "s": "998"}, {"id": 999, "t": [999] * 3, "s": "999"}]
        info = c.nosql.describe_collection("c")
        assert info["memtable_rows"] == 0 and info["segments"] == 1  # close flushed: reopen replays nothing


def test_kill_9_after_acknowledged_inserts_loses_nothing(tmp_path) -> None:
    path = os.path.join(tmp_path, "s")
    script = textwrap.dedent(f"""
        import os, signal, sys
        from memora_lite import Memora
        c = Memora(path={path!r})
        for i in range(300):
            c.nosql.insert("c", {{"id": i, "tokens": [i, i + 1, i + 2]}})
        c.nosql.insert("c", [{{"id": 1000 + i, "tokens": [i]}} for i in range(50)])
        c.nosql.delete("c", ids=[0, 1])
        c.nosql.upsert("c", {{"id": 2, "tokens": [-2]}})
        print("acked", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert "acked" in proc.stdout
    with Memora(path=path) as c:  # the dead writer's lock does not block us
        rows = {r["id"]: r["tokens"] for r in c.nosql.query("c")["data"]}
    expected = {i: [i, i + 1, i + 2] for i in range(3, 300)}
    expected.update({1000 + i: [i] for i in range(50)})
    expected[2] = [-2]
    assert rows == expected


def test_second_writer_gets_locked_error_naming_the_pid(tmp_path) -> None:
    path = os.path.join(tmp_path, "s")
    with Memora(path=path) as c:
        c.nosql.insert("c", {"id": 1})
        with pytest.raises(LockedError, match=str(os.getpid())):
            Memora(path=path)  # same process
        other = subprocess.run(
            [sys.executable, "-c", f"from memora_lite import Memora; Memora(path={path!r})"],
            capture_output=True, text=True, timeout=60,
        )
        assert other.returncode != 0 and f"open for writing by process {os.getpid()}" in other.stderr
        reader = Memora(path=path, read_only=True)
        assert reader.nosql.get("c", key=1)["data"] == [{"id": 1}]
        reader.close()


def test_torn_tail_at_every_offset_of_the_last_two_records_keeps_the_longest_valid_prefix(tmp_path) -> None:
    path = os.path.join(tmp_path, "s")
    c = Memora(path=path)
    for i in range(5):
        c.nosql.insert("c", {"id": i, "tokens": list(range(i + 1))})
    snap = _snapshot_while_open(c, os.path.join(tmp_path, "snap"))
    c.close()
    wal = _wal(snap)
    with open(wal, "rb") as f:
        data = f.read()
    records, valid = read_records(data, wal)
    assert len(records) == 5 and valid == len(data)
    boundaries = [len(WAL_MAGIC)]
    for _, payload in records:
        boundaries.append(boundaries[-1] + WAL_RECORD_HEADER.size + len(payload))
    for cut in range(boundaries[3], len(data)):
        trial = os.path.join(tmp_path, f"cut{cut}")
        shutil.copytree(snap, trial)
        with open(_wal(trial), "r+b") as f:
            f.truncate(cut)
        kept = sum(1 for b in boundaries[1:] if b <= cut)
        with Memora(path=trial) as t:
            assert [r["id"] for r in t.nosql.query("c")["data"]] == list(range(kept)), cut
            t.nosql.insert("c", {"id": 99, "tokens": [9]})  # writing after a torn tail works
        with Memora(path=trial) as t:
            assert [r["id"] for r in t.nosql.query("c")["data"]] == [*range(kept), 99]
        shutil.rmtree(trial)


@pytest.mark.parametrize("tail", [b"\x00" * 4096, b"\xff\xff\xff\x7f garbage", os.urandom(3)])
def test_garbage_or_zeros_after_the_last_record_is_a_torn_tail(tmp_path, tail: bytes) -> None:
    path = os.path.join(tmp_path, "s")
    c = Memora(path=path)
    c.nosql.insert("c", [{"id": i} for i in range(3)])
    snap = _snapshot_while_open(c, os.path.join(tmp_path, "snap"))
    c.close()
    with open(_wal(snap), "ab") as f:
        f.write(tail)
    with Memora(path=snap) as t:
        assert t.nosql.describe_collection("c")["row_count"] == 3


def test_a_damaged_record_before_the_end_is_corruption_naming_file_and_offset(tmp_path) -> None:
    path = os.path.join(tmp_path, "s")
    c = Memora(path=path)
    c.nosql.insert("c", {"id": 1, "s": "first"})
    c.nosql.insert("c", {"id": 2, "s": "second"})
    snap = _snapshot_while_open(c, os.path.join(tmp_path, "snap"))
    c.close()
    wal = _wal(snap)
    with open(wal, "r+b") as f:
        data = bytearray(f.read())
        data[len(WAL_MAGIC) + WAL_RECORD_HEADER.size + 3] ^= 0x40  # inside the first record's payload
        f.seek(0)
        f.write(bytes(data))
    with pytest.raises(CorruptionError, match=r"wal-\d+\.log: record at offset 8"):
        Memora(path=snap).nosql.query("c")


def test_files_left_by_a_crash_mid_flush_are_removed_on_open(tmp_path) -> None:
    path = os.path.join(tmp_path, "s")
    with Memora(path=path) as c:
        c.nosql.insert("c", {"id": 1})
    folder = os.path.join(path, "default", "c")
    for stray in ("seg-000999.mls", "wal-000998.log", "seg-000001.del-000997", "MANIFEST.tmp"):
        with open(os.path.join(folder, stray), "wb") as f:
            f.write(b"partial")
    with Memora(path=path) as c:
        assert c.nosql.query("c")["data"] == [{"id": 1}]
        names = os.listdir(folder)
    assert not {"seg-000999.mls", "wal-000998.log", "seg-000001.del-000997", "MANIFEST.tmp"} & set(names)


def test_power_loss_in_memory_file_system_keeps_what_was_flushed() -> None:
    fs = MemoryFileSystem()
    from memora_lite.nosql import NoSQL
    from memora_lite.storage.engine import Options
    from memora_lite.storage.store import Store

    store = Store("/p", None, Options(), fs=fs)
    db = NoSQL(store)
    db.insert("c", [{"id": i} for i in range(10)])
    db.flush("c")
    db.insert("c", {"id": 10})  # reached the OS, never synced
    fs.crash()
    store2 = Store("/p", None, Options(), fs=fs)
    assert NoSQL(store2).query("c", output_fields=["count(*)"])["data"] == [{"count(*)": 10}]
