"""memora_lite: the Memora ``nosql`` interface, in-process, with no server, on local files.

A short tour (every line runs as a doctest)::

>>> from memora_lite import Memora
>>> client = Memora(path=":memory:")            # or a folder; default ./memora_data
>>> rows = [{"id": i, "input_ids": [101, 7 + i, 102, 0, 0], "label": i % 2} for i in range(100)]
>>> client.nosql.insert(collection_name="train", data=rows)["insert_count"]
100
>>> batch = client.nosql.query(collection_name="train", filter="10 <= id < 12",
...                            output_fields=["input_ids", "label"])["data"]
>>> batch[0]["input_ids"], batch[0][1], batch[1]["id"]
([101, 17, 102, 0, 0], 0, 11)
>>> arrays = client.nosql.query(collection_name="train", filter="label == 1", output="numpy")["data"]
>>> arrays["input_ids"].shape, arrays["input_ids"].dtype.name
((50, 5), 'int8')
>>> client.close()
"""

from memora_lite.client import Memora
from memora_lite.codecs import BACKEND
from memora_lite.errors import (
    ClosedError,
    CodecError,
    CollectionNotFoundError,
    CorruptionError,
    DuplicateIdError,
    FieldNotFoundError,
    FilterError,
    InvalidArgumentError,
    InvalidNameError,
    LockedError,
    MemoraError,
    ReadOnlyError,
    SchemaError,
    StrictModeError,
)
from memora_lite.models import DataType, Field
from memora_lite.patching import patch

__version__ = "0.1.0"

__all__ = [
    "BACKEND",
    "ClosedError",
    "CodecError",
    "CollectionNotFoundError",
    "CorruptionError",
    "DataType",
    "DuplicateIdError",
    "Field",
    "FieldNotFoundError",
    "FilterError",
    "InvalidArgumentError",
    "InvalidNameError",
    "LockedError",
    "Memora",
    "MemoraError",
    "ReadOnlyError",
    "SchemaError",
    "StrictModeError",
    "__version__",
    "patch",
]
