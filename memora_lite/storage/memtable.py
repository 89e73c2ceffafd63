"""The memtable: rows logged but not yet flushed to a segment, held as column batches.

Batches are kept as they arrive and concatenated once, when a read or a flush first
needs them in key order, so a row is copied once on its way to a segment. One-row
inserts gather column by column (no Python object per row) and become a batch 4,096 at a time.

>>> import numpy as np
>>> from memora_lite.columns import Batch
>>> table = MemTable("id")
>>> for k in (3, 1, 2):
...     table.append(Batch({"id": np.array([k]), "x": np.array([k * 10])}, 1))
>>> table.discard([2])
1
>>> view = table.sorted_view()
>>> view.keys.tolist(), view.batch.take(view.rows).columns["x"].tolist()
([1, 3], [10, 30])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from memora_lite._rows import PendingRows
from memora_lite.columns import Batch, Ragged, concat
from memora_lite.storage.arena import Arena


@dataclass
class SortedView:
    """Live memtable rows in primary-key order: ``batch.take(rows)``; ``keys`` are their keys."""

    batch: Batch
    rows: np.ndarray
    keys: np.ndarray


PENDING_ROWS = 4096  # one-row inserts gather until this many, then become one batch


class MemTable:
    """Live unflushed rows: column batches, plus one-row inserts gathered column by column.

    ``pending`` (a :class:`~memora_lite._rows.PendingRows`, or None when the schema
    takes no one-row inserts) holds those rows; ``pending_batch`` turns what it holds
    into a Batch. The engine sets both, and replaces them when the schema grows.
    """

    def __init__(self, primary_key: str, pending: PendingRows | None = None,
                 pending_batch: Callable[[PendingRows, Arena], Batch] | None = None) -> None:
        self.primary_key = primary_key
        self.pending = pending
        self.pending_batch = pending_batch
        self.arena = Arena()  # where this memtable's batches narrow their int lists (see storage/arena.py)
        self.batches: list[Batch] = []
        self.positions: dict[Any, int] = {}  # live key -> row number across batches
        self.size = 0  # rows appended, dead ones included
        self.nbytes = 0
        self._view: SortedView | None = None

    def __len__(self) -> int:
        return len(self.positions)

    def __contains__(self, key: Any) -> bool:
        return key in self.positions

    def append(self, batch: Batch) -> None:
        """Add rows whose keys are not live here (the engine checked)."""
        self._materialize()
        keys = batch.columns[self.primary_key].tolist()
        self.positions.update(zip(keys, range(self.size, self.size + len(keys))))
        self.size += len(keys)
        self.nbytes += _batch_bytes(batch)
        self._push(batch)

    def keep_row(self, key: Any, nbytes: int) -> None:
        """Add the row the one-row insert path staged in :attr:`pending` (its log record is
        written); ``nbytes`` is its size with int lists packed."""
        self.pending.keep()  # type: ignore[union-attr]
        self._counted(key, nbytes)

    def append_row(self, key: Any, values: Sequence[Any], nbytes: int) -> None:
        """Add one row given as its values in schema field order, as recovery reads them back
        (int lists as packed bytes); ``nbytes`` as for :meth:`keep_row`."""
        self.pending.add(values)  # type: ignore[union-attr]
        self._counted(key, nbytes)

    def _counted(self, key: Any, nbytes: int) -> None:
        self.positions[key] = self.size
        self.size += 1
        self.nbytes += nbytes
        self._view = None
        if len(self.pending) >= PENDING_ROWS:  # type: ignore[arg-type]
            self._materialize()

    def _materialize(self) -> None:
        if self.pending is not None and len(self.pending):
            self._push(self.pending_batch(self.pending, self.arena))  # type: ignore[misc]

    def _push(self, batch: Batch) -> None:
        self.batches.append(batch)
        self._view = None

    def discard(self, keys: Iterable[Any]) -> int:
        """Forget the live rows with these keys; returns how many there were."""
        count = 0
        for key in keys:
            if self.positions.pop(key, None) is not None:
                count += 1
        if count:
            self._view = None
        return count

    def sorted_view(self) -> SortedView:
        """Live rows in key order (computed once per change, then reused by reads)."""
        if self._view is None:
            self._materialize()
            batch = Batch.concat(self.batches) if self.batches else Batch({}, 0)
            if len(self.batches) > 1:
                self.batches = [batch]
            if self.positions:
                keys = np.array(list(self.positions))
                rows = np.fromiter(self.positions.values(), dtype=np.int64, count=len(self.positions))
                order = np.argsort(keys, kind="stable")
                self._view = SortedView(batch, rows[order], keys[order])
            else:
                self._view = SortedView(batch, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        return self._view

    def batches_in_key_order(self) -> list[Batch] | None:
        """The held batches, when one after another they are exactly the live rows in key order
        (keys arrived ascending; none deleted or replaced), else None. A flush writes them as
        they are, without first joining them into one batch (:func:`~memora_lite.storage.segment.write_segment`).
        """
        self._materialize()
        if not self.batches or len(self.positions) != self.size:
            return None
        keys = concat([b.columns[self.primary_key] for b in self.batches])
        return list(self.batches) if bool(np.all(keys[1:] > keys[:-1])) else None

    def segment_batches(self) -> list[Batch]:
        """The live rows in key order, as the batches a flush writes as one segment (none when
        no row is live): the held batches themselves when ids arrived in order, else one sorted copy."""
        in_order = self.batches_in_key_order()
        if in_order is not None:
            return in_order
        if not self.positions:
            return []
        view = self.sorted_view()
        return [view.batch.take(view.rows)]

    def rows_after(self, rows: int, nbytes: int) -> MemTable:
        """A memtable of the rows appended after the first ``rows`` (which held ``nbytes``),
        once a background flush has written those to a segment. Batches are shared, not copied.

        Every later row is live and its key entered :attr:`positions` after the first
        ``rows`` did: while a flush runs, nothing deletes or replaces a row, and a key
        already present is refused. So the last ``size - rows`` keys are the later rows', in order.

        >>> import numpy as np
        >>> from memora_lite.columns import Batch
        >>> table = MemTable("id")
        >>> for lo in (0, 3):
        ...     table.append(Batch({"id": np.arange(lo, lo + 3)}, 3))
        >>> tail = table.rows_after(4, 0)
        >>> tail.positions, tail.sorted_view().batch.columns["id"].tolist()
        ({4: 0, 5: 1}, [4, 5])
        """
        tail = MemTable(self.primary_key, self.pending, self.pending_batch)
        start = 0
        for batch in self.batches:
            end = start + len(batch)
            if end > rows:
                tail.batches.append(batch if start >= rows else batch.take(np.arange(rows - start, len(batch))))
            start = end
        later = self.size - rows
        keys = list(islice(reversed(self.positions), later))
        keys.reverse()
        tail.positions = dict(zip(keys, range(later)))
        tail.size = later
        tail.nbytes = self.nbytes - nbytes
        return tail

    def conform(self, convert: Any, pending: PendingRows | None,
                pending_batch: Callable[[PendingRows, Arena], Batch] | None) -> None:
        """After the schema grew: apply ``convert`` (Batch -> Batch) to every held batch.

        Pending rows become a batch of the old schema first; ``pending`` and
        ``pending_batch`` are the new schema's.
        """
        self._materialize()
        self.batches = [convert(b) for b in self.batches]
        self.pending, self.pending_batch = pending, pending_batch
        self._view = None


def _batch_bytes(batch: Batch) -> int:
    total = 0
    for column in batch.columns.values():
        if isinstance(column, Ragged):
            total += column.values.nbytes + column.offsets.nbytes
        else:
            total += column.nbytes if column.dtype != object else 64 * len(column)
    return total
