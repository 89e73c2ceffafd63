"""Hugging Face ``datasets`` in and out of collections (``pip install 'memora_lite[hf]'``).

A ``Dataset`` is an Arrow table, so both directions go through
:mod:`memora_lite.interop.arrow` and keep its types: ``Sequence(Value("int16"))``
becomes ``ARRAY`` of INT16 and back, ``Sequence(Value("float32"), length=d)`` a
``FLOAT_VECTOR`` of dim ``d``, ``ClassLabel`` an INT64, nested features JSON.

datasets keeps no per-column metadata, so what only memora_lite knows does not
travel: a JSON field reaches the dataset as its JSON text (``Value("string")``),
and a collection made by :func:`from_hf` sees that text as VARCHAR, with default
``max_length``/``max_capacity`` and nullability as the data shows. To get the exact
schema back, create the collection first (``create_collection(fields=...)``):
``from_hf`` fills an existing collection in its own types, parsing JSON text.

>>> import pytest
>>> datasets = pytest.importorskip("datasets")
>>> from memora_lite import Memora
>>> client = Memora(path=":memory:")
>>> ds = datasets.Dataset.from_dict({"id": [0, 1], "input_ids": [[101, 7, 102], [101, 102]]},
...                                 features=datasets.Features({"id": datasets.Value("int64"),
...                                     "input_ids": datasets.Sequence(datasets.Value("int16"))}))
>>> from_hf(client, "train", ds)
2
>>> client.nosql.describe_collection("train")["fields"][1]["element_data_type"]
'INT16'
>>> to_hf(client, "train")[1]
{'id': 1, 'input_ids': [101, 102]}
>>> client.close()
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from memora_lite.client import Memora
from memora_lite.errors import InvalidArgumentError, MemoraError
from memora_lite.interop.arrow import Progress, arrow_reader, load_batches, require_pyarrow
from memora_lite.interop.scan import DEFAULT_BATCH_ROWS


def require_datasets() -> Any:
    """The ``datasets`` module, or a MemoraError that says how to install it."""
    try:
        import datasets
    except ImportError as exc:
        raise MemoraError("Hugging Face support needs datasets: pip install 'memora_lite[hf]'") from exc
    return datasets


def from_hf(client: Memora, collection_name: str, dataset: Any, *, split: str | None = None,
            primary_key: str | None = None, upsert: bool = False, batch_rows: int = DEFAULT_BATCH_ROWS,
            progress: Progress | None = None) -> int:
    """Insert a Hugging Face ``Dataset`` (or one split of a ``DatasetDict``) into a collection.

    Parameters
    ----------
    client : Memora
        An open, writable client.
    collection_name : str
        The collection to fill; a missing one gets a schema from the dataset's Arrow types.
    dataset : datasets.Dataset, datasets.DatasetDict, str or os.PathLike
        The data, or a folder written by ``save_to_disk``.
    split : str, optional
        Which split of a ``DatasetDict``; needed when it has more than one.
    primary_key : str, optional
        The key column (default ``"id"``).
    upsert : bool
        Replace rows whose key is already stored instead of refusing them.
    batch_rows : int
        Rows per insert call.
    progress : callable, optional
        Called with the number of rows after each insert call.

    Returns
    -------
    int
        Rows written.
    """
    require_pyarrow()
    ds = pick_split(load_saved(dataset) if isinstance(dataset, (str, os.PathLike)) else dataset, split)
    table = ds.data  # the Arrow table behind the dataset (memory-mapped when it came from disk)
    null_counts = {name: table.column(name).null_count for name in table.column_names}
    batches = (b for t in ds.with_format("arrow").iter(batch_size=batch_rows) for b in t.to_batches())
    return load_batches(client, collection_name, table.schema, batches, null_counts, primary_key=primary_key,
                        upsert=upsert, progress=progress)


def to_hf(client: Memora, collection_name: str, *, filter: str = "", output_fields: Sequence[str] | None = None,
          batch_rows: int = DEFAULT_BATCH_ROWS) -> Any:
    """The rows matching ``filter`` as a Hugging Face ``Dataset``, in primary-key order.

    The dataset is built in memory; for a collection larger than memory, write it
    with :func:`memora_lite.interop.to_parquet` and load that with
    ``datasets.load_dataset("parquet", data_files=...)``, which memory-maps it.
    """
    datasets = require_datasets()
    table = arrow_reader(client, collection_name, filter, output_fields, batch_rows).read_all()
    return datasets.Dataset(table)


def load_saved(path: str | os.PathLike[str]) -> Any:
    """A ``Dataset`` or ``DatasetDict`` written by ``save_to_disk``."""
    datasets = require_datasets()
    try:
        return datasets.load_from_disk(os.fspath(path))
    except FileNotFoundError as exc:
        raise InvalidArgumentError(f"{os.fspath(path)}: not a saved Hugging Face dataset ({exc})") from None


def pick_split(dataset: Any, split: str | None) -> Any:
    """``dataset`` itself, or the named (or only) split of a ``DatasetDict``."""
    datasets = require_datasets()
    if isinstance(dataset, datasets.Dataset):
        if split is not None and dataset.split is not None and str(dataset.split) != split:
            raise InvalidArgumentError(f"the dataset is split '{dataset.split}', not '{split}'")
        return dataset
    if isinstance(dataset, datasets.DatasetDict):
        names = sorted(dataset)
        if split is None and len(names) == 1:
            return dataset[names[0]]
        if split is None or split not in dataset:
            raise InvalidArgumentError(f"pick a split with split= (--split on the command line): "
                                       f"{', '.join(names) or 'none'}")
        return dataset[split]
    raise InvalidArgumentError(f"expected a datasets.Dataset or DatasetDict, not {type(dataset).__name__}")
