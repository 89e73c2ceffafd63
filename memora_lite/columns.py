"""In-memory column batches: the one shape rows take between the API, the filter and the disk.

A :class:`Batch` holds ``n`` rows as one array per field:

* scalar numbers and bools: a 1-D numpy array of the field's dtype;
* ``VARCHAR`` and ``JSON``: a 1-D numpy ``object`` array of Python values;
* ``FLOAT_VECTOR``: a 2-D ``float32`` array of shape ``(n, dim)``;
* ``ARRAY``: a :class:`Ragged` (flat values plus ``n + 1`` offsets).

Null values sit in ``Batch.nulls[name]`` (``True`` = null); the slot in the
column then holds a placeholder (0 or ``None``).

>>> r = Ragged.from_lists([[1, 2, 3], [], [4]], np.dtype("int16"))
>>> r.offsets.tolist(), r.values.dtype.name
([0, 3, 3, 4], 'int16')
>>> r.take(np.array([2, 0])).to_lists()
[[4], [1, 2, 3]]
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Ragged:
    """Variable-length rows stored as one flat ``values`` array and ``offsets``.

    Row ``i`` is ``values[offsets[i]:offsets[i + 1]]``; ``offsets`` is int64,
    starts at 0, never decreases and ends at ``len(values)``.
    """

    values: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    def lengths(self) -> np.ndarray:
        """Number of elements in each row."""
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def take(self, indices: np.ndarray | slice) -> Ragged:
        """Rows at ``indices`` (any order, repeats allowed) or in a step-1 slice, as a new Ragged."""
        if isinstance(indices, slice):
            start, stop, _ = indices.indices(len(self))
            stop = max(start, stop)
            base = self.offsets[start]
            return Ragged(self.values[base : self.offsets[stop]], self.offsets[start : stop + 1] - base)
        indices = np.asarray(indices, dtype=np.int64)
        width = self.uniform_width()
        if width is not None:  # fixed-length rows (token arrays): gather whole rows of a 2-D view
            values = self.values.reshape(len(self), width)[indices].reshape(-1)
            return Ragged(values, np.arange(len(indices) + 1, dtype=np.int64) * width)
        starts = self.offsets[indices]
        lengths = self.offsets[indices + 1] - starts
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if len(indices) and np.all(lengths == lengths[0]):
            gather = (starts[:, None] + np.arange(lengths[0])).ravel()
        else:
            gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return Ragged(self.values[gather], offsets)

    def uniform_width(self) -> int | None:
        """The common row length if every row has the same length, else None."""
        n = len(self)
        if n == 0:
            return 0
        first = int(self.offsets[1] - self.offsets[0])
        if int(self.offsets[-1] - self.offsets[0]) != first * n:
            return None  # cheap rejection; the full check below only runs when totals agree
        return first if n == 1 or bool(np.all(np.diff(self.offsets) == first)) else None

    def to_lists(self) -> list[list[Any]]:
        """Plain Python lists, one per row."""
        width = self.uniform_width()
        if width is not None and self.values.dtype != object:
            return self.values.reshape(len(self), width).tolist()
        flat = self.values.tolist()
        bounds = self.offsets.tolist()
        return [flat[a:b] for a, b in itertools.pairwise(bounds)]

    def to_numpy(self) -> np.ndarray:
        """A 2-D array when rows share one length, else a 1-D object array of 1-D arrays."""
        width = self.uniform_width()
        if width is not None:
            return self.values.reshape(len(self), width)
        out = np.empty(len(self), dtype=object)
        for i in range(len(self)):
            out[i] = self.row(i)
        return out

    @staticmethod
    def from_lists(rows: Sequence[Sequence[Any]], dtype: np.dtype) -> Ragged:
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if dtype == object:
            values = np.empty(int(offsets[-1]), dtype=object)
            values[:] = [v for r in rows for v in r]
        elif len(rows) and np.all(lengths == lengths[0]) and lengths[0] > 0:
            values = np.asarray(rows, dtype=dtype).ravel()
        else:
            values = np.fromiter((v for r in rows for v in r), dtype=dtype, count=int(offsets[-1]))
        return Ragged(values, offsets)

    @staticmethod
    def from_matrix(matrix: np.ndarray) -> Ragged:
        """Rows of a 2-D array, without copying the values."""
        n, width = matrix.shape
        return Ragged(np.ascontiguousarray(matrix).reshape(-1), np.arange(n + 1, dtype=np.int64) * width)

    @staticmethod
    def concat(parts: Sequence[Ragged]) -> Ragged:
        if len(parts) == 1:
            return parts[0]
        values = np.concatenate([p.values for p in parts])
        shifts = np.cumsum([0] + [int(p.offsets[-1]) for p in parts[:-1]])
        offsets = np.concatenate([[0]] + [p.offsets[1:] + s for p, s in zip(parts, shifts)])
        return Ragged(values, offsets.astype(np.int64))


Column = np.ndarray | Ragged


def take(column: Column, indices: np.ndarray | slice) -> Column:
    """Rows of ``column`` at ``indices`` (positions, or a step-1 slice: a view, not a copy)."""
    return column.take(indices) if isinstance(column, Ragged) else column[indices]


def concat(parts: Sequence[Column]) -> Column:
    """Rows of each part, one after another."""
    if isinstance(parts[0], Ragged):
        return Ragged.concat(parts)  # type: ignore[arg-type]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)  # type: ignore[arg-type]


def object_array(values: Iterable[Any], n: int) -> np.ndarray:
    """A 1-D object array holding ``values`` as they are (lists stay lists)."""
    out = np.empty(n, dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


@dataclass
class Batch:
    """``n`` rows as one column per field plus null masks; see the module docstring."""

    columns: dict[str, Column]
    size: int
    nulls: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.size

    def null_mask(self, name: str) -> np.ndarray | None:
        """Boolean mask of null rows for ``name``, or None when no row is null."""
        return self.nulls.get(name)

    def take(self, indices: np.ndarray) -> Batch:
        """Rows at ``indices``; a run of consecutive positions is sliced (views, no copies)."""
        indices = np.asarray(indices, dtype=np.int64)
        selector: np.ndarray | slice = indices
        consecutive_span = len(indices) > 1 and int(indices[-1]) - int(indices[0]) == len(indices) - 1
        if consecutive_span and bool(np.all(np.diff(indices) == 1)):  # the span test is cheap; the scan is not
            selector = slice(int(indices[0]), int(indices[-1]) + 1)
        return Batch(
            {name: take(col, selector) for name, col in self.columns.items()},
            len(indices),
            {name: mask[selector] for name, mask in self.nulls.items()},
        )

    def select(self, names: Iterable[str]) -> Batch:
        names = list(names)
        return Batch(
            {n: self.columns[n] for n in names},
            self.size,
            {n: m for n, m in self.nulls.items() if n in names},
        )

    @staticmethod
    def concat(parts: Sequence[Batch]) -> Batch:
        """Rows of each part in order; every part must hold the same columns."""
        parts = [p for p in parts if p.size] or list(parts[:1])
        if len(parts) == 1:
            return parts[0]
        names = list(parts[0].columns)
        nulls: dict[str, np.ndarray] = {}
        for name in {n for p in parts for n in p.nulls}:
            nulls[name] = np.concatenate(
                [p.nulls.get(name, np.zeros(p.size, dtype=bool)) for p in parts]
            )
        return Batch(
            {n: concat([p.columns[n] for p in parts]) for n in names},
            sum(p.size for p in parts),
            nulls,
        )
