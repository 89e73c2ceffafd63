"""The background flush: a full memtable's rows written to a segment on a thread of its own.

Flushing a 64 MiB memtable (~56,000 SQuAD-shaped rows) means encoding, compressing
and several fsyncs. Done inline, the insert call that filled the memtable waits for all
of it (``benchmarks/test_flush_stall.py`` measures that call). Instead that call
*freezes* the memtable (the engine does it, under its lock): it starts a new log,
installs a manifest naming both logs, and hands the rows logged so far to a
:class:`FlushJob`. The job's thread writes and syncs the segment, installs a
manifest naming the segment and only the new log, and removes the frozen log, while
inserts go on into the new log. LevelDB's immutable memtable works the same way.

The job touches only files (their numbers reserved at the freeze) and its own objects;
it never holds the engine's lock while it writes. The engine takes the result in under
its lock (:meth:`CollectionEngine._install_flush`); until then the memtable still holds
the frozen rows and the segment list lacks them, so every read sees each row once.
Calls that would change a frozen row (deletes, upserts, a schema that grows) wait for
the job first, as do flush, compaction and close. A fork waits for running jobs, so
no child inherits a half-written segment or a lock held by a flush thread.

>>> from memora_lite.schema import Schema
>>> from memora_lite.storage.fs import MemoryFileSystem
>>> from memora_lite.storage.manifest import Manifest
>>> fs = MemoryFileSystem(); fs.makedirs("/c"); fs.write_file("/c/wal-000001.log", b"")
>>> schema = Schema.infer({"id": [1, 2, 3], "x": [10, 20, 30]})
>>> rows, _ = schema.to_batch({"id": [1, 2, 3], "x": [10, 20, 30]}, "c")
>>> target = Manifest(collection="c", schema=schema.to_dict(), wal="wal-000003.log", next_file=4)
>>> job = FlushJob(fs, "/c", [rows], schema, 2, target, [], ["wal-000001.log"], lambda job: None)
>>> job.start(); job.thread.join()
>>> job.error, job.entry.rows, sorted(fs.listdir("/c"))
(None, 3, ['MANIFEST', 'seg-000002.mls'])
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

from memora_lite.columns import Batch
from memora_lite.schema import Schema
from memora_lite.storage import crashpoints, filenames
from memora_lite.storage.fs import FileSystem
from memora_lite.storage.manifest import Manifest, SegmentEntry
from memora_lite.storage.segment import write_segment

_RUNNING: set[FlushJob] = set()  # jobs whose thread has not finished (see _wait_before_fork)


class FlushJob:
    """Write ``batches`` (the frozen rows, in key order) as segment ``number`` and the
    ``(name, bytes)`` deletion vectors in ``deletes``, then install ``manifest`` with that
    segment added and remove the files it no longer names, ``obsolete`` (the frozen log, and
    deletion vectors the new ones replace).

    ``on_done(job)`` runs last on the job's thread, after :attr:`done` is set, whether
    the job succeeded (:attr:`entry` set) or failed (:attr:`error` set).
    """

    def __init__(self, fs: FileSystem, folder: str, batches: Sequence[Batch], schema: Schema, number: int,
                 manifest: Manifest, deletes: list[tuple[str, bytes]], obsolete: list[str],
                 on_done: Callable[[FlushJob], None]) -> None:
        self.fs = fs
        self.folder = folder
        self.batches = batches
        self.schema = schema
        self.number = number
        self.manifest = manifest
        self.deletes = deletes
        self.obsolete = obsolete
        self.on_done = on_done
        self.entry: SegmentEntry | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        # Not a daemon: at interpreter exit the flush finishes rather than stopping halfway.
        self.thread = threading.Thread(target=self._run, name="memora-flush")

    def start(self) -> None:
        _RUNNING.add(self)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._write()
        except BaseException as exc:  # handed to the engine, which decides (see _install_flush)
            self.error = exc
        finally:
            self.done.set()
            try:
                self.on_done(self)
            finally:
                _RUNNING.discard(self)

    def _write(self) -> None:
        path = os.path.join(self.folder, filenames.segment_name(self.number))
        min_pk, max_pk = write_segment(self.fs, path, self.batches, self.schema)
        entry = SegmentEntry(number=self.number, rows=sum(map(len, self.batches)), min_pk=min_pk, max_pk=max_pk)
        for name, data in self.deletes:
            self.fs.write_file(os.path.join(self.folder, name), data)
        self.fs.sync_dir(self.folder)  # their names are durable before a manifest names them
        crashpoints.reach("background.segment_written")
        self.manifest.segments.append(entry)
        self.manifest.install(self.fs, self.folder, before_rename="background.manifest_written")
        for name in self.obsolete:
            self.fs.remove(os.path.join(self.folder, name))
        crashpoints.reach("background.done")
        self.batches = ()  # the rows are in the segment now: let their memory go with the memtable's
        self.entry = entry


def _wait_before_fork() -> None:
    for job in list(_RUNNING):
        job.thread.join()


os.register_at_fork(before=_wait_before_fork)
