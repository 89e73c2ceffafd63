"""A SQuAD v1.1-format sample written by this project: invented towns, people and facts, no third-party text.

Each article is one paragraph about an invented town (its founder and founding year,
river, province, population, best-known product, town hall and festival), written from
several sentence templates in a shuffled order, with distractors (a second year, a second
person, a second town) so an answer has to be read from its sentence. Each paragraph has
questions phrased several ways, each answer a span of the paragraph with its character
offset, exactly as in ``train-v1.1.json``. Same seed, same JSON.

>>> data = squad_json(3, seed=0)
>>> data["version"], len(data["data"])
('1.1', 3)
>>> paragraph = data["data"][0]["paragraphs"][0]
>>> qa = paragraph["qas"][0]
>>> answer = qa["answers"][0]
>>> paragraph["context"][answer["answer_start"]:][: len(answer["text"])] == answer["text"]
True
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "st", "tr", "th"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ei", "ou"]
_CODAS = ["", "", "n", "r", "l", "s", "m", "th", "nd", "rk"]
_PROFESSIONS = ["miller", "weaver", "sailor", "blacksmith", "merchant", "carpenter", "potter", "teacher",
                "surveyor", "brewer", "fisher", "printer"]
_PRODUCTS = ["woollen blankets", "blue glass", "smoked cheese", "copper kettles", "pear cider", "oak barrels",
             "clay pipes", "salted herring", "linen thread", "wooden clocks", "honey cakes", "iron nails"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_ADJECTIVES = ["small", "quiet", "busy", "hilly", "old", "windy", "green", "walled"]
_PLACES = ["fish", "grain", "cattle", "flower", "wool", "spice"]


def _word(rng: np.random.Generator, syllables: int) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(_CODAS)).capitalize()


def _article(rng: np.random.Generator, number: int) -> dict[str, Any]:
    town, other_town = _word(rng, 2), _word(rng, 2)
    river, province, festival = _word(rng, 2), _word(rng, 3), _word(rng, 2)
    founder = f"{_word(rng, 2)} {_word(rng, 2)}"
    builder = f"{_word(rng, 1)} {_word(rng, 2)}"
    founded = int(rng.integers(1100, 1800))
    rail = int(rng.integers(1830, 1950))
    built = int(rng.integers(founded + 20, 1900))
    population = f"{int(rng.integers(2, 90)) * 1000 + int(rng.integers(0, 1000)):,}"
    profession = str(rng.choice(_PROFESSIONS))
    product = str(rng.choice(_PRODUCTS))
    month = str(rng.choice(_MONTHS))
    adjective = str(rng.choice(_ADJECTIVES))
    market = str(rng.choice(_PLACES))
    # Each sentence: text pieces, where a (key, value) pair marks an answer span.
    sentences = [
        [f"{town} is a {adjective} town on the ", ("river", river), " river in the province of ",
         ("province", province), "."],
        ["It was founded in ", ("founded", str(founded)), " by ", ("founder", founder), ", a ",
         ("profession", profession), " from ", other_town, "."],
        ["The railway reached the town in ", str(rail), ", and today about ", ("population", population),
         " people live there."],
        [f"{town} is best known for its ", ("product", product), ", sold at the old ", market, " market."],
        ["The town hall was built by ", ("builder", builder), " in ", str(built), " beside the river."],
        ["Every ", ("month", month), f", {town} holds the ", ("festival", festival), " festival."],
    ]
    order = [0, *rng.permutation(np.arange(1, len(sentences))).tolist()]
    context, spans = "", {}
    for s in order:
        for piece in sentences[s]:
            if isinstance(piece, tuple):
                spans[piece[0]] = (len(context), piece[1])
                context += piece[1]
            else:
                context += piece
        context += " "
    context = context.strip()
    questions = {
        "river": [f"On which river is {town}?", f"What river runs through {town}?"],
        "province": [f"In which province is {town}?", f"{town} is in which province?"],
        "founded": [f"When was {town} founded?", f"In what year was {town} founded?"],
        "founder": [f"Who founded {town}?", f"Who was the founder of {town}?"],
        "profession": [f"What was the profession of {founder}?", f"What work did the founder of {town} do?"],
        "population": [f"How many people live in {town}?", f"What is the population of {town}?"],
        "product": [f"What is {town} best known for?", f"What product is {town} famous for?"],
        "builder": [f"Who built the town hall of {town}?", f"Who was the builder of the town hall in {town}?"],
        "month": [f"In which month is the {festival} festival held?", f"When does {town} hold its festival?"],
        "festival": [f"What festival does {town} hold?", f"What is the name of the festival in {town}?"],
    }
    keys = rng.permutation(sorted(questions))[: int(rng.integers(4, 7))].tolist()
    qas = []
    for k in keys:
        start, text = spans[k]
        qas.append({
            "id": f"{number:05d}-{k}",
            "question": str(rng.choice(questions[k])),
            "answers": [{"text": text, "answer_start": start}],
        })
    return {"title": town, "paragraphs": [{"context": context, "qas": qas}]}


def squad_json(articles: int, seed: int = 0) -> dict[str, Any]:
    """A SQuAD v1.1 JSON document (as a dict) of ``articles`` invented articles, 4-6 questions each."""
    rng = np.random.default_rng(seed)
    return {"version": "1.1", "data": [_article(rng, i) for i in range(articles)]}


def write_squad_json(path: str | os.PathLike[str], articles: int, seed: int = 0) -> str:
    """Write :func:`squad_json` to ``path`` (like ``train-v1.1.json``); returns the path."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(squad_json(articles, seed), f, ensure_ascii=False)
    return os.fspath(path)
