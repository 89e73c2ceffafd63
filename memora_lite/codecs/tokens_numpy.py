"""Pure-numpy twin of the compiled token kernels (``_tokens``): the reference they must match.

Each function here has the signature, results and status codes of its namesake
in ``_tokens.pyx`` (which wraps ``csrc/mlite_tokens.c``); the parity tests in
``tests/codecs/test_tokens.py`` hold the two byte for byte. The block layout is
in ``docs/format.md#tokens1``; :mod:`memora_lite.codecs.backend` reads headers,
runs zstd and maps status codes to :class:`~memora_lite.errors.CodecError`.

``header`` arguments are :class:`memora_lite.codecs.backend.TokenHeader`
values: ``n_rows``, ``n_kept``, ``n_values``, ``base``, ``w``, ``lw`` and ``kept_shared``.

>>> values = np.array([7, 8, 0, 0, 5, 5], dtype=np.int64)
>>> offsets = np.array([0, 4, 4, 6], dtype=np.int64)
>>> kept = np.empty(3, dtype=np.int64)
>>> split(values, offsets, kept), kept.tolist()  # (n_kept, min, max, longest row, kept_same), kept per row
((2, 0, 8, 4, False), [2, 0, 0])
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

# Status codes: the enum in csrc/mlite_tokens.h, in the order checks are made.
OK = 0
E_WIDTH = 1
E_BODY = 2
E_KEPT = 3
E_ROWS = 4
E_KEPT_SUM = 5
E_DENSE = 6
E_OUT = 7
E_RANGE = 8

_WIDTHS = (1, 2, 4, 8)
_U64 = 1 << 64


def split(values: np.ndarray, offsets: np.ndarray, kept: np.ndarray) -> tuple[int, int, int, int, bool]:
    """Fill ``kept`` with each row's length less its maximal trailing run.

    ``values`` is any 1-D integer array, ``offsets`` C-contiguous int64 valid for
    it. Returns ``(n_kept, min, max, max_len, kept_same)``: min and max over all
    values (0 when there are none), the longest row's length, and whether every
    kept value is the same (True when none is kept).
    """
    if values.ndim != 1 or values.dtype.kind not in "iu":
        raise TypeError("token values must be a 1-D C-contiguous native-order integer array")
    lengths = np.diff(offsets)
    kept[:] = 0
    rows = np.flatnonzero(lengths)
    if len(rows):
        last = np.zeros(len(lengths), dtype=values.dtype)
        last[rows] = values[offsets[1:][rows] - 1]
        position = np.arange(1, len(values) + 1) - np.repeat(offsets[:-1], lengths)
        # A row keeps everything up to its last value that differs from its final value.
        score = np.where(values != np.repeat(last, lengths), position, 0)
        kept[rows] = np.maximum.reduceat(score, offsets[:-1][rows])
    low, high = (int(values.min()), int(values.max())) if len(values) else (0, 0)
    kept_values = values[_row_positions(offsets, lengths) < np.repeat(kept, lengths)]
    same = not len(kept_values) or bool(np.all(kept_values == kept_values[0]))
    return int(kept.sum()), low, high, int(lengths.max()) if len(lengths) else 0, same


def pack(values: np.ndarray, offsets: np.ndarray, kept: np.ndarray, header: Any, body: np.ndarray) -> None:
    """Write the body of the rows split by :func:`split` into the uint8 array ``body``."""
    n, w, lw = header.n_rows, header.w, header.lw
    lengths = np.diff(offsets)
    stored = values.astype(np.int64).view(np.uint64) - np.uint64(header.base % _U64)
    runs = np.zeros(n, dtype=np.uint64)
    rows = np.flatnonzero(lengths)
    runs[rows] = stored[offsets[1:][rows] - 1]
    keep = _row_positions(offsets, lengths) < np.repeat(kept, lengths)
    lens_at, keeps_at, runs_at = 0, n * lw, 2 * n * lw
    body[lens_at:keeps_at].view(f"<u{lw}")[:] = lengths
    body[keeps_at:runs_at].view(f"<u{lw}")[:] = kept
    body[runs_at : runs_at + n * w].view(f"<u{w}")[:] = runs
    kept_values = stored[keep]
    body[runs_at + n * w :].view(f"<u{w}")[:] = kept_values[:1] if header.kept_shared else kept_values


def check(body: Any, header: Any, width: int) -> int:
    """Validate ``body`` (bytes-like) against ``header``; ``width >= 0`` demands that row length."""
    status, _ = _parse(body, header, width)
    return status


def unpack(
    body: Any,
    header: Any,
    width: int,
    out: np.ndarray,
    elem_size: int,
    lo: int,
    hi: int,
    offsets: np.ndarray | None,
) -> int:
    """Decode ``body`` into ``out``, a uint8 view of ``n_values`` native elements of ``elem_size`` bytes.

    Every value must lie in ``[lo, hi]``; ``offsets`` (int64, ``n_rows + 1``) is
    filled when given.
    """
    if elem_size not in _WIDTHS or len(out) % elem_size:
        raise ValueError(f"out must hold whole elements of 1, 2, 4 or 8 bytes, not {elem_size}")
    # As mlite_tokens_unpack: check the whole body, then decode every row as unpack_rows does.
    status = check(body, header, width)
    if status != OK:
        return status
    if len(out) // elem_size != header.n_values:
        return E_OUT
    return unpack_rows(body, header, 0, header.n_rows, 0, width, out, elem_size, lo, hi, offsets)


def unpack_rows(
    body: Any,
    header: Any,
    first: int,
    count: int,
    kept_before: int,
    width: int,
    out: np.ndarray,
    elem_size: int,
    lo: int,
    hi: int,
    offsets: np.ndarray | None,
) -> int:
    """Decode rows ``first .. first + count - 1`` into ``out`` (their values exactly), as :func:`unpack`.

    ``kept_before`` is the block's kept count before row ``first`` (from :func:`index`);
    ``offsets`` (int64, ``count + 1``) is filled when given. Rows are judged in order,
    each by its kept count, its width, the room left in ``out``, then its values; the
    first failing row gives the status (``out`` is then unspecified).
    """
    if elem_size not in _WIDTHS or len(out) % elem_size:
        raise ValueError(f"out must hold whole elements of 1, 2, 4 or 8 bytes, not {elem_size}")
    if offsets is not None and len(offsets) != count + 1:
        raise ValueError(f"offsets must hold {count + 1} entries")
    n, w, lw = header.n_rows, header.w, header.lw
    if w not in _WIDTHS or lw not in _WIDTHS:
        return E_WIDTH
    if header.body_size() != len(body) or first > n or count > n - first:
        return E_BODY
    if kept_before > header.n_kept:
        return E_BODY
    lengths = np.frombuffer(body, dtype=f"<u{lw}", count=count, offset=first * lw).astype(np.int64)
    kept = np.frombuffer(body, dtype=f"<u{lw}", count=count, offset=(n + first) * lw).astype(np.int64)
    runs = np.frombuffer(body, dtype=f"<u{w}", count=count, offset=2 * n * lw + first * w).astype(np.uint64)
    ends = np.cumsum(lengths)
    room = len(out) // elem_size
    faults = np.stack([
        (kept > lengths) | (kept_before + np.cumsum(kept) > header.n_kept),
        (lengths != width) if width >= 0 else np.zeros(count, dtype=bool),
        ends > room,
    ])
    bad_rows = np.flatnonzero(faults.any(axis=0))
    good = int(bad_rows[0]) if len(bad_rows) else count
    stored = _kept_values(body, header, kept_before, int(kept[:good].sum()))
    decoded = _expand(lengths[:good], kept[:good], runs[:good], stored)
    starts = np.zeros(good + 1, dtype=np.int64)
    np.cumsum(lengths[:good], out=starts[1:])
    out_of_range = _rows_out_of_range(decoded, starts, header.base, lo, hi)
    if len(out_of_range):
        return E_RANGE
    if good < count:
        return (E_BODY, E_DENSE, E_OUT)[int(np.flatnonzero(faults[:, good])[0])]
    if int(starts[-1]) != room:
        return E_OUT
    out.view(f"=u{elem_size}")[:] = decoded + np.uint64(header.base % _U64)
    if offsets is not None:
        offsets[:] = starts
    return OK


def _expand(lengths: np.ndarray, kept: np.ndarray, runs: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """Stored (pre-base) values of whole rows: each row's kept values, then its run repeated."""
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    decoded = np.repeat(runs, lengths)
    decoded[_row_positions(starts, lengths) < np.repeat(kept, lengths)] = stored
    return decoded


def _rows_out_of_range(decoded: np.ndarray, starts: np.ndarray, base: int, lo: int, hi: int) -> np.ndarray:
    """Rows (by number) holding a stored value ``s`` whose ``base + s`` lies outside ``[lo, hi]``."""
    rows = np.flatnonzero(np.diff(starts))
    if hi < base or lo > hi:
        return rows
    low, high = max(lo - base, 0), hi - base
    bad = (decoded < np.uint64(low)) | (decoded > np.uint64(high))
    return rows[np.logical_or.reduceat(bad, starts[:-1][rows])] if len(rows) else rows


def unpack_lists(body: Any, header: Any, first: int, count: int, kept_before: int,
                 n_values: int) -> tuple[int, list[list[int]] | None]:
    """Rows ``first .. first + count - 1`` as Python lists of ints: ``(status, rows)``.

    ``n_values`` is their total length (from :func:`index`); ``rows`` is None unless
    ``status`` is 0.
    """
    if count > header.n_rows or n_values > header.n_values:
        return E_BODY, None
    values = np.empty(n_values, dtype=np.int64)
    offsets = np.empty(count + 1, dtype=np.int64)
    info = np.iinfo(np.int64)
    status = unpack_rows(body, header, first, count, kept_before, -1, values.view(np.uint8), 8, int(info.min),
                         int(info.max), offsets)
    return (status, None) if status else (OK, build_lists(values, offsets))


class RowDecoder:
    """One opened tokens1 block's rows as Python lists, one call per row (the compiled
    ``RowDecoder``'s twin). ``on_error(status)`` raises for a kernel status (should it
    return, ValueError is raised instead).

    >>> from memora_lite.codecs.backend import TokenCodec, _raise_status
    >>> import memora_lite.codecs.tokens_numpy as kernels
    >>> block = TokenCodec(kernels).open_block(TokenCodec(kernels).encode_token_lists([[7, 0], [8, 9, 0]]))
    >>> RowDecoder(block.body, block.header, block.starts, block.kept_starts, _raise_status).row(1)
    [8, 9, 0]
    """

    def __init__(self, body: Any, header: Any, starts: np.ndarray, kept_starts: np.ndarray,
                 on_error: Callable[[int], Any]) -> None:
        if len(starts) != header.n_rows + 1 or len(kept_starts) != header.n_rows + 1:
            raise ValueError("starts and kept_starts must hold n_rows + 1 entries")
        self.body, self.header, self.on_error = body, header, on_error
        self.starts, self.kept_starts = starts, kept_starts

    def row(self, i: int) -> list[int]:
        """Row ``i`` as a list of ints (IndexError outside the block)."""
        if not 0 <= i < self.header.n_rows:
            raise IndexError(f"row {i} of a {self.header.n_rows}-row tokens1 block")
        length = int(self.starts[i + 1] - self.starts[i])
        if not 0 <= length <= self.header.n_values:
            self._fail(E_BODY)
        values = np.empty(length, dtype=np.int64)
        info = np.iinfo(np.int64)
        status = unpack_rows(self.body, self.header, i, 1, int(self.kept_starts[i]), -1, values.view(np.uint8), 8,
                             int(info.min), int(info.max), None)
        if status:  # the kernel also refuses a row whose length is no longer ``length``
            self._fail(status)
        return values.tolist()  # type: ignore[no-any-return]

    def _fail(self, status: int) -> None:
        self.on_error(status)
        raise ValueError(f"tokens1 kernel status {status}")


def index(body: Any, header: Any, starts: np.ndarray, kept_starts: np.ndarray) -> tuple[int, int]:
    """Validate ``body`` and fill ``starts`` / ``kept_starts`` (``n_rows + 1`` each) with the
    running sums of row lengths and kept lengths.

    Returns ``(status, uniform)``: ``uniform`` is the length every row shares, or -1.
    """
    if len(starts) != header.n_rows + 1 or len(kept_starts) != header.n_rows + 1:
        raise ValueError("starts and kept_starts must hold n_rows + 1 entries")
    status, arrays = _parse(body, header, -1)
    if status != OK:
        return status, -1
    lengths, kept = arrays
    starts[0] = kept_starts[0] = 0
    np.cumsum(lengths.astype(np.int64), out=starts[1:])
    np.cumsum(kept.astype(np.int64), out=kept_starts[1:])
    uniform = int(lengths[0]) if len(lengths) and bool(np.all(lengths == lengths[0])) else (-1 if len(lengths) else 0)
    return OK, uniform


def flatten_lists(rows: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows of Python ints as flat int64 values and offsets; TypeError/OverflowError on a bad element."""
    lists = [row if type(row) is list else list(row) for row in rows]
    offsets = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, lists), dtype=np.int64, count=len(lists)), out=offsets[1:])
    items = map(operator.index, itertools.chain.from_iterable(lists))
    return np.fromiter(items, dtype=np.int64, count=int(offsets[-1])), offsets


def build_lists(values: np.ndarray, offsets: np.ndarray) -> list[list[int]]:
    """Rows of a flat int64 array as Python lists of ints."""
    if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(values):
        raise ValueError("offsets must start at 0 and end at len(values)")
    if np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must not decrease")
    flat = values.tolist()
    bounds = offsets.tolist()
    return [flat[a:b] for a, b in itertools.pairwise(bounds)]


def _row_positions(offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Index of each element within its row."""
    return np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], lengths)


def _parse(body: Any, header: Any, width: int) -> tuple[int, tuple[np.ndarray, ...]]:
    """Status of ``body`` and, when OK, its row lengths and kept lengths as uint64."""
    n, w, lw = header.n_rows, header.w, header.lw
    if w not in _WIDTHS or lw not in _WIDTHS:
        return E_WIDTH, ()
    if header.body_size() != len(body):
        return E_BODY, ()
    lengths = np.frombuffer(body, dtype=f"<u{lw}", count=n).astype(np.uint64)
    kept = np.frombuffer(body, dtype=f"<u{lw}", count=n, offset=n * lw).astype(np.uint64)
    if np.any(kept > lengths):
        return E_KEPT, ()
    if sum(lengths.tolist()) != header.n_values:
        return E_ROWS, ()
    if sum(kept.tolist()) != header.n_kept:
        return E_KEPT_SUM, ()
    if width >= 0 and np.any(lengths != width):
        return E_DENSE, ()
    return OK, (lengths, kept)


def _kept_values(body: Any, header: Any, first: int, count: int) -> np.ndarray:
    """Kept values ``first .. first + count - 1`` (pre-base, uint64); a shared one is repeated."""
    n, w, lw = header.n_rows, header.w, header.lw
    stored = np.frombuffer(body, dtype=f"<u{w}", offset=n * (2 * lw + w)).astype(np.uint64)
    if header.kept_shared:
        return np.repeat(stored[:1], count if len(stored) else 0)
    return stored[first : first + count]


def narrow(values: np.ndarray, out: np.ndarray, threads: int = 1) -> tuple[int, int, bool]:
    """Copy ``values`` into ``out`` as ``out``'s type and return ``(lo, hi, fits)``: their range, and
    whether every value fits ``out``'s type (else ``out`` holds them truncated, as C casts do).
    ``threads`` is the compiled kernel's; numpy runs on one.

    >>> out = np.empty(3, dtype=np.int8)
    >>> narrow(np.array([5, -3, 300]), out), out.tolist()
    ((-3, 300, False), [5, -3, 44])
    """
    if len(out) != len(values):
        raise ValueError(f"out holds {len(out)} values, not {len(values)}")
    if not len(values):
        return 0, 0, True
    lo, hi = int(values.min()), int(values.max())
    out[:] = values.astype(out.dtype, casting="unsafe")
    info = np.iinfo(out.dtype)
    return lo, hi, bool(info.min <= lo and hi <= info.max)
