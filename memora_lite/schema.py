"""Collection schemas: field types, their numpy dtypes, inference and row validation.

A :class:`Schema` turns what a user passes to ``insert`` (one row dict, a list of
row dicts, or a dict of equal-length columns) into a validated
:class:`~memora_lite.columns.Batch`, or raises :class:`SchemaError` naming the
collection, row, field, expected and given type. Nothing is written before
validation succeeds, so a batch with one bad row inserts no row.

Schemas made by inference (the first insert into a missing collection) may
*grow*: a later int too wide for the inferred type widens the field
(INT8 -> INT16 -> INT32 -> INT64), and a new field is added as nullable.
Declared schemas never change.

>>> schema = Schema.infer([{"id": 1, "tokens": [101, 2054, 102], "label": 0.5}], "id")
>>> [(f.field_name, f.data_type.name, f.element_data_type) for f in schema.fields]
[('id', 'INT64', None), ('tokens', 'ARRAY', <DataType.INT16: 'INT16'>), ('label', 'DOUBLE', None)]
>>> batch, grown = schema.to_batch({"id": 2, "tokens": [70000], "label": 1.0}, "demo")
>>> grown.field("tokens").element_data_type.name
'INT32'
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np

from memora_lite import codecs
from memora_lite._rows import PendingRows, RowEncoder
from memora_lite.columns import Batch, Column, Ragged, object_array
from memora_lite.errors import FieldNotFoundError, SchemaError, did_you_mean
from memora_lite.models import INT_TYPES, DataType, Field

if TYPE_CHECKING:
    from memora_lite.storage.arena import Arena

NUMPY_DTYPES: dict[DataType, np.dtype] = {
    DataType.BOOL: np.dtype(np.bool_),
    DataType.INT8: np.dtype(np.int8),
    DataType.INT16: np.dtype(np.int16),
    DataType.INT32: np.dtype(np.int32),
    DataType.INT64: np.dtype(np.int64),
    DataType.FLOAT: np.dtype(np.float32),
    DataType.DOUBLE: np.dtype(np.float64),
    DataType.VARCHAR: np.dtype(object),
    DataType.JSON: np.dtype(object),
    DataType.FLOAT_VECTOR: np.dtype(np.float32),
}
_INT_RANGES = {t: (int(np.iinfo(NUMPY_DTYPES[t]).min), int(np.iinfo(NUMPY_DTYPES[t]).max)) for t in INT_TYPES}


def element_dtype(f: Field) -> np.dtype:
    """The numpy dtype of one stored value (of one element, for ARRAY fields)."""
    if f.data_type is DataType.ARRAY:
        assert f.element_data_type is not None
        return NUMPY_DTYPES[f.element_data_type]
    return NUMPY_DTYPES[f.data_type]


def column_kind(f: Field) -> str:
    """The codec family of a field's column (see ``memora_lite.codecs.column``)."""
    if f.data_type is DataType.ARRAY:
        if f.element_data_type in INT_TYPES:
            return "tokens"
        return "objects" if f.element_data_type is DataType.VARCHAR else "ragged"
    if f.data_type is DataType.FLOAT_VECTOR:
        return "matrix"
    if f.data_type is DataType.VARCHAR:
        return "strings"
    if f.data_type is DataType.JSON:
        return "objects"
    return "fixed"


def narrowest_int_type(lo: int, hi: int) -> DataType:
    """Smallest signed int type holding every value in ``[lo, hi]``."""
    for t in INT_TYPES:
        tlo, thi = _INT_RANGES[t]
        if tlo <= lo and hi <= thi:
            return t
    return DataType.INT64


@dataclass(frozen=True)
class Schema:
    """An ordered set of fields, one of them the primary key.

    Parameters
    ----------
    fields : tuple of Field
        In declaration order; exactly one has ``is_primary=True``.
    inferred : bool
        True when made by inference; such schemas widen and grow on insert.
    """

    fields: tuple[Field, ...]
    inferred: bool = False
    pk_index: int = dataclass_field(init=False, compare=False, repr=False)
    key_type: type = dataclass_field(init=False, compare=False, repr=False)  # int or str, as the key field holds

    def __post_init__(self) -> None:
        primaries = [f.field_name for f in self.fields if f.is_primary]
        if len(primaries) != 1:
            raise SchemaError(f"a schema needs exactly one primary key field, got {primaries or 'none'}")
        names = [f.field_name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaError(f"field names must be unique; repeated: {', '.join(dupes)}")
        object.__setattr__(self, "_by_name", {f.field_name: f for f in self.fields})
        object.__setattr__(self, "pk_index", next(i for i, f in enumerate(self.fields) if f.is_primary))
        object.__setattr__(self, "_names", tuple(names))  # read on every get: made once
        key_field = self.fields[self.pk_index]
        object.__setattr__(self, "key_type", str if key_field.data_type is DataType.VARCHAR else int)

    @property
    def primary_key(self) -> str:
        return self._names[self.pk_index]  # type: ignore[attr-defined,no-any-return]

    @property
    def names(self) -> list[str]:
        return list(self._names)  # type: ignore[attr-defined]

    @property
    def name_tuple(self) -> tuple[str, ...]:
        """Field names in declaration order, as the tuple result rows share."""
        return self._names  # type: ignore[attr-defined,no-any-return]

    @property
    def by_name(self) -> Mapping[str, Field]:
        return self._by_name  # type: ignore[attr-defined,no-any-return]

    def field(self, name: str, collection: str = "") -> Field:
        """The field called ``name``; FieldNotFoundError lists the stored fields otherwise."""
        try:
            return self.by_name[name]
        except KeyError:
            raise FieldNotFoundError(
                f"collection '{collection}' has no field '{name}'{did_you_mean(name, self.names)}; "
                f"stored fields: {', '.join(self.names)}"
            ) from None

    # -- persistence -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"fields": [f.to_dict() for f in self.fields], "inferred": self.inferred}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        return cls(tuple(Field.from_dict(f) for f in data["fields"]), bool(data.get("inferred", False)))

    @classmethod
    def declare(cls, primary_key: str, fields: Sequence[Field] | None, collection: str) -> Schema:
        """The schema of ``create_collection``: given fields, or just an INT64 primary key."""
        if not fields:
            return cls((Field(primary_key, DataType.INT64, is_primary=True),))
        fields = list(fields)
        for i, f in enumerate(fields):
            if not isinstance(f, Field):
                raise SchemaError(f"collection '{collection}': fields[{i}] is {type(f).__name__}, not Field")
            if f.field_name == primary_key and not f.is_primary:
                fields[i] = replace(f, is_primary=True)
        if primary_key not in [f.field_name for f in fields]:
            raise SchemaError(
                f"collection '{collection}': primary key '{primary_key}' is not among the fields "
                f"({', '.join(f.field_name for f in fields)}); add Field('{primary_key}', DataType.INT64)"
            )
        extra = [f.field_name for f in fields if f.is_primary and f.field_name != primary_key]
        if extra:
            raise SchemaError(f"collection '{collection}': '{extra[0]}' is marked primary but primary_key="
                              f"'{primary_key}'")
        return cls(tuple(fields))

    @classmethod
    def infer(cls, data: Any, primary_key: str = "id", collection: str = "") -> Schema:
        """Infer a schema from the first data inserted into a collection.

        ints -> INT64, floats -> DOUBLE, bools -> BOOL, str -> VARCHAR, int lists ->
        ARRAY of the narrowest fitting int type, float lists -> FLOAT_VECTOR,
        anything else msgpack can hold -> JSON. A field missing from some rows is nullable.
        """
        columns, n = _as_columns(data, primary_key, collection)
        if primary_key not in columns:
            raise SchemaError(f"collection '{collection}': row 0 has no primary key '{primary_key}'")
        fields = []
        for name, values in columns.items():
            f = _infer_field(name, values, collection)
            nullable = any(v is None for v in values) or len(values) < n
            if name == primary_key:
                if f.data_type not in (DataType.INT64, DataType.VARCHAR):
                    raise SchemaError(
                        f"collection '{collection}': primary key '{name}' must be an int or a string, "
                        f"got {f.data_type.value}"
                    )
                f = replace(f, is_primary=True, nullable=False)
            elif nullable:
                f = replace(f, nullable=True)
            fields.append(f)
        fields.sort(key=lambda f: not f.is_primary)
        return cls(tuple(fields), inferred=True)

    @functools.cached_property  # read by every one-row insert: after the first, a plain attribute
    def row_encoder(self) -> RowEncoder | None:
        """The one-row insert fast path for this schema (built once), or None when a field has none.

        See :func:`fast_path_spec` for what each field accepts.
        """
        specs = [fast_path_spec(f) for f in self.fields]
        return None if any(s is None for s in specs) else RowEncoder(self.name_tuple, specs, self.pk_index)

    def rows_to_batch_fast(self, rows: Any) -> Batch | None:
        """A list of row dicts as a Batch through :attr:`row_encoder`, or None when any row (or the
        schema) needs the general path, :meth:`to_batch`, which then gives the same Batch.

        >>> schema = Schema.infer({"id": [1], "t": [[5, 6]]}, "id")
        >>> schema.rows_to_batch_fast([{"id": 2, "t": [7]}, {"id": 3, "t": []}]).columns["t"].to_lists()
        [[7], []]
        >>> schema.rows_to_batch_fast([{"id": 2, "t": [7]}, {"id": 3, "t": [1.5]}]) is None
        True
        """
        encoder = self.row_encoder
        if encoder is None or type(rows) is not list or not rows:
            return None
        encoded = encoder.encode_batch(rows)
        return self._encoded_batch(encoded, len(rows)) if encoded is not None else None

    def pending_rows(self) -> PendingRows | None:
        """An empty buffer of one-row inserts for :attr:`row_encoder`, or None when it has none.

        >>> schema = Schema.infer({"id": [1], "t": [[5, 6]]}, "id")
        >>> pending = schema.pending_rows()
        >>> _ = schema.row_encoder.encode({"id": 2, "t": [7, 0]}, 4, into=pending)
        >>> pending.keep(); pending.add((3, b""))
        >>> schema.pending_batch(pending).columns["t"].to_lists(), len(pending)
        ([[7, 0], []], 0)
        """
        encoder = self.row_encoder
        return PendingRows(encoder) if encoder is not None else None

    def pending_batch(self, pending: PendingRows, arena: Arena | None = None) -> Batch:
        """The rows ``pending`` (from :meth:`pending_rows`) holds, as a Batch; it holds none afterwards.
        Its int lists are carved from ``arena`` when given (see :mod:`memora_lite.storage.arena`)."""
        n = len(pending)
        return self._encoded_batch(pending.take(arena), n)

    def _encoded_batch(self, encoded: list[Any], n: int) -> Batch:
        """A Batch of ``n`` rows from :class:`RowEncoder` columns (``encode_batch`` / ``PendingRows.take``)."""
        columns: dict[str, Column] = {}
        for f, values in zip(self.fields, encoded):
            dtype = element_dtype(f)
            if f.data_type is DataType.ARRAY:
                columns[f.field_name] = Ragged(values[0].astype(dtype, copy=False), values[1])
            else:
                columns[f.field_name] = _scalar_column(values, dtype)
        return Batch(columns, n)

    # -- validation --------------------------------------------------------------------------------

    def to_batch(self, data: Any, collection: str, arena: Arena | None = None) -> tuple[Batch, Schema]:
        """Validate ``data`` into a Batch.

        Returns the batch and the schema it fits: ``self``, or for inferred schemas a
        widened/grown copy. Raises SchemaError or FieldNotFoundError on the first misfit.
        Narrowed int lists are carved from ``arena`` when given (the memtable's, which
        keeps the batch: see :mod:`memora_lite.storage.arena`).
        """
        columns, n = _as_columns(data, self.primary_key, collection)
        schema = self
        unknown = [name for name in columns if name not in self.by_name]
        if unknown:
            if not self.inferred:
                raise FieldNotFoundError(
                    f"collection '{collection}' has no field '{unknown[0]}'"
                    f"{did_you_mean(unknown[0], self.names)}; stored fields: {', '.join(self.names)}"
                )
            new = [replace(_infer_field(u, columns[u], collection), nullable=True) for u in unknown]
            schema = Schema((*self.fields, *new), inferred=True)
        out: dict[str, Column] = {}
        nulls: dict[str, np.ndarray] = {}
        for f in list(schema.fields):
            values = columns.get(f.field_name)
            try:
                column, null_mask, widened = _convert(f, values, n, schema.inferred, arena)
            except SchemaError as exc:
                raise SchemaError(f"collection '{collection}': {exc}") from None
            if widened is not f:
                schema = Schema(tuple(widened if g is f else g for g in schema.fields), inferred=True)
            out[f.field_name] = _owned(column, values)
            if null_mask is not None:
                nulls[f.field_name] = null_mask
        return Batch(out, n, nulls), schema


def _owned(column: Column, given: Any) -> Column:
    """``column``, copied when it is still (a view of) ``given``, the caller's numpy array: the
    memtable keeps the column after the call returns, and the caller may refill its buffer.

    >>> given = np.array([1, 2]); kept = _owned(given, given); given[0] = 9
    >>> kept.tolist()
    [1, 2]
    """
    if not isinstance(given, np.ndarray):
        return column
    if isinstance(column, Ragged):
        shared = np.may_share_memory(column.values, given)
        return Ragged(column.values.copy(), column.offsets) if shared else column
    return column.copy() if np.may_share_memory(column, given) else column


def widen(column: Column, dtype: np.dtype) -> Column:
    """``column`` with values in ``dtype`` (a widening the schema allowed); no copy when equal."""
    if isinstance(column, Ragged):
        return column if column.dtype == dtype else Ragged(column.values.astype(dtype), column.offsets)
    return column if column.dtype == dtype else column.astype(dtype)


def null_column(f: Field, n: int) -> tuple[Column, np.ndarray]:
    """``n`` null values of field ``f``: placeholder column and an all-true null mask."""
    dtype = element_dtype(f)
    column: Column
    if f.data_type is DataType.ARRAY:
        column = Ragged(np.zeros(0, dtype=dtype), np.zeros(n + 1, dtype=np.int64))
    elif f.data_type is DataType.FLOAT_VECTOR:
        column = np.zeros((n, f.dim or 0), dtype=dtype)
    elif dtype == object:
        column = np.full(n, None, dtype=object)
    else:
        column = np.zeros(n, dtype=dtype)
    return column, np.ones(n, dtype=bool)


def conform(batch: Batch, schema: Schema) -> Batch:
    """``batch`` in ``schema``'s field order and types: missing fields null, narrower ints widened."""
    columns: dict[str, Column] = {}
    nulls = dict(batch.nulls)
    for f in schema.fields:
        name = f.field_name
        if name in batch.columns:
            columns[name] = widen(batch.columns[name], element_dtype(f))
        else:
            columns[name], nulls[name] = null_column(f, len(batch))
    return Batch(columns, len(batch), nulls)


_SCALAR_CHECKS: dict[DataType, Any] = {
    DataType.BOOL: lambda v, f: type(v) is bool,
    DataType.FLOAT: lambda v, f: (type(v) is float or type(v) is int) and -3.4e38 < v < 3.4e38,
    DataType.DOUBLE: lambda v, f: type(v) is float or (type(v) is int and -(2**53) <= v <= 2**53),
    DataType.VARCHAR: lambda v, f: type(v) is str and len(v) * 4 <= f.max_length,
}


def fast_path_spec(f: Field) -> tuple[Any, ...] | None:
    """How the one-row insert fast path (:class:`~memora_lite._rows.RowEncoder`) takes values of ``f``.

    It takes only what the general path (:meth:`Schema.to_batch`) would store
    unchanged -- plain ints in range, lists of them, and scalars that pass their
    check -- and declines everything else (widening, new fields, nulls, JSON,
    vectors, numpy values), which the general path then accepts or names. None
    when no value of ``f`` is taken.

    >>> fast_path_spec(Field("t", "ARRAY", element_data_type="INT16", max_capacity=512))
    ('ints', -32768, 32767, 2, 512)
    """
    if f.nullable:
        return None
    if f.data_type in INT_TYPES:
        return ("int", *_INT_RANGES[f.data_type])
    if f.data_type in _SCALAR_CHECKS:
        accept = _SCALAR_CHECKS[f.data_type]
        return ("other", lambda v: v if accept(v, f) else None)
    if f.data_type is DataType.ARRAY and f.element_data_type in INT_TYPES:
        size = NUMPY_DTYPES[f.element_data_type].itemsize
        return ("ints", *_INT_RANGES[f.element_data_type], size, f.max_capacity)
    return None


# -- helpers ---------------------------------------------------------------------------------------


def _scalar_column(values: Any, dtype: np.dtype) -> np.ndarray:
    """A column of checked scalar values (a list, or an int64 array from the row encoder) in ``dtype``."""
    if dtype == object:
        return object_array(values, len(values))
    return np.asarray(values, dtype=dtype)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _as_columns(data: Any, primary_key: str, collection: str) -> tuple[dict[str, Any], int]:
    """Normalise one row, a list of rows, or a dict of columns into ``{name: values}``.

    A dict is columns when its primary-key value is a sequence (a row's primary key
    is a scalar), so ``{"id": [1, 2], "x": [...]}`` holds two rows.
    """
    if isinstance(data, Mapping):
        if _is_sequence(data.get(primary_key)):
            lengths = {name: len(values) for name, values in data.items()}
            n = lengths[primary_key]
            bad = {k: v for k, v in lengths.items() if v != n}
            if bad or not all(_is_sequence(v) for v in data.values()):
                raise SchemaError(
                    f"collection '{collection}': columns must be equal-length lists or arrays; "
                    f"'{primary_key}' has {n} values but {bad or 'some column is not a list'}"
                )
            return {str(k): v for k, v in data.items()}, n
        data = [data]
    if not isinstance(data, (list, tuple)):
        raise SchemaError(
            f"collection '{collection}': data must be a row dict, a list of row dicts or a dict of "
            f"columns, not {type(data).__name__}"
        )
    columns: dict[str, list[Any]] = {}
    for i, row in enumerate(data):
        if not isinstance(row, Mapping):
            raise SchemaError(f"collection '{collection}': row {i} is {type(row).__name__}, not a dict")
        for name in row:
            if name not in columns:
                columns[name] = [None] * i
        for name, values in columns.items():
            values.append(row.get(name))
    return columns, len(data)


def _infer_field(name: str, values: Sequence[Any], collection: str) -> Field:
    if not isinstance(name, str) or not name.isidentifier():
        raise SchemaError(f"collection '{collection}': field name {name!r} is not a valid identifier")
    if isinstance(values, np.ndarray) and values.dtype != object:
        return _infer_from_array(name, values)
    sample = [v for v in values if v is not None]
    if not sample:
        return Field(name, DataType.JSON, nullable=True)
    types = set(map(type, sample))
    if types <= {bool, np.bool_}:
        return Field(name, DataType.BOOL)
    if all(issubclass(t, (int, np.integer)) and not issubclass(t, (bool, np.bool_)) for t in types):
        return Field(name, DataType.INT64)
    if all(issubclass(t, (int, float, np.integer, np.floating)) and not issubclass(t, (bool, np.bool_))
           for t in types):
        return Field(name, DataType.DOUBLE)
    if types == {str}:
        return Field(name, DataType.VARCHAR)
    if types <= {list, tuple, np.ndarray}:
        return _infer_from_lists(name, sample)
    return Field(name, DataType.JSON, nullable=True)  # JSON null reads back as None either way


def _infer_from_array(name: str, values: np.ndarray) -> Field:
    """A numpy column: its dtype decides (the fast, bulk case)."""
    kind = values.dtype.kind
    if values.ndim == 1:
        if kind == "b":
            return Field(name, DataType.BOOL)
        if kind in "iu":
            return Field(name, DataType.INT64)
        if kind == "f":
            return Field(name, DataType.FLOAT if values.dtype.itemsize <= 4 else DataType.DOUBLE)
        if kind in "US":
            return Field(name, DataType.VARCHAR)
    if values.ndim == 2:
        if kind in "iu":
            lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
            return Field(name, DataType.ARRAY, element_data_type=narrowest_int_type(lo, hi))
        if kind == "f" and values.shape[1] > 0:
            return Field(name, DataType.FLOAT_VECTOR, dim=values.shape[1])
        if kind == "b":
            return Field(name, DataType.ARRAY, element_data_type=DataType.BOOL)
    return Field(name, DataType.JSON, nullable=True)


def _infer_from_lists(name: str, rows: list[Any]) -> Field:
    """Lists: of ints -> ARRAY of the narrowest int type; of floats, one length -> FLOAT_VECTOR; else JSON."""
    first = next((r for r in rows if len(r)), None)
    if first is not None and all(isinstance(v, (bool, np.bool_)) for v in first):
        return Field(name, DataType.ARRAY, element_data_type=DataType.BOOL)
    try:
        flat, _ = codecs.flatten_int_lists(rows)
    except (TypeError, OverflowError):
        flat = None
    if flat is not None:
        lo, hi = (int(flat.min()), int(flat.max())) if len(flat) else (0, 0)
        return Field(name, DataType.ARRAY, element_data_type=narrowest_int_type(lo, hi))
    dims = {len(r) for r in rows}
    if len(dims) == 1 and dims != {0}:
        try:
            matrix = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError):
            matrix = None
        if matrix is not None and matrix.ndim == 2 and not any(
            isinstance(v, (bool, str)) for v in first or ()
        ):
            return Field(name, DataType.FLOAT_VECTOR, dim=matrix.shape[1])
    return Field(name, DataType.JSON, nullable=True)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _convert(f: Field, values: Any, n: int, growable: bool,
             arena: Arena | None = None) -> tuple[Column, np.ndarray | None, Field]:
    """One column of raw values -> (column, null mask or None, field it fits)."""
    name = f.field_name
    if values is None:
        values = [None] * n
    null_mask: np.ndarray | None = None
    if not isinstance(values, np.ndarray) or values.dtype == object:
        missing = [i for i, v in enumerate(values) if v is None]
        if missing:
            if not f.nullable:
                raise SchemaError(
                    f"row {missing[0]} has no value for field '{name}' ({f.data_type.value}, not nullable)"
                )
            null_mask = np.zeros(n, dtype=bool)
            null_mask[missing] = True
    dtype = f.data_type
    if dtype in (DataType.VARCHAR, DataType.JSON):
        column = object_array(values, n)
        if dtype is DataType.VARCHAR:
            _check_strings(f, column, null_mask)
        else:
            _check_json(f, column)
        return column, null_mask, f
    if dtype is DataType.ARRAY:
        return _convert_array(f, values, n, null_mask, growable, arena)
    if dtype is DataType.FLOAT_VECTOR:
        return _convert_vectors(f, values, n, null_mask), null_mask, f
    return _convert_scalars(f, values, n, null_mask, growable)


def _fill_nulls(values: Any, null_mask: np.ndarray | None, filler: Any) -> Any:
    if null_mask is None:
        return values
    return [filler if m else v for v, m in zip(values, null_mask)]


def _convert_scalars(
    f: Field, values: Any, n: int, null_mask: np.ndarray | None, growable: bool
) -> tuple[Column, np.ndarray | None, Field]:
    dtype = f.data_type
    raw = _fill_nulls(values, null_mask, False if dtype is DataType.BOOL else 0)
    if isinstance(raw, np.ndarray):
        arr = raw
    else:
        expected = {DataType.BOOL: (bool, np.bool_)}.get(dtype)
        for i, v in enumerate(raw):
            ok = isinstance(v, expected) if expected else (
                isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                if dtype in INT_TYPES
                else isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            )
            if not ok:
                raise SchemaError(f"row {i}, field '{f.field_name}': expected {dtype.value}, got {_describe(v)}")
        arr = np.array(raw) if dtype in INT_TYPES else np.array(raw, dtype=NUMPY_DTYPES[dtype])
    kind = arr.dtype.kind
    want = {DataType.BOOL: "b"}.get(dtype, "iu" if dtype in INT_TYPES else "iuf")
    if n and kind not in want:
        raise SchemaError(f"field '{f.field_name}': expected {dtype.value}, got an array of {arr.dtype}")
    if dtype in INT_TYPES and n:
        f = _fit_ints(f, dtype, int(arr.min()), int(arr.max()), growable, lambda t: replace(f, data_type=t))
    finite = arr[np.isfinite(arr)] if dtype is DataType.FLOAT else arr[:0]
    if len(finite) and np.abs(finite.astype(np.float64)).max() > np.finfo(np.float32).max:
        raise SchemaError(f"field '{f.field_name}': a value overflows FLOAT (float32); declare DOUBLE")
    return np.ascontiguousarray(arr, dtype=NUMPY_DTYPES[f.data_type]), null_mask, f


def _fit_ints(f: Field, t: DataType, lo: int, hi: int, growable: bool, widen: Any) -> Field:
    tlo, thi = _INT_RANGES[t]
    if tlo <= lo and hi <= thi:
        return f
    if growable and _INT_RANGES[DataType.INT64][0] <= lo and hi <= _INT_RANGES[DataType.INT64][1]:
        need = narrowest_int_type(lo, hi)
        return widen(need if INT_TYPES.index(need) > INT_TYPES.index(t) else t)  # type: ignore[no-any-return]
    bad = lo if lo < tlo else hi
    raise SchemaError(f"field '{f.field_name}': value {bad} does not fit {t.value} [{tlo}, {thi}]")


def _convert_array(
    f: Field, values: Any, n: int, null_mask: np.ndarray | None, growable: bool, arena: Arena | None = None
) -> tuple[Column, np.ndarray | None, Field]:
    element = f.element_data_type
    assert element is not None and f.max_capacity is not None
    if isinstance(values, np.ndarray) and values.ndim == 2:
        ragged = Ragged.from_matrix(values)
    else:
        rows = _fill_nulls(values, null_mask, [])
        for i, row in enumerate(rows):
            if not _is_sequence(row):
                raise SchemaError(f"row {i}, field '{f.field_name}': expected a list of "
                                  f"{element.value}, got {_describe(row)}")
        if element is DataType.VARCHAR:
            ragged = Ragged.from_lists(rows, np.dtype(object))
            _check_strings(f, ragged.values, None)
        else:
            ragged = _ragged_numbers(f, rows)
    lengths = ragged.lengths()
    if len(lengths) and int(lengths.max()) > f.max_capacity:
        i = int(np.argmax(lengths))
        raise SchemaError(f"row {i}, field '{f.field_name}': {int(lengths[i])} elements exceed max_capacity="
                          f"{f.max_capacity}")
    values_arr = ragged.values
    kind = values_arr.dtype.kind
    if element in INT_TYPES:
        if len(values_arr) and kind not in "iu":
            raise SchemaError(f"field '{f.field_name}': expected a list of {element.value}, "
                              f"got elements of {values_arr.dtype}")
        if len(values_arr):  # range and conversion in one read: this is most of a bulk insert's input
            narrow_to = element_dtype(f)
            out = arena.empty(len(values_arr), narrow_to) if arena is not None else None
            narrowed, lo, hi = codecs.narrow_ints(values_arr, narrow_to, out)
            f = _fit_ints(f, element, lo, hi, growable, lambda t: replace(f, element_data_type=t))
            if narrowed is not None and narrowed.dtype == element_dtype(f):
                values_arr = narrowed
                ragged = Ragged(narrowed, ragged.offsets)
    elif element is DataType.BOOL and len(values_arr) and kind != "b":
        raise SchemaError(f"field '{f.field_name}': expected a list of BOOL, got elements of {values_arr.dtype}")
    elif element in (DataType.FLOAT, DataType.DOUBLE) and len(values_arr) and kind not in "iuf":
        raise SchemaError(f"field '{f.field_name}': expected a list of {element.value}, "
                          f"got elements of {values_arr.dtype}")
    target = element_dtype(f)
    if values_arr.dtype != target:
        ragged = Ragged(values_arr.astype(target), ragged.offsets)
    return ragged, null_mask, f


def _ragged_numbers(f: Field, rows: Sequence[Any]) -> Ragged:
    if f.element_data_type in INT_TYPES:
        try:  # the common case, read in C: no numpy array per row
            values, offsets = codecs.flatten_int_lists(rows)
            return Ragged(values, offsets)
        except (TypeError, OverflowError):
            pass  # floats, huge ints or other objects: the general path below names the problem
    lengths = {len(r) for r in rows}
    try:
        if len(lengths) == 1 and rows and next(iter(lengths)) > 0:
            matrix = np.array(rows)
            if matrix.ndim != 2:
                raise ValueError("nested")
            return Ragged.from_matrix(matrix)
        flat = np.array([v for r in rows for v in r])
    except (ValueError, TypeError, OverflowError):
        flat = np.array([v for r in rows for v in r], dtype=object)
    if flat.dtype == object or flat.ndim != 1:
        for i, row in enumerate(rows):
            for v in row:
                if not isinstance(v, (int, float, bool, np.number, np.bool_)) or (
                    isinstance(v, int) and not -(2**63) <= v < 2**63
                ):
                    raise SchemaError(f"row {i}, field '{f.field_name}': element {_describe(v)} is not a "
                                      f"{f.element_data_type.value if f.element_data_type else ''}")
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    if len(flat) == 0:
        flat = np.zeros(0, dtype=element_dtype(f))
    return Ragged(flat, offsets)


def _convert_vectors(f: Field, values: Any, n: int, null_mask: np.ndarray | None) -> np.ndarray:
    assert f.dim is not None
    rows = _fill_nulls(values, null_mask, [0.0] * f.dim)
    try:
        matrix = np.asarray(rows, dtype=np.float32) if n else np.zeros((0, f.dim), dtype=np.float32)
    except (ValueError, TypeError):
        matrix = None
    if matrix is None or matrix.ndim != 2 or matrix.shape[1] != f.dim:
        for i, row in enumerate(rows):
            if not _is_sequence(row) or len(row) != f.dim:
                raise SchemaError(f"row {i}, field '{f.field_name}': expected FLOAT_VECTOR of dim {f.dim}, "
                                  f"got {_describe(row)}")
        raise SchemaError(f"field '{f.field_name}': vectors must hold numbers")
    if isinstance(rows, list) and any(isinstance(x, (bool, str)) for r in rows for x in r):
        raise SchemaError(f"field '{f.field_name}': FLOAT_VECTOR elements must be numbers")
    return np.ascontiguousarray(matrix)


def _check_strings(f: Field, column: np.ndarray, null_mask: np.ndarray | None) -> None:
    limit = f.max_length
    for i, v in enumerate(column):
        if v is None and null_mask is not None and null_mask[i]:
            continue
        if not isinstance(v, str):
            raise SchemaError(f"row {i}, field '{f.field_name}': expected VARCHAR (str), got {_describe(v)}")
        if limit is not None and len(v) * 4 > limit and len(v.encode("utf-8")) > limit:
            raise SchemaError(f"row {i}, field '{f.field_name}': {len(v.encode('utf-8'))} bytes exceed "
                              f"max_length={limit}")


def _check_json(f: Field, column: np.ndarray) -> None:
    packer = msgpack.Packer(use_bin_type=True)
    for i, v in enumerate(column):
        try:
            packer.pack(v)
        except (TypeError, ValueError, OverflowError):
            raise SchemaError(f"row {i}, field '{f.field_name}': {_describe(v)} cannot be stored as JSON "
                              "(use dicts, lists, str, int, float, bool, None)") from None
