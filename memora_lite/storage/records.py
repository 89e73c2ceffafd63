"""Payloads of write-ahead-log records: what one ``insert``, ``upsert`` or ``delete`` call logged.

An insert or upsert payload is a msgpack map (docs/format.md#wal-payloads)::

    {"n": rows, "cols": {field: [encoding, bytes]}, "nulls": {field: packed bits},
     "schema": <schema map, only when this call grew an inferred schema>}

Columns use the same codecs as segment blocks, without their zstd step, and decode
with the schema in force when it was written. A one-row payload is a msgpack array of
the row's values in schema field order, int arrays as little-endian bytes (less a long
trailing run, such as padding: ``[length, run value, bytes before the run]``): it is
written (and framed) in C by ``_rows.RowEncoder``, and read back by :func:`decode_row`.
A delete payload is ``{"keys": [...]}``.

>>> import numpy as np
>>> from memora_lite.schema import Schema
>>> schema = Schema.infer({"id": [1], "x": [2]}, "id")
>>> batch, _ = schema.to_batch({"id": [1], "x": [2]}, "c")
>>> again, grown = decode_rows(b"".join(encode_rows(batch, schema, None)), schema, "wal")
>>> again.columns["x"].tolist(), grown is None
([2], True)
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from memora_lite import codecs
from memora_lite.columns import Batch, Column
from memora_lite.errors import CodecError, CorruptionError
from memora_lite.schema import DataType, Field, Schema, column_kind, element_dtype

WAL_CODEC_LEVEL = None  # no zstd: a record is written once and read back at most once (recovery)


def encode_rows(batch: Batch, schema: Schema, grown: Schema | None) -> list[bytes]:
    """Payload for an insert or upsert of ``batch`` (``grown``: the new schema, if the call changed it).

    The payload comes in parts whose concatenation is the msgpack map above: each
    column's encoded bytes are a part of their own, so the log writes them with one
    gather write instead of copying megabytes into one buffer (a 4,096-row SQuAD
    call logs ~3 MB).

    >>> schema = Schema.infer({"id": [1], "x": [2]}, "id")
    >>> batch, _ = schema.to_batch({"id": [1], "x": [2]}, "c")
    >>> parts = encode_rows(batch, schema, None)
    >>> len(parts), msgpack.unpackb(b"".join(parts))["n"]
    (5, 1)
    """
    target = grown or schema
    pack = msgpack.Packer(use_bin_type=True).pack
    parts = []
    head = b"\x84" if grown is not None else b"\x83"  # a map of 4 or 3 entries
    head += pack("n") + pack(len(batch)) + pack("cols") + _map_header(len(target.fields))
    for f in target.fields:
        encoding, blob = codecs.encode_column(batch.columns[f.field_name], column_kind(f), WAL_CODEC_LEVEL)
        parts.append(head + pack(f.field_name) + b"\x92" + pack(encoding) + _bin_header(len(blob)))
        parts.append(blob)
        head = b""
    nulls = {name: np.packbits(mask, bitorder="little").tobytes() for name, mask in batch.nulls.items()}
    tail = pack("nulls") + pack(nulls)
    if grown is not None:
        tail += pack("schema") + pack(grown.to_dict())
    parts.append(head + tail)
    return parts


def _map_header(n: int) -> bytes:
    """msgpack's header of an ``n``-entry map, in its smallest form, as msgpack-python writes it."""
    if n < 16:
        return bytes([0x80 | n])
    return b"\xde" + n.to_bytes(2, "big") if n < 1 << 16 else b"\xdf" + n.to_bytes(4, "big")


def _bin_header(n: int) -> bytes:
    """msgpack's header of ``n`` bytes of bin, in its smallest form, as msgpack-python writes it."""
    if n < 1 << 8:
        return b"\xc4" + bytes([n])
    return b"\xc5" + n.to_bytes(2, "big") if n < 1 << 16 else b"\xc6" + n.to_bytes(4, "big")


def decode_rows(payload: bytes | memoryview, schema: Schema, name: str) -> tuple[Batch, Schema | None]:
    """Inverse of :meth:`encode_rows`: the batch and the grown schema (or None)."""
    try:
        record = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        grown = Schema.from_dict(record["schema"]) if "schema" in record else None
        target = grown or schema
        n = int(record["n"])
        columns: dict[str, Column] = {}
        for f in target.fields:
            encoding, blob = record["cols"][f.field_name]
            columns[f.field_name] = codecs.decode_column(
                encoding, blob, n, column_kind(f), element_dtype(f), f.dim
            )
        nulls = {
            k: np.unpackbits(np.frombuffer(v, np.uint8), count=n, bitorder="little").astype(bool)
            for k, v in record["nulls"].items()
        }
    except (CodecError, KeyError, TypeError, ValueError) as exc:
        raise CorruptionError(f"{name}: a logged insert does not decode ({exc})") from None
    return Batch(columns, n, nulls), grown


def decode_row(payload: bytes | memoryview, schema: Schema, name: str) -> list[Any]:
    """A one-row payload's values, as the memtable's ``PendingRows.add`` takes them (int arrays
    as their packed bytes), checked against ``schema``.

    >>> schema = Schema.infer({"id": [1], "t": [[1]]}, "id")
    >>> decode_row(bytes([0x92, 0x07, 0x93, 0x03, 0x00, 0xC4, 0x01, 0x05]), schema, "wal")
    [7, b'\\x05\\x00\\x00']
    """
    try:
        values = msgpack.unpackb(payload, raw=False)
    except (TypeError, ValueError) as exc:
        raise CorruptionError(f"{name}: a logged row does not decode ({exc})") from None
    if not isinstance(values, list) or len(values) != len(schema.fields):
        raise CorruptionError(f"{name}: a logged row has the wrong shape for the schema")
    for i, f in enumerate(schema.fields):
        if type(values[i]) is list and f.data_type is DataType.ARRAY:
            values[i] = _with_run(values[i], f, name)
    try:  # what the memtable will hold: checked here, where the log can be named
        pending = schema.pending_rows()
        if pending is None:
            raise ValueError("the schema takes no one-row inserts")
        pending.add(values)
    except ValueError as exc:
        raise CorruptionError(f"{name}: a logged row does not fit the schema ({exc})") from None
    return values


def _with_run(logged: list[Any], f: Field, name: str) -> bytes:
    """An int array logged as ``[length, run value, bytes before the run]``, packed whole again."""
    width = element_dtype(f).itemsize
    try:
        length, value, head = logged
        run = length - len(head) // width
        if type(head) is not bytes or len(head) % width or run < 1 or length > (f.max_capacity or 0):
            raise ValueError(f"{len(head)} bytes before a run that makes {length} values")
        return head + value.to_bytes(width, "little", signed=True) * run  # type: ignore[no-any-return]
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise CorruptionError(f"{name}: a logged row's field '{f.field_name}' does not decode ({exc})") from None


def encode_keys(keys: list[Any]) -> bytes:
    return msgpack.packb({"keys": keys}, use_bin_type=True)  # type: ignore[no-any-return]


def decode_keys(payload: bytes | memoryview, name: str) -> list[Any]:
    try:
        keys = msgpack.unpackb(payload, raw=False)["keys"]
        if not isinstance(keys, list):
            raise TypeError("keys is not a list")
        return keys
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptionError(f"{name}: a logged delete does not decode ({exc})") from None
