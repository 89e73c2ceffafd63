"""Extractive question answering on SQuAD: read the JSON, tokenize as the guide does, score answers.

* :func:`read_squad` flattens a SQuAD v1.1 file (``train-v1.1.json``) into examples shaped
  like Hugging Face's ``load_dataset("squad")`` rows.
* :func:`tokenize_squad` is the guide's tokenization — question + context, ``max_length``
  384, ``truncation=True``, ``padding="max_length"`` — and its answer-span mapping with
  ``char_to_token``, corrected: the answer's character offsets are offsets into the
  *context*, so they are looked up in sequence 1 (the guide looks them up in sequence 0,
  the question, and so stores wrong or missing spans). An answer cut off by truncation
  maps to token 0, as in the guide.
* :func:`best_spans` and :func:`squad_scores` turn model logits into answers and score
  them with SQuAD's exact match and F1 (answers normalised as SQuAD's evaluation script
  does: lower case, no punctuation, no articles, single spaces).

>>> squad_scores({"q1": "the Vousurk", "q2": "Vousurk river"}, {"q1": ["Vousurk"], "q2": ["Vousurk"]})
{'exact_match': 50.0, 'f1': 83.33333333333333}
"""

from __future__ import annotations

import collections
import json
import os
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from memora_lite.errors import InvalidArgumentError


def read_squad(source: str | os.PathLike[str] | Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every question of a SQuAD v1.1 document (a path or the parsed JSON), one dict each.

    Each example has ``id``, ``title``, ``context``, ``question`` and ``answers`` =
    ``{"text": [...], "answer_start": [...]}``.

    >>> from memora_lite.testing.squad_text import squad_json
    >>> examples = read_squad(squad_json(2, seed=0))
    >>> sorted(examples[0]), examples[0]["answers"]["text"]
    (['answers', 'context', 'id', 'question', 'title'], ['1569'])
    """
    if isinstance(source, Mapping):
        document = source
    else:
        with open(source, encoding="utf-8") as f:
            document = json.load(f)
    if not isinstance(document, Mapping) or not isinstance(document.get("data"), list):
        raise InvalidArgumentError(f"{source if not isinstance(source, Mapping) else 'document'} is not SQuAD JSON: "
                                   "expected {\"version\": ..., \"data\": [articles]}")
    examples = []
    for article in document["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                examples.append({
                    "id": qa["id"],
                    "title": article.get("title", ""),
                    "context": paragraph["context"],
                    "question": qa["question"],
                    "answers": {"text": [a["text"] for a in qa["answers"]],
                                "answer_start": [a["answer_start"] for a in qa["answers"]]},
                })
    return examples


def tokenize_squad(tokenizer: Any, examples: Sequence[Mapping[str, Any]], max_length: int = 384,
                   offsets: bool = False, chunk: int = 1000, progress: Any = None) -> dict[str, np.ndarray]:
    """Tokenize examples as the guide does, with its answer-span mapping done right.

    Parameters
    ----------
    tokenizer : a Hugging Face fast tokenizer
        ``char_to_token`` needs a fast (Rust) tokenizer, the default for BERT and RoBERTa.
    examples : list of dict
        From :func:`read_squad` (or ``load_dataset("squad")``).
    max_length : int
        Every row is padded or truncated to this many tokens (the guide: 384).
    offsets : bool
        Also return ``offset_mapping`` (n, max_length, 2) and ``context_mask`` (n,
        max_length): where each context token sits in its context, for reading answers back.
    chunk : int
        Examples tokenized per call.
    progress : callable, optional
        Called with the number of examples done after each chunk (e.g. a tqdm's ``update``).

    Returns
    -------
    dict of numpy arrays
        ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the tokenizer makes
        them, as BERT's does), ``start_token``, ``end_token``: the guide's row fields.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidArgumentError(f"{type(tokenizer).__name__} is not a fast tokenizer; answer spans need "
                                   "char_to_token: load it with AutoTokenizer.from_pretrained(..., use_fast=True)")
    parts: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    for lo in range(0, len(examples), chunk):
        batch = examples[lo : lo + chunk]
        encoding = tokenizer([e["question"] for e in batch], [e["context"] for e in batch], max_length=max_length,
                             truncation=True, padding="max_length", return_offsets_mapping=offsets)
        for name in ("input_ids", "attention_mask", "token_type_ids"):
            if name in encoding:
                parts[name].append(np.asarray(encoding[name], dtype=np.int64))
        starts, ends = np.zeros(len(batch), dtype=np.int64), np.zeros(len(batch), dtype=np.int64)
        for i, example in enumerate(batch):
            start_char = example["answers"]["answer_start"][0]
            end_char = start_char + len(example["answers"]["text"][0])
            # Offsets index the context, the pair's second sequence; None (truncated away) -> token 0.
            starts[i] = encoding.char_to_token(i, start_char, sequence_index=1) or 0
            ends[i] = encoding.char_to_token(i, end_char - 1, sequence_index=1) or 0
        parts["start_token"].append(starts)
        parts["end_token"].append(ends)
        if offsets:
            parts["offset_mapping"].append(np.asarray(encoding["offset_mapping"], dtype=np.int64))
            parts["context_mask"].append(np.array([[s == 1 for s in encoding.sequence_ids(i)]
                                                   for i in range(len(batch))], dtype=bool))
        if progress is not None:
            progress(len(batch))
    if not parts:
        raise InvalidArgumentError("tokenize_squad got no examples")
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def best_spans(start_logits: np.ndarray, end_logits: np.ndarray, context_mask: np.ndarray,
               max_answer_tokens: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the context span ``start <= end < start + max_answer_tokens`` with the best start + end logit.

    >>> s = np.array([[0.0, 5.0, 1.0, 0.0]]); e = np.array([[0.0, 0.0, 4.0, 9.0]])
    >>> best_spans(s, e, np.array([[False, True, True, False]]))
    (array([1]), array([2]))
    """
    start_logits, end_logits = np.asarray(start_logits, np.float64), np.asarray(end_logits, np.float64)
    context_mask = np.asarray(context_mask, bool)
    n, length = start_logits.shape
    masked_start = np.where(context_mask, start_logits, -np.inf)
    masked_end = np.where(context_mask, end_logits, -np.inf)
    best = np.full(n, -np.inf)
    starts, ends = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for width in range(min(max_answer_tokens, length)):  # end = start + width, for every start at once
        scores = masked_start[:, : length - width] + masked_end[:, width:]
        at = np.argmax(scores, axis=1)
        value = scores[np.arange(n), at]
        better = value > best
        best[better], starts[better], ends[better] = value[better], at[better], at[better] + width
    return starts, ends


def span_text(context: str, offset_mapping: np.ndarray, start: int, end: int) -> str:
    """The context characters that tokens ``start..end`` cover.

    >>> span_text("on the Vousurk river", np.array([[0, 2], [3, 6], [7, 14], [15, 20]]), 2, 3)
    'Vousurk river'
    """
    return context[int(offset_mapping[start][0]) : int(offset_mapping[end][1])]


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces.

    >>> normalize_answer("The  Vousurk River!")
    'vousurk river'
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCTUATION = frozenset(string.punctuation)


def exact_match(prediction: str, answers: Iterable[str]) -> float:
    """1.0 if the prediction equals any answer after normalisation, else 0.0.

    >>> exact_match("the Vousurk", ["Vousurk"]), exact_match("Vousurk river", ["Vousurk"])
    (1.0, 0.0)
    """
    return float(any(normalize_answer(prediction) == normalize_answer(a) for a in answers))


def f1(prediction: str, answers: Iterable[str]) -> float:
    """The best token-overlap F1 of the prediction against any answer.

    >>> round(f1("Vousurk river", ["Vousurk", "Ostrin"]), 3)
    0.667
    """
    predicted = normalize_answer(prediction).split()
    best = 0.0
    for answer in answers:
        truth = normalize_answer(answer).split()
        common = sum((collections.Counter(predicted) & collections.Counter(truth)).values())
        if common:
            precision, recall = common / len(predicted), common / len(truth)
            best = max(best, 2 * precision * recall / (precision + recall))
        elif not predicted and not truth:
            best = max(best, 1.0)
    return best


def squad_scores(predictions: Mapping[str, str], answers: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Exact match and F1 in percent over every question of ``answers``; a missing prediction scores 0."""
    if not answers:
        raise InvalidArgumentError("squad_scores needs at least one question")
    em = [exact_match(predictions.get(q, ""), golds) for q, golds in answers.items()]
    scores = [f1(predictions.get(q, ""), golds) for q, golds in answers.items()]
    return {"exact_match": 100.0 * sum(em) / len(em), "f1": 100.0 * sum(scores) / len(scores)}
