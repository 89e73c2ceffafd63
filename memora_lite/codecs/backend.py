"""The live kernel backend, the tokens1 block around its kernels, and the bounded zstd step.

Owns three facts, each in one place:

* which kernels run: ``MEMORA_LITE_BACKEND`` picks ``"cython"`` (default, the
  compiled :mod:`memora_lite.codecs._tokens`) or ``"numpy"`` (the twin
  :mod:`memora_lite.codecs.tokens_numpy`); a missing build is an ImportError,
  never a silent switch to the slow twin;
* the tokens1 header and the one table from kernel status codes to
  :class:`~memora_lite.errors.CodecError` messages;
* how zstd frames are written and how far a frame may expand on reading.

Byte layouts: ``docs/format.md``. :class:`TokenCodec` binds the format to one
kernel module so that tests can run both side by side; the module-level
functions use the live one.

>>> import numpy as np
>>> block = encode_tokens(np.array([5, 6, 0, 0, 9], dtype=np.int32), np.array([0, 4, 5]))
>>> decode_tokens(block, np.dtype("int32")).to_lists()
[[5, 6, 0, 0], [9]]
"""

from __future__ import annotations

import functools
import importlib
import operator
import os
import struct
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import zstandard

from memora_lite.columns import Ragged
from memora_lite.errors import CodecError
from memora_lite.models import MAX_ARRAY_CAPACITY

# --- backend choice -------------------------------------------------------------------------

_CHOICES = ("cython", "numpy")


def _load_kernels() -> tuple[str, ModuleType]:
    choice = os.environ.get("MEMORA_LITE_BACKEND", "cython").strip().lower() or "cython"
    if choice not in _CHOICES:
        raise ImportError(f"MEMORA_LITE_BACKEND={choice!r} is not one of {', '.join(_CHOICES)}")
    if choice == "numpy":
        return choice, importlib.import_module("memora_lite.codecs.tokens_numpy")
    try:
        return choice, importlib.import_module("memora_lite.codecs._tokens")
    except ImportError as exc:
        raise ImportError(
            "memora_lite's compiled token codec (memora_lite.codecs._tokens) is not built: "
            "run `pip install .` (or `python setup.py build_ext --inplace` in a checkout), "
            "or set MEMORA_LITE_BACKEND=numpy to use the slower pure-numpy codec"
        ) from exc


BACKEND, KERNELS = _load_kernels()

# --- zstd -------------------------------------------------------------------------------------

# No zstd frame expands further: a full 128 KiB block RLE-encodes in 4 bytes.
MAX_ZSTD_RATIO = 32768
# zstd contexts cost ~20 us to make and are not thread-safe: one set per thread, reused.
_zstd_contexts = threading.local()


def zstd_compress(data: Any, level: int) -> bytes:
    """One zstd frame of ``data`` that records its content size (what :func:`zstd_decompress` needs).

    >>> len(zstd_decompress(zstd_compress(bytes(1000), 3), 1000, "example"))
    1000
    """
    compressors = _zstd_contexts.__dict__.setdefault("compressors", {})
    compressor = compressors.get(level)
    if compressor is None:
        compressor = compressors[level] = zstandard.ZstdCompressor(level=level)
    return compressor.compress(data)  # type: ignore[no-any-return]


def worth_compressing(raw_size: int, packed_size: int) -> bool:
    """Whether a zstd frame of ``packed_size`` bytes is worth storing in place of ``raw_size``.

    Only when it saves at least an eighth, leveldb's rule (``table/table_builder.cc``):
    every read of a frame pays zstd's fixed per-frame setup, so a frame that saves a
    few bytes costs more than it is worth.

    >>> worth_compressing(1033, 1010), worth_compressing(5121, 1184)
    (False, True)
    """
    return packed_size <= raw_size - raw_size // 8


def zstd_decompress(frame: Any, expected: int | None, what: str, scratch: bool = False) -> Any:
    """The content of one zstd frame, refusing any size the input cannot honestly hold.

    Parameters
    ----------
    frame : bytes-like
        Exactly one zstd frame, nothing after it.
    expected : int or None
        The content size the caller's own header implies, or None to accept what
        the frame records (still bounded by ``MAX_ZSTD_RATIO``).
    what : str
        Names the thing being decoded in error messages.
    scratch : bool
        Decompress into this thread's scratch buffer and return a memoryview of
        it, valid until the thread's next scratch call: for content read once and
        dropped, which then costs no allocation (and no fresh pages) per call.

    Raises
    ------
    CodecError
        The frame is malformed, lacks its content size, disagrees with
        ``expected`` or claims more than ``MAX_ZSTD_RATIO`` times its own size.

    >>> zstd_decompress(b"not zstd", None, "example")
    Traceback (most recent call last):
    ...
    memora_lite.errors.CodecError: example: zstd frame header is malformed
    """
    try:
        declared = zstandard.frame_content_size(frame)
    except zstandard.ZstdError:
        raise CodecError(f"{what}: zstd frame header is malformed") from None
    if declared < 0:
        raise CodecError(f"{what}: zstd frame does not record its content size")
    if expected is not None and declared != expected:
        raise CodecError(f"{what}: zstd frame holds {declared} bytes where {expected} are expected")
    if declared > MAX_ZSTD_RATIO * len(frame):
        raise CodecError(f"{what}: a {len(frame)}-byte zstd frame cannot hold the {declared} bytes it claims")
    try:
        decompressor = _zstd_contexts.__dict__.get("decompressor")
        if decompressor is None:
            decompressor = _zstd_contexts.decompressor = zstandard.ZstdDecompressor()
        if scratch:
            return _decompress_to_scratch(decompressor, frame, declared, what)
        content = decompressor.decompress(
            frame, max_output_size=declared, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        raise CodecError(f"{what}: zstd frame is corrupt ({exc})") from None
    if len(content) != declared:  # zstandard returns b"" for a 0-byte frame without reading on
        raise CodecError(f"{what}: zstd frame decoded to {len(content)} bytes, not {declared}")
    return content


def _decompress_to_scratch(decompressor: Any, frame: Any, size: int, what: str) -> memoryview:
    buffer = _zstd_contexts.__dict__.get("scratch")
    if buffer is None or len(buffer) < size:
        buffer = _zstd_contexts.scratch = bytearray(max(size, 2 * len(buffer or b"")))
    view = memoryview(buffer)[:size]
    got = 0
    with decompressor.stream_reader(frame) as reader:
        while got < size:
            n = reader.readinto(view[got:])
            if not n:
                break
            got += n
    if got != size:
        raise CodecError(f"{what}: zstd frame decoded to {got} bytes, not {size}")
    return view


# --- tokens1 ----------------------------------------------------------------------------------

# Written to disk, never change: docs/format.md#tokens1.
TOKENS_MAGIC = b"MLTK"
TOKENS_VERSION = 1
FLAG_ZSTD = 0x01
FLAG_KEPT_SHARED = 0x02  # every kept value is the same one, stored once (an attention mask's ones)
_HEADER = struct.Struct("<4sBBBBQQQq")
HEADER_SIZE = _HEADER.size  # 40

_INT64 = np.iinfo(np.int64)

# One message per kernel status code (csrc/mlite_tokens.h); code 0 is success.
STATUS_MESSAGES = {
    1: "a width byte is not 1, 2, 4 or 8",
    2: "body length does not match the row and value counts in the header",
    3: "a row keeps more values than it holds",
    4: "row lengths do not add up to the header's value count",
    5: "kept lengths do not add up to the header's kept count",
    6: "a row's length differs from the requested width",
    7: "the output does not hold the block's value count",
    8: "a stored value does not fit the requested dtype",
}


class TokenHeader(NamedTuple):
    """The counts and widths a tokens1 header records (the C struct ``mlite_tokens_header``)."""

    n_rows: int
    n_kept: int
    n_values: int
    base: int
    w: int
    lw: int
    kept_shared: bool = False

    def body_size(self) -> int:
        """Bytes of the raw body: lengths, kept lengths and runs per row, then kept[]."""
        kept_len = min(self.n_kept, 1) if self.kept_shared else self.n_kept
        return self.n_rows * (2 * self.lw + self.w) + kept_len * self.w  # type: ignore[no-any-return]


def _byte_width(span: int) -> int:
    """Smallest of 1, 2, 4, 8 bytes that holds the unsigned ``span``."""
    return next(w for w in (1, 2, 4, 8) if span < 1 << (8 * w))


def _raise_status(status: int) -> None:
    if status:
        raise CodecError(f"tokens1 block: {STATUS_MESSAGES.get(status, f'kernel status {status}')}")


def usable_cpus() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one).

    >>> usable_cpus() >= 1
    True
    """
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# Threads one narrowing may use: memory bandwidth grows with the cores reading, up to a few.
# The compiled kernel uses no more of them than the column holds ``_tokens.NARROW_PART_BYTES``
# (1 MiB), so a unit test's handful of rows never pays for starting one.
NARROW_THREADS = min(4, usable_cpus())
_NARROW_SOURCES = frozenset(np.dtype(t) for t in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32"))
_NARROW_TARGETS = frozenset(np.dtype(t) for t in ("int8", "int16", "int32", "int64"))


@functools.cache
def _numpy_twin() -> ModuleType:
    return importlib.import_module("memora_lite.codecs.tokens_numpy")


@functools.cache
def int_range(dtype: np.dtype) -> tuple[int, int]:
    """The values ``dtype`` holds, clipped to int64 (every stored value is an int64).

    >>> int_range(np.dtype(np.uint64))
    (0, 9223372036854775807)
    """
    if dtype.kind not in "iu" or not dtype.isnative:
        raise TypeError(f"token values decode to a native-order integer dtype, not {dtype}")
    info = np.iinfo(dtype)
    return int(info.min), min(int(info.max), int(_INT64.max))


class TokenCodec:
    """The tokens1 format over one kernel module (``_tokens`` or ``tokens_numpy``).

    >>> from memora_lite.codecs import tokens_numpy
    >>> codec = TokenCodec(tokens_numpy)
    >>> codec.decode_tokens_lists(codec.encode_token_lists([[3, 1, 1], []]))
    [[3, 1, 1], []]
    """

    def __init__(self, kernels: ModuleType) -> None:
        self.kernels = kernels

    def encode_tokens(self, values: np.ndarray, offsets: np.ndarray, level: int | None = 3) -> bytes:
        """Encode ragged integer rows as one self-describing tokens1 block.

        Parameters
        ----------
        values : numpy.ndarray
            1-D integer array (any int or uint dtype whose values fit int64): the
            rows one after another.
        offsets : numpy.ndarray
            ``n + 1`` integer offsets: row ``i`` is ``values[offsets[i]:offsets[i + 1]]``.
        level : int or None
            zstd level; 3 by default (docs/format.md has the measurements). None
            stores the body uncompressed: cheaper to write, for data read back at
            most once (the write-ahead log).

        Returns
        -------
        bytes
            The block; :func:`decode_tokens` reads it back exactly.

        >>> block = encode_tokens(np.array([7, 7, 0], dtype=np.int16), np.array([0, 3, 3]))
        >>> decode_tokens(block, np.dtype("int16")).to_lists()
        [[7, 7, 0], []]
        """
        values = np.asarray(values)
        if values.ndim != 1 or values.dtype.kind not in "iu":
            raise TypeError(f"token values must be a 1-D integer array, not {values.dtype} {values.shape}")
        offsets = np.asarray(offsets)
        if offsets.ndim != 1 or len(offsets) == 0 or offsets.dtype.kind not in "iu":
            raise ValueError("offsets must be a non-empty 1-D integer array of n + 1 row starts")
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        if offsets[0] != 0 or offsets[-1] != len(values) or np.any(offsets[1:] < offsets[:-1]):
            raise ValueError(
                f"offsets must start at 0, never decrease and end at len(values) = {len(values)}"
            )
        # The kernels read every integer type as it is: no int64 copy of the values.
        return self._encode(np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("=")), offsets, level)

    def narrow_ints(self, values: np.ndarray, dtype: np.dtype,
                    out: np.ndarray | None = None) -> tuple[np.ndarray | None, int, int]:
        """1-D int ``values`` as ``dtype``, with their range, from one read of them: ``(array, lo, hi)``.

        How a numpy column is checked and narrowed on insert (a 4,096 x 384 int64
        column: one pass instead of ``min``, ``max`` and ``astype``). The array is
        None when a value lies outside ``dtype``: choose a type that holds
        ``lo .. hi`` and convert again. ``out``: the array to fill (``len(values)``
        values of ``dtype``, contiguous), else a new one.

        >>> narrow_ints(np.array([3, 200]), np.dtype("int16"))
        (array([  3, 200], dtype=int16), 3, 200)
        >>> narrow_ints(np.array([3, 200]), np.dtype("int8"))
        (None, 3, 200)
        """
        if out is None:
            out = np.empty(len(values), dtype=dtype)
        elif out.shape != (len(values),) or out.dtype != dtype or not out.flags.c_contiguous:
            raise ValueError(f"out must be a contiguous array of {len(values)} {dtype}")
        # The compiled kernel reads native ints up to 32 bits unsigned; wider unsigned or
        # byte-swapped input is rare enough for the twin, which handles any int dtype.
        compiled = values.dtype in _NARROW_SOURCES and dtype in _NARROW_TARGETS
        kernels = self.kernels if compiled else _numpy_twin()
        lo, hi, fits = kernels.narrow(np.ascontiguousarray(values) if compiled else values, out, NARROW_THREADS)
        return (out if fits else None), lo, hi

    def encode_token_lists(self, rows: Sequence[Sequence[int]], level: int | None = 3) -> bytes:
        """Encode rows given as Python lists of ints; the same bytes as :meth:`encode_tokens`.

        Raises
        ------
        TypeError
            An element is not an int (floats are refused, not truncated).
        OverflowError
            An element lies outside int64.

        >>> encode_token_lists([[1, 2], [3]]) == encode_tokens(np.array([1, 2, 3]), np.array([0, 2, 3]))
        True
        """
        try:
            values, offsets = self.kernels.flatten_lists(rows)
        except (TypeError, OverflowError):
            _locate_bad_element(rows)
            raise
        return self._encode(values, offsets, level)

    def _encode(self, values: np.ndarray, offsets: np.ndarray, level: int | None) -> bytes:
        n_rows = len(offsets) - 1
        kept = np.empty(n_rows, dtype=np.int64)
        n_kept, low, high, longest, kept_same = self.kernels.split(values, offsets, kept)
        if high > _INT64.max:
            raise OverflowError(f"token value {high} does not fit int64")
        lw = _byte_width(longest)
        base, w = (low, _byte_width(high - low)) if len(values) else (0, 1)
        header = TokenHeader(n_rows, n_kept, len(values), base, w, lw, kept_same and n_kept > 1)
        body = np.empty(header.body_size(), dtype=np.uint8)
        self.kernels.pack(values, offsets, kept, header, body)
        payload, flags = body.data, FLAG_KEPT_SHARED if header.kept_shared else 0
        if level is not None:
            packed = zstd_compress(body, level)
            if worth_compressing(len(body), len(packed)):
                payload, flags = packed, flags | FLAG_ZSTD
        prefix = _HEADER.pack(TOKENS_MAGIC, TOKENS_VERSION, flags, w, lw, n_rows, n_kept, len(values), base)
        return prefix + payload

    def decode_tokens(self, buf: Any, dtype: np.dtype | type | str) -> Ragged:
        """Decode a tokens1 block into a :class:`Ragged` whose values have ``dtype``.

        Raises
        ------
        CodecError
            The block is malformed or a stored value does not fit ``dtype``.

        >>> block = encode_token_lists([[300, 1], [2]])
        >>> decode_tokens(block, np.dtype("uint16")).values.tolist()
        [300, 1, 2]
        >>> decode_tokens(block, np.dtype("int8"))
        Traceback (most recent call last):
        ...
        memora_lite.errors.CodecError: tokens1 block: a stored value does not fit the requested dtype
        """
        dtype = np.dtype(dtype)
        lo, hi = int_range(dtype)
        header, body = _open(buf)
        # Lengths are checked against the body before n_values decides an allocation.
        _raise_status(self.kernels.check(body, header, -1))
        values = np.empty(header.n_values, dtype=dtype)
        offsets = np.empty(header.n_rows + 1, dtype=np.int64)
        _raise_status(
            self.kernels.unpack(body, header, -1, values.view(np.uint8), dtype.itemsize, lo, hi, offsets)
        )
        return Ragged(values, offsets)

    def decode_tokens_dense(self, buf: Any, out: np.ndarray) -> None:
        """Decode a block whose rows all have ``out.shape[1]`` values straight into ``out``.

        ``out`` is a writable C-contiguous 2-D integer array of shape
        ``(rows, width)``; no other buffer of the values' size is allocated.

        Raises
        ------
        CodecError
            The block is malformed, holds another number of rows, a row of
            another length, or a value that does not fit ``out.dtype``.

        >>> out = np.empty((2, 3), dtype=np.int32)
        >>> decode_tokens_dense(encode_token_lists([[1, 2, 0], [3, 0, 0]]), out)
        >>> out.tolist()
        [[1, 2, 0], [3, 0, 0]]
        """
        if not isinstance(out, np.ndarray) or out.ndim != 2:
            raise TypeError("out must be a 2-D numpy array of shape (rows, width)")
        if not (out.flags.c_contiguous and out.flags.writeable):
            raise ValueError("out must be C-contiguous and writable")
        lo, hi = int_range(out.dtype)
        header, body = _open(buf)
        rows, width = out.shape
        if header.n_rows != rows:
            raise CodecError(f"tokens1 block holds {header.n_rows} rows but out has {rows}")
        flat = out.reshape(-1).view(np.uint8)
        _raise_status(self.kernels.unpack(body, header, width, flat, out.itemsize, lo, hi, None))

    def decode_tokens_lists(self, buf: Any) -> list[list[int]]:
        """Decode a tokens1 block into Python lists of ints.

        >>> decode_tokens_lists(encode_token_lists([[-1, 2**40], [], [0, 0]]))
        [[-1, 1099511627776], [], [0, 0]]
        """
        rows = self.decode_tokens(buf, np.dtype(np.int64))
        return self.kernels.build_lists(rows.values, rows.offsets)

    def open_block(self, buf: Any, scratch: bool = False) -> TokenBlock:
        """Decompress and check a tokens1 block once, for decoding any of its row ranges later.

        >>> block = open_block(encode_token_lists([[4, 0, 0], [5, 6, 0], [7]]))
        >>> block.lists(1, 3), block.ragged(0, 2, np.dtype("int8")).to_lists(), block.row(2)
        ([[5, 6, 0], [7]], [[4, 0, 0], [5, 6, 0]], [7])

        With ``scratch`` the body lives in this thread's scratch buffer (see
        :func:`zstd_decompress`): the block is good until the thread's next scratch call.
        """
        header, body = _open(buf, scratch)
        if header.body_size() != len(body):
            _raise_status(2)  # before n_rows decides an allocation
        starts = np.empty(header.n_rows + 1, dtype=np.int64)
        kept_starts = np.empty(header.n_rows + 1, dtype=np.int64)
        status, uniform = self.kernels.index(body, header, starts, kept_starts)
        _raise_status(status)
        return TokenBlock(self.kernels, header, body, starts, kept_starts, None if uniform < 0 else uniform)


class TokenBlock:
    """An opened tokens1 block: the body decompressed and checked once, plus a row index.

    ``starts`` and ``kept_starts`` (running sums of row lengths and kept lengths) let
    any row range decode on its own, in time proportional to the rows asked. A cache
    of these serves one-row gets and short range reads without decoding whole blocks,
    in about half the memory of decoded values (padding stays implied). Made by
    :meth:`TokenCodec.open_block`.
    """

    __slots__ = ("body", "header", "kept_starts", "kernels", "nbytes", "row", "starts", "uniform")

    def __init__(self, kernels: ModuleType, header: TokenHeader, body: Any, starts: np.ndarray,
                 kept_starts: np.ndarray, uniform: int | None) -> None:
        self.kernels = kernels
        self.header = header
        self.body = body
        self.starts = starts
        self.kept_starts = kept_starts
        self.nbytes = len(body) + starts.nbytes + kept_starts.nbytes
        self.uniform = uniform  # the length every row shares, or None
        # row(i): row i as a list of ints, in one kernel call that converts no buffer (a get's road)
        self.row = kernels.RowDecoder(body, header, starts, kept_starts, _raise_status).row

    def __len__(self) -> int:
        return self.header.n_rows  # type: ignore[no-any-return]

    def width(self, start: int, stop: int) -> int | None:
        """The common length of rows ``start .. stop - 1``, or None if they differ."""
        if stop <= start:
            return 0
        if self.uniform is not None:
            return self.uniform
        first = int(self.starts[start + 1] - self.starts[start])
        if int(self.starts[stop] - self.starts[start]) != first * (stop - start):
            return None
        return first if bool(np.all(np.diff(self.starts[start : stop + 1]) == first)) else None

    def _unpack(self, start: int, stop: int, width: int, out: np.ndarray, offsets: np.ndarray | None) -> None:
        if not 0 <= start <= stop <= self.header.n_rows:
            raise IndexError(f"rows {start}..{stop} of a {self.header.n_rows}-row tokens1 block")
        lo, hi = int_range(out.dtype)
        status = self.kernels.unpack_rows(self.body, self.header, start, stop - start, self.kept_starts.item(start),
                                          width, out.reshape(-1).view(np.uint8), out.itemsize, lo, hi, offsets)
        _raise_status(status)

    def ragged(self, start: int, stop: int, dtype: np.dtype) -> Ragged:
        """Rows ``start .. stop - 1`` as a Ragged whose values have ``dtype``."""
        stop = max(start, stop)
        values = np.empty(int(self.starts[stop] - self.starts[start]), dtype=dtype)
        offsets = np.empty(stop - start + 1, dtype=np.int64)
        self._unpack(start, stop, -1, values, offsets)
        return Ragged(values, offsets)

    def dense_into(self, start: int, stop: int, out: np.ndarray) -> None:
        """Rows ``start .. stop - 1``, each ``out.shape[1]`` values long, straight into the 2-D ``out``.

        ``out``: writable, C-contiguous, an integer dtype, ``stop - start`` rows.
        """
        if out.ndim != 2 or out.shape[0] != stop - start or not (out.flags.c_contiguous and out.flags.writeable):
            raise ValueError(f"out must be a writable C-contiguous ({stop - start}, width) array")
        self._unpack(start, stop, out.shape[1], out, None)

    def lists(self, start: int, stop: int) -> list[list[int]]:
        """Rows ``start .. stop - 1`` as Python lists of ints."""
        if not 0 <= start <= stop <= self.header.n_rows:
            raise IndexError(f"rows {start}..{stop} of a {self.header.n_rows}-row tokens1 block")
        # A one-row get calls this: every step counts, so rows of one width skip the starts lookups.
        n_values = ((stop - start) * self.uniform if self.uniform is not None
                    else self.starts.item(stop) - self.starts.item(start))
        status, rows = self.kernels.unpack_lists(self.body, self.header, start, stop - start,
                                                 self.kept_starts.item(start), n_values)
        if status:
            _raise_status(status)
        return rows  # type: ignore[no-any-return]


def _open(buf: Any, scratch: bool = False) -> tuple[TokenHeader, Any]:
    """Header and raw body of a block; CodecError if the header or the zstd step is wrong."""
    view = memoryview(buf).cast("B")
    if len(view) < HEADER_SIZE:
        raise CodecError(f"tokens1 block is {len(view)} bytes, shorter than its {HEADER_SIZE}-byte header")
    magic, version, flags, w, lw, n_rows, n_kept, n_values, base = _HEADER.unpack_from(view)
    if magic != TOKENS_MAGIC:
        raise CodecError(f"not a tokens1 block: magic is {magic!r}, not {TOKENS_MAGIC!r}")
    if version != TOKENS_VERSION:
        raise CodecError(f"tokens1 block has version {version}; this build reads {TOKENS_VERSION}")
    if flags & ~(FLAG_ZSTD | FLAG_KEPT_SHARED):
        raise CodecError(f"tokens1 block has unknown flags {flags:#04x}")
    if w not in (1, 2, 4, 8) or lw not in (1, 2, 4, 8):
        _raise_status(1)
    if n_values > n_rows * MAX_ARRAY_CAPACITY:
        # A trailing run costs a few bytes whatever its length: bound what it may make us allocate.
        raise CodecError(f"tokens1 block claims {n_values} values in {n_rows} rows; an ARRAY row holds at most "
                         f"{MAX_ARRAY_CAPACITY}")
    header = TokenHeader(n_rows, n_kept, n_values, base, w, lw, bool(flags & FLAG_KEPT_SHARED))
    payload = view[HEADER_SIZE:]
    if flags & FLAG_ZSTD:
        return header, zstd_decompress(payload, header.body_size(), "tokens1 block", scratch)
    return header, payload


def _locate_bad_element(rows: Sequence[Sequence[int]]) -> None:
    """Raise TypeError/OverflowError naming the first element of ``rows`` that is not an int64."""
    for i, row in enumerate(rows):
        for j, item in enumerate(row):
            try:
                value = operator.index(item)
            except TypeError:
                raise TypeError(
                    f"token row {i}, position {j}: {type(item).__name__} {item!r} is not an int"
                ) from None
            if not _INT64.min <= value <= _INT64.max:
                raise OverflowError(f"token row {i}, position {j}: {value} does not fit int64")


_LIVE = TokenCodec(KERNELS)
encode_tokens = _LIVE.encode_tokens
encode_token_lists = _LIVE.encode_token_lists
decode_tokens = _LIVE.decode_tokens
decode_tokens_dense = _LIVE.decode_tokens_dense
decode_tokens_lists = _LIVE.decode_tokens_lists
open_block = _LIVE.open_block
narrow_ints = _LIVE.narrow_ints
flatten_int_lists = KERNELS.flatten_lists  # lists of ints -> (int64 values, offsets), read in C
