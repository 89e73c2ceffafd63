"""The per-column encoding registry: which encoding a column chunk gets, and decoding it by name.

A chunk is encoded by its *kind* (what shape its column has in memory, see
:mod:`memora_lite.columns`) and the encoding's name is recorded beside the
bytes, so a chunk decodes from ``(name, bytes, rows, kind, dtype, dim)`` alone:

========== ============================================ ==========================
kind       column                                       encodings
========== ============================================ ==========================
fixed      1-D numeric or bool array                    plain, narrow (ints)
matrix     2-D float array ``(rows, dim)``              plain
tokens     :class:`Ragged` of ints                      tokens1 (zstd inside)
ragged     :class:`Ragged` of floats or bools           ragged_plain
strings    1-D object array of str (None reads as "")   utf8
objects    1-D object array of msgpack-able values      msgpack
objects    :class:`Ragged` of object values (str lists) msgpack_ragged
========== ============================================ ==========================

Every encoding but tokens1 may also be stored as ``<name>+zstd`` (one zstd
frame of those bytes) when that saves at least an eighth. Byte layouts:
``docs/format.md#column-encodings``.

>>> name, data = encode_column(np.zeros(1000, dtype=np.int64), "fixed")
>>> name, len(data) < 100
('narrow+zstd', True)
>>> decode_column(name, data, 1000, "fixed", np.dtype(np.int64)).sum()
np.int64(0)
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from memora_lite.codecs.backend import (
    TokenBlock,
    decode_tokens,
    encode_tokens,
    int_range,
    open_block,
    worth_compressing,
    zstd_compress,
    zstd_decompress,
)
from memora_lite.columns import Column, Ragged, object_array
from memora_lite.errors import CodecError

KINDS = ("fixed", "matrix", "tokens", "ragged", "strings", "objects")
ZSTD_SUFFIX = "+zstd"
_U32_LIMIT = 1 << 32
_INT64 = np.iinfo(np.int64)
_NARROW_HEADER = struct.Struct("<qB")  # base, value width


@dataclass(frozen=True)
class _Encoding:
    """How one named encoding decodes, and which kinds may carry it."""

    kinds: tuple[str, ...]
    decode: Callable[[Any, int, str, np.dtype, int | None], Column]
    zstd: bool  # whether "<name>+zstd" exists


def encode_column(column: Column, kind: str, level: int | None = 3) -> tuple[str, bytes]:
    """Encode one column chunk; return the encoding's name and the bytes.

    Parameters
    ----------
    column : numpy.ndarray or Ragged
        The chunk, shaped as ``kind`` says (see the module docstring).
    kind : str
        One of ``KINDS``.
    level : int or None
        zstd level for the compression step; None skips it (a write-ahead log
        record is written once and read back at most once).

    Returns
    -------
    tuple of (str, bytes)
        The name to record with the chunk, and its bytes.

    Raises
    ------
    TypeError
        ``column`` is not of the shape or dtype ``kind`` expects, or an object
        is not msgpack-able.
    ValueError
        ``kind`` is unknown, or the chunk exceeds a 32-bit length field.

    >>> encode_column(np.array([1.5], dtype=np.float32), "fixed")
    ('plain', b'\\x00\\x00\\xc0?')
    """
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise ValueError(f"unknown column kind {kind!r}; use one of {', '.join(KINDS)}")
    name, data = encoder(column, level)
    if _ENCODINGS[name].zstd and level is not None:
        packed = zstd_compress(data, level)
        if worth_compressing(len(data), len(packed)):
            return name + ZSTD_SUFFIX, packed
    return name, data


def decode_column(
    encoding: str, buf: Any, rows: int, kind: str, dtype: np.dtype, dim: int | None = None
) -> Column:
    """Decode a chunk written by :func:`encode_column`, checking it against what the caller knows.

    Parameters
    ----------
    encoding : str
        The name :func:`encode_column` returned.
    buf : bytes-like
        The chunk's bytes.
    rows : int
        Rows the chunk must hold.
    kind : str
        The column's kind (``KINDS``).
    dtype : numpy.dtype
        The in-memory dtype of the values (``object`` for strings and objects).
    dim : int, optional
        Row width of a ``matrix`` column.

    Returns
    -------
    numpy.ndarray or Ragged
        The column, as :func:`encode_column` was given it; arrays are writable
        and own their memory.

    Raises
    ------
    CodecError
        The encoding is unknown or does not apply to ``kind``, or the bytes are
        inconsistent with themselves, ``rows``, ``dtype`` or ``dim``.

    >>> decode_column("plain", b"\\x01\\x00", 1, "fixed", np.dtype(np.int16))
    array([1], dtype=int16)
    >>> decode_column("plain", b"\\x01\\x00", 2, "fixed", np.dtype(np.int16))
    Traceback (most recent call last):
    ...
    memora_lite.errors.CodecError: plain fixed column: 2 bytes where 2 rows of int16 need 4
    """
    if kind not in KINDS:
        raise ValueError(f"unknown column kind {kind!r}; use one of {', '.join(KINDS)}")
    if rows < 0:
        raise ValueError(f"rows must be >= 0, not {rows}")
    compressed = encoding.endswith(ZSTD_SUFFIX)
    name = encoding.removesuffix(ZSTD_SUFFIX)
    spec = _ENCODINGS.get(name)
    if spec is None or (compressed and not spec.zstd):
        raise CodecError(f"unknown column encoding {encoding!r}")
    if kind not in spec.kinds:
        raise CodecError(f"encoding {encoding!r} does not apply to a {kind} column")
    if compressed:
        buf = zstd_decompress(buf, None, f"{encoding} {kind} column")
    return spec.decode(memoryview(buf).cast("B"), rows, kind, np.dtype(dtype), dim)


def open_column(
    encoding: str, buf: Any, rows: int, kind: str, dtype: np.dtype, dim: int | None = None, scratch: bool = False
) -> Column | TokenBlock:
    """Like :func:`decode_column`, but a tokens1 chunk comes back as an opened :class:`TokenBlock`.

    A cache of opened chunks then decodes only the rows each read asks for. With
    ``scratch`` a TokenBlock is only good until this thread's next scratch call
    (see :meth:`~memora_lite.codecs.backend.TokenCodec.open_block`).

    >>> name, data = encode_column(Ragged.from_lists([[1, 2], [3]], np.dtype("int64")), "tokens")
    >>> open_column(name, data, 2, "tokens", np.dtype("int64")).lists(1, 2)
    [[3]]
    """
    if encoding != "tokens1" or kind != "tokens":
        return decode_column(encoding, buf, rows, kind, dtype, dim)
    block = open_block(buf, scratch)
    if len(block) != rows:
        raise CodecError(f"tokens1 column holds {len(block)} rows where {rows} are expected")
    return block


# --- plain ------------------------------------------------------------------------------------


def _little_endian(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()


def _encode_fixed(column: Column, level: int | None) -> tuple[str, bytes]:
    if not isinstance(column, np.ndarray) or column.ndim != 1 or column.dtype.kind not in "biufc":
        raise TypeError(f"a fixed column is a 1-D numeric or bool array, not {_describe(column)}")
    if column.dtype.kind in "iu" and len(column):
        narrowed = _narrow(column)
        if narrowed is not None:
            return "narrow", narrowed
    return "plain", _little_endian(column)


def _narrow(column: np.ndarray) -> bytes | None:
    """``narrow`` bytes of an int column, or None when they would be no narrower than ``plain``.

    Positions and counts span far less than their dtype: start_token fits 2 bytes
    of 8, and those bytes decompress 4x faster than the plain ones.
    """
    lo, hi = int(column.min()), int(column.max())
    width = next((w for w in (1, 2, 4) if hi - lo < 1 << (8 * w)), 8)
    if width >= column.dtype.itemsize or hi > _INT64.max:
        return None
    stored = (column.astype(np.int64) - lo).astype(f"<u{width}")
    return _NARROW_HEADER.pack(lo, width) + stored.tobytes()


def _decode_narrow(buf: memoryview, rows: int, kind: str, dtype: np.dtype, dim: int | None) -> np.ndarray:
    if dtype.kind not in "iu":
        raise CodecError(f"narrow column: decodes to an int dtype, not {dtype}")
    if len(buf) < _NARROW_HEADER.size:
        raise CodecError(f"narrow column: {len(buf)} bytes cannot hold its {_NARROW_HEADER.size}-byte header")
    base, width = _NARROW_HEADER.unpack_from(buf)
    if width not in (1, 2, 4, 8):
        raise CodecError(f"narrow column: value width {width} is not 1, 2, 4 or 8")
    if len(buf) != _NARROW_HEADER.size + rows * width:
        raise CodecError(f"narrow column: {len(buf)} bytes where {rows} rows of {width} bytes need "
                         f"{_NARROW_HEADER.size + rows * width}")
    stored = np.frombuffer(buf, f"<u{width}", rows, _NARROW_HEADER.size)
    lo, hi = int_range(dtype)  # narrow holds int64 values only: the clipped range is the one to check
    if base < lo or base + (1 << 8 * width) - 1 > hi:  # the width alone does not bound them: look
        top = base + (int(stored.max()) if rows else 0)
        if base < lo or top > hi:
            raise CodecError(f"narrow column: values {base}..{top} do not fit {dtype}")
    values = stored.astype(dtype)
    if base:
        np.add(values, base, out=values)  # wraps where astype wrapped: the sums are in range
    return values


def _encode_matrix(column: Column, level: int | None) -> tuple[str, bytes]:
    if not isinstance(column, np.ndarray) or column.ndim != 2 or column.dtype.kind != "f":
        raise TypeError(f"a matrix column is a 2-D float array, not {_describe(column)}")
    return "plain", _little_endian(column)


def _decode_plain(buf: memoryview, rows: int, kind: str, dtype: np.dtype, dim: int | None) -> np.ndarray:
    shape = (rows,) if kind == "fixed" else (rows, _require_dim(dim))
    count = math.prod(shape)
    if len(buf) != count * dtype.itemsize:
        what = f"{rows} rows of {dtype}" + (f" x {dim}" if kind == "matrix" else "")
        raise CodecError(f"plain {kind} column: {len(buf)} bytes where {what} need {count * dtype.itemsize}")
    return _read_values(buf, dtype, shape, f"plain {kind} column")


def _read_values(
    buf: memoryview, dtype: np.dtype, shape: tuple[int, ...], what: str, offset: int = 0
) -> np.ndarray:
    """Little-endian values of ``dtype`` from ``buf`` as a native array of ``shape`` that owns its memory."""
    if dtype.kind not in "biufc":
        raise TypeError(f"{what} decodes to a numeric or bool dtype, not {dtype}")
    count = math.prod(shape)
    if dtype.kind == "b" and np.any(np.frombuffer(buf, np.uint8, count, offset) > 1):
        raise CodecError(f"{what}: a bool value is neither 0 nor 1")
    return np.frombuffer(buf, dtype.newbyteorder("<"), count, offset).reshape(shape).astype(dtype)


def _require_dim(dim: int | None) -> int:
    if dim is None or dim < 0:
        raise ValueError(f"decoding a matrix column needs its dim, not {dim!r}")
    return dim


# --- tokens1 and ragged_plain -----------------------------------------------------------------


def _checked_ragged(column: Column, kind: str, kinds: str) -> Ragged:
    if not isinstance(column, Ragged) or column.values.ndim != 1 or column.dtype.kind not in kinds:
        raise TypeError(f"a {kind} column is a Ragged of {'ints' if kinds == 'iu' else 'numbers or bools'}")
    offsets = np.asarray(column.offsets)
    if offsets.ndim != 1 or len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(column.values):
        raise ValueError(f"{kind} column offsets must start at 0 and end at len(values)")
    if np.any(np.diff(offsets) < 0):
        raise ValueError(f"{kind} column offsets must not decrease")
    return column


def _encode_tokens(column: Column, level: int | None) -> tuple[str, bytes]:
    ragged = _checked_ragged(column, "tokens", "iu")
    return "tokens1", encode_tokens(ragged.values, ragged.offsets, level)


def _decode_tokens(buf: memoryview, rows: int, kind: str, dtype: np.dtype, dim: int | None) -> Ragged:
    ragged = decode_tokens(buf, dtype)
    if len(ragged) != rows:
        raise CodecError(f"tokens1 column holds {len(ragged)} rows where {rows} are expected")
    return ragged


def _encode_ragged(column: Column, level: int | None) -> tuple[str, bytes]:
    ragged = _checked_ragged(column, "ragged", "biuf")
    lengths = ragged.lengths()
    if len(lengths) and int(lengths.max()) >= _U32_LIMIT:
        raise ValueError("a ragged_plain row holds 2**32 values or more; split the row")
    return "ragged_plain", lengths.astype("<u4").tobytes() + _little_endian(ragged.values)


def _decode_ragged(buf: memoryview, rows: int, kind: str, dtype: np.dtype, dim: int | None) -> Ragged:
    head = 4 * rows
    if len(buf) < head:
        raise CodecError(f"ragged_plain column: {len(buf)} bytes cannot hold {rows} row lengths")
    offsets = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.frombuffer(buf, "<u4", rows), out=offsets[1:])
    count = int(offsets[-1])
    if len(buf) - head != count * dtype.itemsize:
        raise CodecError(
            f"ragged_plain column: row lengths add up to {count} values of {dtype} "
            f"but {len(buf) - head} bytes follow them"
        )
    return Ragged(_read_values(buf, dtype, (count,), "ragged_plain column", head), offsets)


# --- utf8 -------------------------------------------------------------------------------------


def _encode_strings(column: Column, level: int | None) -> tuple[str, bytes]:
    if not isinstance(column, np.ndarray) or column.ndim != 1:
        raise TypeError(f"a strings column is a 1-D object array of str, not {_describe(column)}")
    parts = []
    for i, value in enumerate(column.tolist()):
        if value is None:
            parts.append(b"")
        elif isinstance(value, str):
            parts.append(value.encode("utf-8"))
        else:
            raise TypeError(f"strings column row {i} holds {type(value).__name__} {value!r}, not str")
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, parts), np.int64, len(parts)), out=offsets[1:])
    if offsets[-1] >= _U32_LIMIT:
        raise ValueError("a utf8 chunk holds 4 GiB of text or more; write smaller chunks")
    return "utf8", offsets.astype("<u4").tobytes() + b"".join(parts)


def _decode_strings(buf: memoryview, rows: int, kind: str, dtype: np.dtype, dim: int | None) -> np.ndarray:
    head = 4 * (rows + 1)
    if len(buf) < head:
        raise CodecError(f"utf8 column: {len(buf)} bytes cannot hold {rows + 1} offsets")
    bounds = np.frombuffer(buf, "<u4", rows + 1).astype(np.int64)
    if bounds[0] != 0 or bounds[-1] != len(buf) - head or np.any(np.diff(bounds) < 0):
        raise CodecError(
            f"utf8 column: offsets must rise from 0 to the {len(buf) - head} bytes of text, "
            f"found {bounds[0]} to {bounds[-1]}"
        )
    text = bytes(buf[head:])
    starts = bounds.tolist()
    strings = []
    for i, (start, end) in enumerate(itertools.pairwise(starts)):
        try:
            strings.append(text[start:end].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise CodecError(f"utf8 column: row {i} is not valid UTF-8 ({exc.reason})") from None
    return object_array(strings, rows)


# --- msgpack ----------------------------------------------------------------------------------


def _msgpack_default(value: Any) -> Any:
    """numpy values as their Python equivalents; anything else msgpack cannot hold is refused."""
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    raise TypeError(f"objects column: {type(value).__name__} values cannot be stored (not msgpack-able)")


def _refuse_ext(code: int, data: bytes) -> Any:
    raise CodecError(f"msgpack column: extension type {code} is never written")


def _encode_objects(column: Column, level: int | None) -> tuple[str, bytes]:
    if isinstance(column, Ragged):  # ARRAY of VARCHAR: rows of strings
        rows = _checked_ragged(column, "objects", "O").to_lists()
        return "msgpack_ragged", msgpack.packb(rows, use_bin_type=True, default=_msgpack_default)
    if not isinstance(column, np.ndarray) or column.ndim != 1:
        raise TypeError(f"an objects column is a 1-D object array or a Ragged, not {_describe(column)}")
    return "msgpack", msgpack.packb(column.tolist(), use_bin_type=True, default=_msgpack_default)


def _unpack_rows(buf: memoryview, rows: int, encoding: str) -> list[Any]:
    try:
        values = msgpack.unpackb(buf, raw=False, strict_map_key=False, ext_hook=_refuse_ext)
    except (ValueError, TypeError) as exc:  # msgpack's FormatError, ExtraData, StackError are ValueErrors
        raise CodecError(f"{encoding} column: {exc}") from None
    if not isinstance(values, list) or len(values) != rows:
        found = f"{len(values)} rows" if isinstance(values, list) else type(values).__name__
        raise CodecError(f"{encoding} column holds {found} where a list of {rows} rows is expected")
    return values


def _decode_objects(buf: memoryview, rows: int, kind: str, dtype: np.dtype, dim: int | None) -> np.ndarray:
    return object_array(_unpack_rows(buf, rows, "msgpack"), rows)


def _decode_object_rows(buf: memoryview, rows: int, kind: str, dtype: np.dtype, dim: int | None) -> Ragged:
    values = _unpack_rows(buf, rows, "msgpack_ragged")
    for i, row in enumerate(values):
        if not isinstance(row, list):
            raise CodecError(f"msgpack_ragged column: row {i} is {type(row).__name__}, not a list")
    return Ragged.from_lists(values, np.dtype(object))


def _describe(column: Any) -> str:
    if isinstance(column, np.ndarray):
        return f"a {column.ndim}-D {column.dtype} array"
    return type(column).__name__


_ENCODERS: dict[str, Callable[[Column, int | None], tuple[str, bytes]]] = {
    "fixed": _encode_fixed,
    "matrix": _encode_matrix,
    "tokens": _encode_tokens,
    "ragged": _encode_ragged,
    "strings": _encode_strings,
    "objects": _encode_objects,
}

# Names are written to disk, never change: docs/format.md#column-encodings.
_ENCODINGS: dict[str, _Encoding] = {
    "plain": _Encoding(("fixed", "matrix"), _decode_plain, zstd=True),
    "narrow": _Encoding(("fixed",), _decode_narrow, zstd=True),
    "tokens1": _Encoding(("tokens",), _decode_tokens, zstd=False),
    "ragged_plain": _Encoding(("ragged",), _decode_ragged, zstd=True),
    "utf8": _Encoding(("strings",), _decode_strings, zstd=True),
    "msgpack": _Encoding(("objects",), _decode_objects, zstd=True),
    "msgpack_ragged": _Encoding(("objects",), _decode_object_rows, zstd=True),
}
