"""The filter language: text -> tree (:mod:`.parser`), tree -> key plan (:mod:`.planner`),
tree + rows -> mask (:mod:`.evaluate`).  The grammar is in ``docs/filters.md``.

A short tour:

>>> import numpy as np
>>> from memora_lite.columns import Batch
>>> from memora_lite.models import Field
>>> from memora_lite.query import evaluate, parse, plan, referenced_fields
>>> fields = {"id": Field("id", "INT64", is_primary=True), "score": Field("score", "DOUBLE")}
>>> expr = parse("0 <= id < 50 and score > 0.5", fields, "docs")
>>> str(expr)
'0 <= id and id < 50 and score > 0.5'
>>> plan(expr, "id")
KeyPlan(ranges=[(0, True, 50, False)], points=None, exact=False)
>>> sorted(referenced_fields(expr))
['id', 'score']
>>> batch = Batch({"id": np.array([1, 2, 60]), "score": np.array([0.9, 0.1, 0.9])}, 3)
>>> evaluate(expr, batch).tolist()
[True, False, False]
"""

from memora_lite.query.ast import Expr, referenced_fields
from memora_lite.query.evaluate import evaluate
from memora_lite.query.parser import MAX_DEPTH, MAX_FILTER_LENGTH, parse
from memora_lite.query.planner import KeyPlan, plan

__all__ = [
    "MAX_DEPTH",
    "MAX_FILTER_LENGTH",
    "Expr",
    "KeyPlan",
    "evaluate",
    "parse",
    "plan",
    "referenced_fields",
]
