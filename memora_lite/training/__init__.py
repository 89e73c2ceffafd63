"""Train from a collection: datasets that read the store in blocks, shuffle by epoch, shard and resume.

Numpy only (no torch needed):

* :class:`MemoraDataset` — map-style: row ``i`` of a collection's (filtered) rows, with
  chosen fields, renames and dtypes; ``__getitems__`` reads a whole DataLoader batch at once.
* :class:`BatchStream` — an epoch of shuffled batches for this rank, resumable from
  ``state_dict()`` (``epoch``, ``position``, ``seed``).
* :class:`EpochOrder`, :func:`rank_indices`, :func:`worker_batches` — the order itself.

With PyTorch (imported on first use of these names):

* :func:`collate` — batches to tensors without copies;
* :class:`MemoraIterableDataset` — a ``BatchStream`` as a ``torch.utils.data.IterableDataset``;
* :class:`MemoraLoader` — a DataLoader over it whose ``state_dict()`` is exact with workers.

>>> from memora_lite import Memora
>>> from memora_lite.testing.squad import squad_columns
>>> from memora_lite.training import BatchStream, MemoraDataset
>>> client = Memora(path=":memory:")
>>> _ = client.nosql.insert(collection_name="finetune_data", data=squad_columns(1000, seq_len=32))
>>> ds = MemoraDataset(client, "finetune_data", rename={"start_token": "start_positions",
...                                                     "end_token": "end_positions"})
>>> ds.names
['input_ids', 'attention_mask', 'start_positions', 'end_positions']
>>> stream = BatchStream(ds, batch_size=32, seed=0)
>>> ids = [int(i) for batch in stream for i in batch["start_positions"]]   # one epoch
>>> len(ids) == 1000, len(stream)
(True, 32)
>>> client.close()
"""

from __future__ import annotations

from typing import Any

from memora_lite.training.dataset import MemoraDataset, RowBatch, StaleDatasetError
from memora_lite.training.order import EpochOrder, rank_indices, worker_batches
from memora_lite.training.stream import BatchStream

_TORCH_NAMES = ("MemoraIterableDataset", "MemoraLoader", "collate")

__all__ = [
    "BatchStream",
    "EpochOrder",
    "MemoraDataset",
    "MemoraIterableDataset",
    "MemoraLoader",
    "RowBatch",
    "StaleDatasetError",
    "collate",
    "rank_indices",
    "worker_batches",
]


def __getattr__(name: str) -> Any:
    # torch takes seconds to import: only code that asks for its classes pays for it.
    if name in _TORCH_NAMES:
        from memora_lite.training import pytorch

        return getattr(pytorch, name)
    raise AttributeError(f"module 'memora_lite.training' has no attribute {name!r}")
