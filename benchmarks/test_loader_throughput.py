"""Training loaders, samples per second for batch 32 of 384-token rows: memora_lite against its peers, one run.

Every configuration reads one whole epoch of the same SQuAD-shaped rows
(memora_lite.testing.squad) into ``{name: tensor}`` batches of 32 rows, int64, shuffled:

* ``memora_map``: ``DataLoader(MemoraDataset, batch_size=32, shuffle=True, collate_fn=collate)``
  (torch's random sampler; each batch one ``__getitems__``), 0, 2 and 4 workers;
* ``memora_iterable``: ``MemoraLoader(MemoraIterableDataset(batch_size=32))`` (block + window
  shuffle, one gather per batch), 0, 2 and 4 workers;
* ``hf_datasets``: ``DataLoader(load_from_disk(...).with_format("torch"), batch_size=32,
  shuffle=True)`` on the same rows, 0, 2 and 4 workers (skipped if datasets is missing);
* ``guide_loop``: the guide's own ``fetch_batch`` (50-row id ranges as rows) into its
  ``TokenizedDataset`` (``torch.tensor`` per value) and a ``DataLoader(batch_size=32, shuffle=True)``.

Workers are started for every epoch, as a DataLoader without persistent workers does, so
their start-up is part of the figure. ``test_loader_ratios`` prints samples/s and the
ratios (memora_lite / peer) of this run, and the memory each 0-worker loader holds along
an epoch (tracemalloc: the Python and numpy heap of this process)::

    python -m pytest benchmarks/test_loader_throughput.py --benchmark-enable -s
    MEMORA_LOADER_ROWS=87599 python -m pytest benchmarks/test_loader_throughput.py --benchmark-enable -s

With benchmarks disabled (the project's default), each body runs once on a few rows.
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
# 4 workers on a 2-core machine is part of the comparison; torch warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from memora_lite import Memora  # noqa: E402
from memora_lite.testing.squad import squad_columns  # noqa: E402
from memora_lite.training import MemoraDataset, MemoraIterableDataset, MemoraLoader, collate  # noqa: E402

BATCH = 32
FIELDS = ["input_ids", "attention_mask", "start_token", "end_token"]
RENAME = {"start_token": "start_positions", "end_token": "end_positions"}
RESULTS: dict[str, float] = {}  # configuration -> samples/s of the median round, filled as the benchmarks run
MEMORY: dict[str, tuple[float, float]] = {}  # configuration -> (MB held after the first batches, MB at most)


def measuring(config: pytest.Config) -> bool:
    return not (config.getoption("benchmark_disable") and not config.getoption("benchmark_enable"))


@pytest.fixture(scope="module")
def rows(request: pytest.FixtureRequest) -> int:
    return int(os.environ.get("MEMORA_LOADER_ROWS", 8192)) if measuring(request.config) else 256


@pytest.fixture(scope="module")
def store(rows: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("loaders")
    columns = squad_columns(rows)
    path = os.path.join(folder, "store")
    with Memora(project_id="YOUR_PROJECT", path=path) as client:
        client.nosql.insert(collection_name="finetune_data", data=columns)
    yield {"path": path, "folder": folder, "columns": columns}


def run_epoch(loader: Any) -> int:
    seen = 0
    for batch in loader:
        seen += len(batch["input_ids"])
    return seen


def measure(benchmark: Any, name: str, rows: int, make_loader: Callable[[], Any]) -> None:
    """Time one epoch per round; record samples/s of the median round under ``name``."""
    seen = benchmark.pedantic(lambda: run_epoch(make_loader()), rounds=3, iterations=1, warmup_rounds=1)
    assert seen == rows  # every configuration read the whole epoch
    benchmark.extra_info["rows"] = rows
    if benchmark.stats is not None and benchmark.stats.stats.median:
        RESULTS[name] = rows / benchmark.stats.stats.median


def held_memory(name: str, make_loader: Callable[[], Any]) -> None:
    """MB this process holds along one epoch: after 5 batches, and at most (sampled every 5 batches)."""
    tracemalloc.start()
    try:
        samples = []
        for i, _ in enumerate(make_loader()):
            if i % 5 == 4:
                samples.append(tracemalloc.get_traced_memory()[0] / 2**20)
        MEMORY[name] = (samples[0], max(samples)) if samples else (0.0, 0.0)
    finally:
        tracemalloc.stop()


def workers_for(config: pytest.Config) -> list[int]:
    return [0, 2, 4] if measuring(config) else [0, 2]


@pytest.fixture(params=[0, 2, 4], ids=lambda w: f"{w}workers")
def workers(request: pytest.FixtureRequest) -> int:
    if request.param not in workers_for(request.config):
        pytest.skip("4 workers only when measuring")
    return request.param


def dataset(store: dict[str, Any]) -> MemoraDataset:
    return MemoraDataset(store["path"], "finetune_data", project_id="YOUR_PROJECT", fields=FIELDS, rename=RENAME)


def test_memora_map(benchmark: Any, store: dict[str, Any], rows: int, workers: int) -> None:
    ds = dataset(store)

    def make(ds: MemoraDataset = ds) -> DataLoader:
        kwargs = {"multiprocessing_context": "fork"} if workers else {}
        return DataLoader(ds, batch_size=BATCH, shuffle=True, collate_fn=collate, num_workers=workers, **kwargs)

    measure(benchmark, f"memora_map/{workers}", rows, make)
    if not workers:  # a new dataset: its block cache fills along the epoch
        held_memory("memora_map/0", lambda: make(dataset(store)))


def test_memora_iterable(benchmark: Any, store: dict[str, Any], rows: int, workers: int) -> None:
    stream = MemoraIterableDataset(dataset(store), batch_size=BATCH, seed=0)

    def make(stream: MemoraIterableDataset = stream) -> MemoraLoader:
        kwargs = {"multiprocessing_context": "fork"} if workers else {}
        return MemoraLoader(stream, num_workers=workers, **kwargs)

    measure(benchmark, f"memora_iterable/{workers}", rows, make)
    if not workers:
        held_memory("memora_iterable/0", lambda: make(MemoraIterableDataset(dataset(store), batch_size=BATCH)))


def test_hf_datasets(benchmark: Any, store: dict[str, Any], rows: int, workers: int) -> None:
    datasets = pytest.importorskip("datasets")
    columns = store["columns"]
    path = os.path.join(store["folder"], "hf")
    if not os.path.exists(path):  # the same rows, in HF's own on-disk (memory-mapped Arrow) form
        datasets.Dataset.from_dict({"input_ids": columns["input_ids"], "attention_mask": columns["attention_mask"],
                                    "start_positions": columns["start_token"],
                                    "end_positions": columns["end_token"]}).save_to_disk(path)
    hf = datasets.load_from_disk(path).with_format("torch")

    def make() -> DataLoader:
        kwargs = {"multiprocessing_context": "fork"} if workers else {}
        return DataLoader(hf, batch_size=BATCH, shuffle=True, num_workers=workers, **kwargs)

    measure(benchmark, f"hf_datasets/{workers}", rows, make)
    if not workers:
        held_memory("hf_datasets/0", make)


class TokenizedDataset(Dataset):
    """The guide's dataset, as it is written."""

    def __init__(self, data: list[Any]) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        item = self.data[idx]
        return {
            "input_ids": torch.tensor(item[0]),
            "attention_mask": torch.tensor(item[1]),
            "start_positions": torch.tensor(item[2]),
            "end_positions": torch.tensor(item[3]),
        }


class GuideLoop:
    """The guide's loop: fetch_batch(50 rows) -> TokenizedDataset -> DataLoader, until no rows are left."""

    def __init__(self, client: Memora) -> None:
        self.client = client

    def fetch_batch(self, batch_size: int, offset: int) -> list[Any]:
        result = self.client.nosql.query(collection_name="finetune_data",
                                         filter=f"{offset} <= id < {offset + batch_size}", output_fields=FIELDS)
        return result["data"]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            data_batch = self.fetch_batch(50, offset)
            if not data_batch:
                break
            yield from DataLoader(TokenizedDataset(data_batch), batch_size=BATCH, shuffle=True)
            offset += 50


def test_guide_loop(benchmark: Any, store: dict[str, Any], rows: int) -> None:
    with Memora(project_id="YOUR_PROJECT", path=store["path"], read_only=True) as client:
        measure(benchmark, "guide_loop/0", rows, lambda: GuideLoop(client))
        held_memory("guide_loop/0", lambda: GuideLoop(client))


def test_loader_ratios(request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    """Print this run's samples/s and ratios; the goals are >= 5x HF datasets and >= 50x the guide's loop."""
    if not measuring(request.config) or not RESULTS:
        pytest.skip("ratios need timed runs: --benchmark-enable")
    lines = ["", f"{'loader':<22}{'samples/s':>12}{'x HF (same workers)':>22}{'x HF 0w':>10}{'x guide':>10}"]
    hf0, guide = RESULTS.get("hf_datasets/0"), RESULTS.get("guide_loop/0")
    for name, rate in RESULTS.items():
        hf_same = RESULTS.get("hf_datasets/" + name.split("/")[1])
        cells = [f"{rate / peer:.1f}x" if peer else "n/a" for peer in (hf_same, hf0, guide)]
        lines.append(f"{name:<22}{rate:>12,.0f}{cells[0]:>22}{cells[1]:>10}{cells[2]:>10}")
    lines.append("")
    lines.append("memory held along an epoch, 0 workers (MB: after 5 batches -> at most):")
    for name, (first, most) in MEMORY.items():
        lines.append(f"  {name:<20}{first:8.1f} -> {most:8.1f}")
    with capsys.disabled():
        print("\n".join(lines))
    assert all(np.isfinite(list(RESULTS.values())))
