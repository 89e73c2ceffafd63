"""On-disk constants. WRITTEN TO DISK: NEVER CHANGE A VALUE; add new ones, retire old ones as comments.

Byte layouts are documented in ``docs/format.md``; each structure's section is named
after the constant group below.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

from memora_lite.codecs.backend import BACKEND

# -- checksums (docs/format.md#checksums) ---------------------------------------------------------
# CRC-32 (ISO-HDLC, zlib's), masked like leveldb so a CRC over data that embeds CRCs stays strong.
_CRC_MASK_DELTA = 0xA282EAD8

if BACKEND == "numpy":  # MEMORA_LITE_BACKEND=numpy runs every kernel's twin: here zlib's CRC-32
    _crc32 = zlib.crc32
else:
    from memora_lite.storage._checksum import crc32 as _crc32


def masked_crc(data: bytes | memoryview) -> int:
    """zlib CRC-32 of ``data``, rotated and offset so stored CRCs are not CRCs of CRCs."""
    return _mask(_crc32(data))


def masked_crc_of_parts(parts: Sequence[bytes | memoryview]) -> int:
    """:func:`masked_crc` of the concatenation of ``parts``, without making it.

    >>> masked_crc_of_parts([b"ab", b"", b"c"]) == masked_crc(b"abc")
    True
    """
    crc = 0
    for part in parts:
        crc = _crc32(part, crc)
    return _mask(crc)


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


# -- write-ahead log (docs/format.md#wal) ---------------------------------------------------------
WAL_MAGIC = b"MLWAL\x00\x00\x01"
WAL_RECORD_HEADER = struct.Struct("<IIII")  # payload length, type, payload CRC, CRC of the first 12 bytes
WAL_INSERT = 1  # a batch, column by column
WAL_UPSERT = 2
WAL_DELETE = 3
WAL_INSERT_ROW = 4  # one row, values in schema field order (the one-row fast path)
WAL_UPSERT_ROW = 5
WAL_RECORD_TYPES = frozenset({WAL_INSERT, WAL_UPSERT, WAL_DELETE, WAL_INSERT_ROW, WAL_UPSERT_ROW})

# -- segments (docs/format.md#segment) ------------------------------------------------------------
SEGMENT_MAGIC = b"MLSEG\x00\x00\x01"
SEGMENT_TRAILER = struct.Struct("<QII8s")  # footer offset, footer length, footer masked CRC, magic
SEGMENT_BLOCK_ROWS = 1024

# -- deletion vectors (docs/format.md#deletes) -----------------------------------------------------
DELETES_MAGIC = b"MLDEL\x00\x00\x01"
DELETES_HEADER = struct.Struct("<8sII")  # magic, row count, masked CRC of the row-index bytes

# -- manifest (docs/format.md#manifest) ----------------------------------------------------------
MANIFEST_MAGIC = b"MLMAN\x00\x00\x01"
MANIFEST_HEADER = struct.Struct("<8sII")  # magic, payload length, masked CRC of payload
FORMAT_VERSION = 1
