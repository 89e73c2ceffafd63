"""One collection's storage engine: log, memtable, segments, manifest, and the read path.

Write path (docs/impl.md#write-path): validate -> check keys -> append one framed
record to the write-ahead log (one ``write`` call; also ``fsync`` when
``durability="full"``) -> apply to the memtable -> return. When the memtable
passes ``flush_bytes`` its rows become a segment, on a thread of their own
(storage/flushjob.py) while writes go on into a fresh log; an explicit flush,
compaction or close does it inline: write and sync the segment file and any
changed deletion vectors, start a fresh log, install a new manifest atomically,
then delete the files the old manifest named.

Read path: parse the filter, turn its primary-key constraint into row positions
through the range index (segments, then blocks, then keys), read only the columns
needed, evaluate the rest of the filter vectorised over those rows, merge with
the memtable in key order.

Recovery (docs/impl.md#recovery): load the manifest, open its segments and
deletion vectors, replay the logs it names up to any torn tail, cut that tail, and
delete files no manifest names (left by a crash mid-flush). A writer that finds two
logs (a background flush never finished) flushes them inline before it goes on.
"""

from __future__ import annotations

import errno
import itertools
import os
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from memora_lite.codecs import TokenBlock
from memora_lite.columns import Batch, Ragged
from memora_lite.errors import CollectionNotFoundError, CorruptionError, DuplicateIdError, ReadOnlyError
from memora_lite.query import evaluate, parse, plan, referenced_fields
from memora_lite.results import column_to_list, to_lists, to_numpy
from memora_lite.schema import Schema, conform, element_dtype, null_column
from memora_lite.storage import crashpoints, filenames
from memora_lite.storage.flushjob import FlushJob
from memora_lite.storage.format import (
    DELETES_HEADER,
    DELETES_MAGIC,
    WAL_DELETE,
    WAL_INSERT,
    WAL_INSERT_ROW,
    WAL_UPSERT,
    WAL_UPSERT_ROW,
    masked_crc,
)
from memora_lite.storage.fs import FileSystem, forks_seen
from memora_lite.storage.manifest import Manifest, SegmentEntry
from memora_lite.storage.memtable import MemTable
from memora_lite.storage.rangeindex import KeyConstraint, rows_in_sorted, segment_rows, segment_span
from memora_lite.storage.records import (
    decode_keys,
    decode_row,
    decode_rows,
    encode_keys,
    encode_rows,
)
from memora_lite.storage.segment import DEFAULT_CACHE_BYTES, BlockCache, SegmentReader, write_segment
from memora_lite.storage.wal import WalWriter, frame_parts, parse_records, read_records

DEFAULT_FLUSH_BYTES = 64 << 20
READER_RETRIES = 20  # a reader reloads this often if a writer replaces files under it
# (stage, step) -> the crash point reached there; compaction names only its two telling steps
CRASH_POINTS = {
    ("flush", "segments"): "flush.segment_written",
    ("flush", "deletes"): "flush.deletes_written",
    ("flush", "wal"): "flush.wal_created",
    ("flush", "manifest_written"): "flush.manifest_written",
    ("flush", "manifest_installed"): "flush.manifest_installed",
    ("flush", "done"): "flush.done",
    ("compact", "segments"): "compact.segments_written",
    ("compact", "deletes"): "",
    ("compact", "wal"): "",
    ("compact", "manifest_written"): "",
    ("compact", "manifest_installed"): "compact.manifest_installed",
    ("compact", "done"): "",
}
DEFAULT_SEGMENT_ROWS = 1 << 20  # compaction writes segments of at most this many rows
DURABILITY_LEVELS = ("process", "full")


@dataclass
class Options:
    """Tuning knobs shared by every collection of one client."""

    read_only: bool = False
    durability: str = "process"  # "process": survives kill -9; "full": also power loss (fsync per call)
    flush_bytes: int = DEFAULT_FLUSH_BYTES
    segment_rows: int = DEFAULT_SEGMENT_ROWS
    cache_bytes: int = DEFAULT_CACHE_BYTES


class LiveSegment:
    """A segment in use: its manifest entry, in-memory deletion mask, and reader.

    A writer opens the reader on first use: opening a store parses no segment
    footer, and a read opens only the segments its keys fall in. A read-only
    client opens every reader with the manifest, so that a writer deleting files
    after a compaction cannot pull one from under it.
    """

    def __init__(self, open_reader: Callable[[], SegmentReader], entry: SegmentEntry, path: str,
                 deleted: np.ndarray | None) -> None:
        self._open_reader = open_reader
        self._reader: SegmentReader | None = None
        self.entry = entry
        self.path = path
        self.deleted = deleted  # bool per row, None while no row is deleted
        self.dirty = False  # deletions not yet written to a deletion vector

    @property
    def reader(self) -> SegmentReader:
        if self._reader is None:
            self._reader = self._open_reader()
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()

    def live_rows(self, rows: np.ndarray) -> np.ndarray:
        return rows if self.deleted is None else rows[~self.deleted[rows]]

    def delete_rows(self, rows: np.ndarray) -> None:
        if self.deleted is None:
            self.deleted = np.zeros(self.entry.rows, dtype=bool)
        self.deleted[rows] = True
        self.dirty = True

    @property
    def live_count(self) -> int:
        return self.entry.rows - (0 if self.deleted is None else int(self.deleted.sum()))


class CollectionEngine:
    """Storage for one collection folder. Thread-safe: one lock around every call."""

    def __init__(self, fs: FileSystem, folder: str, name: str, options: Options, cache: BlockCache) -> None:
        self.fs = fs
        self.folder = folder
        self.name = name
        self.options = options
        self.cache = cache
        self.lock = threading.RLock()
        self.sync_lock = threading.Lock()  # group commit: one fsync covers every record appended before it
        self.appended = 0  # records appended to the log by this process
        self.synced = 0  # of those, how many an fsync has covered
        self.failure: BaseException | None = None  # set when an I/O error (or a failed flush) made it read-only
        self.pid = os.getpid()
        self.forks = forks_seen()  # differs in a forked child, which must not write
        self.wal: WalWriter | None = None
        self.flush_job: FlushJob | None = None  # the background flush in progress, if any
        self.flush_at = options.flush_bytes  # memtable bytes at which the next flush starts
        self.frozen_rows = self.frozen_bytes = 0  # the memtable's rows (and bytes) the running flush writes
        self._open()

    # -- lifecycle ---------------------------------------------------------------------------------

    @classmethod
    def create(cls, fs: FileSystem, folder: str, name: str, schema: Schema, options: Options,
               cache: BlockCache) -> CollectionEngine:
        """Make the folder, an empty log and the first manifest; then open it."""
        fs.makedirs(folder)
        WalWriter.create(fs, os.path.join(folder, filenames.wal_name(1))).close()
        Manifest(collection=name, schema=schema.to_dict(), wal=filenames.wal_name(1), next_file=2).install(
            fs, folder
        )
        return cls(fs, folder, name, options, cache)

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def _open(self) -> None:
        if not self.options.read_only:
            self._load()
            self.wal = WalWriter.reopen(self.fs, self._path(self.manifest.wal), self.wal_valid)
            self._remove_unreferenced()
            if self.manifest.wal_before is not None:  # a background flush never finished: finish it
                self._flush()
            return
        for attempt in range(READER_RETRIES):  # a writer may replace files between our reads
            try:
                self._load()
                return
            except FileNotFoundError:
                if attempt == READER_RETRIES - 1:
                    raise

    def _load(self) -> None:
        """State from the manifest, its segments and its log (up to any torn tail)."""
        self.manifest_signature = self.fs.signature(self._path(filenames.MANIFEST))
        self.manifest = Manifest.load(self.fs, self.folder)
        self.schema = Schema.from_dict(self.manifest.schema)
        for segment in getattr(self, "segments", []):
            segment.close()
        self.segments = [self._open_segment(e) for e in self.manifest.segments]
        self._segments_changed()
        self.memtable = self._new_memtable()
        complete = True
        if self.manifest.wal_before is not None:
            before_path = self._path(self.manifest.wal_before)
            records, valid = read_records(self.fs.read(before_path), before_path)
            for record_type, payload in records:
                self._replay(record_type, payload, before_path)
            complete = valid >= self.manifest.wal_before_bytes
        wal_path = self._path(self.manifest.wal)
        records, self.wal_valid = read_records(self.fs.read(wal_path), wal_path)
        if not complete:
            # A power cut took the frozen log's unsynced tail: the newer log's records came
            # after the lost ones, so replaying them would keep later calls and drop earlier ones.
            records = []
        for record_type, payload in records:
            self._replay(record_type, payload, wal_path)

    def refresh(self) -> None:
        """For a reader: move forward to the writer's latest state (a no-op for the writer).

        New log records are applied in place; a new manifest (after a flush or a
        compaction) reloads everything. Either way the view only moves forward.
        """
        if not self.options.read_only:
            return
        with self.lock:
            try:
                signature = self.fs.signature(self._path(filenames.MANIFEST))
            except FileNotFoundError:
                raise CollectionNotFoundError(f"collection '{self.name}' was dropped by the writer") from None
            if signature != self.manifest_signature:
                self._open()
                return
            wal_path = self._path(self.manifest.wal)
            try:
                size = self.fs.file_size(wal_path)
                if size <= self.wal_valid:
                    return
                reader = self.fs.open_reader(wal_path)
                try:
                    tail = reader.pread(self.wal_valid, size - self.wal_valid)
                finally:
                    reader.close()
            except FileNotFoundError:  # the writer flushed meanwhile: the new manifest has it all
                self._open()
                return
            records, used = parse_records(tail, wal_path, self.wal_valid)
            for record_type, payload in records:
                self._replay(record_type, payload, wal_path)
            self.wal_valid += used

    def _segments_changed(self) -> None:
        keys = [s.entry.max_pk for s in self.segments if s.entry.rows]
        self.max_segment_key = max(keys) if keys else None  # keys above it need no segment lookup
        # The top level of the range index: segments in key order. When their key ranges do not
        # overlap (ids that arrive in order), a key or a range finds its segments by binary search.
        self.by_key = sorted((s for s in self.segments if s.entry.rows), key=lambda s: s.entry.min_pk)
        self.by_key_mins = [s.entry.min_pk for s in self.by_key]
        self.disjoint = all(a.entry.max_pk < b.entry.min_pk for a, b in itertools.pairwise(self.by_key))

    def _segments_for(self, lo: Any, hi: Any) -> list[LiveSegment] | None:
        """Segments whose keys may lie in ``[lo, hi]`` (None = open end), in key order, found by
        binary search; None when segment key ranges overlap (the caller then looks at each)."""
        if not self.disjoint:
            return None
        first = 0 if lo is None else max(bisect_right(self.by_key_mins, lo) - 1, 0)
        stop = len(self.by_key) if hi is None else bisect_right(self.by_key_mins, hi)
        return self.by_key[first:stop]

    def _new_memtable(self) -> MemTable:
        return MemTable(self.schema.primary_key, self.schema.pending_rows(), self.schema.pending_batch)

    def _open_segment(self, entry: SegmentEntry) -> LiveSegment:
        path = self._path(filenames.segment_name(entry.number))

        def open_reader() -> SegmentReader:
            reader = SegmentReader(self.fs, path, self.cache)
            if reader.rows != entry.rows:
                raise CorruptionError(f"{reader.path}: holds {reader.rows} rows but the manifest says {entry.rows}")
            return reader

        deleted = None
        if entry.deletes is not None:
            deleted = self._read_deletes(filenames.deletes_name(entry.number, entry.deletes), entry.rows)
        segment = LiveSegment(open_reader, entry, path, deleted)
        if self.options.read_only:
            segment.reader  # noqa: B018 (open it now: see LiveSegment)
        return segment

    def _read_deletes(self, name: str, rows: int) -> np.ndarray:
        path = self._path(name)
        data = self.fs.read(path)
        if len(data) < DELETES_HEADER.size:
            raise CorruptionError(f"{path}: too short for a deletion vector")
        magic, count, crc = DELETES_HEADER.unpack_from(data, 0)
        body = data[DELETES_HEADER.size :]
        if magic != DELETES_MAGIC or len(body) != 4 * count or masked_crc(body) != crc:
            raise CorruptionError(f"{path}: deletion vector fails its checksum at offset 0")
        positions = np.frombuffer(body, dtype="<u4")
        if count and int(positions.max()) >= rows:
            raise CorruptionError(f"{path}: deletes row {int(positions.max())} of a {rows}-row segment")
        deleted = np.zeros(rows, dtype=bool)
        deleted[positions] = True
        return deleted

    def _remove_unreferenced(self) -> None:
        """Delete files a crash mid-flush or mid-compaction left behind; no manifest names them."""
        keep = {filenames.MANIFEST, self.manifest.wal, self.manifest.wal_before}
        for s in self.manifest.segments:
            keep.add(filenames.segment_name(s.number))
            if s.deletes is not None:
                keep.add(filenames.deletes_name(s.number, s.deletes))
        for name in self.fs.listdir(self.folder):
            if name not in keep and (filenames.parse_number(name) or name.endswith(filenames.TEMP_SUFFIX)):
                self.fs.remove(self._path(name))

    def close(self, flush: bool = True) -> None:
        """Release files; with ``flush``, first turn the memtable into a segment so reopening is quick."""
        with self.lock:
            self._finish_flush()
            if self.wal is not None:
                mine = self.forks == forks_seen() and self.failure is None  # a forked child never writes
                if mine and flush and (len(self.memtable) or any(s.dirty for s in self.segments)):
                    self._flush()
                self.wal.close()
                self.wal = None
            for s in self.segments:
                s.close()
                self.cache.drop(s.path)

    # -- writes ------------------------------------------------------------------------------------

    def _writer(self) -> WalWriter:
        wal = self.wal
        if wal is not None and self.failure is None and self.forks == forks_seen():
            return wal
        if self.failure is not None:
            raise ReadOnlyError(f"collection '{self.name}' turned read-only after an I/O error ({self.failure}); "
                                "reopen the store once the disk is healthy") from self.failure
        if self.wal is None:
            raise ReadOnlyError(f"collection '{self.name}' is open read-only; open the store without "
                                "read_only=True to write")
        raise ReadOnlyError(f"collection '{self.name}' was opened for writing by process {self.pid}; this "
                            "forked child may only read (or open its own read_only client)")

    def _append(self, wal: WalWriter, record: bytes | list[bytes]) -> int:
        """Append one framed record (bytes, or parts from :func:`frame_parts`); returns its
        sequence number for :meth:`_sync_to`.

        A failed write is cut off again so the log stays clean and the store stays
        writable (disk full); if even that fails the collection turns read-only.
        """
        appender = wal.appender
        before = appender.size
        try:
            if type(record) is bytes:
                appender.append(record)
            else:
                appender.append_parts(record)  # type: ignore[arg-type]
        except OSError as exc:
            try:
                appender.truncate(before)
            except OSError:
                self.failure = exc
            raise
        self.appended += 1
        return self.appended

    def _sync_to(self, sequence: int) -> None:
        """``durability="full"``: return once an fsync covers record ``sequence`` (group commit).

        Called without the engine lock, so threads keep appending while one fsyncs,
        and one fsync then covers all of them. An fsync error turns the collection
        read-only: retrying could report success for pages the kernel already dropped.
        """
        if self.options.durability != "full":
            return
        with self.sync_lock:
            if self.synced >= sequence:
                return
            target = self.appended
            wal = self.wal
            try:
                if wal is not None:
                    wal.sync()
            except OSError as exc:
                self.failure = exc
                raise
            self.synced = max(self.synced, target)

    def _log(self, record_type: int, payload: list[bytes]) -> int:
        return self._append(self._writer(), frame_parts(record_type, payload))

    def _background_flush(self) -> None:
        """Start flushing once the memtable is full: freeze it and hand its rows to a
        :class:`FlushJob` (a flush still running is waited for first).

        The call that got here already succeeded (its record is in the log), so a
        failure here is not its error: a full disk is retried at a later write; any
        other I/O error turns the collection read-only.
        """
        if self.memtable.nbytes < self.flush_at:
            return
        try:
            self._finish_flush()
            if self.manifest.wal_before is None and len(self.memtable):
                self._freeze()
            else:  # a failed background flush left two logs (or no row is live): flush inline
                self._flush()
        except OSError as exc:
            self._flush_failed(exc)

    def _flush_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, OSError) or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            self.failure = exc

    def _freeze(self) -> None:
        """Go on in a new log and start a FlushJob for the memtable's rows (storage/flushjob.py).

        The rows stay in the memtable, where reads find them, until the job is installed.
        """
        memtable = self.memtable
        batches = memtable.segment_batches()
        # The frozen log's deletes must outlive it: the job writes them as deletion vectors, after
        # the segment and before its manifest, as an inline flush does. Written now, a power cut
        # could keep them and lose the unsynced log records of the calls they belong to.
        deletes = [self._new_deletes(s) if s.dirty else None for s in self.segments]
        number = self._next_number()
        wal_name = filenames.wal_name(self._next_number())
        new_wal = WalWriter.create(self.fs, self._path(wal_name))
        self.fs.sync_dir(self.folder)
        crashpoints.reach("freeze.wal_created")
        old_wal, old_name = self.wal, self.manifest.wal
        assert old_wal is not None
        # The frozen log replays from the schema it began with (its records carry any growth);
        # the new log begins with today's, which the flush's own manifest records.
        frozen = Manifest(collection=self.name, schema=self.manifest.schema, wal=wal_name,
                          next_file=self.manifest.next_file, segments=[s.entry for s in self.segments],
                          wal_before=old_name, wal_before_bytes=old_wal.size)
        try:
            frozen.install(self.fs, self.folder)
        except OSError:
            new_wal.close()  # unnamed by any manifest: the next flush removes the file
            raise
        crashpoints.reach("freeze.manifest_installed")
        with self.sync_lock:
            if self.options.durability == "full" and self.synced < self.appended:
                old_wal.sync()  # records another thread appended and is about to sync
            self.synced = self.appended
            self.wal = new_wal
        old_wal.close()
        self.manifest = frozen
        target = Manifest(collection=self.name, schema=self.schema.to_dict(), wal=wal_name, next_file=frozen.next_file,
                          segments=[d[2] if d else s.entry for s, d in zip(self.segments, deletes)])
        replaced = [filenames.deletes_name(s.entry.number, s.entry.deletes)
                    for s, d in zip(self.segments, deletes) if d and s.entry.deletes is not None]
        self.flush_job = FlushJob(self.fs, self.folder, batches, self.schema, number, target,
                                  [(d[0], d[1]) for d in deletes if d], [old_name, *replaced],
                                  self._flush_finished)
        self.frozen_rows, self.frozen_bytes = memtable.size, memtable.nbytes
        self.flush_at = memtable.nbytes + self.options.flush_bytes
        self.flush_job.start()

    def _flush_finished(self, job: FlushJob) -> None:
        """On the job's thread, once it is done: take the result in, unless a call did already."""
        with self.lock:
            if self.flush_job is job:
                self._install_flush(job)

    def _finish_flush(self) -> None:
        """Wait for the background flush, if one runs, and take its result in."""
        job = self.flush_job
        if job is not None:
            job.done.wait()
            self._install_flush(job)

    def _install_flush(self, job: FlushJob) -> None:
        """The finished job's segment joins the segments, and its rows leave the memtable.

        A failed job changes nothing in memory: its rows stay in the memtable, its
        manifest still names both logs, and the next flush writes them inline.
        """
        self.flush_job = None
        self.flush_at = self.options.flush_bytes
        if job.error is not None:
            self._flush_failed(job.error)
            return
        assert job.entry is not None
        self.manifest = job.manifest
        for segment, entry in zip(self.segments, job.manifest.segments):
            if segment.entry is not entry:  # the job wrote its deletion vector
                segment.entry, segment.dirty = entry, False
        self.segments = [*self.segments, self._open_segment(job.entry)]
        self._segments_changed()
        self.memtable = self.memtable.rows_after(self.frozen_rows, self.frozen_bytes)

    def to_batch(self, data: Any) -> tuple[Batch, Schema]:
        """``data`` checked into a Batch for :meth:`insert` or :meth:`upsert`, and the schema it
        fits (:meth:`Schema.to_batch`); its int lists narrow into the memtable's arena."""
        return self.schema.to_batch(data, self.name, self.memtable.arena)

    def insert(self, batch: Batch, grown: Schema | None) -> list[Any]:
        """Store new rows; DuplicateIdError if any key is already live (nothing is written then)."""
        with self.lock:
            self._writer()
            if grown is not None and grown != self.schema:
                self._finish_flush()  # a running flush writes the old schema into its manifest
            keys = self._check_unique(batch)
            clash = self._live_keys(keys)
            if clash:
                raise DuplicateIdError(
                    f"collection '{self.name}': primary key {clash[0]!r} already exists "
                    f"({len(clash)} of {len(keys)} keys clash); use upsert to replace rows"
                )
            sequence = self._commit(WAL_INSERT, encode_rows(batch, self.schema, grown), (batch, grown))
        self._sync_to(sequence)
        return keys

    def upsert(self, batch: Batch, grown: Schema | None) -> list[Any]:
        """Store rows, replacing live rows with the same keys."""
        with self.lock:
            self._writer()
            self._finish_flush()  # a running flush may be writing the rows this replaces
            keys = self._check_unique(batch)
            sequence = self._commit(WAL_UPSERT, encode_rows(batch, self.schema, grown), (batch, grown))
        self._sync_to(sequence)
        return keys

    def insert_row(self, row: Any) -> tuple[Any] | None:
        """Store one row dict by the fast path (:attr:`Schema.row_encoder`): ``(key,)``, or None,
        storing nothing, when the row needs the general path (:meth:`insert`).

        The guide's call, once per row: written flat on purpose (one lock, one C call
        to check and frame the row, one write, checks inlined rather than called: each
        Python call costs ~0.1 us of a ~10 us insert); the batch paths go through :meth:`_commit`.
        """
        with self.lock:
            encoder = self.schema.row_encoder
            encoded = encoder.encode(row, WAL_INSERT_ROW, self.memtable.pending) if encoder is not None else None
            if encoded is None:
                return None
            key, record, held = encoded  # the row's values wait in the memtable, staged, until written
            wal = self._writer()
            if key in self.memtable.positions or (
                self.max_segment_key is not None and key <= self.max_segment_key and self._live_keys([key])
            ):
                raise DuplicateIdError(f"collection '{self.name}': primary key {key!r} already exists; "
                                       "use upsert to replace it")
            sequence = self._append(wal, record)
            self.memtable.keep_row(key, held)
            if self.memtable.nbytes >= self.flush_at:
                self._background_flush()
        if self.options.durability == "full":
            self._sync_to(sequence)
        return (key,)

    def upsert_row(self, row: Any) -> tuple[Any] | None:
        """Like :meth:`insert_row`, replacing a live row with the same key."""
        with self.lock:
            self._finish_flush()  # a running flush may be writing the row this replaces
            encoder = self.schema.row_encoder
            encoded = encoder.encode(row, WAL_UPSERT_ROW, self.memtable.pending) if encoder is not None else None
            if encoded is None:
                return None
            key, record, held = encoded
            sequence = self._append(self._writer(), record)
            self._delete_keys([key])
            self.memtable.keep_row(key, held)
            self._background_flush()
        self._sync_to(sequence)
        return (key,)

    def delete(self, keys: Sequence[Any]) -> int:
        """Delete live rows by key; returns how many existed."""
        with self.lock:
            self._writer()
            self._finish_flush()  # a running flush may be writing the rows this deletes
            live = self._live_keys(list(dict.fromkeys(keys)))
            if not live:
                return 0
            sequence = self._commit(WAL_DELETE, [encode_keys(live)], live)
        self._sync_to(sequence)
        return len(live)

    def _check_unique(self, batch: Batch) -> list[Any]:
        keys = batch.columns[self.schema.primary_key].tolist()
        if len(set(keys)) != len(keys):
            seen: set[Any] = set()
            dupe = next(k for k in keys if k in seen or seen.add(k))  # type: ignore[func-returns-value]
            raise DuplicateIdError(f"collection '{self.name}': primary key {dupe!r} appears twice in one call")
        return keys  # type: ignore[no-any-return]

    def _commit(self, record_type: int, payload: list[bytes], change: Any) -> int:
        """Log a checked change, then apply it: the one way every batch write reaches memory.

        Returns the record's sequence number; the caller releases the lock, then calls
        :meth:`_sync_to` with it.
        """
        sequence = self._log(record_type, payload)
        self._apply(record_type, change)
        self._background_flush()
        return sequence

    def _replay(self, record_type: int, payload: memoryview, name: str) -> None:
        change: Any
        held = 0
        if record_type == WAL_DELETE:
            change = decode_keys(payload, name)
        elif record_type in (WAL_INSERT_ROW, WAL_UPSERT_ROW):
            change = decode_row(payload, self.schema, name)
            held = sum(len(v) if type(v) in (bytes, str) else 9 for v in change)  # lists and text by length
        else:
            change = decode_rows(payload, self.schema, name)
        self._apply(record_type, change, held)

    def _apply(self, record_type: int, change: Any, held: int = 0) -> None:
        """Apply one logged change to memory (live, or replayed from the log); ``held``: a one-row
        change's size in the memtable (see ``RowEncoder``), which counts toward ``flush_bytes``."""
        if record_type == WAL_DELETE:
            self._delete_keys(change)
        elif record_type in (WAL_INSERT_ROW, WAL_UPSERT_ROW):
            key = change[self.schema.pk_index]
            if record_type == WAL_UPSERT_ROW:
                self._delete_keys([key])
            self.memtable.append_row(key, change, held)
        else:
            batch, grown = change
            if grown is not None and grown != self.schema:
                self.schema = grown
                self.memtable.conform(lambda b: conform(b, grown), grown.pending_rows(), grown.pending_batch)
            if record_type == WAL_UPSERT:
                self._delete_keys(batch.columns[self.schema.primary_key].tolist())
            self.memtable.append(conform(batch, self.schema))

    def _delete_keys(self, keys: Sequence[Any]) -> None:
        self.memtable.discard(keys)
        for segment, rows in self._locate(keys):
            segment.delete_rows(rows)

    def _locate(self, keys: Sequence[Any]) -> list[tuple[LiveSegment, np.ndarray]]:
        """For each segment holding some of ``keys`` live, the rows where they sit."""
        found = []
        if not keys or not self.segments:
            return found
        sorted_keys = sorted(keys)
        lo, hi = sorted_keys[0], sorted_keys[-1]
        constraint = KeyConstraint(points=sorted_keys)
        for segment in self.segments:
            if segment.entry.rows == 0 or segment.entry.max_pk < lo or segment.entry.min_pk > hi:
                continue
            rows = segment.live_rows(segment_rows(segment.reader, constraint))
            if len(rows):
                found.append((segment, rows))
        return found

    def _live_keys(self, keys: Sequence[Any]) -> list[Any]:
        """The subset of ``keys`` that is stored and not deleted, in the given order."""
        live = self.memtable.positions.keys() & keys  # one C loop: every insert call checks its keys
        pk = self.schema.primary_key
        for segment, rows in self._locate(keys):
            live.update(segment.reader.read_rows([pk], rows, self.schema).columns[pk].tolist())
        return [k for k in keys if k in live] if live else []

    # -- flush and compaction ----------------------------------------------------------------------

    def flush(self) -> None:
        """Write the memtable to a segment and make everything so far durable."""
        with self.lock:
            self._writer()
            try:
                self._flush()
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    self.failure = exc
                raise

    def _next_number(self) -> int:
        number = self.manifest.next_file
        self.manifest.next_file += 1
        return number

    def _flush(self, replace_segments: list[LiveSegment] | None = None,
               new_batches: Sequence[Batch] = (), stage: str = "flush") -> None:
        """Install a manifest with the memtable (and ``new_batches``) as segments.

        ``replace_segments`` are dropped from the manifest (compaction's inputs).
        Crash-safe at every step: until the manifest is renamed into place the old
        manifest, log and segments are untouched. ``stage`` names the crash points.
        """
        self._finish_flush()
        dropped = replace_segments or []
        created: list[LiveSegment] = []
        pending: list[Batch | list[Batch]] = list(new_batches)
        live = self.memtable.segment_batches()
        if live:
            pending.append(live)
        for batch in pending:
            number = self._next_number()
            min_pk, max_pk = write_segment(self.fs, self._path(filenames.segment_name(number)), batch, self.schema)
            rows = len(batch) if isinstance(batch, Batch) else sum(map(len, batch))
            entry = SegmentEntry(number=number, rows=rows, min_pk=min_pk, max_pk=max_pk)
            created.append(self._open_segment(entry))
        crashpoints.reach(CRASH_POINTS[stage, "segments"])
        for segment in self.segments:
            if segment.dirty and segment not in dropped:
                self._write_deletes(segment)
        crashpoints.reach(CRASH_POINTS[stage, "deletes"])
        wal_name = filenames.wal_name(self._next_number())
        new_wal = WalWriter.create(self.fs, self._path(wal_name))
        self.fs.sync_dir(self.folder)
        crashpoints.reach(CRASH_POINTS[stage, "wal"])
        keep = [s for s in self.segments if s not in dropped] + created
        manifest = Manifest(
            collection=self.name,
            schema=self.schema.to_dict(),
            wal=wal_name,
            next_file=self.manifest.next_file,
            segments=[s.entry for s in keep],
        )
        manifest.install(self.fs, self.folder, before_rename=CRASH_POINTS[stage, "manifest_written"])
        crashpoints.reach(CRASH_POINTS[stage, "manifest_installed"])
        old_files = [*self._files_of(dropped), self.manifest.wal]
        if self.manifest.wal_before is not None:
            old_files.append(self.manifest.wal_before)
        self.manifest = manifest
        old_wal, self.wal = self.wal, new_wal
        if old_wal is not None:
            old_wal.close()
        self.synced = self.appended  # all logged so far now sits in synced segments
        self.segments = keep
        self._segments_changed()
        self.memtable = self._new_memtable()
        for segment in dropped:
            segment.close()
            self.cache.drop(segment.path)
        for name in old_files:
            self.fs.remove(self._path(name))
        self._remove_unreferenced()
        crashpoints.reach(CRASH_POINTS[stage, "done"])

    def _files_of(self, segments: list[LiveSegment]) -> list[str]:
        names = []
        for s in segments:
            names.append(filenames.segment_name(s.entry.number))
            if s.entry.deletes is not None:
                names.append(filenames.deletes_name(s.entry.number, s.entry.deletes))
        return names

    def _write_deletes(self, segment: LiveSegment) -> None:
        name, data, entry = self._new_deletes(segment)
        self.fs.write_file(self._path(name), data)
        segment.entry = entry
        segment.dirty = False

    def _new_deletes(self, segment: LiveSegment) -> tuple[str, bytes, SegmentEntry]:
        """A new deletion vector for ``segment``: its file name and bytes, and the segment's entry naming it."""
        assert segment.deleted is not None
        positions = np.flatnonzero(segment.deleted).astype("<u4").tobytes()
        number = self._next_number()
        data = DELETES_HEADER.pack(DELETES_MAGIC, len(positions) // 4, masked_crc(positions)) + positions
        entry = replace(segment.entry, deletes=number, deleted=len(positions) // 4)
        return filenames.deletes_name(segment.entry.number, number), data, entry

    def compact(self) -> dict[str, int]:
        """Merge all segments and the memtable into key-ordered segments without deleted rows."""
        with self.lock:
            self._writer()
            self._finish_flush()
            before = len(self.segments)
            names = self.schema.names
            pk = self.schema.primary_key
            parts = [s.reader.read_rows(names, s.live_rows(np.arange(s.reader.rows)), self.schema)
                     for s in self.segments]
            view = self.memtable.sorted_view()
            parts.append(view.batch.take(view.rows))
            merged = Batch.concat(parts)
            if len(merged):
                merged = merged.take(np.argsort(merged.columns[pk], kind="stable"))
            step = self.options.segment_rows
            batches = [merged.take(np.arange(i, min(i + step, len(merged)))) for i in range(0, len(merged), step)]
            self.memtable = self._new_memtable()
            self._flush(replace_segments=list(self.segments), new_batches=batches, stage="compact")
            return {"segments_before": before, "segments_after": len(self.segments), "rows": len(merged)}

    # -- reads -------------------------------------------------------------------------------------

    def count(self) -> int:
        with self.lock:
            self.refresh()
            return len(self.memtable) + sum(s.live_count for s in self.segments)

    def query(self, filter_text: str, fields: Sequence[str], limit: int | None = None, offset: int = 0) -> Batch:
        """Rows matching ``filter_text`` in ascending key order, with ``fields`` (the key included)."""
        with self.lock:
            self.refresh()
            expr = parse(filter_text, self.schema.by_name, self.name)
            return self._query(expr, plan(expr, self.schema.primary_key), fields, limit, offset)

    def read(self, filter_text: str, fields: Sequence[str], limit: int | None = None, offset: int = 0,
             output: str = "rows") -> dict[str, Any]:
        """What :meth:`query` finds, as one value per field of ``fields`` (which includes the key).

        ``output="rows"``: a list of Python values per field (None where null);
        ``"numpy"``: an array per field the caller owns (see :func:`~memora_lite.results.to_numpy`).
        A read of one key range that needs no merging is answered straight from the
        cached blocks (:meth:`_read_span`), a list of keys (``id in [...]``) key by key
        (:meth:`get_columns`); any other read goes through :meth:`query`.
        """
        with self.lock:
            self.refresh()
            expr = parse(filter_text, self.schema.by_name, self.name)
            key_plan = plan(expr, self.schema.primary_key)
            if key_plan.exact and not key_plan.points and (key_plan.ranges is None or len(key_plan.ranges) == 1):
                span = key_plan.ranges[0] if key_plan.ranges else (None, False, None, False)
                columns = self._read_span(span, fields, limit, offset, output)
                if columns is not None:
                    return columns
            if key_plan.exact and key_plan.ranges == [] and output == "rows" and key_plan.points and all(
                    type(k) is self.schema.key_type for k in key_plan.points):
                # 'id in [...]' / 'id == k': the keys are the answer, in order; read row by row as get does.
                window = slice(offset, None if limit is None else offset + limit)
                return {name: column[window] for name, column in zip(fields, self.get_columns(key_plan.points, fields))}
            batch = self._query(expr, key_plan, fields, limit, offset)
            return to_numpy(batch, fields) if output == "numpy" else to_lists(batch, fields)

    def _read_span(self, span: tuple[Any, bool, Any, bool], fields: Sequence[str], limit: int | None, offset: int,
                   output: str) -> dict[str, Any] | None:
        """:meth:`read` of one key range, straight from segment blocks: no Batch, no merge.

        Applies when no admitted row is in the memtable, every one is live and
        non-null, and the segments holding them do not overlap in keys; returns None
        otherwise, and the general path answers. A read covering whole blocks leaves
        them out of the cache, so a scan does not grow memory.
        """
        constraint = KeyConstraint(ranges=[span])
        if len(self.memtable) and len(rows_in_sorted(self.memtable.sorted_view().keys, constraint)):
            return None
        candidates = self._segments_for(span[0], span[2])
        if candidates is None:
            return None
        segments = [s for s in candidates if constraint.overlaps(s.entry.min_pk, s.entry.max_pk)]
        pieces: list[tuple[SegmentReader, int, int, int]] = []  # (segment, block, first row, end row), key order
        for segment in segments:
            reader = segment.reader
            if any(name not in reader.columns for name in fields):
                return None
            start, stop = segment_span(reader, *span)
            if segment.deleted is not None and segment.deleted[start:stop].any():
                return None
            for block in range(start // reader.block_rows, -(-stop // reader.block_rows)):
                base = block * reader.block_rows
                first, end = max(start - base, 0), min(stop - base, reader.block_size(block))
                if end > first:
                    pieces.append((reader, block, first, end))
        pieces = _window(pieces, offset, limit)
        if not pieces:
            return None
        columns = {}
        rows = sum(b - a for _, _, a, b in pieces)
        for name in fields:
            parts = _span_blocks(name, pieces)
            if output == "rows":
                value = _as_lists(parts)
            else:
                value = _as_array(parts, rows, element_dtype(self.schema.field(name)))
            if value is None:
                return None
            columns[name] = value
        return columns

    def _query(self, expr: Any, key_plan: Any, fields: Sequence[str], limit: int | None, offset: int) -> Batch:
        constraint = KeyConstraint(key_plan.ranges, key_plan.points)
        needed = list(dict.fromkeys([self.schema.primary_key, *fields]))
        residual = None if key_plan.exact else expr
        if residual is not None:
            needed += [n for n in referenced_fields(residual) if n not in needed]
        parts = self._gather(constraint, needed)
        if not parts:
            return self._empty(needed)
        if residual is not None:
            parts = [p.take(np.flatnonzero(evaluate(residual, p))) for p in parts]
        result = Batch.concat(parts)
        keys = result.columns[self.schema.primary_key]
        if len(parts) > 1 and len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):
            result = result.take(np.argsort(keys, kind="stable"))
        if offset or limit is not None:
            stop = len(result) if limit is None else min(len(result), offset + limit)
            result = result.take(np.arange(min(offset, stop), stop))
        return result.select(list(dict.fromkeys([self.schema.primary_key, *fields])))

    def _gather(self, constraint: KeyConstraint, needed: list[str]) -> list[Batch]:
        """The live rows the key constraint admits: one Batch per segment touched, then the memtable's."""
        parts = []
        for segment in self.segments:
            entry = segment.entry
            if entry.rows == 0 or not constraint.overlaps(entry.min_pk, entry.max_pk):
                continue
            rows = segment.live_rows(segment_rows(segment.reader, constraint))
            if len(rows):
                parts.append(segment.reader.read_rows(needed, rows, self.schema))
        view = self.memtable.sorted_view()
        positions = rows_in_sorted(view.keys, constraint)
        if len(positions):
            parts.append(view.batch.select(needed).take(view.rows[positions]))
        return parts

    def get(self, keys: Sequence[Any], fields: Sequence[str]) -> Batch:
        """Live rows with these keys, in the order asked (missing keys are skipped)."""
        with self.lock:
            self.refresh()
            if not keys:
                return self._empty(list(dict.fromkeys([self.schema.primary_key, *fields])))
            wanted = sorted(set(keys))
            constraint = KeyConstraint(points=wanted)
            needed = list(dict.fromkeys([self.schema.primary_key, *fields]))
            parts = self._gather(constraint, needed)
            if not parts:
                return self._empty(needed)
            found = Batch.concat(parts)
            found_keys = found.columns[self.schema.primary_key].tolist()
            if found_keys == list(keys):
                return found
            index = {k: i for i, k in enumerate(found_keys)}
            return found.take(np.array([index[k] for k in keys if k in index], dtype=np.int64))

    def get_one(self, key: Any, fields: Sequence[str]) -> list[Any] | None:
        """One live row's values in ``fields`` order as Python objects, None if absent.

        The single-key lookup, written flat (a get is a few microseconds, so every
        call in it shows): range index, then one cached block per field. Falls back
        to :meth:`get` for rows still in the memtable or in a segment that predates
        a field.
        """
        with self.lock:
            self.refresh()
            if key in self.memtable.positions:
                return _first_row(self.get([key], fields), fields)
            candidates = self._segments_for(key, key)
            for segment in self.segments if candidates is None else candidates:
                entry = segment.entry
                if not entry.rows or not entry.min_pk <= key <= entry.max_pk:
                    continue  # not its range: leave its reader unopened
                reader = segment.reader
                position = reader.position(key)
                if position < 0 or (segment.deleted is not None and segment.deleted[position]):
                    continue
                values = reader.row_values(position, fields, key)
                return values if values is not None else _first_row(self.get([key], fields), fields)
            return None

    def get_columns(self, keys: Sequence[Any], fields: Sequence[str]) -> list[list[Any]]:
        """Live rows with these keys, in the order asked (missing keys skipped), as one list of
        Python values per field of ``fields``: one :meth:`get_one` per key. On 32 scattered keys
        that is several times faster than :meth:`get`, which pays per block and per column for
        every row, and no slower on contiguous keys (``benchmarks``, workload ``readbatch``)."""
        with self.lock:
            rows = [row for row in (self.get_one(key, fields) for key in keys) if row is not None]
        return [list(column) for column in zip(*rows)] if rows else [[] for _ in fields]

    def _empty(self, fields: list[str]) -> Batch:
        return Batch({n: null_column(self.schema.field(n), 0)[0] for n in fields}, 0)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            self.refresh()
            return {
                "row_count": self.count(),
                "segments": len(self.segments),
                "memtable_rows": len(self.memtable),
                "bytes_on_disk": self._bytes_on_disk(),
            }

    def _bytes_on_disk(self) -> int:
        total = 0
        for name in self.fs.listdir(self.folder):
            try:
                total += self.fs.file_size(self._path(name))
            except FileNotFoundError:  # renamed or removed since the listing, by a flush thread or a writer
                continue
        return total


def _first_row(batch: Batch, fields: Sequence[str]) -> list[Any] | None:
    if not len(batch):
        return None
    return [column_to_list(batch.columns[n], batch.null_mask(n))[0] for n in fields]


def _window(pieces: list[tuple[Any, int, int, int]], offset: int, limit: int | None) -> list[tuple[Any, int, int, int]]:
    """The pieces left after skipping ``offset`` rows and keeping at most ``limit``."""
    if not offset and limit is None:
        return pieces
    kept = []
    for reader, block, a, b in pieces:
        skip = min(offset, b - a)
        offset -= skip
        a += skip
        if limit is not None:
            b = min(b, a + limit)
            limit -= b - a
        if b > a:
            kept.append((reader, block, a, b))
    return kept


def _span_blocks(name: str, pieces: list[tuple[Any, int, int, int]]) -> Iterator[tuple[Any, int, int] | None]:
    """Each piece's cached block of column ``name`` with its row bounds, one at a time; None for a
    piece holding a null. A piece covering its whole block is read without filling the cache, into
    scratch memory that the next piece reuses: consume each before asking for the next."""
    for reader, block, a, b in pieces:
        if reader.dense and name == reader.schema.primary_key:  # keys min_pk, min_pk + 1, ...: nothing to read
            first = reader.min_pk + block * reader.block_rows
            yield np.arange(first + a, first + b, dtype=np.int64), 0, b - a
            continue
        column, nulls = reader.read_block(name, block, fill_cache=b - a < reader.block_size(block))
        yield None if nulls is not None and bool(nulls[a:b].any()) else (column, a, b)


def _as_lists(parts: Iterator[tuple[Any, int, int] | None]) -> list[Any] | None:
    """Rows ``a .. b - 1`` of each block, as one list of Python values; None at a null."""
    values: list[Any] = []
    for part in parts:
        if part is None:
            return None
        column, a, b = part
        if isinstance(column, TokenBlock):
            values += column.lists(a, b)
        elif isinstance(column, Ragged):
            values += column.take(slice(a, b)).to_lists()
        else:
            values += column[a:b].tolist()
    return values


def _as_array(parts: Iterator[tuple[Any, int, int] | None], rows: int, dtype: np.dtype) -> np.ndarray | None:
    """Rows ``a .. b - 1`` of each block as one new array of ``dtype``: token rows of one common
    length decode straight into a 2-D array; None at a null or where rows need an object array."""
    out: np.ndarray | None = None
    arrays = []
    row = 0
    for part in parts:
        if part is None:
            return None
        column, a, b = part
        if isinstance(column, TokenBlock):
            width = column.width(a, b)
            if width is None or arrays or (out is not None and out.shape[1] != width):
                return None
            if out is None:
                out = np.empty((rows, width), dtype=dtype)
            column.dense_into(a, b, out[row : row + b - a])
            row += b - a
        elif isinstance(column, np.ndarray) and out is None:
            arrays.append(column[a:b])
        else:
            return None
    if out is not None:
        return out
    if len(arrays) == 1:
        return arrays[0].astype(dtype)  # a copy: it may be a cached block's
    return np.concatenate(arrays).astype(dtype, copy=False)
