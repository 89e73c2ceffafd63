"""The write-ahead log: every change is framed, checksummed and appended here before it is applied.

Layout (docs/format.md#wal): an 8-byte magic, then records of
``[u32 payload length][u32 type][u32 payload CRC][u32 header CRC][payload]``, all
little-endian. The payload is msgpack (see :mod:`memora_lite.storage.records`).

Recovery reads records in order. The file ending inside a record, or zeros or
garbage after the last good record, is a torn tail from a crash: dropped (and cut
by the next writer). A bad record with a good one anywhere after it, or a bad
last record that is still whole (its length spans the rest of the file, or its
payload matches its checksum), is damage: CorruptionError naming the file and
offset, because dropping it would silently lose acknowledged rows. The header has
its own checksum so a damaged length field is caught rather than read as a tail.

>>> from memora_lite.storage.fs import MemoryFileSystem
>>> fs = MemoryFileSystem(); fs.makedirs("/c")
>>> log = WalWriter.create(fs, "/c/wal-000001.log")
>>> log.append(frame(1, b"first")); log.append(frame(3, b"second"))
>>> [(t, bytes(p)) for t, p in read_records(fs.read("/c/wal-000001.log"), "wal")[0]]
[(1, b'first'), (3, b'second')]
"""

from __future__ import annotations

import struct

from memora_lite.errors import CorruptionError
from memora_lite.storage.format import (
    WAL_MAGIC,
    WAL_RECORD_HEADER,
    WAL_RECORD_TYPES,
    masked_crc,
    masked_crc_of_parts,
)
from memora_lite.storage.fs import Appender, FileSystem

_HEADER = WAL_RECORD_HEADER.size
_HEAD = struct.Struct("<III")  # the header's first 12 bytes, which the header checksum covers
_CRC = struct.Struct("<I")


def frame(record_type: int, payload: bytes) -> bytes:
    """One record's bytes: header then payload."""
    return b"".join(frame_parts(record_type, [payload]))


def frame_parts(record_type: int, parts: list[bytes]) -> list[bytes]:
    """One record as parts, header first, for a payload given as parts: written with one
    gather write, a large payload is never copied into one buffer (``Appender.append_parts``).

    >>> b"".join(frame_parts(1, [b"fir", b"st"])) == frame(1, b"first")
    True
    """
    head = _HEAD.pack(sum(map(len, parts)), record_type, masked_crc_of_parts(parts))
    return [head + _CRC.pack(masked_crc(head)), *parts]


class WalWriter:
    """Appends framed records to one log file; each :meth:`append` is one ``write`` call."""

    def __init__(self, appender: Appender, path: str) -> None:
        self.appender = appender
        self.path = path

    @classmethod
    def create(cls, fs: FileSystem, path: str) -> WalWriter:
        """A new, empty log holding only the magic, synced."""
        fs.write_file(path, WAL_MAGIC)
        return cls(fs.open_appender(path), path)

    @classmethod
    def reopen(cls, fs: FileSystem, path: str, valid_size: int) -> WalWriter:
        """Continue a log after recovery, cutting a torn tail so new records follow valid ones."""
        appender = fs.open_appender(path)
        if appender.size != valid_size:
            appender.truncate(valid_size)
            appender.sync()
        return cls(appender, path)

    def append(self, record: bytes) -> None:
        """Append one record made by :func:`frame` (or framed in C by ``_rows.RowEncoder``)."""
        self.appender.append(record)

    def sync(self) -> None:
        self.appender.sync()

    @property
    def size(self) -> int:
        return self.appender.size

    def close(self) -> None:
        self.appender.close()


def read_records(data: bytes, name: str) -> tuple[list[tuple[int, memoryview]], int]:
    """Parse a whole log file.

    Returns ``(records, valid_size)``: the ``(type, payload)`` pairs before any torn
    tail, and the byte length they span (where the writer continues). Raises
    CorruptionError for damage before the end (see the module docstring).
    """
    if data[: len(WAL_MAGIC)] != WAL_MAGIC:
        if len(data) < len(WAL_MAGIC) and WAL_MAGIC.startswith(data):
            return [], 0  # crashed while creating the log: nothing was acknowledged in it
        raise CorruptionError(f"{name}: not a memora_lite log (bad magic at offset 0)")
    records, used = parse_records(data[len(WAL_MAGIC) :], name, len(WAL_MAGIC))
    return records, len(WAL_MAGIC) + used


def parse_records(data: bytes, name: str, base: int) -> tuple[list[tuple[int, memoryview]], int]:
    """Records in ``data``, which starts at a record boundary at file offset ``base``.

    Returns the records before any torn tail and the number of bytes they span. A
    reader following a live log calls this on each new tail; a record still being
    written is torn for now and read whole next time.
    """
    view = memoryview(data)
    records: list[tuple[int, memoryview]] = []
    pos, end = 0, len(data)
    while pos < end:
        status = _record_at(data, pos)
        if status == _TORN:
            break  # the last record runs past the end of the file
        if status == _BAD:
            if not _damaged(data, pos):
                break  # zeros or garbage after the last record: a torn tail, not damage
            length, record_type, _ = _HEAD.unpack_from(data, pos)
            raise CorruptionError(
                f"{name}: record at offset {base + pos} fails its checksum (type {record_type}, {length} bytes); "
                "the log is damaged before its end"
            )
        length, record_type, _ = _HEAD.unpack_from(data, pos)
        records.append((record_type, view[pos + _HEADER : pos + _HEADER + length]))
        pos += _HEADER + length
    return records, pos


_OK, _TORN, _BAD = 0, 1, 2


def _record_at(data: bytes, pos: int) -> int:
    """Whether a whole, valid record starts at ``pos``; _TORN if the file ends inside it."""
    end = len(data)
    if end - pos < _HEADER:
        return _TORN
    length, record_type, payload_crc, header_crc = WAL_RECORD_HEADER.unpack_from(data, pos)
    if masked_crc(memoryview(data)[pos : pos + _HEAD.size]) != header_crc or record_type not in WAL_RECORD_TYPES:
        return _BAD
    if pos + _HEADER + length > end:
        return _TORN
    if masked_crc(memoryview(data)[pos + _HEADER : pos + _HEADER + length]) != payload_crc:
        return _BAD
    return _OK


def _damaged(data: bytes, pos: int) -> bool:
    """Is the bad record at ``pos`` damage (raise) rather than a torn or garbage tail (drop)?

    A tail, if only zeros follow its header. Otherwise damage if a valid record
    follows it anywhere, or if it is the last record and still looks like one: its
    length field spans exactly the rest of the file, or its payload checksum matches
    the rest of the file (only its header was hit).
    """
    end = len(data)
    if data.count(0, pos + _HEADER) == end - pos - _HEADER:
        # Everything after the header is zeros: the file grew but the last write's data
        # never landed (a power cut). A payload is msgpack and never all zeros, so one
        # flipped bit cannot look like this.
        return False
    if end - pos >= _HEADER:
        length, _, payload_crc = _HEAD.unpack_from(data, pos)
        if length == end - pos - _HEADER or masked_crc(memoryview(data)[pos + _HEADER :]) == payload_crc:
            return True
    for record_type in WAL_RECORD_TYPES:  # find candidate headers by their type field, at C speed
        marker = record_type.to_bytes(4, "little")
        hit = data.find(marker, pos + 1 + 4)
        while hit != -1:
            if _record_at(data, hit - 4) == _OK:
                return True
            hit = data.find(marker, hit + 1)
    return False
