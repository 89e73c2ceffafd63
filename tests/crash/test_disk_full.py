"""A full disk and a failing fsync.

Disk full: the insert that does not fit raises OSError (ENOSPC), nothing of it is
visible, the collection stays writable, and once space returns later inserts work
and everything acknowledged survives a reopen. Tested on a real, small tmpfs where
the machine allows mounting one (root), where ``write`` also comes back short, and
always through the file-system seam.

A failing fsync: the call raises the OSError, the collection turns read-only
(ReadOnlyError naming the cause: retrying an fsync can report success for pages the
kernel already dropped), and a new client opens to every acknowledged row, plus all
or nothing of the calls that failed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from memora_lite import Memora, ReadOnlyError
from memora_lite.nosql import NoSQL
from memora_lite.storage.engine import Options
from memora_lite.storage.fs import MemoryFileSystem
from memora_lite.storage.store import Store

ROOT = "/p"


def row(key: int) -> dict[str, Any]:
    return {"id": key, "tokens": [(key * 31 + i) % 1000 for i in range(40 + key % 50)], "s": f"row {key}" * 3}


def _rows(db: NoSQL) -> dict[int, dict[str, Any]]:
    return {r["id"]: dict(r) for r in db.query("c")["data"]} if db.has_collection("c") else {}


def _fill(db: NoSQL, first: int, until: int) -> tuple[list[int], OSError | None, list[int]]:
    """Insert rows (one-row calls and batches of 7) from ``first``; acknowledged keys, the error, its keys."""
    acked: list[int] = []
    key = first
    while key < until:
        keys = [key] if key % 3 else list(range(key, key + 7))
        try:
            db.insert("c", row(key) if len(keys) == 1 else [row(k) for k in keys])
        except OSError as exc:
            return acked, exc, keys
        acked += keys
        key += len(keys)
    return acked, None, []


class FullDisk(MemoryFileSystem):
    """An in-memory disk with ``free`` bytes left (None: unlimited); fsync fails while ``sync_error`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.free: int | None = None
        self.sync_error: int | None = None

    def before_write(self, nbytes: int) -> None:
        if self.free is not None:
            if nbytes > self.free:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.free -= nbytes

    def before_sync(self) -> None:
        if self.sync_error is not None:
            raise OSError(self.sync_error, os.strerror(self.sync_error))


@pytest.mark.parametrize("durability", ["process", "full"])
def test_a_full_disk_refuses_the_insert_that_does_not_fit_and_works_once_space_returns(
    durability: str, record_property: Callable[[str, object], None]
) -> None:
    fs = FullDisk()
    db = NoSQL(Store(ROOT, None, Options(durability=durability, flush_bytes=32 << 10), fs=fs))
    db.insert("c", [row(k) for k in range(100)])
    fs.free = 60_000
    acked, error, failed = _fill(db, 100, 10_000)
    assert error is not None and error.errno == errno.ENOSPC
    visible = _rows(db)
    partial = sorted(set(failed) & set(visible))
    fs.free = 0  # still full: the next write fails the same way, nothing else breaks
    with pytest.raises(OSError) as again:
        db.insert("c", row(20_000))
    assert again.value.errno == errno.ENOSPC and not isinstance(again.value, ReadOnlyError)
    with pytest.raises(OSError) as flushing:
        db.flush("c")
    assert flushing.value.errno == errno.ENOSPC
    fs.free = None  # space returns
    later, later_error, _ = _fill(db, 30_000, 30_100)
    db.flush("c")
    fs.crash()  # flushed, so even a power cut keeps everything
    reopened = _rows(NoSQL(Store(ROOT, None, Options(durability=durability), fs=fs)))
    expected = {k: row(k) for k in [*range(100), *acked, *later]}
    record_property("figure", f"disk full ({durability}, seam): {len(acked)} rows acknowledged before ENOSPC, "
                              f"{len(partial)} rows of the failing call visible, later inserts "
                              f"{'work' if later_error is None else 'fail'}, {len(set(expected) - set(reopened))} "
                              "acknowledged rows lost after reopen")
    assert partial == [] and visible == {k: row(k) for k in [*range(100), *acked]}
    assert later_error is None and len(later) >= 100
    assert reopened == expected


@contextlib.contextmanager
def small_tmpfs(where: str, size: str) -> Iterator[str]:
    os.makedirs(where, exist_ok=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", where],
                                 capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        mounted = False
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root): the seam test above covers disk full")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", where], capture_output=True, timeout=30)


def test_a_full_tmpfs_refuses_the_insert_that_does_not_fit_and_works_once_space_returns(
    tmp_path: os.PathLike[str], record_property: Callable[[str, object], None]
) -> None:
    with small_tmpfs(os.path.join(tmp_path, "mnt"), "2m") as mnt:
        path = os.path.join(mnt, "s")
        client = Memora(path=path, flush_bytes=64 << 10)
        db = client.nosql
        db.insert("c", [row(k) for k in range(100)])
        filler = os.path.join(mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        with contextlib.suppress(OSError):  # take every free block, then give back 48 KiB
            while os.write(fd, b"\xff" * 4096):
                pass
        os.close(fd)
        os.truncate(filler, max(0, os.path.getsize(filler) - (48 << 10)))
        acked, error, failed = _fill(db, 100, 100_000)
        visible = _rows(db)
        partial = sorted(set(failed) & set(visible))
        os.remove(filler)  # space returns
        later, later_error, _ = _fill(db, 200_000, 200_100)
        client.close()
        with Memora(path=path) as again:
            reopened = _rows(again.nosql)
        expected = {k: row(k) for k in [*range(100), *acked, *later]}
        code = errno.errorcode.get(getattr(error, "errno", 0), error)
        record_property("figure", f"disk full (tmpfs): {len(acked)} rows acknowledged before {code}, "
                                  f"{len(partial)} rows of the failing call visible, "
                                  f"later inserts {'work' if later_error is None else 'fail'}, "
                                  f"{len(set(expected) - set(reopened))} acknowledged rows lost after reopen")
        assert error is not None and error.errno == errno.ENOSPC
        assert partial == [] and visible == {k: row(k) for k in [*range(100), *acked]}
        assert later_error is None and len(later) >= 100
        assert reopened == expected


@pytest.mark.parametrize("durability", ["process", "full"])
def test_a_failing_fsync_turns_the_collection_read_only_and_a_new_client_sees_the_acknowledged_rows(
    durability: str, record_property: Callable[[str, object], None]
) -> None:
    fs = FullDisk()
    db = NoSQL(Store(ROOT, None, Options(durability=durability, flush_bytes=1 << 30), fs=fs))
    db.insert("c", [row(k) for k in range(50)])
    db.flush("c")
    db.insert("c", row(50))
    fs.sync_error = errno.EIO
    failed = [51, 52]
    with pytest.raises(OSError) as first:
        if durability == "full":
            db.insert("c", [row(51), row(52)])  # its fsync fails
        else:
            db.insert("c", [row(51), row(52)])  # reaches the OS: acknowledged at this level
            failed = []
            db.flush("c")  # the flush's fsync fails
    assert first.value.errno == errno.EIO and not isinstance(first.value, ReadOnlyError)
    with pytest.raises(ReadOnlyError, match=r"(?i)input/output error|EIO|I/O"):
        db.insert("c", row(60))
    with pytest.raises(ReadOnlyError):
        db.delete("c", ids=[1])
    fs.sync_error = None
    with pytest.raises(ReadOnlyError):  # the disk looks healthy again, but this client stays read-only
        db.upsert("c", row(2))
    reads_work = len(_rows(db)) >= 51
    reopened = NoSQL(Store(ROOT, None, Options(durability=durability), fs=fs))
    got = _rows(reopened)
    acked = {k: row(k) for k in range(51 if failed else 53)}
    extra = sorted(set(got) - set(acked))
    reopened.insert("c", row(70))
    record_property("figure", f"fsync failure ({durability}): the failing call raised OSError(EIO), later writes "
                              f"ReadOnlyError, reopen shows {len(set(acked) & set(got))}/{len(acked)} acknowledged "
                              f"rows and {len(extra)} rows of the failed call")
    assert reads_work
    assert {k: got[k] for k in acked if k in got} == acked and len(set(acked) & set(got)) == len(acked)
    assert extra in ([], failed)  # the failed call: all or nothing
    assert _rows(reopened)[70] == row(70)
