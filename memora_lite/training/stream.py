"""``BatchStream``: shuffled, sharded, resumable batches of a :class:`MemoraDataset`, numpy only.

One pass over a ``BatchStream`` is one epoch of this rank's batches, each a dict of numpy
arrays. The order is :class:`~memora_lite.training.order.EpochOrder`'s block + window
shuffle; ranks and DataLoader workers split it as ``order.py`` describes. A reader holds
the rows of the window it is in (two windows at a boundary), gathered from one range read
per block, so every block is read at most once per epoch; blocks go through the dataset's
cache, so when the collection fits there (``cache_bytes``, 256 MiB by default) later
epochs read nothing. Memory is bounded by that cache plus two windows.

The state is three numbers — ``epoch``, ``position`` (rows of the epoch's order consumed
by all ranks together) and ``seed`` — so ``state_dict()`` is small, and resuming from it
yields exactly the rows not yet seen. A finished epoch moves on to the next by itself;
``set_epoch(e)`` picks one explicitly (as Hugging Face's Trainer does).

>>> from memora_lite import Memora
>>> from memora_lite.testing.squad import squad_columns
>>> from memora_lite.training.dataset import MemoraDataset
>>> client = Memora(path=":memory:")
>>> _ = client.nosql.insert(collection_name="t", data=squad_columns(10, seq_len=4))
>>> stream = BatchStream(MemoraDataset(client, "t"), batch_size=4, seed=1)
>>> [len(b["input_ids"]) for b in stream], len(stream)
([4, 4, 2], 3)
>>> it = iter(stream); first = next(it)["start_token"].tolist(); state = stream.state_dict(); state
{'epoch': 1, 'position': 4, 'seed': 1}
>>> resumed = BatchStream(MemoraDataset(client, "t"), batch_size=4, seed=1); resumed.load_state_dict(state)
>>> [b["start_token"].tolist() for b in resumed] == [b["start_token"].tolist() for b in it]
True
>>> client.close()
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from memora_lite.errors import InvalidArgumentError
from memora_lite.training.dataset import MemoraDataset
from memora_lite.training.order import WINDOW_BLOCKS, EpochOrder, check_rank, rank_indices, worker_batches

ROW_GROUP = 256  # rows gathered together when the stream yields single rows
STATE_KEYS = ("epoch", "position", "seed")


class BatchStream:
    """Batches (or rows) of a dataset, one epoch per pass: shuffled, split by rank and worker, resumable.

    Parameters
    ----------
    dataset : MemoraDataset
        The rows: fields, names, filter and dtypes come from it.
    batch_size : int or None
        Rows per batch; ``None`` yields single rows (for a DataLoader or Trainer that batches).
    shuffle : bool
        Block + window shuffle, reseeded every epoch; ``False`` keeps key order.
    seed : int
        Same seed, same epoch: same order.
    rank, world_size : int
        This process's share of every epoch, for distributed (DDP) training.
    drop_last : bool
        ``True``: drop the tail that would not fill a batch on every rank, so every batch is
        full and no row repeats. ``False``: pad the tail with the epoch's first rows (fewer
        than ``world_size``) so every rank gets the same count and every row is read.
    window_rows : int
        Rows shuffled together, and about what a reader holds in memory.
    """

    def __init__(self, dataset: MemoraDataset, batch_size: int | None = 32, *, shuffle: bool = True, seed: int = 0,
                 rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 window_rows: int = WINDOW_BLOCKS * 1024) -> None:
        if not isinstance(dataset, MemoraDataset):
            raise InvalidArgumentError(f"a BatchStream reads a MemoraDataset, not {type(dataset).__name__}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                       or batch_size < 1):
            raise InvalidArgumentError(f"batch_size={batch_size!r}; use an int >= 1, or None for single rows")
        if isinstance(window_rows, bool) or not isinstance(window_rows, int) or window_rows < 1:
            raise InvalidArgumentError(f"window_rows={window_rows!r}; use an int >= 1")
        check_rank(rank, world_size)
        self.dataset = dataset
        self.batch_size = batch_size
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.order = EpochOrder(len(dataset), seed, shuffle, dataset.block_rows,
                                max(1, -(-window_rows // dataset.block_rows)))
        self.epoch = 0
        self.position = 0

    @property
    def seed(self) -> int:
        return self.order.seed

    @property
    def _rows_per_item(self) -> int:
        return self.batch_size or 1

    def __len__(self) -> int:
        """Batches (or rows) this rank gets in a whole epoch."""
        return -(-len(self._indices(0)) // self._rows_per_item)

    # -- state -------------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Read epoch ``epoch`` next, from its beginning, unless it is the epoch a resumed state is part-way through."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise InvalidArgumentError(f"set_epoch({epoch!r}); use an int >= 0")
        if epoch != self.epoch or not len(self._indices(self.position)):
            self.epoch, self.position = epoch, 0

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "position", "seed"}``: where the next pass starts."""
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`: the next pass yields exactly the rows not yet seen."""
        missing = [k for k in STATE_KEYS if k not in state]
        if missing or any(isinstance(state[k], bool) or not isinstance(state[k], (int, np.integer))
                          or state[k] < 0 for k in STATE_KEYS):
            raise InvalidArgumentError(f"load_state_dict needs ints >= 0 for {', '.join(STATE_KEYS)}; got {state!r}")
        order = self.order
        self.order = EpochOrder(order.n, int(state["seed"]), order.shuffle, order.block_rows, order.window_blocks)
        self.epoch, self.position = int(state["epoch"]), min(int(state["position"]), order.n)

    # -- iteration ---------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self._iterate(0, 1)

    def _begin(self) -> None:
        """Before a pass: a finished epoch moves on to the next."""
        if self.order.n and not len(self._indices(self.position)):
            self.epoch, self.position = self.epoch + 1, 0

    def _indices(self, position: int) -> np.ndarray:
        return rank_indices(self.order.n, position, self.rank, self.world_size, self.drop_last,
                            self._rows_per_item if self.drop_last else 1)

    def _position_after(self, start: int, count: int, rows: int) -> int:
        """The global position once this rank has consumed ``rows`` of its ``count`` rows from ``start``."""
        return min(self.order.n, start + self.world_size * min(rows, count))

    def _iterate(self, worker: int, num_workers: int) -> Iterator[dict[str, np.ndarray]]:
        """This worker's share of one pass, updating ``position`` as it goes (exact when it is the only worker)."""
        self._begin()
        start, epoch = self.position, self.epoch
        indices = self._indices(start)
        window = _Window(self.dataset, self.order, epoch)
        if self.batch_size is None:
            mine = indices[worker::num_workers]
            for lo in range(0, len(mine), ROW_GROUP):
                group = mine[lo : lo + ROW_GROUP]
                rows = window.take(group)
                for i in range(len(group)):
                    self.position = self._position_after(start, len(indices), worker + (lo + i) * num_workers + 1)
                    yield {name: column[i] for name, column in rows.items()}
            return
        for j, batch in enumerate(worker_batches(indices, self.batch_size, worker, num_workers)):
            out = window.take(batch)
            self.position = self._position_after(start, len(indices), (worker + j * num_workers + 1) * self.batch_size)
            yield out


class _Window:
    """The rows of the windows a reader is in: their blocks concatenated, so a batch is one gather."""

    def __init__(self, dataset: MemoraDataset, order: EpochOrder, epoch: int) -> None:
        self.dataset = dataset
        self.order = order.order(epoch)
        self.starts = order.window_starts(epoch)
        self.blocks = order.blocks(epoch)
        self.window_blocks = order.window_blocks
        self.held = np.zeros(0, dtype=np.int64)  # window numbers held
        self.block_ids = np.zeros(0, dtype=np.int64)  # sorted block numbers held
        self.block_at = np.zeros(0, dtype=np.int64)  # where each held block begins in `arrays`
        self.arrays: dict[str, np.ndarray] = {}

    def take(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """The rows at ``indices`` of the epoch's order, in the dataset's dtypes."""
        windows = np.unique(np.searchsorted(self.starts, indices, side="right") - 1)
        if not np.array_equal(windows, self.held):
            self._hold(windows)
        positions = self.order[indices]
        block_size = self.dataset.block_rows
        blocks = positions // block_size
        rows = self.block_at[np.searchsorted(self.block_ids, blocks)] + positions - blocks * block_size
        return {name: self.dataset._convert(name, np.take(column, rows, axis=0))
                for name, column in self.arrays.items()}

    def _hold(self, windows: np.ndarray) -> None:
        wanted = np.sort(np.concatenate(
            [self.blocks[w * self.window_blocks : (w + 1) * self.window_blocks] for w in windows.tolist()]))
        block_size = self.dataset.block_rows
        parts = []
        for block in wanted.tolist():
            i = int(np.searchsorted(self.block_ids, block))
            if i < len(self.block_ids) and self.block_ids[i] == block:  # held already: reuse, do not read again
                lo = int(self.block_at[i])
                size = min(block_size, len(self.dataset) - block * block_size)
                parts.append({name: column[lo : lo + size] for name, column in self.arrays.items()})
            else:  # through the dataset's cache: a later epoch of a collection that fits there reads nothing
                parts.append(self.dataset._block(block))
        sizes = [len(next(iter(p.values()))) for p in parts]
        self.arrays = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}
        self.block_ids = wanted
        self.block_at = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.held = windows
