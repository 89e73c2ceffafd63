"""``client.nosql``: the Memora cloud client's NoSQL calls, name for name, on the local store.

Each method checks its arguments, then calls the collection's storage engine.
Errors name the collection, field or value at fault; nothing is written when a
call is rejected.

>>> from memora_lite import Memora
>>> client = Memora(path=":memory:")
>>> client.nosql.insert(collection_name="docs", data=[{"id": i, "n": i * i} for i in range(5)])
{'insert_count': 5, 'ids': [0, 1, 2, 3, 4]}
>>> [r["n"] for r in client.nosql.query(collection_name="docs", filter="1 <= id < 3")["data"]]
[1, 4]
>>> client.nosql.query(collection_name="docs", filter="n > 3", output_fields=["count(*)"])["data"]
[{'count(*)': 3}]
>>> client.close()
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from memora_lite._rows import build_row, build_rows
from memora_lite.errors import DuplicateIdError, InvalidArgumentError, InvalidNameError
from memora_lite.models import Field
from memora_lite.results import Row, rows_from_columns, to_numpy
from memora_lite.schema import Schema
from memora_lite.storage.engine import CollectionEngine
from memora_lite.storage.store import Store

COUNT = "count(*)"
OUTPUTS = ("rows", "numpy")


class NoSQL:
    """The ``nosql`` namespace of a :class:`~memora_lite.Memora` client."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.RLock()

    # -- collections -------------------------------------------------------------------------------

    def create_collection(self, collection_name: str, primary_key: str = "id",
                          fields: Sequence[Field] | None = None) -> None:
        """Create a collection; with no ``fields`` it has only an INT64 key and grows on first insert.

        Creating an existing collection with the same fields does nothing.
        """
        with self._lock:
            schema = Schema.declare(primary_key, fields, collection_name)
            if not fields:
                schema = Schema(schema.fields, inferred=True)
            self._store.create(collection_name, schema)

    def has_collection(self, collection_name: str) -> bool:
        """Whether the collection exists; a name no collection could have is simply absent."""
        if not isinstance(collection_name, str):
            raise InvalidNameError(f"collection name must be a str, not {type(collection_name).__name__}")
        return self._store.exists(collection_name)

    def drop_collection(self, collection_name: str) -> None:
        with self._lock:
            self._store.drop(collection_name)

    def list_collections(self) -> list[str]:
        return self._store.names()

    def describe_collection(self, collection_name: str) -> dict[str, Any]:
        """Schema, primary key and row count, plus storage figures."""
        engine = self._store.engine(collection_name)
        stats = engine.stats()
        return {
            "collection_name": collection_name,
            "primary_key": engine.schema.primary_key,
            "fields": [f.to_dict() for f in engine.schema.fields],
            "schema_inferred": engine.schema.inferred,
            **stats,
        }

    # -- writes ------------------------------------------------------------------------------------

    def insert(self, collection_name: str, data: Any) -> dict[str, Any]:
        """Insert one row dict, a list of row dicts, or a dict of equal-length columns.

        A missing collection is created with primary key ``id`` and a schema inferred
        from ``data``. An existing key raises DuplicateIdError (use :meth:`upsert`).
        """
        engine = self._store.engines.get(collection_name) if type(collection_name) is str else None
        if engine is not None:  # one plain row, the guide's call: checked and framed in one C pass
            stored = engine.insert_row(data)
            if stored is not None:
                return {"insert_count": 1, "ids": [stored[0]]}
        with self._lock:
            batch = engine.schema.rows_to_batch_fast(data) if engine is not None else None
            if batch is not None:  # a list of plain rows: checked and packed into columns in C
                ids = engine.insert(batch, None)
                return {"insert_count": len(ids), "ids": ids}
            engine, batch, grown = self._prepare(collection_name, data)
            ids = engine.insert(batch, grown)
            return {"insert_count": len(ids), "ids": ids}

    def upsert(self, collection_name: str, data: Any) -> dict[str, Any]:
        """Insert rows, replacing stored rows that have the same primary key."""
        with self._lock:
            engine = self._store.engines.get(collection_name) if type(collection_name) is str else None
            if engine is not None:
                stored = engine.upsert_row(data)
                if stored is not None:
                    return {"upsert_count": 1, "ids": [stored[0]]}
                batch = engine.schema.rows_to_batch_fast(data)
                if batch is not None:
                    ids = engine.upsert(batch, None)
                    return {"upsert_count": len(ids), "ids": ids}
            engine, batch, grown = self._prepare(collection_name, data)
            ids = engine.upsert(batch, grown)
            return {"upsert_count": len(ids), "ids": ids}

    def _prepare(self, collection_name: str, data: Any) -> tuple[CollectionEngine, Any, Schema | None]:
        if self._store.exists(collection_name):
            engine = self._store.engine(collection_name)
            batch, schema = engine.to_batch(data)
            return engine, batch, (schema if schema is not engine.schema else None)
        self._store._check_name(collection_name)
        schema = Schema.infer(data, "id", collection_name)
        batch, schema = schema.to_batch(data, collection_name)
        keys = batch.columns["id"].tolist()
        if len(set(keys)) != len(keys):
            raise DuplicateIdError(f"collection '{collection_name}': a primary key appears twice in one call")
        return self._store.create(collection_name, schema), batch, None

    def delete(self, collection_name: str, key: Any = None, ids: Sequence[Any] | None = None,
               filter: str | None = None) -> dict[str, int]:
        """Delete by ``key``, by ``ids`` or by ``filter`` (exactly one of them)."""
        with self._lock:
            engine = self._store.engine(collection_name)
            given = [name for name, v in (("key", key), ("ids", ids), ("filter", filter)) if v is not None]
            if len(given) != 1:
                raise InvalidArgumentError(f"delete on '{collection_name}' takes exactly one of key=, ids=, filter=; "
                                  f"got {', '.join(given) or 'none'}")
            if filter is not None:
                _check_filter(filter, collection_name)
                keys = engine.query(filter, []).columns[engine.schema.primary_key].tolist()
            else:
                keys = _keys(key, ids, collection_name, engine.schema)
            return {"delete_count": engine.delete(keys)}

    def flush(self, collection_name: str | None = None) -> None:
        """Write buffered rows to segments and fsync: everything so far survives power loss."""
        with self._lock:
            names = [collection_name] if collection_name is not None else self._store.names()
            for name in names:
                self._store.engine(name).flush()

    def compact(self, collection_name: str) -> dict[str, int]:
        """Merge segments and drop deleted rows; returns segment counts before and after."""
        with self._lock:
            return self._store.engine(collection_name).compact()

    # -- reads -------------------------------------------------------------------------------------

    def query(self, collection_name: str, filter: str = "", output_fields: Sequence[str] | None = None,
              limit: int | None = None, offset: int = 0, output: str = "rows") -> dict[str, Any]:
        """Rows matching ``filter``, in ascending primary-key order.

        ``output="rows"``: ``{"data": [Row, ...]}``, each a dict that also indexes by
        position in ``output_fields`` order. ``output="numpy"``: ``{"data": {field:
        ndarray}}``, fixed-length int arrays as 2-D arrays in their stored dtype.
        ``output_fields=["count(*)"]`` gives ``[{"count(*)": n}]``.
        """
        engine = self._store.engine(collection_name)
        _check_filter(filter, collection_name)
        _check_window(limit, offset, collection_name)
        if output not in OUTPUTS:
            raise InvalidArgumentError(f"query on '{collection_name}': output={output!r}; use 'rows' or 'numpy'")
        if output_fields is not None and list(output_fields) == [COUNT]:
            if not filter.strip() and limit is None and not offset:
                return {"data": [Row({COUNT: engine.count()}, (COUNT,))]}
            n = len(engine.query(filter, [], limit, offset))
            return {"data": [Row({COUNT: n}, (COUNT,))]}
        order = _output_order(engine.schema, output_fields, collection_name)
        columns = engine.read(filter, order, limit, offset, output)
        return {"data": columns if output == "numpy" else rows_from_columns(columns, order)}

    def get(self, collection_name: str, key: Any = None, ids: Sequence[Any] | None = None,
            output_fields: Sequence[str] | None = None, output: str = "rows") -> dict[str, Any]:
        """Rows by primary key (``key=`` one, ``ids=`` many), in the order asked; missing keys are skipped."""
        engine = self._store.engine(collection_name)
        if (key is None) == (ids is None):
            raise InvalidArgumentError(f"get on '{collection_name}' takes exactly one of key= or ids=")
        if output not in OUTPUTS:
            raise InvalidArgumentError(f"get on '{collection_name}': output={output!r}; use 'rows' or 'numpy'")
        if output == "rows":  # row by row: a row costs the same wherever its key lies
            names = engine.schema.name_tuple if output_fields is None else tuple(
                _output_order(engine.schema, output_fields, collection_name))
            if key is not None:
                values = engine.get_one(_key(key, collection_name, engine.schema), names)
                return {"data": [build_row(Row, names, values)] if values is not None else []}
            columns = engine.get_columns(_keys(None, ids, collection_name, engine.schema), names)
            return {"data": build_rows(Row, names, columns)}
        keys = _keys(key, ids, collection_name, engine.schema)
        order = _output_order(engine.schema, output_fields, collection_name)
        return {"data": to_numpy(engine.get(keys, order), order)}


def _keys(key: Any, ids: Sequence[Any] | None, collection: str, schema: Schema) -> list[Any]:
    keys = [key] if key is not None else ids
    if isinstance(keys, np.ndarray):
        keys = keys.tolist()
    if not isinstance(keys, (list, tuple)):
        raise InvalidArgumentError(f"collection '{collection}': ids= must be a list of primary keys, "
                          f"not {type(keys).__name__}")
    return [_key(k, collection, schema) for k in keys]


def _key(key: Any, collection: str, schema: Schema) -> Any:
    """One primary key as a plain int or str, of the type the collection's keys have."""
    wanted = schema.key_type
    if type(key) is wanted:
        return key
    if isinstance(key, np.integer) and wanted is int:
        return key.item()
    if isinstance(key, wanted) and not isinstance(key, bool):
        return key
    kind = "an int" if wanted is int else "a str"
    raise InvalidArgumentError(f"collection '{collection}': primary key {key!r} must be {kind}, as every key "
                               f"of field '{schema.primary_key}' is")


def _check_filter(filter: Any, collection: str) -> None:
    if not isinstance(filter, str):
        raise InvalidArgumentError(f"query on '{collection}': filter must be a str, not {type(filter).__name__}")


def _check_window(limit: Any, offset: Any, collection: str) -> None:
    for name, value in (("limit", limit), ("offset", offset)):
        if value is None and name == "limit":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgumentError(f"query on '{collection}': {name}={value!r}; use an int >= 0")


def _output_order(schema: Schema, output_fields: Sequence[str] | None, collection: str) -> list[str]:
    """Field names in output order: as asked, then the primary key if it was not asked for."""
    if output_fields is None:
        return schema.names
    if isinstance(output_fields, str) or not all(isinstance(f, str) for f in output_fields):
        raise InvalidArgumentError(f"query on '{collection}': output_fields must be a list of field names, "
                          f"got {output_fields!r}")
    names = list(dict.fromkeys(output_fields))
    for name in names:
        if name == COUNT:
            raise InvalidArgumentError(f"query on '{collection}': 'count(*)' must be the only output field")
        schema.field(name, collection)
    if schema.primary_key not in names:
        names.append(schema.primary_key)
    return names
