"""Moving collections to and from other tools: Arrow, Parquet, JSON Lines, Hugging Face datasets.

Each format is one module with a ``to_<format>`` / ``from_<format>`` pair that takes
an open :class:`~memora_lite.Memora` client and a collection name. Exports stream
the collection in primary-key order, one bounded chunk at a time
(:mod:`~memora_lite.interop.scan`); imports insert one all-or-nothing batch at a
time and create a missing collection with the schema the data carries or implies.

pyarrow (``pip install 'memora_lite[arrow]'``) is needed for Arrow and Parquet, and
``datasets`` (``pip install 'memora_lite[hf]'``) for Hugging Face; JSON Lines needs
nothing extra. Importing this package imports neither.

>>> from memora_lite import Memora
>>> from memora_lite.interop import from_jsonl, to_jsonl
>>> import os, tempfile
>>> from pathlib import Path
>>> client = Memora(path=":memory:")
>>> _ = client.nosql.insert(collection_name="t", data=[{"id": i, "ids": [i, i + 1]} for i in range(3)])
>>> path = os.path.join(tempfile.mkdtemp(), "t.jsonl")
>>> to_jsonl(client, "t", path), Path(path).read_text().splitlines()[0]
(3, '{"id":0,"ids":[0,1]}')
>>> from_jsonl(client, "t_copy", path)
3
>>> client.close()
"""

from memora_lite.interop.arrow import arrow_reader, from_arrow, to_arrow
from memora_lite.interop.hf import from_hf, to_hf
from memora_lite.interop.jsonl import from_jsonl, to_jsonl
from memora_lite.interop.parquet import from_parquet, to_parquet
from memora_lite.interop.scan import iter_chunks

__all__ = [
    "arrow_reader",
    "from_arrow",
    "from_hf",
    "from_jsonl",
    "from_parquet",
    "iter_chunks",
    "to_arrow",
    "to_hf",
    "to_jsonl",
    "to_parquet",
]
