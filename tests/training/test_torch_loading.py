"""PyTorch: tensors without copies, workers of every start method, DDP ranks, resuming, a training loop."""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections.abc import Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader, default_collate  # noqa: E402

from memora_lite import InvalidArgumentError, Memora  # noqa: E402
from memora_lite.testing.squad import squad_columns  # noqa: E402
from memora_lite.training import (  # noqa: E402
    MemoraDataset,
    MemoraIterableDataset,
    MemoraLoader,
    RowBatch,
    collate,
)

N = 600
SEQ = 16


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    return squad_columns(N, seed=7, seq_len=SEQ)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, expected: dict[str, np.ndarray]) -> Iterator[str]:
    path = os.path.join(tmp_path_factory.mktemp("torch"), "store")
    with Memora(path=path) as client:
        client.nosql.insert(collection_name="finetune_data", data=expected)
    yield path


@pytest.fixture
def ds(store: str) -> MemoraDataset:
    return MemoraDataset(store, "finetune_data", fields=["id", "input_ids", "attention_mask", "start_token"],
                         rename={"start_token": "start_positions"}, block_rows=64)


def ids(batches: object) -> list[int]:
    return [int(i) for b in batches for i in b["id"]]


def test_collate_makes_tensors_that_share_the_numpy_memory() -> None:
    batch = RowBatch({"input_ids": np.arange(12, dtype=np.int64).reshape(3, 4), "label": np.array([1, 0, 1]),
                      "text": np.array(["a", "b", "c"], dtype=object)})
    out = collate(batch)
    assert out["input_ids"].data_ptr() == batch.columns["input_ids"].ctypes.data
    assert out["label"].tolist() == [1, 0, 1] and out["text"] == ["a", "b", "c"]
    rows = collate([{"x": np.array([1, 2]), "y": 3}, {"x": np.array([4, 5]), "y": 6}])
    assert rows["x"].tolist() == [[1, 2], [4, 5]] and rows["y"].tolist() == [3, 6]


def test_collate_trims_columns_no_row_uses() -> None:
    mask = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    out = collate({"input_ids": mask * 7, "attention_mask": mask, "start": np.array([1, 2])}, trim="attention_mask")
    assert out["input_ids"].shape == (2, 3) and out["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]
    assert out["input_ids"].is_contiguous() and out["start"].tolist() == [1, 2]
    with pytest.raises(InvalidArgumentError, match="no such field"):
        collate({"x": mask}, trim="attention_mask")


def test_a_dataloader_batch_is_one_store_read(ds: MemoraDataset, monkeypatch: pytest.MonkeyPatch,
                                              expected: dict[str, np.ndarray]) -> None:
    reads: list[int] = []
    original = ds.read_block
    monkeypatch.setattr(ds, "read_block", lambda block: reads.append(block) or original(block))
    loader = DataLoader(ds, batch_size=32, collate_fn=collate)
    batches = list(loader)
    assert len(reads) == 10  # 600 rows in blocks of 64: each block read once, 19 batches
    assert batches[0]["input_ids"].dtype == torch.int64
    assert torch.equal(batches[3]["input_ids"], torch.from_numpy(expected["input_ids"][96:128]))
    # torch's own default_collate takes the batch as a list of rows too
    fallback = next(iter(DataLoader(ds, batch_size=4)))
    assert fallback["start_positions"].tolist() == expected["start_token"][:4].tolist()


def test_a_map_style_dataset_with_workers_and_a_distributed_sampler(ds: MemoraDataset) -> None:
    from torch.utils.data.distributed import DistributedSampler

    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=1)
        loader = DataLoader(ds, batch_size=50, sampler=sampler, collate_fn=collate, num_workers=2,
                            multiprocessing_context="fork")
        seen.extend(ids(loader))
    assert sorted(seen) == list(range(N))


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_workers_of_every_start_method_read_each_row_once(ds: MemoraDataset, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"{method} is not available here")
    stream = MemoraIterableDataset(ds, batch_size=32, seed=2)
    alone = ids(stream)
    stream.set_epoch(0)
    loader = MemoraLoader(stream, num_workers=2, multiprocessing_context=method)
    assert ids(loader) == alone  # every row once, in the single-process order
    assert loader.state_dict() == {"epoch": 0, "position": N, "seed": 2}


def test_ranks_times_workers_read_every_row_once_per_epoch(ds: MemoraDataset) -> None:
    for epoch in range(2):
        seen = []
        for rank in range(3):
            stream = MemoraIterableDataset(ds, batch_size=16, seed=4, rank=rank, world_size=3)
            stream.set_epoch(epoch)
            seen.extend(ids(DataLoader(stream, batch_size=None, num_workers=2, multiprocessing_context="fork")))
        assert sorted(seen) == list(range(N))


def test_resuming_mid_epoch_with_workers_yields_exactly_the_unseen_rows(ds: MemoraDataset) -> None:
    whole = MemoraIterableDataset(ds, batch_size=20, seed=5)
    whole.set_epoch(1)
    everything = ids(whole)
    loader = MemoraLoader(MemoraIterableDataset(ds, batch_size=20, seed=5), num_workers=2,
                          multiprocessing_context="fork")
    loader.set_epoch(1)
    taken = ids(itertools.islice(iter(loader), 7))  # the workers have read ahead; only 7 batches were received
    state = loader.state_dict()
    assert state == {"epoch": 1, "position": 140, "seed": 5}
    again = MemoraLoader(MemoraIterableDataset(ds, batch_size=20, seed=0), num_workers=1,
                         multiprocessing_context="fork")
    again.load_state_dict(state)
    assert taken + ids(again) == everything
    assert again.state_dict() == {"epoch": 1, "position": N, "seed": 5}
    assert len(ids(again)) == N and again.state_dict()["epoch"] == 2  # then the next epoch


def test_rows_mode_feeds_a_dataloader_that_batches(ds: MemoraDataset) -> None:
    loader = DataLoader(MemoraIterableDataset(ds, batch_size=None, seed=1), batch_size=25, num_workers=2,
                        multiprocessing_context="fork")
    batches = list(loader)
    assert batches[0]["input_ids"].shape == (25, SEQ)
    assert sorted(ids(batches)) == list(range(N))


def test_a_memory_store_cannot_go_to_workers() -> None:
    client = Memora(path=":memory:")
    client.nosql.insert("t", squad_columns(50, seq_len=4))
    ds = MemoraDataset(client, "t")
    for method in ("fork", "spawn"):
        loader = MemoraLoader(MemoraIterableDataset(ds, batch_size=10), num_workers=1, multiprocessing_context=method)
        with pytest.raises(InvalidArgumentError, match="num_workers=0"):
            list(loader)
    assert len(list(MemoraLoader(MemoraIterableDataset(ds, batch_size=10)))) == 5
    client.close()


def test_the_loader_refuses_what_the_dataset_owns(ds: MemoraDataset) -> None:
    stream = MemoraIterableDataset(ds)
    with pytest.raises(InvalidArgumentError, match="set batch_size, shuffle"):
        MemoraLoader(stream, batch_size=8, shuffle=True)
    with pytest.raises(InvalidArgumentError, match="persistent_workers"):
        MemoraLoader(stream, num_workers=1, persistent_workers=True)
    with pytest.raises(InvalidArgumentError, match="MemoraIterableDataset"):
        MemoraLoader(ds)


def test_default_collate_turns_a_stream_batch_into_tensors(ds: MemoraDataset) -> None:
    stream = MemoraIterableDataset(ds, batch_size=8, collate_fn=default_collate)
    assert next(iter(stream))["input_ids"].shape == (8, SEQ)


def test_a_plain_pytorch_loop_learns_from_the_store(store: str) -> None:
    torch.manual_seed(0)
    ds = MemoraDataset(store, "finetune_data", fields=["input_ids", "attention_mask", "end_token"],
                       rename={"end_token": "end_positions"})

    class Pointer(torch.nn.Module):
        """Points at the answer's end token: enough to see a loss fall."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(30_522, 16)
            self.score = torch.nn.Linear(16, 1)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            logits = self.score(self.embed(input_ids)).squeeze(-1)
            return logits.masked_fill(attention_mask == 0, -1e4)

    model = Pointer()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    loader = MemoraLoader(MemoraIterableDataset(ds, batch_size=100, seed=0))
    losses = []
    for epoch in range(3):
        loader.set_epoch(epoch)
        total = 0.0
        for batch in loader:
            loss = torch.nn.functional.cross_entropy(model(batch["input_ids"], batch["attention_mask"]),
                                                     batch["end_positions"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total)
    assert losses[-1] < losses[0]
