"""Hugging Face Trainer: train_dataset= a MemoraDataset or a MemoraIterableDataset, on a tiny BERT."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from memora_lite import Memora  # noqa: E402
from memora_lite.testing.squad import squad_columns  # noqa: E402
from memora_lite.training import MemoraDataset, MemoraIterableDataset, collate  # noqa: E402

SEQ = 64
RENAME = {"start_token": "start_positions", "end_token": "end_positions"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    rows = squad_columns(64, seed=1, seq_len=SEQ)
    rows["start_token"] = np.minimum(rows["start_token"], SEQ - 1)  # answers cut off by truncation point at the end
    path = os.path.join(tmp_path_factory.mktemp("trainer"), "store")
    with Memora(path=path) as client:
        client.nosql.insert(collection_name="finetune_data", data=rows)
    yield path


def tiny_bert() -> object:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30_522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=SEQ)
    return transformers.BertForQuestionAnswering(config)


def train(tmp_path: os.PathLike[str], dataset: object, **kwargs: object) -> object:
    args = transformers.TrainingArguments(
        output_dir=os.fspath(tmp_path), per_device_train_batch_size=8, max_steps=6, learning_rate=1e-3,
        logging_steps=1, save_strategy="no", report_to="none", use_cpu=True, disable_tqdm=True, **kwargs)
    trainer = transformers.Trainer(model=tiny_bert(), args=args, train_dataset=dataset, data_collator=collate)
    trainer.train()
    return trainer


@pytest.mark.parametrize("remove_unused_columns", [False, True])
def test_trainer_trains_from_a_map_style_dataset(store: str, tmp_path: os.PathLike[str],
                                                 monkeypatch: pytest.MonkeyPatch, remove_unused_columns: bool) -> None:
    ds = MemoraDataset(store, "finetune_data", rename=RENAME)
    calls: list[int] = []
    original = ds.__getitems__
    monkeypatch.setattr(ds, "__getitems__", lambda indices: calls.append(len(indices)) or original(indices))
    trainer = train(tmp_path, ds, remove_unused_columns=remove_unused_columns)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert trainer.state.global_step == 6 and len(losses) == 6 and all(np.isfinite(losses))
    assert set(calls) == {8}  # each batch of 8 fetched with one call, not one per row


def test_trainer_trains_from_an_iterable_dataset_of_rows(store: str, tmp_path: os.PathLike[str]) -> None:
    stream = MemoraIterableDataset(MemoraDataset(store, "finetune_data", rename=RENAME), batch_size=None, seed=3)
    trainer = train(tmp_path, stream)
    assert trainer.state.global_step == 6
    # 6 batches of 8 rows were trained on, in this process; accelerate's loader reads one batch ahead.
    assert stream.epoch == 0 and stream.position in (48, 56)
