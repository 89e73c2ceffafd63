"""The in-memory file system models a power cut: unsynced bytes and unsynced renames are lost."""

from __future__ import annotations

from memora_lite.storage.fs import MemoryFileSystem


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
