"""Schema building blocks, spelled as the Memora cloud client spells them.

>>> from memora_lite.models import DataType, Field
>>> Field("input_ids", DataType.ARRAY, element_data_type=DataType.INT32, max_capacity=512)
Field('input_ids', ARRAY, element_data_type=INT32, max_capacity=512)
>>> Field("title", "VARCHAR", max_length=200).data_type
<DataType.VARCHAR: 'VARCHAR'>
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from memora_lite.errors import SchemaError


class DataType(str, enum.Enum):
    """Field data types; the value is the cloud client's spelling."""

    BOOL = "BOOL"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    VARCHAR = "VARCHAR"
    JSON = "JSON"
    ARRAY = "ARRAY"
    FLOAT_VECTOR = "FLOAT_VECTOR"

    def __repr__(self) -> str:
        return f"<DataType.{self.name}: {self.value!r}>"

    @classmethod
    def parse(cls, value: DataType | str, field_name: str = "") -> DataType:
        """Accept a DataType or its name in any case; raise SchemaError otherwise."""
        if isinstance(value, DataType):
            return value
        try:
            return cls(str(value).upper())
        except ValueError:
            names = ", ".join(t.value for t in cls)
            where = f" for field '{field_name}'" if field_name else ""
            raise SchemaError(f"unknown data type {value!r}{where}; use one of {names}") from None


INT_TYPES = (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64)
FLOAT_TYPES = (DataType.FLOAT, DataType.DOUBLE)
SCALAR_NUMERIC_TYPES = (*INT_TYPES, *FLOAT_TYPES, DataType.BOOL)
ARRAY_ELEMENT_TYPES = (*INT_TYPES, *FLOAT_TYPES, DataType.BOOL, DataType.VARCHAR)
MAX_VARCHAR_LENGTH = 65_535
MAX_ARRAY_CAPACITY = 4_096
MAX_VECTOR_DIM = 32_768


@dataclass(frozen=True)
class Field:
    """One field of a collection schema.

    Parameters
    ----------
    field_name : str
        Name used in rows, filters and ``output_fields``.
    data_type : DataType or str
        One of :class:`DataType`.
    is_primary : bool
        Whether this field is the primary key (INT64 or VARCHAR).
    element_data_type : DataType or str, optional
        Element type of an ``ARRAY`` field.
    max_length : int, optional
        Longest ``VARCHAR`` in UTF-8 bytes (default 65,535).
    dim : int, optional
        Length of a ``FLOAT_VECTOR``.
    max_capacity : int, optional
        Most elements an ``ARRAY`` holds (default 4,096).
    nullable : bool
        Whether rows may omit the field (it reads back as ``None``).
    """

    field_name: str
    data_type: DataType
    is_primary: bool = False
    element_data_type: DataType | None = None
    max_length: int | None = None
    dim: int | None = None
    max_capacity: int | None = None
    nullable: bool = False

    def __post_init__(self) -> None:
        name = self.field_name
        if not isinstance(name, str) or not name.isidentifier() or len(name) > 255:
            raise SchemaError(
                f"field name {name!r} is not valid: use letters, digits and '_', "
                "not starting with a digit, at most 255 characters"
            )
        dtype = DataType.parse(self.data_type, name)
        object.__setattr__(self, "data_type", dtype)
        element = self.element_data_type
        if dtype is DataType.ARRAY:
            if element is None:
                raise SchemaError(f"ARRAY field '{name}' needs element_data_type, e.g. DataType.INT32")
            element = DataType.parse(element, name)
            if element not in ARRAY_ELEMENT_TYPES:
                raise SchemaError(f"ARRAY field '{name}' cannot hold {element.value} elements")
            object.__setattr__(self, "element_data_type", element)
            capacity = MAX_ARRAY_CAPACITY if self.max_capacity is None else self.max_capacity
            _check_positive(name, "max_capacity", capacity, MAX_ARRAY_CAPACITY)
            object.__setattr__(self, "max_capacity", capacity)
        elif element is not None:
            raise SchemaError(f"field '{name}' is {dtype.value}; only ARRAY takes element_data_type")
        if dtype is DataType.FLOAT_VECTOR:
            if self.dim is None:
                raise SchemaError(f"FLOAT_VECTOR field '{name}' needs dim=")
            _check_positive(name, "dim", self.dim, MAX_VECTOR_DIM)
        if dtype is DataType.VARCHAR:
            length = MAX_VARCHAR_LENGTH if self.max_length is None else self.max_length
            _check_positive(name, "max_length", length, MAX_VARCHAR_LENGTH)
            object.__setattr__(self, "max_length", length)
        if self.is_primary:
            if dtype not in (DataType.INT64, DataType.VARCHAR):
                raise SchemaError(f"primary key '{name}' must be INT64 or VARCHAR, not {dtype.value}")
            if self.nullable:
                raise SchemaError(f"primary key '{name}' cannot be nullable")

    def __repr__(self) -> str:
        parts = [repr(self.field_name), self.data_type.name]
        if self.is_primary:
            parts.append("is_primary=True")
        if self.element_data_type is not None:
            parts.append(f"element_data_type={self.element_data_type.name}")
        if self.data_type is DataType.VARCHAR and self.max_length != MAX_VARCHAR_LENGTH:
            parts.append(f"max_length={self.max_length}")
        if self.dim is not None:
            parts.append(f"dim={self.dim}")
        if self.data_type is DataType.ARRAY:
            parts.append(f"max_capacity={self.max_capacity}")
        if self.nullable:
            parts.append("nullable=True")
        return f"Field({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, as stored in the manifest and shown by ``describe_collection``."""
        out: dict[str, Any] = {"field_name": self.field_name, "data_type": self.data_type.value}
        if self.is_primary:
            out["is_primary"] = True
        if self.element_data_type is not None:
            out["element_data_type"] = self.element_data_type.value
        for key in ("max_length", "dim", "max_capacity"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.nullable:
            out["nullable"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Field:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def _check_positive(name: str, what: str, value: object, upper: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise SchemaError(f"field '{name}': {what} must be a positive int, got {value!r}")
    if upper is not None and value > upper:
        raise SchemaError(f"field '{name}': {what}={value} exceeds the limit {upper}")
