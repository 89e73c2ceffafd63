"""PyTorch side of ``memora_lite.training``: tensors, the iterable dataset, and a loader that can resume.

This module needs torch (``pip install "memora_lite[torch]"``); it imports without it so
the rest of the package, and its doctests, run on numpy alone.

* :func:`collate` turns what the datasets return into tensors with ``torch.from_numpy``:
  no copy, the batch was gathered into fresh arrays already. ``trim="attention_mask"``
  cuts the padding columns no row of the batch uses (rows stored padded to 384 tokens
  train on the batch's longest row).
* :class:`MemoraIterableDataset` is :class:`~memora_lite.training.stream.BatchStream` as
  a ``torch.utils.data.IterableDataset``: it finds its DataLoader worker and its DDP rank
  itself.
* :class:`MemoraLoader` is a DataLoader over it that counts the batches the training loop
  received, so ``state_dict()`` is exact with ``num_workers > 0`` too.

>>> import pytest; torch = pytest.importorskip("torch")
>>> from memora_lite import Memora
>>> from memora_lite.testing.squad import squad_columns
>>> from memora_lite.training import MemoraDataset
>>> client = Memora(path=":memory:")
>>> _ = client.nosql.insert(collection_name="t", data=squad_columns(100, seq_len=16))
>>> ds = MemoraDataset(client, "t", fields=["input_ids", "attention_mask"])
>>> batch = collate(ds.__getitems__([0, 1, 2]), trim="attention_mask")
>>> batch["input_ids"].dtype, batch["input_ids"].shape[0]
(torch.int64, 3)
>>> loader = MemoraLoader(MemoraIterableDataset(ds, batch_size=32, seed=0))
>>> [len(b["input_ids"]) for b in loader], loader.state_dict()
([32, 32, 32, 4], {'epoch': 0, 'position': 100, 'seed': 0})
>>> client.close()
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from memora_lite.errors import InvalidArgumentError
from memora_lite.training.dataset import MemoraDataset, RowBatch
from memora_lite.training.order import WINDOW_BLOCKS
from memora_lite.training.stream import BatchStream

try:
    import torch
    from torch.utils.data import DataLoader, IterableDataset, get_worker_info
except ModuleNotFoundError:  # the classes below then say what to install when used
    torch = None
    DataLoader = IterableDataset = object  # type: ignore[assignment,misc]

INSTALL = 'this needs PyTorch: pip install "memora_lite[torch]"'


def _require_torch() -> None:
    if torch is None:
        raise ModuleNotFoundError(INSTALL)


def collate(batch: RowBatch | Mapping[str, Any] | Sequence[Mapping[str, Any]], *,
            trim: str | None = None) -> dict[str, Any]:
    """A batch as ``{name: tensor}``: numeric columns become tensors without a copy, text becomes lists.

    Parameters
    ----------
    batch : RowBatch, dict of arrays, or list of row dicts
        What ``MemoraDataset.__getitems__`` or a stream returns, or single rows (stacked first).
    trim : str, optional
        A mask field (``"attention_mask"``): cut every column as wide as it to the last
        position any row of the batch uses. Right-padded rows give the same model outputs.

    >>> import pytest; _ = pytest.importorskip("torch")
    >>> mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0]])
    >>> batch = collate({"input_ids": mask * 5, "attention_mask": mask}, trim="attention_mask")
    >>> batch["input_ids"].tolist(), batch["attention_mask"].dtype
    ([[5, 5], [5, 0]], torch.int64)
    """
    _require_torch()
    if isinstance(batch, RowBatch):
        columns = batch.columns
    elif isinstance(batch, Mapping):
        columns = dict(batch)
    else:
        rows = list(batch)
        columns = {name: np.stack([np.asarray(row[name]) for row in rows]) if rows else np.empty(0)
                   for name in (rows[0] if rows else {})}
    if trim is not None:
        columns = _trim(columns, trim)
    return {name: _tensor(column) for name, column in columns.items()}


def _trim(columns: dict[str, Any], mask_name: str) -> dict[str, Any]:
    if mask_name not in columns:
        raise InvalidArgumentError(f"trim={mask_name!r}: the batch has no such field; fields: {', '.join(columns)}")
    mask = np.asarray(columns[mask_name])
    if mask.ndim != 2:
        return columns
    used = np.flatnonzero(mask.any(axis=0))
    width = int(used[-1]) + 1 if len(used) else 0
    return {name: (c[:, :width] if isinstance(c, np.ndarray) and c.ndim == 2 and c.shape[1] == mask.shape[1] else c)
            for name, c in columns.items()}


def _tensor(column: Any) -> Any:
    if isinstance(column, torch.Tensor):
        return column
    column = np.asarray(column)
    if column.dtype == object or column.dtype.kind in "USV":
        return column.tolist()
    if not column.flags.c_contiguous or not column.flags.writeable:  # a trimmed view, or a read-only buffer
        column = np.ascontiguousarray(column) if column.flags.writeable else column.copy()
    return torch.from_numpy(column)


def _distributed() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class MemoraIterableDataset(BatchStream, IterableDataset):  # type: ignore[misc]
    """A :class:`BatchStream` for PyTorch: yields ``{name: tensor}`` batches (or numpy rows).

    Use it with ``DataLoader(ds, batch_size=None, num_workers=...)``: the batches are made
    here, one gather each. With ``batch_size=None`` it yields single rows for a DataLoader
    or Hugging Face Trainer that batches them itself. ``rank`` and ``world_size`` default to
    ``torch.distributed``'s when a process group is up. With a plain DataLoader and workers,
    call ``set_epoch(epoch)`` before every epoch (as with ``DistributedSampler``), or use
    :class:`MemoraLoader`, which also keeps the resume position.

    Parameters
    ----------
    dataset : MemoraDataset
        The rows.
    batch_size, shuffle, seed, drop_last, window_rows
        As for :class:`BatchStream`.
    rank, world_size : int, optional
        Default: from ``torch.distributed`` if initialised, else 0 and 1.
    collate_fn : callable, optional
        Makes what is yielded from a :class:`RowBatch`; default :func:`collate`. Any
        collate function that takes a list of samples (``default_collate``, Hugging
        Face's data collators) works too.
    """

    def __init__(self, dataset: MemoraDataset, batch_size: int | None = 32, *, shuffle: bool = True, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None, drop_last: bool = False,
                 window_rows: int = WINDOW_BLOCKS * 1024, collate_fn: Any = collate) -> None:
        _require_torch()
        if rank is None or world_size is None:
            default_rank, default_world = _distributed()
            rank = default_rank if rank is None else rank
            world_size = default_world if world_size is None else world_size
        super().__init__(dataset, batch_size, shuffle=shuffle, seed=seed, rank=rank, world_size=world_size,
                         drop_last=drop_last, window_rows=window_rows)
        self.collate_fn = collate_fn

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        items = self._iterate(worker, num_workers)
        if self.batch_size is None:
            return items
        # A RowBatch: our collate takes its columns whole; any other collate_fn sees a list of rows.
        return (self.collate_fn(RowBatch(batch)) for batch in items)


class MemoraLoader(DataLoader):  # type: ignore[misc]
    """A DataLoader over a :class:`MemoraIterableDataset` whose ``state_dict()`` is exact with workers.

    Batching, shuffling and sharding belong to the dataset; every other DataLoader
    argument (``num_workers``, ``multiprocessing_context``, ``pin_memory``, ...) passes
    through. Workers are started afresh each epoch, with the epoch and position the
    loader holds, so ``persistent_workers`` is refused.

    >>> import pytest; _ = pytest.importorskip("torch")
    >>> from memora_lite import Memora
    >>> client = Memora(path=":memory:")
    >>> _ = client.nosql.insert(collection_name="t", data=[{"id": i, "x": i} for i in range(10)])
    >>> loader = MemoraLoader(MemoraIterableDataset(MemoraDataset(client, "t"), batch_size=4, seed=3))
    >>> seen = [b["x"].tolist() for _, b in zip(range(2), loader)]; state = loader.state_dict()
    >>> again = MemoraLoader(MemoraIterableDataset(MemoraDataset(client, "t"), batch_size=4, seed=3))
    >>> again.load_state_dict(state)
    >>> sorted(sum(seen, []) + [x for b in again for x in b["x"].tolist()]) == list(range(10))
    True
    >>> client.close()
    """

    def __init__(self, dataset: MemoraIterableDataset, num_workers: int = 0, **kwargs: Any) -> None:
        _require_torch()
        if not isinstance(dataset, MemoraIterableDataset):
            raise InvalidArgumentError(f"MemoraLoader reads a MemoraIterableDataset, not {type(dataset).__name__}; "
                                       "wrap a MemoraDataset as MemoraIterableDataset(dataset, batch_size=...)")
        owned = sorted(set(kwargs) & {"batch_size", "shuffle", "sampler", "batch_sampler", "drop_last"})
        if owned:
            raise InvalidArgumentError(f"MemoraLoader: set {', '.join(owned)} on the MemoraIterableDataset, "
                                       "which batches, shuffles and shards")
        if kwargs.get("persistent_workers"):
            raise InvalidArgumentError("MemoraLoader: persistent_workers would keep each worker's old epoch and "
                                       "position; workers are restarted every epoch instead")
        super().__init__(dataset, batch_size=None, num_workers=num_workers, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        stream: MemoraIterableDataset = self.dataset
        stream._begin()
        start, count = stream.position, len(stream._indices(stream.position))
        for received, item in enumerate(super().__iter__(), start=1):
            if self.num_workers:  # in-process, the stream counts for itself; workers count in their own copies
                stream.position = stream._position_after(start, count, received * stream._rows_per_item)
            yield item

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "position", "seed"}`` after the batches the loop has received."""
        return self.dataset.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.dataset.load_state_dict(state)
