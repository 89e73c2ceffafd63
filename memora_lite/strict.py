"""Strict mode: refuse locally what the Memora cloud refuses, so tests fail the way production would.

``Memora(..., strict=True)`` swaps the client's ``nosql`` namespace for
:class:`StrictNoSQL`, which checks each call against the cloud's documented
limits before running it. The cloud runs on Milvus; each limit below names the
Milvus or pymilvus page that documents it (docs/testing.md#strict-mode lists them
too). Limits the local store already enforces in every mode (name lengths,
``VARCHAR`` max_length 65,535, vector dim 32,768, ``ARRAY`` max_capacity 4,096)
are not repeated here.

>>> from memora_lite import Memora, StrictModeError
>>> client = Memora(path=":memory:", strict=True)
>>> _ = client.nosql.insert(collection_name="docs", data=[{"id": i} for i in range(3)])
>>> len(client.nosql.query(collection_name="docs", filter="id >= 0", limit=10)["data"])
3
>>> try:
...     client.nosql.query(collection_name="docs", filter="id >= 0", offset=16_000, limit=500)
... except StrictModeError as exc:
...     print(str(exc)[:75])
query on 'docs': offset + limit = 16500 exceeds the cloud's query window of
>>> client.close()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from memora_lite.errors import StrictModeError
from memora_lite.models import Field
from memora_lite.nosql import COUNT, NoSQL

QUERY_WINDOW = 16_384
"""Most rows one query may skip plus return: ``offset + limit <= 16,384``.

Source: pymilvus ``query()`` reference ("the sum of offset and limit should be less
than 16384") and Milvus' ``quotaAndLimits.limits.maxQueryResultWindow``."""

REQUEST_BYTES = 64 << 20
"""Largest insert or upsert request: 64 MB. Source: Milvus "Limits" page, Operation / Insert."""

MAX_FIELDS = 64
"""Most fields in one collection. Source: Milvus "Limits" page, Number of resources / Field."""

_LIMITS_DOC = "see docs/testing.md#strict-mode"


class StrictNoSQL(NoSQL):
    """The ``nosql`` namespace with the cloud's limits enforced before each call.

    Every refusal is a :class:`~memora_lite.StrictModeError` raised before anything
    is read or written. Arguments of the wrong type pass through to the ordinary
    checks, which name them.
    """

    def create_collection(self, collection_name: str, primary_key: str = "id",
                          fields: Sequence[Field] | None = None) -> None:
        if fields is not None and len(fields) > MAX_FIELDS:
            raise StrictModeError(f"create_collection '{collection_name}': {len(fields)} fields exceed the cloud's "
                                  f"limit of {MAX_FIELDS} per collection ({_LIMITS_DOC})")
        super().create_collection(collection_name, primary_key, fields)

    def insert(self, collection_name: str, data: Any) -> dict[str, Any]:
        self._check_write("insert", collection_name, data)
        return super().insert(collection_name, data)

    def upsert(self, collection_name: str, data: Any) -> dict[str, Any]:
        self._check_write("upsert", collection_name, data)
        return super().upsert(collection_name, data)

    def query(self, collection_name: str, filter: str = "", output_fields: Sequence[str] | None = None,
              limit: int | None = None, offset: int = 0, output: str = "rows") -> dict[str, Any]:
        counting = output_fields is not None and list(output_fields) == [COUNT]
        if isinstance(filter, str) and not filter.strip() and limit is None and not counting:
            raise StrictModeError(f"query on '{collection_name}': an empty filter needs a limit; the cloud answers "
                                  f"'empty expression should be used with limit' ({_LIMITS_DOC})")
        if _is_int(offset) and offset and limit is None:
            raise StrictModeError(f"query on '{collection_name}': offset={offset} needs a limit; the cloud applies "
                                  f"offset only together with limit ({_LIMITS_DOC})")
        if _is_int(limit) and _is_int(offset) and limit + offset > QUERY_WINDOW:
            raise StrictModeError(f"query on '{collection_name}': offset + limit = {offset + limit} exceeds the "
                                  f"cloud's query window of {QUERY_WINDOW:,} rows; page by primary key range "
                                  f"instead ({_LIMITS_DOC})")
        return super().query(collection_name, filter, output_fields, limit, offset, output)

    def _check_write(self, call: str, collection_name: str, data: Any) -> None:
        size = payload_bytes(data)
        if size > REQUEST_BYTES:
            raise StrictModeError(f"{call} into '{collection_name}': the request holds about {size:,} bytes, over "
                                  f"the cloud's {REQUEST_BYTES >> 20} MB per request; split it ({_LIMITS_DOC})")
        names = _field_names(data)
        if len(names) > MAX_FIELDS:  # cheap test first: only a wide call can break the limit
            existing = (self.describe_collection(collection_name)["fields"]
                        if self.has_collection(collection_name) else [])
            total = len(names | {f["field_name"] for f in existing})
            if total > MAX_FIELDS:
                raise StrictModeError(f"{call} into '{collection_name}': the collection would have {total} fields, "
                                      f"over the cloud's limit of {MAX_FIELDS} ({_LIMITS_DOC})")


def payload_bytes(value: Any) -> int:
    """Estimated request size of ``value``: numbers 8 bytes, strings their UTF-8 length.

    Lists of numbers are sized from their length without visiting every element,
    and numpy arrays by ``nbytes``, so the estimate stays cheap for large batches.

    >>> payload_bytes({"id": 1, "text": "héllo", "ids": [1, 2, 3]})  # (2 + 8) + (4 + 6) + (3 + 3 * 8)
    47
    """
    if value is None or isinstance(value, (bool, np.bool_)):
        return 1
    if isinstance(value, (int, float, np.number)):
        return 8
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, np.ndarray) and value.dtype != object:
        return int(value.nbytes)
    if isinstance(value, Mapping):
        return sum(payload_bytes(k) + payload_bytes(v) for k, v in value.items())
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) and isinstance(value[0], (int, float)) and not isinstance(value[0], bool):
            return 8 * len(value)
        return sum(payload_bytes(v) for v in value)
    return 8


def _field_names(data: Any) -> set[str]:
    if isinstance(data, Mapping):
        return set(data)
    if isinstance(data, (list, tuple)):
        return {name for row in data if isinstance(row, Mapping) for name in row}
    return set()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
