"""Strict mode refuses what the cloud refuses, before touching the store; the default mode does not."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from memora_lite import InvalidArgumentError, Memora, MemoraError, StrictModeError
from memora_lite.models import DataType, Field
from memora_lite.strict import MAX_FIELDS, QUERY_WINDOW, REQUEST_BYTES, StrictNoSQL, payload_bytes


@pytest.fixture
def strict() -> Iterator[Memora]:
    client = Memora(path=":memory:", strict=True)
    client.nosql.insert(collection_name="docs", data=[{"id": i, "n": i} for i in range(5)])
    yield client
    client.close()


def test_the_query_window_is_offset_plus_limit_up_to_16384(strict: Memora) -> None:
    q = strict.nosql.query
    assert q(collection_name="docs", filter="id >= 0", offset=QUERY_WINDOW - 5, limit=5)["data"] == []
    assert len(q(collection_name="docs", filter="id >= 0", limit=QUERY_WINDOW)["data"]) == 5
    with pytest.raises(StrictModeError, match="16,384"):
        q(collection_name="docs", filter="id >= 0", offset=QUERY_WINDOW - 5, limit=6)
    with pytest.raises(StrictModeError, match="16,384"):
        q(collection_name="docs", filter="id >= 0", limit=QUERY_WINDOW + 1)


def test_an_empty_filter_needs_a_limit_except_for_count(strict: Memora) -> None:
    q = strict.nosql.query
    with pytest.raises(StrictModeError, match="empty filter needs a limit"):
        q(collection_name="docs")
    with pytest.raises(StrictModeError, match="empty filter"):
        q(collection_name="docs", filter="   ")
    assert len(q(collection_name="docs", limit=3)["data"]) == 3
    assert q(collection_name="docs", output_fields=["count(*)"])["data"] == [{"count(*)": 5}]
    with pytest.raises(StrictModeError, match="offset=2 needs a limit"):
        q(collection_name="docs", filter="id >= 0", offset=2)


def test_a_request_over_64_mb_is_refused_and_nothing_is_written(strict: Memora) -> None:
    n = REQUEST_BYTES // 8 // 4 + 1
    big = {"id": np.arange(n), "a": np.zeros(n), "b": np.zeros(n), "c": np.zeros(n)}
    assert payload_bytes(big) > REQUEST_BYTES
    with pytest.raises(StrictModeError, match="64 MB"):
        strict.nosql.insert(collection_name="big", data=big)
    with pytest.raises(StrictModeError, match="64 MB"):
        strict.nosql.upsert(collection_name="docs", data=[{"id": 1, "n": 1, "blob": "x" * (REQUEST_BYTES + 1)}])
    assert not strict.nosql.has_collection("big")
    assert strict.nosql.get(collection_name="docs", ids=[1])["data"] == [{"id": 1, "n": 1}]


def test_more_than_64_fields_are_refused_on_create_and_on_insert(strict: Memora) -> None:
    fields = [Field("id", DataType.INT64, is_primary=True)] + [Field(f"f{i}", DataType.INT8) for i in range(MAX_FIELDS)]
    with pytest.raises(StrictModeError, match="65 fields"):
        strict.nosql.create_collection("wide", fields=fields)
    strict.nosql.create_collection("wide", fields=fields[:MAX_FIELDS])
    row = {f.field_name: 0 for f in fields[:MAX_FIELDS]}
    strict.nosql.insert(collection_name="wide", data=row | {"id": 1})
    with pytest.raises(StrictModeError, match="would have 66 fields"):
        strict.nosql.insert(collection_name="docs", data={"id": 9, **{f"x{i}": i for i in range(MAX_FIELDS)}})
    assert strict.nosql.get(collection_name="docs", ids=[9])["data"] == []


def test_wrongly_typed_arguments_still_get_the_ordinary_errors(strict: Memora) -> None:
    with pytest.raises(InvalidArgumentError, match="limit"):
        strict.nosql.query(collection_name="docs", filter="id > 0", limit="10")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="filter must be a str"):
        strict.nosql.query(collection_name="docs", filter=None, limit=1)  # type: ignore[arg-type]


def test_the_default_client_allows_what_strict_mode_refuses() -> None:
    with Memora(path=":memory:") as client:
        client.nosql.insert(collection_name="docs", data={"id": 1})
        assert client.nosql.query(collection_name="docs", offset=QUERY_WINDOW, limit=QUERY_WINDOW)["data"] == []
        assert len(client.nosql.query(collection_name="docs")["data"]) == 1
        assert not isinstance(client.nosql, StrictNoSQL)


def test_strict_mode_errors_are_memora_errors_and_value_errors() -> None:
    assert issubclass(StrictModeError, MemoraError) and issubclass(StrictModeError, ValueError)
    with pytest.raises(InvalidArgumentError, match="strict="):
        Memora(path=":memory:", strict="yes")
