"""Apache Arrow in and out of collections (needs pyarrow: ``pip install 'memora_lite[arrow]'``).

A collection becomes Arrow with these types; every Arrow field also carries its
memora_lite field definition in its metadata (key ``memora_lite.field``), so
:func:`from_arrow` rebuilds the exact schema from our own exports, Parquet files
included:

==================================== =================================================
memora_lite                          Arrow
==================================== =================================================
BOOL, INT8 ... INT64, FLOAT, DOUBLE  bool, int8 ... int64, float32, float64
VARCHAR                              string
JSON                                 string holding JSON text
ARRAY of T                           list<T>, the stored element type (INT16 -> int16)
FLOAT_VECTOR of dim d                fixed_size_list<float32>[d]
==================================== =================================================

``ARRAY`` is always a variable-length list, never a fixed-size one, even when every
row has the same length: one schema has to describe every chunk of a streamed
export, and a later insert may add a row of another length.

Arrow data without that metadata (DuckDB or Hugging Face output) gets a schema
inferred from its types: ints and floats keep their width (unsigned ints widen to
the next signed type; a primary key becomes INT64), strings are VARCHAR, lists of
numbers, bools or strings are ARRAY of that type, except fixed-size lists of
float32 or float16, which are FLOAT_VECTOR; structs, maps and other nested values
are JSON. A field is nullable when its column holds a null (for a stream whose null
counts are unknown, when Arrow marks it nullable). Dates, times, decimals and
binary are refused with a message naming the column: cast them first.

>>> from memora_lite import Memora
>>> client = Memora(path=":memory:")
>>> _ = client.nosql.insert(collection_name="train", data=[
...     {"id": i, "input_ids": [101, i, 102], "meta": {"split": "a"}} for i in range(3)])
>>> table = to_arrow(client, "train")
>>> [str(t) for t in table.schema.types]
['int64', 'list<item: int8>', 'string']
>>> from_arrow(client, "copy", table)
3
>>> client.nosql.get(collection_name="copy", ids=[2])["data"]
[{'id': 2, 'input_ids': [101, 2, 102], 'meta': {'split': 'a'}}]
>>> client.close()
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from memora_lite.client import Memora
from memora_lite.errors import InvalidArgumentError, MemoraError, SchemaError
from memora_lite.interop.scan import DEFAULT_BATCH_ROWS, Chunk, collection_schema, iter_chunks
from memora_lite.models import ARRAY_ELEMENT_TYPES, DataType, Field

if TYPE_CHECKING:
    import pyarrow as pa

FIELD_METADATA = b"memora_lite.field"
"""Arrow field metadata key holding the memora_lite field definition as JSON."""

Progress = Callable[[int], object]


def require_pyarrow() -> Any:
    """The ``pyarrow`` module, or a MemoraError that says how to install it."""
    try:
        import pyarrow
    except ImportError as exc:
        raise MemoraError("Arrow and Parquet support needs pyarrow: pip install 'memora_lite[arrow]'") from exc
    return pyarrow


# -- collection -> Arrow ---------------------------------------------------------------------------


def arrow_type(f: Field) -> pa.DataType:
    """The Arrow type a field is exported as (see the module docstring).

    >>> str(arrow_type(Field("ids", "ARRAY", element_data_type="INT16")))
    'list<item: int16>'
    """
    pa = require_pyarrow()
    scalars = {
        DataType.BOOL: pa.bool_(), DataType.INT8: pa.int8(), DataType.INT16: pa.int16(),
        DataType.INT32: pa.int32(), DataType.INT64: pa.int64(), DataType.FLOAT: pa.float32(),
        DataType.DOUBLE: pa.float64(), DataType.VARCHAR: pa.string(), DataType.JSON: pa.string(),
    }
    if f.data_type is DataType.ARRAY:
        assert f.element_data_type is not None
        return pa.list_(scalars[f.element_data_type])
    if f.data_type is DataType.FLOAT_VECTOR:
        assert f.dim is not None
        return pa.list_(pa.float32(), f.dim)
    return scalars[f.data_type]


def arrow_schema(fields: Sequence[Field]) -> pa.Schema:
    """An Arrow schema for ``fields``, each carrying its definition in its metadata."""
    pa = require_pyarrow()
    return pa.schema([
        pa.field(f.field_name, arrow_type(f), nullable=f.nullable,
                 metadata={FIELD_METADATA: json.dumps(f.to_dict()).encode()})
        for f in fields
    ])


def arrow_reader(client: Memora, collection_name: str, filter: str = "", output_fields: Sequence[str] | None = None,
                 batch_rows: int = DEFAULT_BATCH_ROWS) -> pa.RecordBatchReader:
    """A stream of record batches of the rows matching ``filter``, in primary-key order.

    Memory holds one batch of ``batch_rows`` rows at a time (plus the primary keys),
    whatever the collection's size; the schema is known before the first batch.
    """
    pa = require_pyarrow()
    schema = collection_schema(client, collection_name)
    pk = schema.primary_key
    fields = [schema.field(pk)] + [schema.field(n, collection_name) for n in (output_fields or schema.names)
                                   if n != pk]
    target = arrow_schema(fields)
    chunks = iter_chunks(client, collection_name, filter, [f.field_name for f in fields], batch_rows)
    return pa.RecordBatchReader.from_batches(target, (chunk_to_arrow(c, target) for c in chunks))


def to_arrow(client: Memora, collection_name: str, filter: str = "", output_fields: Sequence[str] | None = None,
             batch_rows: int = DEFAULT_BATCH_ROWS) -> pa.Table:
    """The rows matching ``filter`` as one Arrow table (use :func:`arrow_reader` to stream instead).

    Parameters
    ----------
    client : Memora
        An open client.
    collection_name : str
        The collection to read.
    filter : str
        A filter expression; empty reads every row.
    output_fields : sequence of str, optional
        Columns to include (the primary key always comes first); default all.
    batch_rows : int
        Rows read per step.
    """
    return arrow_reader(client, collection_name, filter, output_fields, batch_rows).read_all()


def chunk_to_arrow(chunk: Chunk, schema: pa.Schema) -> pa.RecordBatch:
    """One :class:`~memora_lite.interop.scan.Chunk` as a record batch of ``schema``."""
    pa = require_pyarrow()
    arrays = [_to_arrow_array(pa, chunk.columns[f.field_name], chunk.nulls.get(f.field_name), f, t)
              for f, t in zip(chunk.fields, schema.types)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _validity(pa: Any, nulls: np.ndarray | None) -> Any:
    return None if nulls is None else pa.py_buffer(np.packbits(~nulls, bitorder="little"))


def _to_arrow_array(pa: Any, column: np.ndarray, nulls: np.ndarray | None, f: Field, t: pa.DataType) -> pa.Array:
    n = len(column)
    if f.data_type is DataType.JSON:
        return pa.array([None if v is None else _json_text(v, f) for v in column], type=t)
    if f.data_type is DataType.FLOAT_VECTOR:
        child = pa.array(np.ascontiguousarray(column).reshape(-1), type=t.value_type)
        return pa.Array.from_buffers(t, n, [_validity(pa, nulls)], children=[child])
    if f.data_type is DataType.ARRAY:
        if column.ndim == 2:
            offsets = np.arange(n + 1, dtype=np.int32) * column.shape[1]
            flat = column.reshape(-1)
        else:
            rows = [np.zeros(0, dtype=column.dtype) if v is None else v for v in column]
            offsets = np.zeros(n + 1, dtype=np.int32)
            np.cumsum([len(v) for v in rows], out=offsets[1:])
            flat = np.concatenate(rows) if rows else np.zeros(0)
        child = pa.array(flat, type=t.value_type)
        return pa.Array.from_buffers(t, n, [_validity(pa, nulls), pa.py_buffer(offsets)], children=[child])
    return pa.array(column, type=t, mask=nulls)


def _json_text(value: Any, f: Field) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"field '{f.field_name}': a JSON value cannot be written as JSON text ({exc})") from None


# -- Arrow -> collection ---------------------------------------------------------------------------


def from_arrow(client: Memora, collection_name: str, data: pa.Table | pa.RecordBatch | pa.RecordBatchReader, *,
               primary_key: str | None = None, upsert: bool = False, batch_rows: int = DEFAULT_BATCH_ROWS,
               progress: Progress | None = None) -> int:
    """Insert an Arrow table, record batch or stream into a collection; returns the rows written.

    A missing collection is created with the schema in the data's field metadata,
    else one inferred from its Arrow types (see the module docstring). An existing
    one keeps its schema, and the data must fit it.

    Parameters
    ----------
    client : Memora
        An open, writable client.
    collection_name : str
        The collection to fill.
    data : pyarrow.Table, pyarrow.RecordBatch or pyarrow.RecordBatchReader
        The rows. A reader is consumed batch by batch, never whole.
    primary_key : str, optional
        Primary key column; default the one the metadata names, else ``"id"``.
    upsert : bool
        Replace rows whose key is already stored instead of refusing them.
    batch_rows : int
        Rows per insert call (each call is all-or-nothing).
    progress : callable, optional
        Called with the number of rows after each insert call.
    """
    pa = require_pyarrow()
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        null_counts = {name: data.column(name).null_count for name in data.column_names}
        return load_batches(client, collection_name, data.schema, data.to_batches(max_chunksize=batch_rows),
                            null_counts, primary_key=primary_key, upsert=upsert, progress=progress)
    if isinstance(data, pa.RecordBatchReader):
        return load_batches(client, collection_name, data.schema, data, {}, primary_key=primary_key,
                            upsert=upsert, progress=progress)
    raise InvalidArgumentError(f"from_arrow takes a pyarrow Table, RecordBatch or RecordBatchReader, "
                               f"not {type(data).__name__}")


def load_batches(client: Memora, collection_name: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch],
                 null_counts: Mapping[str, int], *, primary_key: str | None = None, upsert: bool = False,
                 progress: Progress | None = None) -> int:
    """Insert record batches of ``schema``, creating the collection first if needed.

    ``null_counts`` gives the nulls per column where known; a column missing from
    it is taken as nullable when Arrow marks it so. Each batch is one all-or-nothing
    insert; a collection this call created is dropped again if its first batch fails.
    """
    created = not client.nosql.has_collection(collection_name)
    if created:
        inferred = infer_fields(schema, primary_key, null_counts)
        client.nosql.create_collection(collection_name, primary_key=next(f.field_name for f in inferred
                                                                         if f.is_primary), fields=inferred)
    existing = collection_schema(client, collection_name)
    if primary_key is not None and primary_key != existing.primary_key:
        raise InvalidArgumentError(f"collection '{collection_name}' has primary key '{existing.primary_key}', "
                                   f"not '{primary_key}'")
    write = client.nosql.upsert if upsert else client.nosql.insert
    total = 0
    try:
        for batch in batches:
            if batch.num_rows:
                write(collection_name, columns_from_arrow(batch, existing.by_name))
                total += batch.num_rows
                if progress is not None:
                    progress(batch.num_rows)
    except BaseException:
        if created and not total:
            client.nosql.drop_collection(collection_name)  # nothing went in: leave no empty collection behind
        raise
    return total


def infer_fields(schema: pa.Schema, primary_key: str | None = None,
                 null_counts: Mapping[str, int] | None = None) -> list[Field]:
    """Collection fields for Arrow ``schema``: from field metadata where present, else inferred.

    >>> import pyarrow as pa
    >>> infer_fields(pa.schema([("id", pa.int32()), ("emb", pa.list_(pa.float32(), 4))]), null_counts={})
    [Field('id', INT64, is_primary=True), Field('emb', FLOAT_VECTOR, dim=4, nullable=True)]
    """
    null_counts = {} if null_counts is None else null_counts
    known = {af.name: Field.from_dict(json.loads(af.metadata[FIELD_METADATA]))
             for af in schema if af.metadata and FIELD_METADATA in af.metadata}
    pk = primary_key or next((f.field_name for f in known.values() if f.is_primary), "id")
    if pk not in schema.names:
        raise SchemaError(f"the data has no column '{pk}' for the primary key; columns: {', '.join(schema.names)}; "
                          "name the key column with primary_key= (--primary-key on the command line)")
    fields = []
    for af in schema:
        f = known.get(af.name)
        if f is None:
            nullable = null_counts[af.name] > 0 if af.name in null_counts else af.nullable
            f = _infer_field(af, nullable)
        if af.name == pk:
            if f.data_type in (DataType.INT8, DataType.INT16, DataType.INT32):
                f = replace(f, data_type=DataType.INT64)
            f = replace(f, is_primary=True, nullable=False)
        elif f.is_primary:
            f = replace(f, is_primary=False)
        fields.append(f)
    return sorted(fields, key=lambda f: not f.is_primary)


def _scalar_type(pa: Any, t: pa.DataType) -> DataType | None:
    exact = {
        pa.bool_(): DataType.BOOL, pa.int8(): DataType.INT8, pa.int16(): DataType.INT16,
        pa.int32(): DataType.INT32, pa.int64(): DataType.INT64, pa.uint8(): DataType.INT16,
        pa.uint16(): DataType.INT32, pa.uint32(): DataType.INT64, pa.uint64(): DataType.INT64,
        pa.float16(): DataType.FLOAT, pa.float32(): DataType.FLOAT, pa.float64(): DataType.DOUBLE,
        pa.string(): DataType.VARCHAR, pa.large_string(): DataType.VARCHAR,
    }
    if pa.types.is_dictionary(t):
        t = t.value_type
    return exact.get(t)


def _is_list(pa: Any, t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


def _infer_field(af: pa.Field, nullable: bool) -> Field:
    pa = require_pyarrow()
    t = af.type
    scalar = _scalar_type(pa, t)
    if scalar is not None:
        return Field(af.name, scalar, nullable=nullable)
    if _is_list(pa, t):
        element = _scalar_type(pa, t.value_type)
        if pa.types.is_fixed_size_list(t) and t.value_type in (pa.float32(), pa.float16()):
            return Field(af.name, DataType.FLOAT_VECTOR, dim=t.list_size, nullable=nullable)
        if element in ARRAY_ELEMENT_TYPES:
            return Field(af.name, DataType.ARRAY, element_data_type=element, nullable=nullable)
        return Field(af.name, DataType.JSON, nullable=True)
    if pa.types.is_nested(t) or pa.types.is_null(t):
        return Field(af.name, DataType.JSON, nullable=True)
    raise SchemaError(f"column '{af.name}' has Arrow type {t}, which memora_lite cannot store; cast it first "
                      "(for example to int64 or string)")


def columns_from_arrow(batch: pa.RecordBatch, fields: Mapping[str, Field]) -> dict[str, Any]:
    """A record batch as ``insert``'s dict of columns, shaped for the fields it fills.

    Fixed-width lists become 2-D arrays and numbers stay numpy arrays, so the
    insert takes its columnar fast path; nulls become None.
    """
    pa = require_pyarrow()
    out: dict[str, Any] = {}
    for name, column in zip(batch.schema.names, batch.columns):
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        f = fields.get(name)
        if f is None:
            out[name] = column.to_pylist()  # not a field: the insert names the problem
        elif f.data_type is DataType.JSON:
            out[name] = _json_values(pa, column, name)
        elif _is_list(pa, column.type):
            out[name] = _list_values(pa, column, f)
        else:
            out[name] = _scalar_values(pa, column)
    return out


def _objects(values: Iterable[Any], n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    out[:] = list(values)
    return out


def _scalar_values(pa: Any, column: pa.Array) -> np.ndarray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or not column.null_count:
        return column.to_numpy(zero_copy_only=False)  # strings: an object array, None where null
    filler = False if pa.types.is_boolean(column.type) else 0
    values = column.fill_null(filler).to_numpy(zero_copy_only=False).astype(object)
    values[column.is_null().to_numpy(zero_copy_only=False)] = None
    return values


def _json_values(pa: Any, column: pa.Array, name: str) -> np.ndarray:
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return _objects(column.to_pylist(), len(column))
    values = column.to_pylist()
    for i, text in enumerate(values):
        if text is not None:
            try:
                values[i] = json.loads(text)
            except ValueError as exc:
                raise SchemaError(f"column '{name}', row {i}: not valid JSON text ({exc})") from None
    return _objects(values, len(values))


def _list_values(pa: Any, column: pa.Array, f: Field) -> Any:
    n = len(column)
    if pa.types.is_fixed_size_list(column.type):
        width = column.type.list_size
        flat = column.values.slice(column.offset * width, n * width)
        lengths = np.full(n, width, dtype=np.int64)
    else:
        flat = column.flatten()  # skips the slots of null rows
        lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    if flat.null_count and (not pa.types.is_fixed_size_list(column.type) or _nulls_inside(pa, column)):
        raise SchemaError(f"column '{f.field_name}': a list holds a null element; ARRAY and FLOAT_VECTOR "
                          "elements cannot be null")
    if _scalar_type(pa, flat.type) in (None, DataType.VARCHAR):
        return _objects(column.to_pylist(), n)
    values = flat.to_numpy(zero_copy_only=False)
    if not column.null_count and n and bool(np.all(lengths == lengths[0])):
        return values.reshape(n, int(lengths[0]))  # fixed width: the columnar fast path
    bounds = np.cumsum(lengths)[:-1]
    rows = _objects(np.split(values, bounds) if n else [], n)
    if column.null_count:
        rows[column.is_null().to_numpy(zero_copy_only=False)] = None
    return rows


def _nulls_inside(pa: Any, column: pa.Array) -> bool:
    """Whether a fixed-size list column has a null element in a row that is not itself null."""
    valid = column.filter(column.is_valid())
    return bool(valid.flatten().null_count) if len(valid) else False

