"""Parquet files in and out of collections (needs pyarrow: ``pip install 'memora_lite[arrow]'``).

The types are Arrow's (:mod:`memora_lite.interop.arrow`): ``ARRAY`` of INT16 is a
Parquet list of int16, read by pyarrow as ``list<int16>`` and by DuckDB as
``SMALLINT[]``; ``FLOAT_VECTOR`` is a list of float32; JSON is UTF-8 text. The file
also carries each field's definition, so importing our own export rebuilds the
exact schema. Export streams one row group per ``batch_rows`` rows and writes to a
temporary name first, so a failed export never leaves a partial file behind.

>>> import os, tempfile
>>> from memora_lite import Memora
>>> client = Memora(path=":memory:")
>>> _ = client.nosql.insert(collection_name="t", data=[{"id": i, "ids": [i, 300]} for i in range(3)])
>>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")
>>> to_parquet(client, "t", path)
3
>>> import pyarrow.parquet as pq
>>> pq.read_schema(path).field("ids").type.value_type
DataType(int16)
>>> from_parquet(client, "t_copy", path), client.nosql.get(collection_name="t_copy", ids=[1])["data"]
(3, [{'id': 1, 'ids': [1, 300]}])
>>> client.close()
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from memora_lite.client import Memora
from memora_lite.errors import InvalidArgumentError
from memora_lite.interop.arrow import Progress, arrow_reader, load_batches, require_pyarrow
from memora_lite.interop.scan import DEFAULT_BATCH_ROWS


def to_parquet(client: Memora, collection_name: str, path: str | os.PathLike[str], *, filter: str = "",
               output_fields: Sequence[str] | None = None, batch_rows: int = DEFAULT_BATCH_ROWS,
               compression: str = "zstd", progress: Progress | None = None) -> int:
    """Write the rows matching ``filter`` to a Parquet file; returns the rows written.

    Parameters
    ----------
    client : Memora
        An open client.
    collection_name : str
        The collection to export.
    path : str or os.PathLike
        The file to write (replaced if it exists, only once the export succeeded).
    filter : str
        A filter expression; empty exports every row.
    output_fields : sequence of str, optional
        Columns to export (the primary key always comes first); default all.
    batch_rows : int
        Rows per row group; memory holds one group at a time.
    compression : str
        Parquet compression codec (``"zstd"``, ``"snappy"``, ``"none"``, ...).
    progress : callable, optional
        Called with the number of rows after each row group.
    """
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    reader = arrow_reader(client, collection_name, filter, output_fields, batch_rows)
    path = os.fspath(path)
    temp = f"{path}.tmp-{os.getpid()}"
    total = 0
    try:
        with pq.ParquetWriter(temp, reader.schema, compression=compression) as writer:
            for batch in reader:
                writer.write_table(pa.Table.from_batches([batch]))
                total += batch.num_rows
                if progress is not None:
                    progress(batch.num_rows)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return total


def from_parquet(client: Memora, collection_name: str, path: str | os.PathLike[str], *,
                 primary_key: str | None = None, upsert: bool = False, batch_rows: int = DEFAULT_BATCH_ROWS,
                 progress: Progress | None = None) -> int:
    """Insert the rows of a Parquet file, ``batch_rows`` at a time; returns the rows written.

    A missing collection is created from the file's schema (see
    :func:`memora_lite.interop.arrow.from_arrow`); whether a column is nullable comes
    from the file's null counts where its statistics hold them.
    """
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(os.fspath(path))
    except (OSError, pa.ArrowException) as exc:
        raise InvalidArgumentError(f"{os.fspath(path)}: cannot read it as Parquet ({exc})") from None
    with file:
        return load_batches(client, collection_name, file.schema_arrow, file.iter_batches(batch_size=batch_rows),
                            _null_counts(file), primary_key=primary_key, upsert=upsert, progress=progress)


def parquet_rows(path: str | os.PathLike[str]) -> int:
    """Number of rows in a Parquet file, from its footer."""
    require_pyarrow()
    import pyarrow.parquet as pq

    return int(pq.read_metadata(os.fspath(path)).num_rows)


def _null_counts(file: Any) -> dict[str, int]:
    """Nulls per top-level column, for the columns whose every row group records its null count."""
    counts: dict[str, int] = {}
    unknown: set[str] = set()
    meta = file.metadata
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            name = column.path_in_schema
            stats = column.statistics
            if stats is None or not stats.has_null_count:
                unknown.add(name)
            else:
                counts[name] = counts.get(name, 0) + stats.null_count
    return {name: n for name, n in counts.items() if name not in unknown}
