"""Reading a whole collection in bounded memory: primary-key-ordered chunks of numpy columns.

Every exporter (Arrow, Parquet, JSON Lines, Hugging Face) reads through
:func:`iter_chunks`. It first reads the primary-key column alone, then asks for
each run of ``batch_rows`` keys with a key-range filter, which the range index
answers by reading only those rows; so memory holds one chunk of rows plus the
keys, whatever the collection's size. A user filter is checked up front (errors
point into the text as written) and applied within each range.

>>> from memora_lite import Memora
>>> client = Memora(path=":memory:")
>>> _ = client.nosql.insert(collection_name="t", data=[{"id": i, "tags": [i] * (i % 3)} for i in range(5)])
>>> [(c.size, c.columns["id"].tolist()) for c in iter_chunks(client, "t", batch_rows=2)]
[(2, [0, 1]), (2, [2, 3]), (1, [4])]
>>> chunk = next(iter_chunks(client, "t", filter="id >= 3"))
>>> chunk.rows()
[{'id': 3, 'tags': []}, {'id': 4, 'tags': [4]}]
>>> client.close()
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memora_lite.client import Memora
from memora_lite.errors import InvalidArgumentError
from memora_lite.models import DataType, Field
from memora_lite.query import parse
from memora_lite.schema import Schema

DEFAULT_BATCH_ROWS = 16_384


@dataclass
class Chunk:
    """Rows of one key range: plain column arrays plus explicit null masks.

    Attributes
    ----------
    fields : list of Field
        The columns' fields, in output order.
    columns : dict of str to numpy.ndarray
        As ``query(..., output="numpy")`` gives them, with masked arrays unmasked:
        2-D arrays for fixed-width ``ARRAY``/``FLOAT_VECTOR`` columns, else 1-D
        (object arrays for strings, JSON and ragged arrays; null slots hold None).
    nulls : dict of str to numpy.ndarray
        A bool mask (True = null) for each column that holds a null in this chunk.
    size : int
        Number of rows.
    """

    fields: list[Field]
    columns: dict[str, np.ndarray]
    nulls: dict[str, np.ndarray]
    size: int

    def rows(self) -> list[dict[str, Any]]:
        """The rows as plain Python dicts (lists for arrays, None for nulls)."""
        names = [f.field_name for f in self.fields]
        values = []
        for f in self.fields:
            column = self.columns[f.field_name]
            if f.data_type is DataType.ARRAY and column.ndim == 1:  # ragged: one array (or None) per row
                items = [None if v is None else v.tolist() for v in column]
            else:
                items = column.tolist()
            for i in np.flatnonzero(self.nulls[f.field_name]).tolist() if f.field_name in self.nulls else ():
                items[i] = None
            values.append(items)
        return [dict(zip(names, row)) for row in zip(*values)]


def collection_schema(client: Memora, collection_name: str) -> Schema:
    """The collection's schema, rebuilt from ``describe_collection``."""
    return Schema.from_dict(client.nosql.describe_collection(collection_name))


def iter_chunks(client: Memora, collection_name: str, filter: str = "", output_fields: Sequence[str] | None = None,
                batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[Chunk]:
    """Rows matching ``filter`` in ascending primary-key order, at most ``batch_rows`` per :class:`Chunk`.

    Parameters
    ----------
    client : Memora
        An open client.
    collection_name : str
        The collection to read.
    filter : str
        A filter expression (docs/filters.md); empty reads every row.
    output_fields : sequence of str, optional
        Fields to read (the primary key is always included, first); default all.
    batch_rows : int
        Most rows per chunk.
    """
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidArgumentError(f"batch_rows={batch_rows!r}; use an int >= 1")
    schema = collection_schema(client, collection_name)
    pk = schema.primary_key
    fields = [schema.field(pk)] + [schema.field(n, collection_name) for n in (output_fields or schema.names)
                                   if n != pk]
    if not isinstance(filter, str):
        raise InvalidArgumentError(f"filter must be a str, not {type(filter).__name__}")
    if filter.strip():
        parse(filter, schema.by_name, collection_name)  # raise here, with positions in the text as written
    names = [f.field_name for f in fields]
    keys = client.nosql.query(collection_name, output_fields=[pk], output="numpy")["data"][pk]
    for start in range(0, len(keys), batch_rows):
        lo, hi = keys[start], keys[min(start + batch_rows, len(keys)) - 1]
        where = f"{_literal(lo)} <= {pk} <= {_literal(hi)}"
        if filter.strip():
            where = f"{where} and ({filter})"
        data = client.nosql.query(collection_name, filter=where, output_fields=names, output="numpy")["data"]
        size = len(data[pk])
        if size:
            yield _chunk(client, collection_name, fields, data, where, size)


def _literal(key: Any) -> str:
    """A primary key as filter text: ints as digits, strings quoted and escaped."""
    return json.dumps(key, ensure_ascii=False) if isinstance(key, str) else str(int(key))


def _chunk(client: Memora, collection_name: str, fields: list[Field], data: dict[str, np.ndarray],
           where: str, size: int) -> Chunk:
    columns: dict[str, np.ndarray] = {}
    nulls: dict[str, np.ndarray] = {}
    pk = fields[0].field_name
    for f in fields:
        name = f.field_name
        column = data[name]
        mask: np.ndarray | None = None
        if isinstance(column, np.ma.MaskedArray):
            full = np.ma.getmaskarray(column)
            column = column.data
            mask = full if full.ndim == 1 else full[:, 0] if full.shape[1] else None
        elif column.dtype == object and f.nullable:
            mask = np.fromiter((v is None for v in column), dtype=bool, count=len(column))
        if f.nullable and column.ndim == 2 and column.shape[1] == 0:
            # Width-0 rows: numpy results cannot say which were null and which empty, so ask.
            null_keys = client.nosql.query(collection_name, filter=f"({where}) and {name} is null",
                                           output_fields=[pk], output="numpy")["data"][pk]
            mask = np.isin(data[pk], null_keys)
        columns[name] = column
        if mask is not None and mask.any():
            nulls[name] = mask
    return Chunk(fields, columns, nulls, size)
