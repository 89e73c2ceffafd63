"""Synthetic SQuAD-shaped rows: what the guide stores, made offline and reproducibly.

Each row is a question + context pair tokenized to 384 ids (``[CLS] question [SEP]
context [SEP]`` then padding), its attention mask, and the answer's start and end
token. Token ids follow a Zipf law over a BERT-sized vocabulary, and runs of about
five consecutive rows share one context, as SQuAD's questions do; about 45% of the
384 positions are real tokens.

>>> data = squad_columns(4, seed=0)
>>> data["input_ids"].shape, data["attention_mask"].dtype.name
((4, 384), 'int64')
>>> row = next(squad_rows(1, seed=0))
>>> sorted(row), len(row["input_ids"])
(['attention_mask', 'end_token', 'id', 'input_ids', 'start_token'], 384)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

SEQ_LEN = 384
VOCAB = 30_522
CLS, SEP, PAD = 101, 102, 0
SQUAD_TRAIN_ROWS = 87_599


CHUNK = 4096  # rows are made in chunks, each from its own seed, so any prefix is reproducible


def squad_columns(n: int, seed: int = 0, seq_len: int = SEQ_LEN) -> dict[str, np.ndarray]:
    """``n`` rows as columns: id, input_ids (n, seq_len), attention_mask, start_token, end_token."""
    chunks = [_chunk(min(CHUNK, n - lo), (seed, lo // CHUNK), seq_len) for lo in range(0, n, CHUNK)]
    if not chunks:
        chunks = [_chunk(0, (seed, 0), seq_len)]
    out = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
    out["id"] = np.arange(n, dtype=np.int64)
    return out


def squad_rows(n: int, seed: int = 0, seq_len: int = SEQ_LEN) -> Iterator[dict[str, Any]]:
    """The rows of :func:`squad_columns`, one at a time as the guide builds them: ints and int lists."""
    for lo in range(0, n, CHUNK):
        cols = _chunk(min(CHUNK, n - lo), (seed, lo // CHUNK), seq_len)
        ids, masks = cols["input_ids"].tolist(), cols["attention_mask"].tolist()
        starts, ends = cols["start_token"].tolist(), cols["end_token"].tolist()
        for i in range(len(ids)):
            yield {
                "id": lo + i,
                "start_token": starts[i],
                "end_token": ends[i],
                "input_ids": ids[i],
                "attention_mask": masks[i],
            }


def _chunk(n: int, seed: tuple[int, int], seq_len: int, vocab: int = VOCAB) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    input_ids = np.full((n, seq_len), PAD, dtype=np.int64)
    mask = np.zeros((n, seq_len), dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    end = np.zeros(n, dtype=np.int64)
    context = np.zeros(0, dtype=np.int64)
    for i in range(n):
        if i % 5 == 0 or rng.random() < 0.05:
            context = _zipf_tokens(rng, int(rng.integers(110, 200)), vocab)
        question = _zipf_tokens(rng, int(rng.integers(6, 20)), vocab)
        tokens = np.concatenate([[CLS], question, [SEP], context, [SEP]])[:seq_len]
        input_ids[i, : len(tokens)] = tokens
        mask[i, : len(tokens)] = 1
        offset = len(question) + 2
        start[i] = offset + int(rng.integers(0, max(1, len(context) - 10)))
        end[i] = min(start[i] + int(rng.integers(0, 6)), len(tokens) - 2)
    return {"input_ids": input_ids, "attention_mask": mask, "start_token": start, "end_token": end}


def _zipf_tokens(rng: np.random.Generator, count: int, vocab: int) -> np.ndarray:
    # Ids below ~1000 are BERT's special and unused tokens; real word pieces start there.
    return 1000 + (rng.zipf(1.3, size=count) - 1) % (vocab - 1000)
