"""JSON Lines in and out of collections: one JSON object per line, one line per row.

Values are written as JSON has them: ints, floats (FLOAT values at float32
precision read back to the same float32), strings, lists, JSON fields as nested
JSON, nulls as ``null``. JSON has no int widths, so a collection created from a
JSON Lines file gets an inferred schema (``INT64``, ``DOUBLE``, ``ARRAY`` of the
narrowest int type, ...); to keep a schema exactly, write it beside the rows with
``to_jsonl(..., schema_path=...)`` and read it back with
``from_jsonl(..., schema_path=...)``. A file may also hold one JSON array of row
objects (a ``.json`` file) instead of one object per line.

>>> import os, tempfile
>>> from memora_lite import Memora
>>> client = Memora(path=":memory:")
>>> _ = client.nosql.insert(collection_name="t", data=[{"id": 1, "ids": [7, 8], "tag": None},
...                                                    {"id": 2, "ids": [], "tag": "b"}])
>>> folder = tempfile.mkdtemp()
>>> rows, schema = os.path.join(folder, "t.jsonl"), os.path.join(folder, "t.schema.json")
>>> to_jsonl(client, "t", rows, schema_path=schema)
2
>>> from pathlib import Path
>>> print(Path(rows).read_text(), end="")
{"id":1,"ids":[7,8],"tag":null}
{"id":2,"ids":[],"tag":"b"}
>>> from_jsonl(client, "t2", rows, schema_path=schema)
2
>>> client.nosql.describe_collection("t2")["fields"] == client.nosql.describe_collection("t")["fields"]
True
>>> client.close()
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from memora_lite.client import Memora
from memora_lite.errors import InvalidArgumentError, SchemaError
from memora_lite.interop.scan import DEFAULT_BATCH_ROWS, Chunk, collection_schema, iter_chunks
from memora_lite.models import Field

Progress = Callable[[int], object]
IMPORT_BATCH_ROWS = 4_096  # rows per insert call when reading JSON: each call is all-or-nothing


def to_jsonl(client: Memora, collection_name: str, path: str | os.PathLike[str] | IO[str], *, filter: str = "",
             output_fields: Sequence[str] | None = None, schema_path: str | os.PathLike[str] | None = None,
             batch_rows: int = DEFAULT_BATCH_ROWS, progress: Progress | None = None) -> int:
    """Write the rows matching ``filter`` as JSON Lines, in primary-key order; returns the rows written.

    Parameters
    ----------
    client : Memora
        An open client.
    collection_name : str
        The collection to export.
    path : str, os.PathLike or text file
        Where to write; a path is written under a temporary name and renamed when done.
    filter : str
        A filter expression; empty exports every row.
    output_fields : sequence of str, optional
        Fields to write (the primary key always comes first); default all.
    schema_path : str or os.PathLike, optional
        Also write the collection's schema there, for :func:`from_jsonl`.
    batch_rows : int
        Rows read per step; memory holds one step's rows.
    progress : callable, optional
        Called with the number of rows after each step.
    """
    if schema_path is not None:
        schema = collection_schema(client, collection_name)
        _write_text(schema_path, json.dumps({"primary_key": schema.primary_key,
                                             "fields": [f.to_dict() for f in schema.fields]}, indent=1) + "\n")
    chunks = iter_chunks(client, collection_name, filter, output_fields, batch_rows)
    if not isinstance(path, (str, os.PathLike)):
        return _write_rows(path, chunks, progress)
    path = os.fspath(path)
    temp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temp, "w", encoding="utf-8") as out:
            total = _write_rows(out, chunks, progress)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return total


def _write_rows(out: IO[str], chunks: Iterator[Chunk], progress: Progress | None) -> int:
    total = 0
    for chunk in chunks:
        pk = chunk.fields[0].field_name
        lines = []
        for row in chunk.rows():
            try:
                lines.append(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
            except (TypeError, ValueError) as exc:
                raise SchemaError(f"row {pk}={row[pk]!r} cannot be written as JSON ({exc})") from None
        out.write("\n".join(lines) + "\n")
        total += chunk.size
        if progress is not None:
            progress(chunk.size)
    return total


def _write_text(path: str | os.PathLike[str], text: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)


def from_jsonl(client: Memora, collection_name: str, path: str | os.PathLike[str], *, primary_key: str = "id",
               fields: Sequence[Field] | None = None, schema_path: str | os.PathLike[str] | None = None,
               upsert: bool = False, batch_rows: int = IMPORT_BATCH_ROWS, progress: Progress | None = None) -> int:
    """Insert the rows of a JSON Lines file (or a JSON array of rows); returns the rows written.

    Parameters
    ----------
    client : Memora
        An open, writable client.
    collection_name : str
        The collection to fill; a missing one is created, with ``fields`` (or the
        schema in ``schema_path``) if given, else with a schema inferred from the rows.
    path : str or os.PathLike
        The file: one JSON object per line (blank lines are skipped), or one JSON array.
    primary_key : str
        The key field of a new collection. Without ``fields`` it is made INT64 and the
        other fields are inferred; give ``fields`` for a VARCHAR key.
    fields : sequence of Field, optional
        The schema for a new collection.
    schema_path : str or os.PathLike, optional
        A schema written by :func:`to_jsonl`; overrides ``primary_key`` and ``fields``.
    upsert : bool
        Replace rows whose key is already stored instead of refusing them.
    batch_rows : int
        Rows per insert call (each call is all-or-nothing).
    progress : callable, optional
        Called with the number of rows after each insert call.
    """
    if schema_path is not None:
        primary_key, fields = read_schema(schema_path)
    if not client.nosql.has_collection(collection_name) and (fields is not None or primary_key != "id"):
        # With no fields, this makes an INT64 key and lets the first insert infer the rest.
        client.nosql.create_collection(collection_name, primary_key=primary_key,
                                       fields=None if fields is None else list(fields))
    write = client.nosql.upsert if upsert else client.nosql.insert
    total = 0
    batch: list[dict[str, Any]] = []
    for row in read_rows(path):
        batch.append(row)
        if len(batch) == batch_rows:
            total += _insert(write, collection_name, batch, progress)
            batch = []
    if batch:
        total += _insert(write, collection_name, batch, progress)
    return total


def _insert(write: Callable[[str, Any], Any], collection_name: str, rows: list[dict[str, Any]],
            progress: Progress | None) -> int:
    write(collection_name, rows)
    if progress is not None:
        progress(len(rows))
    return len(rows)


def read_schema(path: str | os.PathLike[str]) -> tuple[str, list[Field]]:
    """``(primary_key, fields)`` from a schema file: ``{"primary_key": ..., "fields": [...]}``.

    The ``describe_collection`` output (and ``memora-lite stat --format json``) has
    this shape too.
    """
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
        fields = [Field.from_dict(f) for f in data["fields"]]
        primary_key = data.get("primary_key") or next(f.field_name for f in fields if f.is_primary)
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
        raise InvalidArgumentError(f"{os.fspath(path)}: not a schema file ({type(exc).__name__}: {exc}); expected "
                                   '{"primary_key": "id", "fields": [{"field_name": ..., "data_type": ...}, ...]}'
                                   ) from None
    return primary_key, fields


def read_rows(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The row objects of a JSON Lines file, or of a file holding one JSON array of objects."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as file:
            yield from _file_rows(file, name)
    except OSError as exc:
        raise InvalidArgumentError(f"{name}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _file_rows(file: IO[str], name: str) -> Iterator[dict[str, Any]]:
    first = file.read(1)
    while first.isspace():
        first = file.read(1)
    file.seek(0)
    if first == "[":
        yield from _array_rows(file, name)
        return
    for number, line in enumerate(file, 1):
        if line.strip():
            yield _row(_loads(line, f"{name}, line {number}"), f"{name}, line {number}")


def _array_rows(file: IO[str], name: str) -> Iterator[dict[str, Any]]:
    rows = _loads(file.read(), name)
    if not isinstance(rows, list):
        raise InvalidArgumentError(f"{name}: expected a JSON array of row objects")
    for i, row in enumerate(rows):
        yield _row(row, f"{name}, row {i}")


def _loads(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"{where}: not valid JSON ({exc})") from None


def _row(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{where}: expected a JSON object (one row), got {type(value).__name__}")
    return value
