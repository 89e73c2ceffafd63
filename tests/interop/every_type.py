"""A collection holding every field type, nulls, empty arrays and both array shapes (shared by tests/interop)."""

from __future__ import annotations

from typing import Any

import numpy as np

from memora_lite import Memora
from memora_lite.models import DataType, Field

FIELDS = [
    Field("id", DataType.INT64, is_primary=True),
    Field("flag", DataType.BOOL),
    Field("i8", DataType.INT8),
    Field("i16", DataType.INT16, nullable=True),
    Field("i32", DataType.INT32),
    Field("f32", DataType.FLOAT),
    Field("f64", DataType.DOUBLE, nullable=True),
    Field("text", DataType.VARCHAR, max_length=64, nullable=True),
    Field("meta", DataType.JSON, nullable=True),
    Field("tokens", DataType.ARRAY, element_data_type=DataType.INT16, max_capacity=16),
    Field("mask", DataType.ARRAY, element_data_type=DataType.INT8, max_capacity=8),
    Field("scores", DataType.ARRAY, element_data_type=DataType.FLOAT, max_capacity=4, nullable=True),
    Field("words", DataType.ARRAY, element_data_type=DataType.VARCHAR, max_capacity=4),
    Field("maybe", DataType.ARRAY, element_data_type=DataType.INT32, max_capacity=4, nullable=True),
    Field("vec", DataType.FLOAT_VECTOR, dim=4, nullable=True),
]


def make_row(i: int) -> dict[str, Any]:
    return {
        "id": i * 3,
        "flag": i % 2 == 0,
        "i8": -128 + i % 256,
        "i16": None if i % 5 == 0 else 30_000 - i,
        "i32": 2**31 - 1 - i,
        "f32": float(np.float32(i / 7)),
        "f64": None if i % 7 == 3 else i / 3,
        "text": None if i % 4 == 1 else f"héllo {i} \"quoted\"\n",
        "meta": None if i % 6 == 2 else {"n": i, "tags": ["a", "b"][: i % 3], "deep": {"x": [1.5, None]}},
        "tokens": [101, *range(i % 9), 102],
        "mask": [1, 1, 0, 0],
        "scores": None if i % 3 == 0 else [0.5 * i, -1.25][: i % 3],
        "words": ["w"] * (i % 3),
        "maybe": None if i % 2 else [],  # nulls and empty arrays only: the width-0 case
        "vec": None if i == 4 else [float(np.float32(i + k / 3)) for k in range(4)],
    }


ROWS = 57  # crosses the 25-row batches the tests read with


def all_rows(client: Memora, name: str) -> list[dict[str, Any]]:
    return [dict(r) for r in client.nosql.query(collection_name=name)["data"]]


def same_collection(client: Memora, a: str, b: str) -> None:
    """Same fields (types, widths, nullability), same rows, same numpy dtypes."""
    fa = client.nosql.describe_collection(a)["fields"]
    fb = client.nosql.describe_collection(b)["fields"]
    assert fb == fa
    assert all_rows(client, b) == all_rows(client, a)
    na = client.nosql.query(collection_name=a, output="numpy")["data"]
    nb = client.nosql.query(collection_name=b, output="numpy")["data"]
    assert {k: v.dtype for k, v in nb.items()} == {k: v.dtype for k, v in na.items()}
