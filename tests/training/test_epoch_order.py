"""The epoch order, and how ranks and workers split it (memora_lite.training.order): numpy only."""

from __future__ import annotations

import numpy as np
import pytest

from memora_lite import InvalidArgumentError
from memora_lite.training.order import EpochOrder, rank_indices, worker_batches


@pytest.mark.parametrize("n", [0, 1, 7, 100, 1024, 1025, 5000])
def test_every_position_appears_once_per_epoch(n: int) -> None:
    plan = EpochOrder(n, seed=3, block_rows=64, window_blocks=4)
    for epoch in range(3):
        order = plan.order(epoch)
        assert order.dtype == np.int64
        assert np.array_equal(np.sort(order), np.arange(n))


def test_same_seed_gives_the_same_order_and_each_epoch_a_new_one() -> None:
    a, b = EpochOrder(5000, seed=11, block_rows=64), EpochOrder(5000, seed=11, block_rows=64)
    assert np.array_equal(a.order(0), b.order(0))
    assert not np.array_equal(a.order(0), a.order(1))
    assert not np.array_equal(a.order(0), EpochOrder(5000, seed=12, block_rows=64).order(0))


def test_without_shuffle_the_order_is_key_order() -> None:
    plan = EpochOrder(300, shuffle=False, block_rows=64, window_blocks=2)
    assert np.array_equal(plan.order(5), np.arange(300))
    assert plan.window_starts(5).tolist() == [0, 128, 256, 300]


def test_each_window_holds_whole_blocks_and_is_shuffled_inside() -> None:
    plan = EpochOrder(1000, seed=0, block_rows=50, window_blocks=4)
    order, starts, blocks = plan.order(2), plan.window_starts(2), plan.blocks(2)
    assert len(starts) - 1 == 5  # 20 blocks, 4 per window
    for w in range(len(starts) - 1):
        rows = order[starts[w] : starts[w + 1]]
        assert set((rows // 50).tolist()) == set(blocks[w * 4 : (w + 1) * 4].tolist())
        assert np.array_equal(np.sort(rows), np.sort(np.concatenate([np.arange(b * 50, b * 50 + 50)
                                                                       for b in blocks[w * 4 : (w + 1) * 4]])))
        assert not np.array_equal(rows, np.sort(rows))  # shuffled, not block after block


def test_a_collection_smaller_than_a_window_is_shuffled_as_a_whole() -> None:
    order = EpochOrder(3000, seed=1, block_rows=1024, window_blocks=16).order(0)
    first = order[:100] // 1024
    assert len(set(first.tolist())) == 3  # the first rows already come from every block


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_ranks_get_equal_counts_and_together_every_row_exactly_once(world_size: int) -> None:
    n = 1200  # divisible by 1, 2, 3 and 4
    shares = [rank_indices(n, 0, r, world_size, drop_last=False) for r in range(world_size)]
    assert {len(s) for s in shares} == {n // world_size}
    assert np.array_equal(np.sort(np.concatenate(shares)), np.arange(n))


def test_uneven_tails_are_padded_or_dropped() -> None:
    n, world = 10, 4
    padded = [rank_indices(n, 0, r, world, drop_last=False) for r in range(world)]
    assert {len(s) for s in padded} == {3}
    everything = np.concatenate(padded)
    assert set(everything.tolist()) == set(range(n))
    assert sorted(everything.tolist()) == [0, 0, 1, 1, *range(2, 10)]  # the first rows pad the tail
    dropped = [rank_indices(n, 0, r, world, drop_last=True, batch_size=2) for r in range(world)]
    assert {len(s) for s in dropped} == {2}
    assert sorted(np.concatenate(dropped).tolist()) == list(range(8))


def test_after_every_rank_reads_k_rows_the_rows_read_are_a_prefix_of_the_order() -> None:
    n, world = 999, 3
    shares = [rank_indices(n, 0, r, world, drop_last=False) for r in range(world)]
    for k in (0, 1, 50, 333):
        read = np.concatenate([s[:k] for s in shares])
        assert np.array_equal(np.sort(read), np.arange(k * world))


def test_resuming_with_another_world_size_reads_exactly_the_rest() -> None:
    n = 1000
    consumed = 2 * 150  # two ranks read 150 rows each
    shares = [rank_indices(n, consumed, r, 4, drop_last=False) for r in range(4)]
    assert np.array_equal(np.sort(np.concatenate(shares)), np.arange(consumed, n))


def test_workers_get_every_other_batch_and_round_robin_restores_the_order() -> None:
    indices = np.arange(23)
    per_worker = [list(worker_batches(indices, 4, w, 3)) for w in range(3)]
    assert [len(b) for b in per_worker] == [2, 2, 2]
    merged = []
    for round_ in range(2):  # what a DataLoader yields: worker 0, 1, 2, 0, 1, 2, ...
        for w in range(3):
            merged.extend(per_worker[w][round_].tolist())
    assert merged == list(range(23))


@pytest.mark.parametrize("kwargs", [{"n": -1}, {"n": 5, "block_rows": 0}, {"n": 5, "window_blocks": 0},
                                    {"n": 5, "seed": -2}, {"n": 5, "seed": True}])
def test_bad_order_arguments_are_refused(kwargs: dict) -> None:
    with pytest.raises(InvalidArgumentError):
        EpochOrder(**kwargs)


@pytest.mark.parametrize(("rank", "world"), [(2, 2), (-1, 2), (0, 0)])
def test_bad_ranks_are_refused(rank: int, world: int) -> None:
    with pytest.raises(InvalidArgumentError, match=r"rank|world_size"):
        rank_indices(10, 0, rank, world, drop_last=False)
