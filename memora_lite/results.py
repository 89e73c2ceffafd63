"""Turning column batches into what ``query`` and ``get`` return: rows, or numpy columns.

A :class:`Row` is a plain ``dict`` of Python values that also indexes by position
in ``output_fields`` order, so code written as ``item[0]`` (the guide's
``TokenizedDataset``) and code written as ``item["input_ids"]`` both work.

>>> row = Row({"id": 7, "text": "hi"}, ("text", "id"))
>>> row[0], row["id"], dict(row)
('hi', 7, {'id': 7, 'text': 'hi'})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memora_lite._rows import build_rows
from memora_lite.columns import Batch, Column, Ragged


class Row(dict):  # type: ignore[type-arg]
    """A result row: a dict that also answers ``row[i]`` with the i-th output field."""

    __slots__ = ("_order",)

    def __init__(self, values: Any, order: Sequence[str]) -> None:
        super().__init__(values)
        self._order = order

    def __getitem__(self, key: Any) -> Any:
        if type(key) is int:
            try:
                key = self._order[key]
            except IndexError:
                raise IndexError(f"row has {len(self._order)} output fields; index {key} is out of range") from None
        return dict.__getitem__(self, key)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Row, (dict(self), tuple(self._order)))


def column_to_list(column: Column, nulls: np.ndarray | None) -> list[Any]:
    """Plain Python values of one column; nulls become None."""
    values = column.to_lists() if isinstance(column, Ragged) else column.tolist()
    if nulls is not None:
        for i in np.flatnonzero(nulls).tolist():
            values[i] = None
    return values


def to_lists(batch: Batch, order: Sequence[str]) -> dict[str, list[Any]]:
    """Each column of ``batch`` named in ``order`` as a list of Python values."""
    return {n: column_to_list(batch.columns[n], batch.null_mask(n)) for n in order}


def rows_from_columns(columns: dict[str, list[Any]], order: Sequence[str]) -> list[Row]:
    """Rows from equal-length lists of values; dict keys in ``order`` (which names every list).

    >>> rows_from_columns({"id": [1, 2], "x": ["a", "b"]}, ["x", "id"])[1][0]
    'b'
    """
    names = tuple(order)
    return build_rows(Row, names, [columns[n] for n in names])  # type: ignore[no-any-return]


def to_numpy(batch: Batch, order: Sequence[str]) -> dict[str, np.ndarray]:
    """One array per field: fixed-length int arrays as 2-D arrays in the stored dtype.

    Nullable scalar columns with nulls come back as ``numpy.ma.MaskedArray``.
    """
    out: dict[str, np.ndarray] = {}
    for name in order:
        column = batch.columns[name]
        array = column.to_numpy() if isinstance(column, Ragged) else column
        if array.base is not None or not array.flags.writeable:
            array = array.copy()  # a view of a cached block or the memtable: the caller gets its own array
        nulls = batch.null_mask(name)
        if nulls is not None and nulls.any():
            if array.dtype == object:
                array = array.copy()
                array[nulls] = None
            else:
                mask = nulls if array.ndim == 1 else np.broadcast_to(nulls[:, None], array.shape)
                array = np.ma.MaskedArray(array, mask=mask)
        out[name] = array
    return out
