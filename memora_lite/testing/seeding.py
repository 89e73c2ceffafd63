"""Filling a collection for a test: from rows, columns, or a JSON, JSON Lines or Parquet file.

>>> from memora_lite import Memora
>>> client = Memora(path=":memory:")
>>> seed(client, "docs", [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}])
2
>>> seed(client, "tokens", {"id": [1, 2], "input_ids": [[101, 102], [101, 7]]})
2
>>> client.nosql.query(collection_name="tokens", filter="id == 2")["data"]
[{'id': 2, 'input_ids': [101, 7]}]
>>> client.close()
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from memora_lite.client import Memora
from memora_lite.errors import InvalidArgumentError

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")


def seed(client: Memora, collection_name: str, source: Any, *, base: str | os.PathLike[str] | None = None) -> int:
    """Insert ``source`` into a collection (created if missing); returns the rows inserted.

    Parameters
    ----------
    client : Memora
        The client to fill, e.g. the ``memora`` fixture.
    collection_name : str
        The collection; a missing one is created with primary key ``id`` and a schema
        inferred from the data (or the one a Parquet file carries). Create it first
        for another key or declared types.
    source : list of dict, dict of columns, str or os.PathLike
        Rows, columns, or a file: ``.json`` (an array of row objects), ``.jsonl`` /
        ``.ndjson`` (one row object per line) or ``.parquet``.
    base : str or os.PathLike, optional
        Folder that a relative file path is taken from (the plugin passes the test
        file's folder).
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.path.join(base, source) if base is not None else os.fspath(source)
        suffix = os.path.splitext(path)[1].lower()
        if suffix in JSON_SUFFIXES:
            from memora_lite.interop.jsonl import from_jsonl

            return from_jsonl(client, collection_name, path)
        if suffix in PARQUET_SUFFIXES:
            from memora_lite.interop.parquet import from_parquet

            return from_parquet(client, collection_name, path)
        raise InvalidArgumentError(f"seed file {path!r}: use a .json, .jsonl, .ndjson or .parquet file")
    if isinstance(source, (Mapping, list, tuple)):
        if not source:
            return 0
        return int(client.nosql.insert(collection_name=collection_name, data=source)["insert_count"])
    raise InvalidArgumentError(f"seed source for '{collection_name}' must be rows, a dict of columns or a file path, "
                               f"not {type(source).__name__}")
