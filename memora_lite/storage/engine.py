"""One collection's storage engine: log, memtable, segments, manifest, and the read path.

Write path (docs/impl.md#write-path): validate -> check keys -> append one framed
record to the write-ahead log (one ``write`` call; also ``fsync`` when
``durability="full"``) -> apply to the memtable -> return. When the memtable
passes ``flush_bytes`` it becomes a segment: write and sync the segment file and
any changed deletion vectors, start a fresh log, install a new manifest
atomically, then delete the files the old manifest named.

Read path: parse the filter, turn its primary-key constraint into row positions
through the range index (segments, then blocks, then keys), read only the columns
needed, evaluate the rest of the filter vectorised over those rows, merge with
the memtable in key order.

Recovery (docs/impl.md#recovery): load the manifest, open its segments and
deletion vectors, replay the log it names up to any torn tail, cut that tail, and
delete files no manifest names (left by a crash mid-flush).
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memora_lite.columns import Batch, Ragged
from memora_lite.errors import CorruptionError, DuplicateIdError, ReadOnlyError
from memora_lite.query import evaluate, parse, plan, referenced_fields
from memora_lite.results import column_to_list
from memora_lite.schema import Schema, conform, null_column
from memora_lite.storage import filenames
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
from memora_lite.storage.fs import FileSystem
from memora_lite.storage.manifest import Manifest, SegmentEntry
from memora_lite.storage.memtable import MemTable
from memora_lite.storage.rangeindex import KeyConstraint, rows_in_sorted, segment_rows
from memora_lite.storage.records import (
    decode_keys,
    decode_row,
    decode_rows,
    encode_keys,
    encode_row,
    encode_rows,
)
from memora_lite.storage.segment import BlockCache, SegmentReader, write_segment
from memora_lite.storage.wal import WalWriter, read_records

DEFAULT_FLUSH_BYTES = 64 << 20
DEFAULT_SEGMENT_ROWS = 1 << 20  # compaction writes segments of at most this many rows
DURABILITY_LEVELS = ("process", "full")


@dataclass
class Options:
    """Tuning knobs shared by every collection of one client."""

    read_only: bool = False
    durability: str = "process"  # "process": survives kill -9; "full": also power loss (fsync per call)
    flush_bytes: int = DEFAULT_FLUSH_BYTES
    segment_rows: int = DEFAULT_SEGMENT_ROWS
    cache_bytes: int = 64 << 20


class LiveSegment:
    """A segment in use: its reader, manifest entry and in-memory deletion mask."""

    def __init__(self, reader: SegmentReader, entry: SegmentEntry, deleted: np.ndarray | None) -> None:
        self.reader = reader
        self.entry = entry
        self.deleted = deleted  # bool per row, None while no row is deleted
        self.dirty = False  # deletions not yet written to a deletion vector

    def live_rows(self, rows: np.ndarray) -> np.ndarray:
        return rows if self.deleted is None else rows[~self.deleted[rows]]

    def delete_rows(self, rows: np.ndarray) -> None:
        if self.deleted is None:
            self.deleted = np.zeros(self.reader.rows, dtype=bool)
        self.deleted[rows] = True
        self.dirty = True

    @property
    def live_count(self) -> int:
        return self.reader.rows - (0 if self.deleted is None else int(self.deleted.sum()))


class CollectionEngine:
    """Storage for one collection folder. Thread-safe: one lock around every call."""

    def __init__(self, fs: FileSystem, folder: str, name: str, options: Options, cache: BlockCache) -> None:
        self.fs = fs
        self.folder = folder
        self.name = name
        self.options = options
        self.cache = cache
        self.lock = threading.RLock()
        self.wal: WalWriter | None = None
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
        self.manifest = Manifest.load(self.fs, self.folder)
        self.schema = Schema.from_dict(self.manifest.schema)
        self.segments = [self._open_segment(e) for e in self.manifest.segments]
        self._segments_changed()
        self.memtable = self._new_memtable()
        wal_path = self._path(self.manifest.wal)
        records, valid = read_records(self.fs.read(wal_path), wal_path)
        for record_type, payload in records:
            self._replay(record_type, payload, wal_path)
        if not self.options.read_only:
            self.wal = WalWriter.reopen(self.fs, wal_path, valid)
            self._remove_unreferenced()

    def _segments_changed(self) -> None:
        keys = [s.entry.max_pk for s in self.segments if s.entry.rows]
        self.max_segment_key = max(keys) if keys else None  # keys above it need no segment lookup

    def _new_memtable(self) -> MemTable:
        return MemTable(self.schema.primary_key, self.schema.packed_rows_to_batch)

    def _open_segment(self, entry: SegmentEntry) -> LiveSegment:
        reader = SegmentReader(self.fs, self._path(filenames.segment_name(entry.number)), self.cache)
        if reader.rows != entry.rows:
            raise CorruptionError(f"{reader.path}: holds {reader.rows} rows but the manifest says {entry.rows}")
        deleted = None
        if entry.deletes is not None:
            deleted = self._read_deletes(filenames.deletes_name(entry.number, entry.deletes), reader.rows)
        return LiveSegment(reader, entry, deleted)

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
        keep = {filenames.MANIFEST, self.manifest.wal}
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
            if self.wal is not None:
                if flush and (len(self.memtable) or any(s.dirty for s in self.segments)):
                    self._flush()
                self.wal.close()
                self.wal = None
            for s in self.segments:
                s.reader.close()
                self.cache.drop(s.reader.path)

    # -- writes ------------------------------------------------------------------------------------

    def _writer(self) -> WalWriter:
        if self.wal is None:
            raise ReadOnlyError(f"collection '{self.name}' is open read-only; open the store without "
                                "read_only=True to write")
        return self.wal

    def _log(self, record_type: int, payload: bytes) -> None:
        wal = self._writer()
        wal.append(record_type, payload)
        if self.options.durability == "full":
            wal.sync()

    def insert(self, batch: Batch, grown: Schema | None) -> list[Any]:
        """Store new rows; DuplicateIdError if any key is already live (nothing is written then)."""
        with self.lock:
            self._writer()
            keys = self._check_unique(batch)
            clash = self._live_keys(keys)
            if clash:
                raise DuplicateIdError(
                    f"collection '{self.name}': primary key {clash[0]!r} already exists "
                    f"({len(clash)} of {len(keys)} keys clash); use upsert to replace rows"
                )
            self._commit(WAL_INSERT, encode_rows(batch, self.schema, grown), (batch, grown))
            return keys

    def upsert(self, batch: Batch, grown: Schema | None) -> list[Any]:
        """Store rows, replacing live rows with the same keys."""
        with self.lock:
            self._writer()
            keys = self._check_unique(batch)
            self._commit(WAL_UPSERT, encode_rows(batch, self.schema, grown), (batch, grown))
            return keys

    def insert_row(self, values: list[Any]) -> Any:
        """Store one row given as values in field order (made by ``Schema.row_checker``).

        The guide's call, once per row: this path is written flat on purpose (one lock,
        one dict lookup, one write); the batch paths go through :meth:`_commit`.
        """
        with self.lock:
            wal = self._writer()
            key = values[self.schema.pk_index]
            if key in self.memtable.positions or (
                self.max_segment_key is not None and key <= self.max_segment_key and self._live_keys([key])
            ):
                raise DuplicateIdError(f"collection '{self.name}': primary key {key!r} already exists; "
                                       "use upsert to replace it")
            wal.append(WAL_INSERT_ROW, encode_row(values))
            if self.options.durability == "full":
                wal.sync()
            self.memtable.append_row(key, values)
            if self.memtable.nbytes >= self.options.flush_bytes:
                self._flush()
            return key

    def upsert_row(self, values: list[Any]) -> Any:
        with self.lock:
            self._writer()
            self._commit(WAL_UPSERT_ROW, encode_row(values), values)
            return values[self.schema.pk_index]

    def delete(self, keys: Sequence[Any]) -> int:
        """Delete live rows by key; returns how many existed."""
        with self.lock:
            self._writer()
            live = self._live_keys(list(dict.fromkeys(keys)))
            if live:
                self._commit(WAL_DELETE, encode_keys(live), live)
            return len(live)

    def _check_unique(self, batch: Batch) -> list[Any]:
        keys = batch.columns[self.schema.primary_key].tolist()
        if len(set(keys)) != len(keys):
            seen: set[Any] = set()
            dupe = next(k for k in keys if k in seen or seen.add(k))  # type: ignore[func-returns-value]
            raise DuplicateIdError(f"collection '{self.name}': primary key {dupe!r} appears twice in one call")
        return keys  # type: ignore[no-any-return]

    def _commit(self, record_type: int, payload: bytes, change: Any) -> None:
        """Log a checked change, then apply it: the one way every write reaches memory."""
        self._log(record_type, payload)
        self._apply(record_type, change)
        self._maybe_flush()

    def _replay(self, record_type: int, payload: memoryview, name: str) -> None:
        change: Any
        if record_type == WAL_DELETE:
            change = decode_keys(payload, name)
        elif record_type in (WAL_INSERT_ROW, WAL_UPSERT_ROW):
            change = decode_row(payload, self.schema, name)
        else:
            change = decode_rows(payload, self.schema, name)
        self._apply(record_type, change)

    def _apply(self, record_type: int, change: Any) -> None:
        """Apply one logged change to memory (live, or replayed from the log)."""
        if record_type == WAL_DELETE:
            self._delete_keys(change)
        elif record_type in (WAL_INSERT_ROW, WAL_UPSERT_ROW):
            key = change[self.schema.pk_index]
            if record_type == WAL_UPSERT_ROW:
                self._delete_keys([key])
            self.memtable.append_row(key, change)
        else:
            batch, grown = change
            if grown is not None and grown != self.schema:
                self.schema = grown
                self.memtable.conform(lambda b: conform(b, grown), grown.packed_rows_to_batch)
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
            if segment.reader.rows == 0 or segment.entry.max_pk < lo or segment.entry.min_pk > hi:
                continue
            rows = segment.live_rows(segment_rows(segment.reader, constraint))
            if len(rows):
                found.append((segment, rows))
        return found

    def _live_keys(self, keys: Sequence[Any]) -> list[Any]:
        """The subset of ``keys`` that is stored and not deleted, in the given order."""
        live = {k for k in keys if k in self.memtable}
        pk = self.schema.primary_key
        for segment, rows in self._locate(keys):
            live.update(segment.reader.read_rows([pk], rows, self.schema).columns[pk].tolist())
        return [k for k in keys if k in live]

    # -- flush and compaction ----------------------------------------------------------------------

    def _maybe_flush(self) -> None:
        if self.memtable.nbytes >= self.options.flush_bytes:
            self._flush()

    def flush(self) -> None:
        """Write the memtable to a segment and make everything so far durable."""
        with self.lock:
            self._writer()
            self._flush()

    def _next_number(self) -> int:
        number = self.manifest.next_file
        self.manifest.next_file += 1
        return number

    def _flush(self, replace_segments: list[LiveSegment] | None = None,
               new_batches: Sequence[Batch] = ()) -> None:
        """Install a manifest with the memtable (and ``new_batches``) as segments.

        ``replace_segments`` are dropped from the manifest (compaction's inputs).
        Crash-safe at every step: until the manifest is renamed into place the old
        manifest, log and segments are untouched.
        """
        dropped = replace_segments or []
        created: list[LiveSegment] = []
        view = self.memtable.sorted_view()
        pending = list(new_batches)
        if len(view.rows):
            pending.append(view.batch.take(view.rows))
        for batch in pending:
            number = self._next_number()
            min_pk, max_pk = write_segment(self.fs, self._path(filenames.segment_name(number)), batch, self.schema)
            entry = SegmentEntry(number=number, rows=len(batch), min_pk=min_pk, max_pk=max_pk)
            created.append(self._open_segment(entry))
        for segment in self.segments:
            if segment.dirty and segment not in dropped:
                self._write_deletes(segment)
        wal_name = filenames.wal_name(self._next_number())
        new_wal = WalWriter.create(self.fs, self._path(wal_name))
        self.fs.sync_dir(self.folder)
        old_files = [*self._files_of(dropped), self.manifest.wal]
        keep = [s for s in self.segments if s not in dropped] + created
        self.manifest = Manifest(
            collection=self.name,
            schema=self.schema.to_dict(),
            wal=wal_name,
            next_file=self.manifest.next_file,
            segments=[s.entry for s in keep],
        )
        self.manifest.install(self.fs, self.folder)
        old_wal, self.wal = self.wal, new_wal
        if old_wal is not None:
            old_wal.close()
        self.segments = keep
        self._segments_changed()
        self.memtable = self._new_memtable()
        for segment in dropped:
            segment.reader.close()
            self.cache.drop(segment.reader.path)
        for name in old_files:
            self.fs.remove(self._path(name))
        self._remove_unreferenced()

    def _files_of(self, segments: list[LiveSegment]) -> list[str]:
        names = []
        for s in segments:
            names.append(filenames.segment_name(s.entry.number))
            if s.entry.deletes is not None:
                names.append(filenames.deletes_name(s.entry.number, s.entry.deletes))
        return names

    def _write_deletes(self, segment: LiveSegment) -> None:
        assert segment.deleted is not None
        positions = np.flatnonzero(segment.deleted).astype("<u4").tobytes()
        number = self._next_number()
        data = DELETES_HEADER.pack(DELETES_MAGIC, len(positions) // 4, masked_crc(positions)) + positions
        self.fs.write_file(self._path(filenames.deletes_name(segment.entry.number, number)), data)
        segment.entry.deletes = number
        segment.entry.deleted = len(positions) // 4
        segment.dirty = False

    def compact(self) -> dict[str, int]:
        """Merge all segments and the memtable into key-ordered segments without deleted rows."""
        with self.lock:
            self._writer()
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
            self.memtable = MemTable(pk)
            self._flush(replace_segments=list(self.segments), new_batches=batches)
            return {"segments_before": before, "segments_after": len(self.segments), "rows": len(merged)}

    # -- reads -------------------------------------------------------------------------------------

    def count(self) -> int:
        with self.lock:
            return len(self.memtable) + sum(s.live_count for s in self.segments)

    def query(self, filter_text: str, fields: Sequence[str], limit: int | None = None, offset: int = 0) -> Batch:
        """Rows matching ``filter_text`` in ascending key order, with ``fields`` (the key included)."""
        with self.lock:
            expr = parse(filter_text, self.schema.by_name, self.name)
            key_plan = plan(expr, self.schema.primary_key)
            constraint = KeyConstraint(key_plan.ranges, key_plan.points)
            needed = list(dict.fromkeys([self.schema.primary_key, *fields]))
            residual = None if key_plan.exact else expr
            if residual is not None:
                needed += [n for n in referenced_fields(residual) if n not in needed]
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

    def get(self, keys: Sequence[Any], fields: Sequence[str]) -> Batch:
        """Live rows with these keys, in the order asked (missing keys are skipped)."""
        with self.lock:
            if not keys:
                return self._empty(list(dict.fromkeys([self.schema.primary_key, *fields])))
            wanted = sorted(set(keys))
            constraint = KeyConstraint(points=wanted)
            needed = list(dict.fromkeys([self.schema.primary_key, *fields]))
            parts = []
            for segment, rows in self._locate(wanted):
                parts.append(segment.reader.read_rows(needed, rows, self.schema))
            view = self.memtable.sorted_view()
            positions = rows_in_sorted(view.keys, constraint)
            if len(positions):
                parts.append(view.batch.select(needed).take(view.rows[positions]))
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

        The single-key lookup, written flat: range index, one cached block per field.
        Falls back to :meth:`get` for rows still in the memtable or in a segment that
        predates a field.
        """
        with self.lock:
            if key in self.memtable.positions:
                return _first_row(self.get([key], fields), fields)
            for segment in self.segments:
                entry, reader = segment.entry, segment.reader
                if not entry.rows or not entry.min_pk <= key <= entry.max_pk:
                    continue
                block = bisect_right(reader.first_keys, key) - 1
                keys = reader.keys(block)
                i = int(np.searchsorted(keys, key))
                if i == len(keys) or keys[i] != key:
                    continue
                if segment.deleted is not None and segment.deleted[block * reader.block_rows + i]:
                    continue
                if any(name not in reader.columns for name in fields):
                    return _first_row(self.get([key], fields), fields)
                values = []
                for name in fields:
                    column, nulls = reader.read_block(name, block)
                    if nulls is not None and nulls[i]:
                        values.append(None)
                    elif isinstance(column, Ragged):
                        values.append(column.row(i).tolist())
                    else:
                        value = column[i]
                        values.append(value.tolist() if isinstance(value, (np.generic, np.ndarray)) else value)
                return values
            return None

    def _empty(self, fields: list[str]) -> Batch:
        return Batch({n: null_column(self.schema.field(n), 0)[0] for n in fields}, 0)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            size = sum(self.fs.file_size(self._path(n)) for n in self.fs.listdir(self.folder))
            return {
                "row_count": self.count(),
                "segments": len(self.segments),
                "memtable_rows": len(self.memtable),
                "bytes_on_disk": size,
            }


def _first_row(batch: Batch, fields: Sequence[str]) -> list[Any] | None:
    if not len(batch):
        return None
    return [column_to_list(batch.columns[n], batch.null_mask(n))[0] for n in fields]
