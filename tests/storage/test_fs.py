"""The in-memory file system models a power cut: unsynced bytes and unsynced renames are lost."""

from __future__ import annotations

import os

from memora_lite.storage.fs import MemoryFileSystem, OsFileSystem


def test_synced_bytes_survive_and_unsynced_appends_do_not() -> None:
    fs = MemoryFileSystem()
    fs.makedirs("/d")
    fs.write_file("/d/f", b"base")
    fs.sync_dir("/d")
    log = fs.open_appender("/d/f")
    log.append(b"+synced")
    log.sync()
    log.append(b"+lost")
    fs.crash()
    assert fs.read("/d/f") == b"base+synced"


def test_a_rename_is_durable_only_after_the_folder_is_synced() -> None:
    fs = MemoryFileSystem()
    fs.makedirs("/d")
    fs.write_file("/d/a", b"old")
    fs.sync_dir("/d")
    fs.write_file("/d/a.tmp", b"new")
    fs.rename("/d/a.tmp", "/d/a")
    fs.sync_dir("/d")
    fs.write_file("/d/b", b"unsynced entry")
    fs.crash()
    assert fs.read("/d/a") == b"new"
    assert not fs.exists("/d/b")


def test_a_gather_append_writes_the_parts_in_order_even_when_the_kernel_takes_less(tmp_path, monkeypatch) -> None:
    fs = OsFileSystem()
    path = str(tmp_path / "log")
    log = fs.open_appender(path)
    log.append_parts([b"head", b"", b"body" * 1000, b"tail"])
    many = [bytes([i % 251]) * 3 for i in range(600)]  # more buffers than one writev takes
    log.append_parts(many)
    real_writev = os.writev
    monkeypatch.setattr(os, "writev", lambda fd, parts: real_writev(fd, [parts[0][:3]]))  # a short write
    log.append_parts([b"abcdef", b"ghi"])
    log.close()
    want = b"head" + b"body" * 1000 + b"tail" + b"".join(many) + b"abcdefghi"
    with open(path, "rb") as f:
        assert f.read() == want
    assert log.size == len(want)
