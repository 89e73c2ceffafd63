"""BatchStream: epochs, shuffles, rank and worker splits, and resuming from state_dict. Numpy only."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import numpy as np
import pytest

from memora_lite import InvalidArgumentError, Memora
from memora_lite.testing.squad import squad_columns
from memora_lite.training import BatchStream, MemoraDataset

N = 2500
SEQ = 8


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    return squad_columns(N, seed=2, seq_len=SEQ)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, expected: dict[str, np.ndarray]) -> Iterator[str]:
    path = os.path.join(tmp_path_factory.mktemp("stream"), "store")
    with Memora(path=path) as client:
        client.nosql.insert(collection_name="rows", data=expected)
    yield path


@pytest.fixture
def ds(store: str) -> MemoraDataset:
    # Small blocks and windows: an epoch crosses many windows and window boundaries.
    return MemoraDataset(store, "rows", fields=["id", "input_ids", "start_token"], block_rows=100)


def make(ds: MemoraDataset, **kwargs: object) -> BatchStream:
    kwargs.setdefault("window_rows", 300)
    return BatchStream(ds, **kwargs)


def ids(items: object) -> list[int]:
    """Row ids of yielded batches (or single rows)."""
    out: list[int] = []
    for item in items:
        out.extend(np.atleast_1d(item["id"]).tolist())
    return out


def round_robin(streams: list[BatchStream]) -> list[int]:
    """What a DataLoader with len(streams) workers yields: worker 0, 1, ..., 0, 1, ..., skipping finished ones."""
    iterators = [s._iterate(w, len(streams)) for w, s in enumerate(streams)]
    out: list[int] = []
    while iterators:
        for it in list(iterators):
            item = next(it, None)
            if item is None:
                iterators.remove(it)
            else:
                out.extend(np.atleast_1d(item["id"]).tolist())
    return out


def test_an_epoch_yields_every_row_once_with_its_stored_values(ds: MemoraDataset,
                                                               expected: dict[str, np.ndarray]) -> None:
    s = make(ds, batch_size=32, seed=4)
    batches = list(s)
    assert [len(b["id"]) for b in batches] == [32] * 78 + [4] and len(s) == 79
    seen = np.concatenate([b["id"] for b in batches])
    assert np.array_equal(np.sort(seen), np.arange(N))
    for b in batches[:5]:
        np.testing.assert_array_equal(b["input_ids"], expected["input_ids"][b["id"]])
        assert b["input_ids"].dtype == np.int64


def test_same_seed_same_batches_and_every_epoch_reshuffled(ds: MemoraDataset) -> None:
    a, b = make(ds, batch_size=16, seed=9), make(ds, batch_size=16, seed=9)
    first = ids(a)
    assert first == ids(b)
    second = ids(a)  # a finished epoch moves on to the next by itself
    assert a.epoch == 1 and second != first and sorted(second) == sorted(first)
    b.set_epoch(1)
    assert ids(b) == second
    assert ids(make(ds, batch_size=16, seed=10)) != first
    assert ids(make(ds, batch_size=16, shuffle=False)) == list(range(N))


@pytest.mark.parametrize("cache_bytes", [1, 256 << 20])
def test_each_block_is_read_at_most_once_per_epoch(store: str, cache_bytes: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ds = MemoraDataset(store, "rows", block_rows=100, cache_bytes=cache_bytes)
    reads: list[int] = []
    original = ds.read_block
    monkeypatch.setattr(ds, "read_block", lambda block: reads.append(block) or original(block))
    s = make(ds, batch_size=32, seed=1)
    list(s)
    assert sorted(reads) == list(range(25))
    reads.clear()
    list(s)  # the next epoch: from the cache when the collection fits, else each block read again, once
    if cache_bytes > 1:
        assert reads == []
    else:
        assert len(reads) == len(set(reads)) >= 24


@pytest.mark.parametrize(("world_size", "num_workers"), [(1, 3), (2, 2), (3, 1), (4, 3)])
def test_ranks_and_workers_together_read_every_row_exactly_once(ds: MemoraDataset, world_size: int,
                                                                num_workers: int) -> None:
    seen: list[int] = []
    counts = set()
    for rank in range(world_size):
        streams = [make(ds, batch_size=10, seed=3, rank=rank, world_size=world_size) for _ in range(num_workers)]
        got = round_robin(streams)
        counts.add(len(got))
        seen.extend(got)
    assert len(counts) == 1  # equal counts on every rank (2500 divides by 1, 2 and 4)...
    if N % world_size == 0:
        assert sorted(seen) == list(range(N))
    else:  # ...and 2500 = 3 * 833 + 1: two rows of the epoch's start pad the tail
        assert set(seen) == set(range(N)) and len(seen) == N + (-N) % world_size


def test_workers_deliver_the_single_process_order(ds: MemoraDataset) -> None:
    alone = ids(make(ds, batch_size=7, seed=5))
    for workers in (2, 3, 5):
        assert round_robin([make(ds, batch_size=7, seed=5) for _ in range(workers)]) == alone


def test_drop_last_gives_only_full_batches_and_no_repeats(ds: MemoraDataset) -> None:
    seen = []
    for rank in range(3):
        batches = list(make(ds, batch_size=32, seed=0, rank=rank, world_size=3, drop_last=True))
        assert {len(b["id"]) for b in batches} == {32}
        seen.extend(ids(batches))
    assert len(seen) == len(set(seen)) == 2496  # 2500 // 96 * 96


@pytest.mark.parametrize("batch_size", [32, None])
def test_resuming_yields_exactly_the_rows_not_yet_seen(ds: MemoraDataset, batch_size: int | None) -> None:
    whole = make(ds, batch_size=batch_size, seed=8)
    whole.set_epoch(2)
    everything = ids(whole)
    first = make(ds, batch_size=batch_size, seed=8)
    first.set_epoch(2)
    taken = ids(itertools.islice(iter(first), 40))
    state = first.state_dict()
    assert state == {"epoch": 2, "position": len(taken), "seed": 8}
    later = make(ds, batch_size=batch_size, seed=0)  # the seed comes from the state
    later.load_state_dict(state)
    assert taken + ids(later) == everything


def test_resuming_on_another_number_of_ranks_reads_the_rest_once(ds: MemoraDataset) -> None:
    taken = []
    states = []
    for rank in range(2):
        s = make(ds, batch_size=25, seed=6, rank=rank, world_size=2)
        taken.extend(ids(itertools.islice(iter(s), 10)))
        states.append(s.state_dict())
    assert states[0] == states[1] == {"epoch": 0, "position": 500, "seed": 6}
    rest = []
    for rank in range(5):
        s = make(ds, batch_size=25, rank=rank, world_size=5)
        s.load_state_dict(states[0])
        rest.extend(ids(s))
    assert sorted(taken + rest) == list(range(N))


def test_a_resumed_epoch_then_goes_on_to_the_next(ds: MemoraDataset) -> None:
    s = make(ds, batch_size=100, seed=1)
    s.load_state_dict({"epoch": 4, "position": 2400, "seed": 1})
    assert len(ids(s)) == 100
    assert s.state_dict() == {"epoch": 4, "position": 2500, "seed": 1}
    assert len(ids(s)) == N and s.epoch == 5


def test_single_rows_when_batch_size_is_none(ds: MemoraDataset, expected: dict[str, np.ndarray]) -> None:
    rows = list(make(ds, batch_size=None, seed=0))
    assert len(rows) == N and rows[0]["input_ids"].shape == (SEQ,)
    assert sorted(int(r["id"]) for r in rows) == list(range(N))
    r = rows[17]
    np.testing.assert_array_equal(r["input_ids"], expected["input_ids"][int(r["id"])])


@pytest.mark.parametrize("state", [{"epoch": 1, "position": 2}, {"epoch": 1, "position": -1, "seed": 0},
                                   {"epoch": "1", "position": 0, "seed": 0}])
def test_bad_states_are_refused(ds: MemoraDataset, state: dict) -> None:
    with pytest.raises(InvalidArgumentError, match="load_state_dict"):
        make(ds).load_state_dict(state)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"window_rows": 0}, {"rank": 1}, {"world_size": 0}])
def test_bad_arguments_are_refused(ds: MemoraDataset, kwargs: dict) -> None:
    with pytest.raises(InvalidArgumentError):
        make(ds, **kwargs)
    with pytest.raises(InvalidArgumentError, match="set_epoch"):
        make(ds).set_epoch(-1)
