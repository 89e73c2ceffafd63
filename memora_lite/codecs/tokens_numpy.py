"""Pure-numpy twin of the compiled token kernels (``_tokens``): the reference they must match.

Each function here has the signature, results and status codes of its namesake
in ``_tokens.pyx`` (which wraps ``csrc/mlite_tokens.c``); the parity tests in
``tests/codecs/test_tokens.py`` hold the two byte for byte. The block layout is
in ``docs/format.md#tokens1``; :mod:`memora_lite.codecs.backend` reads headers,
runs zstd and maps status codes to :class:`~memora_lite.errors.CodecError`.

``header`` arguments are :class:`memora_lite.codecs.backend.TokenHeader`
values: ``n_rows``, ``n_kept``, ``n_values``, ``base``, ``w`` and ``lw``.

>>> values = np.array([7, 8, 0, 0, 5, 5], dtype=np.int64)
>>> offsets = np.array([0, 4, 4, 6], dtype=np.int64)
>>> kept = np.empty(3, dtype=np.int64)
>>> split(values, offsets, kept), kept.tolist()
(2, [2, 0, 0])
"""

from __future__ import annotations

import itertools
import operator
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


def split(values: np.ndarray, offsets: np.ndarray, kept: np.ndarray) -> int:
    """Fill ``kept`` with each row's length less its maximal trailing run; return the total.

    ``values`` and ``offsets`` are C-contiguous int64, ``offsets`` valid for ``values``.
    """
    lengths = np.diff(offsets)
    kept[:] = 0
    rows = np.flatnonzero(lengths)
    if len(rows):
        last = np.zeros(len(lengths), dtype=np.int64)
        last[rows] = values[offsets[1:][rows] - 1]
        position = np.arange(1, len(values) + 1) - np.repeat(offsets[:-1], lengths)
        # A row keeps everything up to its last value that differs from its final value.
        score = np.where(values != np.repeat(last, lengths), position, 0)
        kept[rows] = np.maximum.reduceat(score, offsets[:-1][rows])
    return int(kept.sum())


def pack(values: np.ndarray, offsets: np.ndarray, kept: np.ndarray, header: Any, body: np.ndarray) -> None:
    """Write the body of the rows split by :func:`split` into the uint8 array ``body``."""
    n, w, lw = header.n_rows, header.w, header.lw
    lengths = np.diff(offsets)
    stored = values.view(np.uint64) - np.uint64(header.base % _U64)
    runs = np.zeros(n, dtype=np.uint64)
    rows = np.flatnonzero(lengths)
    runs[rows] = stored[offsets[1:][rows] - 1]
    keep = _row_positions(offsets, lengths) < np.repeat(kept, lengths)
    lens_at, keeps_at, runs_at = 0, n * lw, 2 * n * lw
    body[lens_at:keeps_at].view(f"<u{lw}")[:] = lengths
    body[keeps_at:runs_at].view(f"<u{lw}")[:] = kept
    body[runs_at : runs_at + n * w].view(f"<u{w}")[:] = runs
    body[runs_at + n * w :].view(f"<u{w}")[:] = stored[keep]


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
    status, arrays = _parse(body, header, width)
    if status != OK:
        return status
    lengths, kept, runs, stored = arrays
    if len(out) // elem_size != header.n_values:
        return E_OUT
    base = header.base
    if hi < base or lo > hi:
        if header.n_values:
            return E_RANGE
    else:
        low, high = max(lo - base, 0), hi - base
        for used in (stored, runs[lengths > kept]):
            if used.size and (int(used.min()) < low or int(used.max()) > high):
                return E_RANGE
    counts = lengths.astype(np.int64)
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    decoded = np.repeat(runs, counts)
    decoded[_row_positions(starts, counts) < np.repeat(kept.astype(np.int64), counts)] = stored
    out.view(f"=u{elem_size}")[:] = decoded + np.uint64(base % _U64)
    if offsets is not None:
        offsets[:] = starts
    return OK


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
    """Status of ``body`` and, when OK, its arrays as uint64: lengths, kept, runs, kept values."""
    n, w, lw = header.n_rows, header.w, header.lw
    if w not in _WIDTHS or lw not in _WIDTHS:
        return E_WIDTH, ()
    size = n * (2 * lw + w) + header.n_kept * w
    if size != len(body):
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
    runs = np.frombuffer(body, dtype=f"<u{w}", count=n, offset=2 * n * lw).astype(np.uint64)
    stored = np.frombuffer(body, dtype=f"<u{w}", offset=n * (2 * lw + w)).astype(np.uint64)
    return OK, (lengths, kept, runs, stored)
