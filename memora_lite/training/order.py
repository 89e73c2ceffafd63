"""Which rows an epoch visits, in which order, and which rank and worker reads each: numpy only.

The shuffle is a **block shuffle plus a window shuffle**. Row positions ``0..n-1``
are cut into blocks of ``block_rows`` consecutive positions (one block is one range
read from the store); the blocks are permuted; consecutive permuted blocks are grouped
into windows of ``window_blocks`` blocks, and the rows inside each window are permuted.
Every row appears exactly once, a batch mixes rows of up to ``window_blocks`` random
blocks, and a reader holds one window in memory. A collection of at most
``block_rows * window_blocks`` rows (16,384 by default) is one window: a uniform shuffle.
The order depends only on ``(n, seed, epoch, block_rows, window_blocks)``, never on the
number of ranks or workers.

Ranks read the order interleaved (rank ``r`` takes global indices ``r, r + W, ...``), so
after every rank has read ``k`` rows the rows read are exactly the first ``k * W`` of the
order: a resume position is one number, whatever the world size. Inside a rank, batches
are dealt to DataLoader workers round-robin, the order in which the DataLoader collects
them, so the batches reach the training loop in the rank's order whatever the number of
workers.

>>> plan = EpochOrder(10, seed=0, block_rows=4, window_blocks=2)
>>> sorted(plan.order(epoch=0).tolist()) == list(range(10))
True
>>> plan.order(epoch=0).tolist() == plan.order(epoch=0).tolist(), plan.order(0).tolist() == plan.order(1).tolist()
(True, False)
>>> rank_indices(10, position=0, rank=1, world_size=2, drop_last=False).tolist()
[1, 3, 5, 7, 9]
>>> [b.tolist() for b in worker_batches(np.arange(7), batch_size=2, worker=1, num_workers=2)]
[[2, 3], [6]]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from memora_lite.errors import InvalidArgumentError

BLOCK_ROWS = 1024  # one storage block: a shuffle block is read with one range query
WINDOW_BLOCKS = 16  # 16,384 rows shuffled together; about 19 MB of SQuAD-shaped rows in memory


@dataclass(frozen=True)
class EpochOrder:
    """The visiting order of ``n`` row positions, per epoch.

    Parameters
    ----------
    n : int
        Number of rows.
    seed : int
        Same seed, same epoch: same order.
    shuffle : bool
        ``False`` visits positions in order (windows still bound the memory held).
    block_rows, window_blocks : int
        Rows per block and blocks per window (see the module docstring).

    >>> EpochOrder(6, shuffle=False, block_rows=2, window_blocks=2).window_starts(0).tolist()
    [0, 4, 6]
    """

    n: int
    seed: int = 0
    shuffle: bool = True
    block_rows: int = BLOCK_ROWS
    window_blocks: int = WINDOW_BLOCKS

    def __post_init__(self) -> None:
        for name, least in (("n", 0), ("block_rows", 1), ("window_blocks", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise InvalidArgumentError(f"{name}={value!r}; use an int >= {least}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise InvalidArgumentError(f"seed={self.seed!r}; use an int >= 0")

    @property
    def block_count(self) -> int:
        return -(-self.n // self.block_rows)

    def blocks(self, epoch: int) -> np.ndarray:
        """Block numbers in the order the epoch visits them."""
        if not self.shuffle:
            return np.arange(self.block_count, dtype=np.int64)
        return self._rng(epoch, 0).permutation(self.block_count)

    def window_starts(self, epoch: int) -> np.ndarray:
        """Where each window begins in the epoch's order, then ``n``: window ``k`` is ``[s[k], s[k+1])``."""
        sizes = np.minimum(self.block_rows, self.n - self.blocks(epoch) * self.block_rows)
        ends = np.cumsum(sizes)[self.window_blocks - 1 :: self.window_blocks]
        return np.unique(np.concatenate([[0], ends, [self.n]])).astype(np.int64)

    def order(self, epoch: int) -> np.ndarray:
        """Every position ``0..n-1`` once, in the epoch's order (int64)."""
        blocks = self.blocks(epoch)
        out = np.empty(self.n, dtype=np.int64)
        at = 0
        for w, lo in enumerate(range(0, len(blocks), self.window_blocks)):
            chosen = blocks[lo : lo + self.window_blocks]
            starts = chosen * self.block_rows
            sizes = np.minimum(self.block_rows, self.n - starts)
            # positions of the chosen blocks, block after block, without a Python loop per block
            rows = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
            if self.shuffle:
                self._rng(epoch, w + 1).shuffle(rows)
            out[at : at + len(rows)] = rows
            at += len(rows)
        return out

    def _rng(self, epoch: int, stream: int) -> np.random.Generator:
        # One independent stream per (seed, epoch, window): a window's order never depends on another's.
        return np.random.default_rng([int(self.seed), int(epoch), stream])


def rank_indices(n: int, position: int, rank: int, world_size: int, drop_last: bool,
                 batch_size: int = 1) -> np.ndarray:
    """Indices into an ``n``-row epoch order that ``rank`` reads, from global index ``position`` on.

    Every rank gets the same count. ``drop_last=False`` pads the tail with the epoch's
    first rows (fewer than ``world_size`` of them) so every row is read at least once;
    ``drop_last=True`` drops the tail that would not give every rank a full batch, so
    every batch is full and no row is read twice.

    >>> rank_indices(5, 0, rank=0, world_size=2, drop_last=False).tolist()   # row 0 read twice
    [0, 2, 4]
    >>> rank_indices(5, 0, rank=1, world_size=2, drop_last=False).tolist()
    [1, 3, 0]
    >>> rank_indices(5, 0, rank=1, world_size=2, drop_last=True).tolist()   # row 4 not read
    [1, 3]
    """
    check_rank(rank, world_size)
    position = min(max(int(position), 0), n)
    remaining = n - position
    if drop_last:
        step = world_size * batch_size
        taken = np.arange(position, position + remaining // step * step, dtype=np.int64)
    else:
        pad = (-remaining) % world_size
        taken = np.concatenate([np.arange(position, n, dtype=np.int64), np.arange(pad, dtype=np.int64) % max(n, 1)])
    return taken[rank::world_size]


def worker_batches(indices: np.ndarray, batch_size: int, worker: int, num_workers: int) -> Iterator[np.ndarray]:
    """Batch ``j`` of ``indices`` goes to worker ``j % num_workers``: this worker's batches, in order.

    A DataLoader collects batches from its workers round-robin, so it yields batch 0, 1,
    2, ... in order: what the training loop has seen is always a prefix.
    """
    if not 0 <= worker < num_workers:
        raise InvalidArgumentError(f"worker {worker} of {num_workers}: use 0 <= worker < num_workers")
    for lo in range(worker * batch_size, len(indices), num_workers * batch_size):
        yield indices[lo : lo + batch_size]


def check_rank(rank: int, world_size: int) -> None:
    if isinstance(world_size, bool) or not isinstance(world_size, (int, np.integer)) or world_size < 1:
        raise InvalidArgumentError(f"world_size={world_size!r}; use an int >= 1")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
        raise InvalidArgumentError(f"rank={rank!r}; use 0 <= rank < world_size ({world_size})")
