"""One adapter per storage engine, all with the same verbs, so every workload runs each engine the same way.

The benchmarks (``test_core_workloads.py``) store SQuAD-shaped rows -- ``id``,
``start_token``, ``end_token`` and two 384-int arrays, ``input_ids`` and
``attention_mask`` -- in each engine and read them back. An adapter owns one
folder and offers:

============================== ==========================================================
verb                           what it does
============================== ==========================================================
``fill_row(row)``              store one row dict, durable against ``kill -9`` when the
                               engine can be (one OS write per call); the guide's loop
``fill_bulk_rows(rows)``       store a list of row dicts in one call
``fill_bulk_numpy(cols)``      store a dict of numpy columns (``input_ids`` is ``(n, 384)``)
``read_range_lists(lo, hi)``   rows with ``lo <= id < hi`` in id order, each indexable by
                               position: ``[input_ids list, attention_mask list, start, end]``
``read_range_numpy(lo, hi)``   the same rows as a dict of numpy arrays (2-D for the arrays)
``get(key)``                   one row by id, as a mapping with the four fields
``get_many(keys)``             rows by id in the order asked (a random sampler's batch); an
                               engine without a batch lookup gets them one by one
``scan_numpy(batch)``          every row, as dicts of numpy arrays (``id`` included), streamed
``bytes_on_disk()``            bytes of every file in the folder
``close()`` / ``open()``       release and reopen the store (``reopen()`` does both)
============================== ==========================================================

Each peer uses its fastest documented path for each verb (each class says which);
a write verb an engine has no path for is left to the base class, which raises
:class:`Unsupported` (``Engine.supports`` tells; the report shows "n/a"). Peers other
than sqlite3, the msgpack file and the numpy memmap are optional (the ``bench``
extra) and imported only when used; :func:`available` says why one is missing.

The module also runs as a script, for the memory probe, which must start from a
fresh process to have an honest baseline::

    python benchmarks/peers.py scan-rss ENGINE PATH CAPACITY BATCH

>>> sorted(ENGINES)[:3]
['hf_datasets', 'lance', 'memora_lite']
>>> folder_bytes("/nonexistent/folder")
0
"""

from __future__ import annotations

import bisect
import contextlib
import importlib
import importlib.util
import json
import logging
import os
import shutil
import sqlite3
import sys
import threading
import time
import warnings
from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import msgpack
import numpy as np

FIELDS = ["input_ids", "attention_mask", "start_token", "end_token"]  # the guide's output_fields
SEQ_LEN = 384
COLLECTION = "finetune_data"
ROW_GROUP_ROWS = 1_024  # Parquet row groups: memora_lite's block size


class Unsupported(NotImplementedError):
    """The engine has no path for this verb (the report prints "n/a")."""


def folder_bytes(path: str) -> int:
    """Total size of every file under ``path`` (0 when it does not exist)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # a file removed while walking (a peer's temp file)
                total += os.path.getsize(os.path.join(root, name))
    return total


def _quiet_import(name: str) -> Any:
    """Import a peer library, ignoring the deprecation warnings some emit on import (pytest makes warnings errors)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


class Engine:
    """Base of the adapters: one store in one folder.

    ``caps`` bounds the rows (or calls) one benchmark round asks of a slow engine,
    so that every workload stays a few seconds; the report divides by what was done.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    caps: ClassVar[dict[str, int]] = {}

    def __init__(self, path: str, capacity: int) -> None:
        self.path = path
        self.capacity = capacity  # rows the store will hold at most (only the memmap needs it)
        self.is_open = False
        os.makedirs(path, exist_ok=True)
        self.open()

    @classmethod
    def available(cls) -> str | None:
        """None when the engine's libraries are installed, else why not."""
        missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
        return f"{cls.label}: not installed ({', '.join(missing)}; pip install '.[bench]')" if missing else None

    @classmethod
    def supports(cls, verb: str) -> bool:
        """Whether the engine has a path for ``verb`` (a write verb it does not override is n/a)."""
        return getattr(cls, verb) is not getattr(Engine, verb)

    @classmethod
    def cap(cls, workload: str, wanted: int) -> int:
        """``wanted``, bounded by the engine's cap for ``workload`` (slow peers do fewer rows per round)."""
        return min(wanted, cls.caps.get(workload, wanted))

    def open(self) -> None:
        """Open (or create) the store in ``self.path``."""
        self._open()
        self.is_open = True

    def close(self) -> None:
        """Make everything written durable and release the store; a second call does nothing."""
        if self.is_open:
            self.is_open = False
            self._close()

    def reopen(self) -> None:
        self.close()
        self.open()

    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def fill_row(self, row: Mapping[str, Any]) -> None:
        raise Unsupported(f"{self.label} has no durable one-row insert")

    def fill_bulk_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        raise Unsupported(f"{self.label} has no bulk insert of row dicts")

    def fill_bulk_numpy(self, cols: Mapping[str, np.ndarray]) -> None:
        raise Unsupported(f"{self.label} takes no numpy columns")

    def read_range_lists(self, lo: int, hi: int) -> Sequence[Sequence[Any]]:
        raise NotImplementedError

    def read_range_numpy(self, lo: int, hi: int) -> Mapping[str, np.ndarray]:
        raise NotImplementedError

    def get(self, key: int) -> Mapping[str, Any]:
        raise NotImplementedError

    def get_many(self, keys: Sequence[int]) -> Sequence[Mapping[str, Any]]:
        """Rows by id, in the order asked. An engine with no batch lookup gets them one by one."""
        return [self.get(k) for k in keys]

    def scan_numpy(self, batch: int) -> Iterator[Mapping[str, np.ndarray]]:
        raise NotImplementedError

    def bytes_on_disk(self) -> int:
        return folder_bytes(self.path)


# --- memora_lite ------------------------------------------------------------------------------------


class MemoraLite(Engine):
    """memora_lite through the Memora ``nosql`` calls, exactly as the guide makes them."""

    name = "memora_lite"
    label = "memora_lite"

    def _open(self) -> None:
        from memora_lite import Memora

        self.client = Memora(path=self.path)
        self.nosql = self.client.nosql

    def _close(self) -> None:
        self.client.close()

    def fill_row(self, row: Mapping[str, Any]) -> None:
        self.nosql.insert(collection_name=COLLECTION, data=row)

    def fill_bulk_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.nosql.insert(collection_name=COLLECTION, data=rows)

    def fill_bulk_numpy(self, cols: Mapping[str, np.ndarray]) -> None:
        self.nosql.insert(collection_name=COLLECTION, data=cols)

    def read_range_lists(self, lo: int, hi: int) -> Sequence[Sequence[Any]]:
        return self.nosql.query(collection_name=COLLECTION, filter=f"{lo} <= id < {hi}", output_fields=FIELDS)["data"]

    def read_range_numpy(self, lo: int, hi: int) -> Mapping[str, np.ndarray]:
        return self.nosql.query(collection_name=COLLECTION, filter=f"{lo} <= id < {hi}", output_fields=FIELDS,
                                output="numpy")["data"]

    def get(self, key: int) -> Mapping[str, Any]:
        return self.nosql.get(collection_name=COLLECTION, key=key)["data"][0]

    def get_many(self, keys: Sequence[int]) -> Sequence[Mapping[str, Any]]:
        return self.nosql.get(collection_name=COLLECTION, ids=keys)["data"]  # type: ignore[no-any-return]

    def count(self) -> int:
        return self.nosql.query(collection_name=COLLECTION, output_fields=["count(*)"])["data"][0]["count(*)"]

    def scan_numpy(self, batch: int) -> Iterator[Mapping[str, np.ndarray]]:
        # memora_lite has no scan cursor: a scan is consecutive id ranges, each O(log segments + rows).
        top = self.nosql.query(collection_name=COLLECTION, filter="", output_fields=["count(*)"])["data"][0]["count(*)"]
        for lo in range(0, top, batch):
            yield self.read_range_numpy(lo, lo + batch)


# --- sqlite3 ----------------------------------------------------------------------------------------


class SQLite(Engine):
    """sqlite3 in WAL mode, int arrays as BLOBs of int32 / int8 bytes, one transaction per insert call.

    ``synchronous=NORMAL``: a committed row is in the WAL file (the OS has it) when
    the call returns, which survives ``kill -9`` as memora_lite's default does.
    """

    name = "sqlite"
    label = "SQLite, int BLOBs, WAL"
    _INSERT = "INSERT INTO t (id, start_token, end_token, input_ids, attention_mask) VALUES (?, ?, ?, ?, ?)"
    _RANGE = "SELECT input_ids, attention_mask, start_token, end_token FROM t WHERE id >= ? AND id < ? ORDER BY id"

    def _open(self) -> None:
        self.db = sqlite3.connect(os.path.join(self.path, "store.sqlite"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, start_token INTEGER, "
                        "end_token INTEGER, input_ids BLOB, attention_mask BLOB)")

    def _close(self) -> None:
        self.db.close()

    def fill_row(self, row: Mapping[str, Any]) -> None:
        self.db.execute(self._INSERT, (row["id"], row["start_token"], row["end_token"],
                                       array("i", row["input_ids"]).tobytes(),
                                       array("b", row["attention_mask"]).tobytes()))

    def fill_bulk_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        params = [(r["id"], r["start_token"], r["end_token"], array("i", r["input_ids"]).tobytes(),
                   array("b", r["attention_mask"]).tobytes()) for r in rows]
        self._insert_many(params)

    def fill_bulk_numpy(self, cols: Mapping[str, np.ndarray]) -> None:
        ids = np.ascontiguousarray(cols["input_ids"], dtype=np.int32)
        mask = np.ascontiguousarray(cols["attention_mask"], dtype=np.int8)
        params = zip(cols["id"].tolist(), cols["start_token"].tolist(), cols["end_token"].tolist(),
                     map(bytes, ids), map(bytes, mask))
        self._insert_many(params)

    def _insert_many(self, params: Any) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(self._INSERT, params)
        self.db.execute("COMMIT")

    def read_range_lists(self, lo: int, hi: int) -> Sequence[Sequence[Any]]:
        fb = np.frombuffer
        return [(fb(a, np.int32).tolist(), fb(m, np.int8).tolist(), s, e)
                for a, m, s, e in self.db.execute(self._RANGE, (lo, hi))]

    def read_range_numpy(self, lo: int, hi: int) -> Mapping[str, np.ndarray]:
        return self._columns(self.db.execute(self._RANGE, (lo, hi)).fetchall())

    @staticmethod
    def _columns(rows: list[tuple[Any, ...]]) -> dict[str, np.ndarray]:
        a, m, s, e = zip(*rows) if rows else ((), (), (), ())
        return {"input_ids": np.frombuffer(b"".join(a), np.int32).reshape(-1, SEQ_LEN),
                "attention_mask": np.frombuffer(b"".join(m), np.int8).reshape(-1, SEQ_LEN),
                "start_token": np.array(s, dtype=np.int64), "end_token": np.array(e, dtype=np.int64)}

    def get(self, key: int) -> Mapping[str, Any]:
        a, m, s, e = self.db.execute("SELECT input_ids, attention_mask, start_token, end_token FROM t WHERE id = ?",
                                     (key,)).fetchone()
        return {"input_ids": np.frombuffer(a, np.int32).tolist(), "attention_mask": np.frombuffer(m, np.int8).tolist(),
                "start_token": s, "end_token": e}

    def get_many(self, keys: Sequence[int]) -> Sequence[Mapping[str, Any]]:
        marks = ", ".join("?" * len(keys))
        found = {k: (a, m, s, e) for k, a, m, s, e in self.db.execute(
            f"SELECT id, input_ids, attention_mask, start_token, end_token FROM t WHERE id IN ({marks})", keys)}
        fb = np.frombuffer
        return [{"input_ids": fb(a, np.int32).tolist(), "attention_mask": fb(m, np.int8).tolist(),
                 "start_token": s, "end_token": e} for a, m, s, e in (found[k] for k in keys if k in found)]

    def scan_numpy(self, batch: int) -> Iterator[Mapping[str, np.ndarray]]:
        cursor = self.db.execute("SELECT id, input_ids, attention_mask, start_token, end_token FROM t ORDER BY id")
        while rows := cursor.fetchmany(batch):
            out = self._columns([r[1:] for r in rows])
            out["id"] = np.array([r[0] for r in rows], dtype=np.int64)
            yield out


# --- an append-only msgpack file ------------------------------------------------------------------


class MsgpackLog(Engine):
    """An append-only file of msgpack records ``[id, start, end, input_ids, mask]`` and an in-memory offset index.

    One ``os.write`` per insert call (durable against ``kill -9``); opening reads
    the whole file to rebuild the index.
    """

    name = "msgpack"
    label = "an append-only msgpack file"

    def _open(self) -> None:
        self.file = os.path.join(self.path, "rows.msgpack")
        self.fd = os.open(self.file, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self.index: dict[int, tuple[int, int]] = {}
        self.end = 0
        with open(self.file, "rb") as f:
            unpacker = msgpack.Unpacker(f, read_size=1 << 20)
            start = 0
            for record in unpacker:
                end = unpacker.tell()
                self.index[record[0]] = (start, end - start)
                start = end
        self.end = start
        self.packer = msgpack.Packer()

    def _close(self) -> None:
        os.close(self.fd)

    def _append(self, records: list[bytes], keys: list[int]) -> None:
        os.write(self.fd, b"".join(records))
        at = self.end
        for key, record in zip(keys, records):
            self.index[key] = (at, len(record))
            at += len(record)
        self.end = at

    def fill_row(self, row: Mapping[str, Any]) -> None:
        record = self.packer.pack([row["id"], row["start_token"], row["end_token"], row["input_ids"],
                                   row["attention_mask"]])
        os.write(self.fd, record)
        self.index[row["id"]] = (self.end, len(record))
        self.end += len(record)

    def fill_bulk_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        pack = self.packer.pack
        records = [pack([r["id"], r["start_token"], r["end_token"], r["input_ids"], r["attention_mask"]])
                   for r in rows]
        self._append(records, [r["id"] for r in rows])

    def _records(self, lo: int, hi: int) -> list[list[Any]]:
        spots = [self.index[k] for k in range(lo, hi) if k in self.index]
        if not spots:
            return []
        first, last = spots[0][0], spots[-1][0] + spots[-1][1]
        if last - first == sum(size for _, size in spots):  # rows stored in id order: one read
            unpacker = msgpack.Unpacker()
            unpacker.feed(os.pread(self.fd, last - first, first))
            return list(unpacker)
        return [msgpack.unpackb(os.pread(self.fd, size, at)) for at, size in spots]

    def read_range_lists(self, lo: int, hi: int) -> Sequence[Sequence[Any]]:
        return [(r[3], r[4], r[1], r[2]) for r in self._records(lo, hi)]

    def read_range_numpy(self, lo: int, hi: int) -> Mapping[str, np.ndarray]:
        return _msgpack_columns(self._records(lo, hi))

    def get(self, key: int) -> Mapping[str, Any]:
        at, size = self.index[key]
        r = msgpack.unpackb(os.pread(self.fd, size, at))
        return {"input_ids": r[3], "attention_mask": r[4], "start_token": r[1], "end_token": r[2]}

    def scan_numpy(self, batch: int) -> Iterator[Mapping[str, np.ndarray]]:
        with open(self.file, "rb") as f:
            records: list[list[Any]] = []
            for record in msgpack.Unpacker(f, read_size=1 << 20):
                records.append(record)
                if len(records) == batch:
                    yield _msgpack_columns(records, with_id=True)
                    records = []
            if records:
                yield _msgpack_columns(records, with_id=True)


def _msgpack_columns(records: list[list[Any]], with_id: bool = False) -> dict[str, np.ndarray]:
    out = {"input_ids": np.array([r[3] for r in records], dtype=np.int32).reshape(-1, SEQ_LEN),
           "attention_mask": np.array([r[4] for r in records], dtype=np.int8).reshape(-1, SEQ_LEN),
           "start_token": np.array([r[1] for r in records], dtype=np.int64),
           "end_token": np.array([r[2] for r in records], dtype=np.int64)}
    if with_id:
        out["id"] = np.array([r[0] for r in records], dtype=np.int64)
    return out


# --- numpy .npy memmap ------------------------------------------------------------------------------


class NpyMemmap(Engine):
    """No store at all: four preallocated ``.npy`` memmaps, row ``id`` at position ``id``.

    Writes land in the shared mapping (the OS has them: they survive ``kill -9``);
    the row count lives in memory and in a small file written on close.
    """

    name = "npy_memmap"
    label = "numpy .npy memmap (no store at all)"
    _DTYPES: ClassVar[dict[str, Any]] = {"input_ids": (np.int32, SEQ_LEN), "attention_mask": (np.int8, SEQ_LEN),
                                         "start_token": (np.int64, 0), "end_token": (np.int64, 0)}

    def _open(self) -> None:
        fmt = np.lib.format
        count_file = os.path.join(self.path, "count")
        fresh = not os.path.exists(count_file)
        self.arrays: dict[str, np.memmap] = {}
        for field, (dtype, width) in self._DTYPES.items():
            path = os.path.join(self.path, f"{field}.npy")
            if fresh:
                shape = (self.capacity, width) if width else (self.capacity,)
                self.arrays[field] = fmt.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
            else:
                self.arrays[field] = fmt.open_memmap(path, mode="r+")
        with open(count_file, "a+") as f:
            f.seek(0)
            self.n = int(f.read() or 0)
        self.ids, self.mask = self.arrays["input_ids"], self.arrays["attention_mask"]
        self.starts, self.ends = self.arrays["start_token"], self.arrays["end_token"]

    def _close(self) -> None:
        for a in self.arrays.values():
            a.flush()
        with open(os.path.join(self.path, "count"), "w") as f:
            f.write(str(self.n))
        del self.arrays, self.ids, self.mask, self.starts, self.ends

    def fill_row(self, row: Mapping[str, Any]) -> None:
        i = row["id"]
        self.ids[i] = row["input_ids"]
        self.mask[i] = row["attention_mask"]
        self.starts[i] = row["start_token"]
        self.ends[i] = row["end_token"]
        self.n = max(self.n, i + 1)

    def fill_bulk_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        lo, hi = rows[0]["id"], rows[-1]["id"] + 1  # rows come in id order
        self.ids[lo:hi] = [r["input_ids"] for r in rows]
        self.mask[lo:hi] = [r["attention_mask"] for r in rows]
        self.starts[lo:hi] = [r["start_token"] for r in rows]
        self.ends[lo:hi] = [r["end_token"] for r in rows]
        self.n = max(self.n, hi)

    def fill_bulk_numpy(self, cols: Mapping[str, np.ndarray]) -> None:
        lo, hi = int(cols["id"][0]), int(cols["id"][-1]) + 1
        for field in self._DTYPES:
            self.arrays[field][lo:hi] = cols[field]
        self.n = max(self.n, hi)

    def read_range_lists(self, lo: int, hi: int) -> Sequence[Sequence[Any]]:
        hi = min(hi, self.n)
        return list(zip(self.ids[lo:hi].tolist(), self.mask[lo:hi].tolist(), self.starts[lo:hi].tolist(),
                        self.ends[lo:hi].tolist()))

    def read_range_numpy(self, lo: int, hi: int) -> Mapping[str, np.ndarray]:
        hi = min(hi, self.n)
        return {field: np.array(a[lo:hi]) for field, a in self.arrays.items()}

    def get(self, key: int) -> Mapping[str, Any]:
        return {"input_ids": self.ids[key].tolist(), "attention_mask": self.mask[key].tolist(),
                "start_token": int(self.starts[key]), "end_token": int(self.ends[key])}

    def get_many(self, keys: Sequence[int]) -> Sequence[Mapping[str, Any]]:
        return [_numpy_row({f: a[keys] for f, a in self.arrays.items()}, i) for i in range(len(keys))]

    def scan_numpy(self, batch: int) -> Iterator[Mapping[str, np.ndarray]]:
        for lo in range(0, self.n, batch):
            out = dict(self.read_range_numpy(lo, lo + batch))
            out["id"] = np.arange(lo, lo + len(out["start_token"]), dtype=np.int64)
            yield out


# --- Arrow-based peers: shared schema and conversions -----------------------------------------------


def _arrow_schema() -> Any:
    pa = _quiet_import("pyarrow")
    return pa.schema([("id", pa.int64()), ("start_token", pa.int64()), ("end_token", pa.int64()),
                      ("input_ids", pa.list_(pa.int32(), SEQ_LEN)),
                      ("attention_mask", pa.list_(pa.int8(), SEQ_LEN))])


def _arrow_from_numpy(cols: Mapping[str, np.ndarray], schema: Any) -> Any:
    """An Arrow table of numpy columns: fixed-size lists over the flat values, no Python objects."""
    pa = _quiet_import("pyarrow")

    def fixed(values: np.ndarray, dtype: Any) -> Any:
        flat = np.ascontiguousarray(values, dtype=dtype).reshape(-1)
        return pa.FixedSizeListArray.from_arrays(pa.array(flat), SEQ_LEN)

    return pa.Table.from_arrays([pa.array(cols["id"]), pa.array(cols["start_token"]), pa.array(cols["end_token"]),
                                 fixed(cols["input_ids"], np.int32), fixed(cols["attention_mask"], np.int8)],
                                schema=schema)


def _fixed_numpy(column: Any) -> np.ndarray:
    """A fixed-size-list Arrow column (ChunkedArray or Array) as a 2-D numpy array."""
    chunks = column.chunks if hasattr(column, "chunks") else [column]
    parts = [c.flatten().to_numpy(zero_copy_only=False) for c in chunks]
    flat = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0)
    return flat.reshape(-1, SEQ_LEN)


def _table_numpy(table: Any, with_id: bool = False) -> dict[str, np.ndarray]:
    out = {"input_ids": _fixed_numpy(table.column("input_ids")),
           "attention_mask": _fixed_numpy(table.column("attention_mask")),
           "start_token": table.column("start_token").to_numpy(),
           "end_token": table.column("end_token").to_numpy()}
    if with_id:
        out["id"] = table.column("id").to_numpy()
    return out


def _numpy_lists(cols: Mapping[str, np.ndarray]) -> list[tuple[Any, ...]]:
    """Columns as the guide's rows: ``(input_ids list, mask list, start, end)``."""
    return list(zip(cols["input_ids"].tolist(), cols["attention_mask"].tolist(), cols["start_token"].tolist(),
                    cols["end_token"].tolist()))


def _numpy_row(cols: Mapping[str, np.ndarray], i: int) -> dict[str, Any]:
    return {"input_ids": cols["input_ids"][i].tolist(), "attention_mask": cols["attention_mask"][i].tolist(),
            "start_token": int(cols["start_token"][i]), "end_token": int(cols["end_token"][i])}


# --- Parquet + zstd (pyarrow) ---------------------------------------------------------------------


class Parquet(Engine):
    """Parquet files with zstd (pyarrow): one part file per writing session, row groups of 1,024 rows.

    1,024 rows is memora_lite's block size: a get or a short range decodes as much here as there.

    A read decodes the row groups whose ``id`` statistics overlap the range and keeps
    the last one decoded (a one-group cache: consecutive range reads decode each group
    once). Parquet has no one-row append, so ``fill_row`` is n/a.
    """

    name = "parquet"
    label = "Parquet + zstd (pyarrow)"
    requires = ("pyarrow",)
    caps: ClassVar[dict[str, int]] = {"readrandom": 300}

    def _open(self) -> None:
        self.pq = _quiet_import("pyarrow.parquet")
        self.schema = _arrow_schema()
        self.writer: Any = None
        parts = sorted(f for f in os.listdir(self.path) if f.endswith(".parquet"))
        self.files = [self.pq.ParquetFile(os.path.join(self.path, f), memory_map=True) for f in parts]
        groups = []  # (min id, max id, file, row group)
        for fi, pf in enumerate(self.files):
            id_col = pf.schema_arrow.get_field_index("id")
            for g in range(pf.metadata.num_row_groups):
                stats = pf.metadata.row_group(g).column(id_col).statistics
                groups.append((stats.min, stats.max, fi, g))
        groups.sort()
        self.groups = groups
        self.group_min = [g[0] for g in groups]
        self.cached: tuple[int, dict[str, np.ndarray]] | None = None
        self.n = sum(pf.metadata.num_rows for pf in self.files)

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        for pf in self.files:
            pf.close()
        self.files, self.cached = [], None

    def _write(self, table: Any) -> None:
        if self.writer is None:
            name = os.path.join(self.path, f"part-{len(self.files) + 1:05d}.parquet")
            self.writer = self.pq.ParquetWriter(name, self.schema, compression="zstd")
        self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)

    def fill_bulk_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        pa = _quiet_import("pyarrow")
        self._write(pa.Table.from_pylist(list(rows), schema=self.schema))

    def fill_bulk_numpy(self, cols: Mapping[str, np.ndarray]) -> None:
        self._write(_arrow_from_numpy(cols, self.schema))

    def _group(self, g: int) -> dict[str, np.ndarray]:
        if self.cached is None or self.cached[0] != g:
            _, _, fi, rg = self.groups[g]
            self.cached = (g, _table_numpy(self.files[fi].read_row_group(rg), with_id=True))
        return self.cached[1]

    def _range(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        g = max(bisect.bisect_right(self.group_min, lo) - 1, 0)
        parts = []
        while g < len(self.groups) and self.groups[g][0] < hi:
            if self.groups[g][1] >= lo:
                cols = self._group(g)
                ids = cols["id"]
                a, b = np.searchsorted(ids, lo), np.searchsorted(ids, hi)
                parts.append({k: v[a:b] for k, v in cols.items()})
            g += 1
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return _table_numpy(self.schema.empty_table(), with_id=True)
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def read_range_lists(self, lo: int, hi: int) -> Sequence[Sequence[Any]]:
        return _numpy_lists(self._range(lo, hi))

    def read_range_numpy(self, lo: int, hi: int) -> Mapping[str, np.ndarray]:
        return {k: v.copy() for k, v in self._range(lo, hi).items()}

    def get(self, key: int) -> Mapping[str, Any]:
        return _numpy_row(self._range(key, key + 1), 0)

    def scan_numpy(self, batch: int) -> Iterator[Mapping[str, np.ndarray]]:
        for pf in self.files:
            for record_batch in pf.iter_batches(batch_size=batch):
                yield _table_numpy(record_batch, with_id=True)


# --- Hugging Face datasets ------------------------------------------------------------------------


class HFDatasets(Engine):
    """Hugging Face ``datasets``: Arrow files written by ``save_to_disk``, memory-mapped by ``load_from_disk``.

    Row ``id`` is row position (``datasets`` has no key index). Range reads use the
    ``"arrow"`` format (zero-copy slices; faster than the default Python format),
    ``get`` the default format. ``fill_row`` is ``Dataset.add_item`` in memory,
    saved on close: NOT durable per call (which favours the peer). Bulk inserts
    build ``Dataset`` objects (numpy columns through an Arrow table) that close saves.
    """

    name = "hf_datasets"
    label = "Hugging Face datasets"
    requires = ("datasets",)
    caps: ClassVar[dict[str, int]] = {"fillrow": 200}

    def _open(self) -> None:
        self.ds_mod = d = _quiet_import("datasets")
        d.disable_progress_bars()
        self.features = d.Features({"id": d.Value("int64"), "start_token": d.Value("int64"),
                                    "end_token": d.Value("int64"),
                                    "input_ids": d.List(d.Value("int32"), length=SEQ_LEN),
                                    "attention_mask": d.List(d.Value("int8"), length=SEQ_LEN)})
        self.schema = _arrow_schema()
        saved = sorted(f for f in os.listdir(self.path) if f.startswith("data-"))
        self.version = int(saved[-1].split("-")[1]) if saved else 0
        self.ds = d.load_from_disk(os.path.join(self.path, saved[-1])) if saved else None
        self.pending: list[Any] = []
        self.growing: Any = None  # the add_item dataset
        if self.ds is not None:
            self.py = self.ds.select_columns(FIELDS)
            self.arrow = self.py.with_format("arrow")

    def _close(self) -> None:
        if self.growing is not None:
            self.pending.append(self.growing)
        if self.pending:
            parts = ([self.ds] if self.ds is not None else []) + self.pending
            merged = parts[0] if len(parts) == 1 else self.ds_mod.concatenate_datasets(parts)
            self.version += 1
            merged.save_to_disk(os.path.join(self.path, f"data-{self.version:05d}"))
            for old in os.listdir(self.path):
                if old.startswith("data-") and old != f"data-{self.version:05d}":
                    shutil.rmtree(os.path.join(self.path, old))
        self.ds = self.growing = self.py = self.arrow = None
        self.pending = []

    def fill_row(self, row: Mapping[str, Any]) -> None:
        if self.growing is None:
            self.growing = self.ds_mod.Dataset.from_list([dict(row)], features=self.features)
        else:
            self.growing = self.growing.add_item(dict(row))

    def fill_bulk_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.pending.append(self.ds_mod.Dataset.from_list(list(rows), features=self.features))

    def fill_bulk_numpy(self, cols: Mapping[str, np.ndarray]) -> None:
        # Dataset.from_dict goes through Python objects for 2-D arrays (2.5k rows/s); an Arrow table does not.
        self.pending.append(self.ds_mod.Dataset(_arrow_from_numpy(cols, self.schema)))

    def read_range_lists(self, lo: int, hi: int) -> Sequence[Sequence[Any]]:
        return _numpy_lists(_table_numpy(self.arrow[lo:hi]))

    def read_range_numpy(self, lo: int, hi: int) -> Mapping[str, np.ndarray]:
        return _table_numpy(self.arrow[lo:hi])

    def get(self, key: int) -> Mapping[str, Any]:
        return self.py[key]

    def get_many(self, keys: Sequence[int]) -> Sequence[Mapping[str, Any]]:
        cols = _table_numpy(self.arrow[list(keys)])
        return [_numpy_row(cols, i) for i in range(len(keys))]

    def scan_numpy(self, batch: int) -> Iterator[Mapping[str, np.ndarray]]:
        for table in self.ds.with_format("arrow").iter(batch_size=batch):
            yield _table_numpy(table, with_id=True)


# --- Lance (pylance) ------------------------------------------------------------------------------


class Lance(Engine):
    """Lance datasets (pylance): every insert call appends a fragment and commits a version (durable).

    Row ``id`` is row position, read with ``take`` (Lance's random-access path).
    """

    name = "lance"
    label = "Lance (pylance)"
    requires = ("lance", "pyarrow")
    caps: ClassVar[dict[str, int]] = {"fillrow": 200, "readrandom": 2000}

    def _open(self) -> None:
        self.lance = _quiet_import("lance")
        self.pa = _quiet_import("pyarrow")
        self.schema = _arrow_schema()
        self.uri = os.path.join(self.path, "store.lance")
        self.ds = self.lance.dataset(self.uri) if os.path.exists(self.uri) else None
        self.n = self.ds.count_rows() if self.ds is not None else 0

    def _close(self) -> None:
        self.ds = None

    def _append(self, table: Any) -> None:
        mode = "append" if self.ds is not None else "create"
        self.ds = self.lance.write_dataset(table, self.uri, mode=mode)
        self.n += table.num_rows

    def fill_row(self, row: Mapping[str, Any]) -> None:
        self._append(self.pa.Table.from_pylist([row], schema=self.schema))

    def fill_bulk_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self._append(self.pa.Table.from_pylist(list(rows), schema=self.schema))

    def fill_bulk_numpy(self, cols: Mapping[str, np.ndarray]) -> None:
        self._append(_arrow_from_numpy(cols, self.schema))

    def _take(self, lo: int, hi: int) -> Any:
        return self.ds.take(list(range(lo, min(hi, self.n))), columns=FIELDS)

    def read_range_lists(self, lo: int, hi: int) -> Sequence[Sequence[Any]]:
        return _numpy_lists(_table_numpy(self._take(lo, hi)))

    def read_range_numpy(self, lo: int, hi: int) -> Mapping[str, np.ndarray]:
        return _table_numpy(self.ds.to_table(columns=FIELDS, offset=lo, limit=max(min(hi, self.n) - lo, 0)))

    def get(self, key: int) -> Mapping[str, Any]:
        return _numpy_row(_table_numpy(self.ds.take([key], columns=FIELDS)), 0)

    def get_many(self, keys: Sequence[int]) -> Sequence[Mapping[str, Any]]:
        cols = _table_numpy(self.ds.take(list(keys), columns=FIELDS))
        return [_numpy_row(cols, i) for i in range(len(keys))]

    def scan_numpy(self, batch: int) -> Iterator[Mapping[str, np.ndarray]]:
        for record_batch in self.ds.to_batches(columns=["id", *FIELDS], batch_size=batch, scan_in_order=True):
            yield _table_numpy(record_batch, with_id=True)


# --- Milvus Lite ----------------------------------------------------------------------------------


class MilvusLite(Engine):
    """Milvus Lite through ``pymilvus.MilvusClient`` on a local ``.db`` folder (its server runs in this process).

    Milvus requires a vector field and an index before it loads a collection: a
    2-dimensional zero vector with a FLAT index is the smallest it accepts. Its
    filter language has no chained comparisons, so a range is ``id >= a and id < b``;
    results are sorted by id (Milvus does not promise an order).
    """

    name = "milvus_lite"
    label = "Milvus Lite"
    requires = ("pymilvus", "milvus_lite")
    caps: ClassVar[dict[str, int]] = {"fillrow": 500, "fillbulk_rows": 5000, "readrange_py": 1000,
                                      "readrange_np": 4096, "readrandom": 300, "open_rounds": 2,
                                      "scan_rounds": 1}
    _VEC: ClassVar[list[float]] = [0.0, 0.0]

    def _open(self) -> None:
        pymilvus = _quiet_import("pymilvus")
        logging.getLogger("pymilvus").setLevel(logging.ERROR)  # its query iterator logs a warning per scan
        self.uri = os.path.join(self.path, "milvus.db")
        self.client = pymilvus.MilvusClient(self.uri)
        if not self.client.has_collection(COLLECTION):
            dt = pymilvus.DataType
            schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("id", dt.INT64, is_primary=True)
            schema.add_field("start_token", dt.INT64)
            schema.add_field("end_token", dt.INT64)
            schema.add_field("input_ids", dt.ARRAY, element_type=dt.INT32, max_capacity=SEQ_LEN)
            schema.add_field("attention_mask", dt.ARRAY, element_type=dt.INT8, max_capacity=SEQ_LEN)
            schema.add_field("vec", dt.FLOAT_VECTOR, dim=len(self._VEC))
            index = self.client.prepare_index_params()
            index.add_index("vec", index_type="FLAT", metric_type="L2")
            self.client.create_collection(COLLECTION, schema=schema, index_params=index)
        else:
            self.client.load_collection(COLLECTION)

    def _close(self) -> None:
        from milvus_lite.server_manager import server_manager_instance

        self.client.flush(COLLECTION)
        self.client.close()
        server_manager_instance.release_server(self.uri)  # else its server (a thread here) keeps the files open

    def fill_row(self, row: Mapping[str, Any]) -> None:
        self.client.insert(COLLECTION, [{**row, "vec": self._VEC}])

    def fill_bulk_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for lo in range(0, len(rows), 1024):  # keeps each request under gRPC's message limit
            self.client.insert(COLLECTION, [{**r, "vec": self._VEC} for r in rows[lo:lo + 1024]])

    def _query(self, lo: int, hi: int, fields: list[str]) -> list[dict[str, Any]]:
        rows = self.client.query(COLLECTION, filter=f"id >= {lo} and id < {hi}", output_fields=fields)
        return sorted(rows, key=lambda r: r["id"])

    def read_range_lists(self, lo: int, hi: int) -> Sequence[Sequence[Any]]:
        return [(list(r["input_ids"]), list(r["attention_mask"]), r["start_token"], r["end_token"])
                for r in self._query(lo, hi, FIELDS)]

    def read_range_numpy(self, lo: int, hi: int) -> Mapping[str, np.ndarray]:
        return _milvus_columns(self._query(lo, hi, FIELDS))

    def get(self, key: int) -> Mapping[str, Any]:
        return self._row(self.client.get(COLLECTION, ids=[key], output_fields=FIELDS)[0])

    def get_many(self, keys: Sequence[int]) -> Sequence[Mapping[str, Any]]:
        found = {r["id"]: r for r in self.client.get(COLLECTION, ids=list(keys), output_fields=FIELDS)}
        return [self._row(found[k]) for k in keys if k in found]

    @staticmethod
    def _row(r: Mapping[str, Any]) -> dict[str, Any]:
        return {f: list(r[f]) if f in ("input_ids", "attention_mask") else r[f] for f in FIELDS}

    def scan_numpy(self, batch: int) -> Iterator[Mapping[str, np.ndarray]]:
        iterator = self.client.query_iterator(COLLECTION, batch_size=min(batch, 16384), output_fields=["id", *FIELDS])
        try:
            while rows := iterator.next():
                yield _milvus_columns(rows, with_id=True)
        finally:
            iterator.close()

    def bytes_on_disk(self) -> int:
        self.client.flush(COLLECTION)
        return folder_bytes(self.path)


def _milvus_columns(rows: list[dict[str, Any]], with_id: bool = False) -> dict[str, np.ndarray]:
    out = {"input_ids": np.array([r["input_ids"] for r in rows], dtype=np.int32).reshape(-1, SEQ_LEN),
           "attention_mask": np.array([r["attention_mask"] for r in rows], dtype=np.int8).reshape(-1, SEQ_LEN),
           "start_token": np.array([r["start_token"] for r in rows], dtype=np.int64),
           "end_token": np.array([r["end_token"] for r in rows], dtype=np.int64)}
    if with_id:
        out["id"] = np.array([r["id"] for r in rows], dtype=np.int64)
    return out


# --- registry and the memory probe ----------------------------------------------------------------

ENGINES: dict[str, type[Engine]] = {cls.name: cls for cls in (
    MemoraLite, SQLite, MsgpackLog, NpyMemmap, Parquet, HFDatasets, Lance, MilvusLite)}


def available(name: str) -> str | None:
    """None when engine ``name`` can run here, else the reason it cannot (for ``pytest.skip``)."""
    return ENGINES[name].available()


def rss_bytes(pid: int | str = "self") -> tuple[int, int]:
    """(resident, resident less file-backed and shared) bytes of a process, from ``/proc/<pid>/statm``."""
    with open(f"/proc/{pid}/statm") as f:
        _size, resident, shared = (int(x) for x in f.read().split()[:3])
    page = os.sysconf("SC_PAGE_SIZE")
    return resident * page, (resident - shared) * page


def tree_rss_bytes() -> tuple[int, int]:
    """:func:`rss_bytes` of this process plus every descendant (Milvus Lite runs its server as a child)."""
    pids, todo = [], [str(os.getpid())]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo.extend(f.read().split())
        except OSError:
            continue
    total, anon = 0, 0
    for pid in pids:
        try:
            r, a = rss_bytes(pid)
        except OSError:
            continue
        total, anon = total + r, anon + a
    return total, anon


def scan_rss(name: str, path: str, capacity: int, batch: int) -> dict[str, Any]:
    """Open the store, stream every row into numpy and report memory over the baseline, in this process.

    The baseline is taken after the engine's libraries are imported and before the
    store is opened, so the figure is what opening and scanning the data cost.
    A thread samples ``/proc`` every millisecond; the scan loop samples per batch.
    """
    start_rss, _ = tree_rss_bytes()
    cls = ENGINES[name]
    for module in cls.requires:
        _quiet_import(module)
    if name == "memora_lite":
        _quiet_import("memora_lite")
    base_rss, base_anon = tree_rss_bytes()
    peak = [base_rss, base_anon]
    done = threading.Event()

    def sample() -> None:
        r, a = tree_rss_bytes()
        peak[0], peak[1] = max(peak[0], r), max(peak[1], a)

    def sampler() -> None:
        while not done.wait(0.001):
            sample()

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    engine = cls(path, capacity)
    rows, total, id_sum = 0, 0, 0
    for cols in engine.scan_numpy(batch):
        rows += len(cols["id"])
        total += int(cols["input_ids"].sum(dtype=np.int64)) + int(cols["end_token"].sum(dtype=np.int64))
        id_sum += int(cols["id"].sum(dtype=np.int64))
        sample()
    seconds = time.perf_counter() - t0
    engine.close()
    done.set()
    thread.join()
    mb = 1 / (1 << 20)
    return {"rows": rows, "checksum": total, "id_sum": id_sum, "seconds": seconds,
            "import_mb": (base_rss - start_rss) * mb, "rss_over_baseline_mb": (peak[0] - base_rss) * mb,
            "anon_over_baseline_mb": (peak[1] - base_anon) * mb}


def main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[0] != "scan-rss":
        print("usage: python benchmarks/peers.py scan-rss ENGINE PATH CAPACITY BATCH", file=sys.stderr)
        return 2
    _, name, path, capacity, batch = argv
    print(json.dumps(scan_rss(name, path, int(capacity), int(batch))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
