"""The manifest: which segments, deletion vectors and logs make up a collection right now.

One file, ``MANIFEST``, replaced atomically (temp file, fsync, rename, fsync folder)
on every flush and compaction, so a crash leaves the old or the new version, whole.
While a background flush writes the previous log's rows to a segment, the manifest
names two logs: ``wal_before`` (frozen, ``wal_before_bytes`` long) and ``wal``.
Layout (docs/format.md#manifest): ``[8s magic][u32 payload length][u32 masked CRC]``
then a msgpack map.

>>> from memora_lite.storage.fs import MemoryFileSystem
>>> fs = MemoryFileSystem(); fs.makedirs("/c")
>>> m = Manifest(collection="c", schema={"fields": []}, wal="wal-000001.log", next_file=2)
>>> m.install(fs, "/c")
>>> Manifest.load(fs, "/c").wal
'wal-000001.log'
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import msgpack

from memora_lite.errors import CorruptionError
from memora_lite.storage import crashpoints
from memora_lite.storage.filenames import MANIFEST, TEMP_SUFFIX
from memora_lite.storage.format import FORMAT_VERSION, MANIFEST_HEADER, MANIFEST_MAGIC, masked_crc
from memora_lite.storage.fs import FileSystem


@dataclass
class SegmentEntry:
    """One live segment: its file, size, key range and current deletion vector."""

    number: int
    rows: int
    min_pk: Any
    max_pk: Any
    deletes: int | None = None  # file number of the deletion vector, None when no row is deleted
    deleted: int = 0


@dataclass
class Manifest:
    collection: str
    schema: dict[str, Any]
    wal: str
    next_file: int
    segments: list[SegmentEntry] = field(default_factory=list)
    version: int = FORMAT_VERSION
    # The log a background flush is turning into a segment, replayed before ``wal``, and its
    # length when it was frozen: recovery that finds it shorter (a power cut took its
    # unsynced tail) must not replay ``wal``, whose records came after the lost ones.
    wal_before: str | None = None
    wal_before_bytes: int = 0

    def encode(self) -> bytes:
        fields = asdict(self)
        if self.wal_before is None:  # the usual manifest carries neither key
            del fields["wal_before"], fields["wal_before_bytes"]
        payload = msgpack.packb(fields, use_bin_type=True)
        return MANIFEST_HEADER.pack(MANIFEST_MAGIC, len(payload), masked_crc(payload)) + payload

    @classmethod
    def decode(cls, data: bytes, name: str) -> Manifest:
        if len(data) < MANIFEST_HEADER.size:
            raise CorruptionError(f"{name}: {len(data)} bytes is too short for a manifest")
        magic, length, crc = MANIFEST_HEADER.unpack_from(data, 0)
        payload = data[MANIFEST_HEADER.size :]
        if magic != MANIFEST_MAGIC:
            raise CorruptionError(f"{name}: bad magic at offset 0; not a memora_lite manifest")
        if length != len(payload) or masked_crc(payload) != crc:
            raise CorruptionError(f"{name}: payload at offset {MANIFEST_HEADER.size} fails its checksum")
        try:
            raw = msgpack.unpackb(payload, raw=False, strict_map_key=False)
            if raw.get("version") != FORMAT_VERSION:
                raise CorruptionError(f"{name}: format version {raw.get('version')} is not {FORMAT_VERSION}; "
                                      "upgrade memora_lite")
            raw["segments"] = [SegmentEntry(**s) for s in raw["segments"]]
            return cls(**raw)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise CorruptionError(f"{name}: manifest payload is malformed ({exc})") from None

    def install(self, fs: FileSystem, folder: str, before_rename: str = "") -> None:
        """Make this the collection's manifest, atomically and durably.

        ``before_rename`` names the crash point between the synced temp file and the rename.
        """
        path = os.path.join(folder, MANIFEST)
        fs.write_file(path + TEMP_SUFFIX, self.encode())
        crashpoints.reach(before_rename)
        fs.rename(path + TEMP_SUFFIX, path)
        fs.sync_dir(folder)

    @classmethod
    def load(cls, fs: FileSystem, folder: str) -> Manifest:
        path = os.path.join(folder, MANIFEST)
        return cls.decode(fs.read(path), path)
