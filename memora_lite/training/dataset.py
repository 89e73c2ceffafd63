"""``MemoraDataset``: a map-style dataset over one collection, read in blocks, numpy only.

The dataset fixes its rows when it is made: one query of the primary key (with the
optional filter) gives the sorted keys, and row ``i`` is the ``i``-th key. Rows are read
in blocks of ``block_rows`` consecutive keys with one range query each (``lo <= id <
hi``), converted to the asked dtypes after the gather, and kept in a small LRU cache of
decoded blocks, so a DataLoader batch costs at most one read per block it touches and
usually none. ``__getitems__`` is what a PyTorch DataLoader calls for a whole batch.

A dataset pickles as its store folder, project, collection and options; in another
process (a DataLoader worker, forked, spawned or forkserver) it opens the store again
read-only, on first use. A ``Memora(path=":memory:")`` store lives in one process, so a
dataset over one refuses to cross into another.

>>> from memora_lite import Memora
>>> from memora_lite.testing.squad import squad_columns
>>> client = Memora(path=":memory:")
>>> _ = client.nosql.insert(collection_name="finetune_data", data=squad_columns(100, seq_len=8))
>>> ds = MemoraDataset(client, "finetune_data", fields=["input_ids", "start_token"],
...                    rename={"start_token": "start_positions"}, dtypes={"input_ids": "int32"})
>>> len(ds), sorted(ds[0]), ds[0]["input_ids"].dtype.name
(100, ['input_ids', 'start_positions'], 'int32')
>>> batch = ds.__getitems__([5, 2, 9])          # one read for the three rows
>>> batch.columns["input_ids"].shape, len(batch), int(batch[1]["start_positions"]) == int(ds[2]["start_positions"])
((3, 8), 3, True)
>>> client.close()
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from memora_lite.client import Memora
from memora_lite.errors import InvalidArgumentError, SchemaError, StaleDatasetError, did_you_mean
from memora_lite.storage.store import MEMORY, resolve_root
from memora_lite.training.order import BLOCK_ROWS

DEFAULT_CACHE_BYTES = 256 << 20  # decoded blocks per process: all of SQuAD-train's 87,599 rows fit (~134 MB)


class RowBatch(Sequence):  # type: ignore[type-arg]
    """Rows read together: a sequence of per-row dicts that also holds the batch's columns.

    Code that expects a list of samples (``default_collate``, Hugging Face's
    ``default_data_collator``) iterates it; :func:`memora_lite.training.collate` takes
    ``.columns`` whole, one tensor per field without copying.

    >>> b = RowBatch({"x": np.arange(6).reshape(3, 2), "y": np.array([7, 8, 9])})
    >>> len(b), b[1]["x"].tolist(), int(b[-1]["y"])
    (3, [2, 3], 9)
    """

    __slots__ = ("_n", "columns")

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.columns = columns
        self._n = len(next(iter(columns.values()))) if columns else 0

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return RowBatch({k: v[i] for k, v in self.columns.items()})
        return {k: v[i] for k, v in self.columns.items()}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(self._n):
            yield {k: v[i] for k, v in self.columns.items()}

    def __repr__(self) -> str:
        return f"RowBatch({self._n} rows: {', '.join(self.columns)})"


class MemoraDataset:
    """A map-style dataset: row ``i`` of a collection's (filtered) rows, as a dict of numpy values.

    Parameters
    ----------
    store : Memora or str or os.PathLike
        An open client (used as is in this process) or a store folder (opened read-only).
    collection_name : str
        The collection to read.
    project_id : str, optional
        With a folder: the project (default ``"default"``). A client brings its own.
    fields : list of str, optional
        Stored fields to read, in output order; default every field but the primary key.
    rename : dict, optional
        Stored name to output name, e.g. ``{"start_token": "start_positions"}``.
    filter : str, optional
        Only rows matching this filter (the ``query`` language), fixed when the dataset is made.
    dtypes : dict, optional
        Output name to numpy dtype. By default ints become int64 and floats float32, what
        PyTorch models and losses take; e.g. ``{"attention_mask": "int8"}`` keeps batches small.
    block_rows : int
        Rows per read; 1,024 matches the store's blocks.
    cache_bytes : int
        Bound on the decoded blocks this dataset keeps per process.

    Raises
    ------
    CollectionNotFoundError, FieldNotFoundError, FilterError
        From the store, naming what is wrong (with a "did you mean").
    InvalidArgumentError
        A rename or dtype names an unknown field, or a dtype is not a numpy dtype.
    """

    def __init__(self, store: Memora | str | os.PathLike[str], collection_name: str, *,
                 project_id: str | None = None, fields: Sequence[str] | None = None,
                 rename: Mapping[str, str] | None = None, filter: str = "",
                 dtypes: Mapping[str, Any] | None = None, block_rows: int = BLOCK_ROWS,
                 cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if isinstance(store, Memora):
            self._root = resolve_root(store.path)
            self._project = store.project_id
            self._client: Memora | None = store
            self._owns_client = False
        else:
            if os.fspath(store) == MEMORY:
                raise InvalidArgumentError("MemoraDataset(':memory:') would open a new, empty store; "
                                           "pass the Memora client that holds the rows instead")
            self._root = resolve_root(store)
            self._project = project_id
            self._client = None
            self._owns_client = True
        if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
            raise InvalidArgumentError(f"block_rows={block_rows!r}; use an int >= 1")
        self.collection = collection_name
        self.block_rows = block_rows
        self.filter = filter
        self._cache_bytes = cache_bytes
        self._pid = os.getpid()
        info = self._nosql().describe_collection(collection_name)
        self.primary_key: str = info["primary_key"]
        stored = [f["field_name"] for f in info["fields"]]
        self.fields = list(fields) if fields is not None else [n for n in stored if n != self.primary_key]
        # An empty window checks field names and the filter with the store's own messages.
        self._nosql().query(collection_name, filter=filter, output_fields=self.fields, limit=0)
        self.names = self._output_names(rename or {})
        self.dtypes = self._check_dtypes(dtypes or {}, info)
        keys = self._nosql().query(collection_name, filter=filter, output_fields=[self.primary_key],
                                   output="numpy")["data"][self.primary_key]
        self._n = len(keys)
        # Keys 0..n-1 (the guide's ids) need no key list: block c is the range [c*R, (c+1)*R).
        contiguous = keys.dtype.kind == "i" and (self._n == 0 or int(keys[-1]) - int(keys[0]) == self._n - 1)
        self._first = int(keys[0]) if contiguous and self._n else 0
        self._keys: np.ndarray | None = None if contiguous else keys
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._cached_bytes = 0

    # -- the rows ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> dict[str, Any]:
        """Row ``index`` (negative counts from the end) as ``{name: value}``."""
        return self.fetch([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> RowBatch:
        """Rows ``indices`` in that order, read together: what a DataLoader calls per batch."""
        return self.fetch(indices)

    def fetch(self, indices: Sequence[int] | np.ndarray) -> RowBatch:
        """Rows ``indices`` as a :class:`RowBatch`: one read per block not already cached."""
        positions = self._positions(indices)
        blocks = positions // self.block_rows
        if len(blocks) and blocks[0] == blocks[-1] and np.all(blocks == blocks[0]):
            raw = self._block(int(blocks[0]))
            local = positions - int(blocks[0]) * self.block_rows
            return RowBatch({name: self._convert(name, np.take(column, local, axis=0)) for name, column in raw.items()})
        out: dict[str, np.ndarray] = {}
        for block in np.unique(blocks).tolist():
            where = np.flatnonzero(blocks == block)
            raw = self._block(block)
            local = positions[where] - block * self.block_rows
            for name, column in raw.items():
                if name not in out:  # in the output dtype: the assignment below converts as it copies
                    out[name] = np.empty((len(positions), *column.shape[1:]), self.dtypes.get(name, column.dtype))
                _put(out[name], where, column[local], name, self.collection)
        if not out:
            return RowBatch({name: np.empty(0) for name in self.names})
        return RowBatch(out)

    def _positions(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        positions = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(positions) and (positions.min() < -self._n or positions.max() >= self._n):
            bad = positions[(positions < -self._n) | (positions >= self._n)][0]
            raise IndexError(f"row {int(bad)} is out of range for a dataset of {self._n} rows")
        return np.where(positions < 0, positions + self._n, positions)

    def _convert(self, name: str, column: np.ndarray) -> np.ndarray:
        return column.astype(self.dtypes[name], copy=False) if name in self.dtypes else column

    # -- blocks ------------------------------------------------------------------------------------

    def _block(self, block: int) -> dict[str, np.ndarray]:
        """Block ``block``'s rows in stored dtypes, under output names (LRU-cached)."""
        hit = self._cache.get(block)
        if hit is not None:
            self._cache.move_to_end(block)
            return hit
        columns = self.read_block(block)
        self._cache[block] = columns
        self._cached_bytes += sum(c.nbytes for c in columns.values())
        while self._cached_bytes > self._cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= sum(c.nbytes for c in old.values())
        return columns

    def read_block(self, block: int) -> dict[str, np.ndarray]:
        """Rows ``[block * block_rows, (block + 1) * block_rows)`` in stored dtypes: one range query.

        Raises StaleDatasetError if the collection no longer holds exactly those rows.
        """
        lo, hi = block * self.block_rows, min((block + 1) * self.block_rows, self._n)
        pk = self.primary_key
        if self._keys is None:
            want: np.ndarray | None = None
            span = f"{self._first + lo} <= {pk} < {self._first + hi}"
        else:
            want = self._keys[lo:hi]
            span = f"{int(want[0])} <= {pk} <= {int(want[-1])}" if want.dtype.kind == "i" else ""
        nosql = self._nosql()
        if span:
            where = f"({self.filter}) and ({span})" if self.filter.strip() else span
            data = nosql.query(self.collection, filter=where, output_fields=self.fields, output="numpy")["data"]
        else:  # string keys have no range: ask for the block's keys
            data = nosql.get(self.collection, ids=want.tolist(), output_fields=self.fields, output="numpy")["data"]
        got = data[pk]
        if len(got) != hi - lo or (want is not None and not np.array_equal(got, want)) or (
                want is None and len(got) and (got[0] != self._first + lo or got[-1] != self._first + hi - 1)):
            raise StaleDatasetError(
                f"collection '{self.collection}' changed since this dataset was made: rows {lo}..{hi - 1} "
                f"should be {hi - lo} rows, the store has {len(got)}; make a new MemoraDataset")
        out = {}
        for stored, name in zip(self.fields, self.names):
            column = data[stored]
            if isinstance(column, np.ma.MaskedArray):
                raise SchemaError(f"collection '{self.collection}': field '{stored}' has null values in rows "
                                  f"{lo}..{hi - 1}; a training field needs a value in every row (use filter= "
                                  f"'{stored} is not null')")
            if column.dtype == object and len(column) and isinstance(column[0], np.ndarray):
                raise SchemaError(f"collection '{self.collection}': field '{stored}' has arrays of different "
                                  "lengths; pad them to one length (the guide tokenizes with padding='max_length')")
            out[name] = column
        return out

    # -- the store, per process --------------------------------------------------------------------

    def _nosql(self) -> Any:
        if self._pid != os.getpid():  # a forked DataLoader worker: the parent's client is not ours to use
            self._check_shareable()
            self._client, self._owns_client, self._pid = None, True, os.getpid()
        if self._client is None:
            # This dataset caches decoded rows itself; the store's own cache need only hold what one read decodes.
            self._client = Memora(path=self._root, project_id=self._project, read_only=True, cache_bytes=8 << 20)
        return self._client.nosql

    def _check_shareable(self) -> None:
        if self._root == MEMORY:
            raise InvalidArgumentError(
                f"dataset over collection '{self.collection}' reads a Memora(path=':memory:') store, which "
                "lives only in the process that made it: use num_workers=0, or a store on disk")

    def __getstate__(self) -> dict[str, Any]:
        self._check_shareable()
        state = dict(self.__dict__)
        state.update(_client=None, _owns_client=True, _cache=OrderedDict(), _cached_bytes=0)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def close(self) -> None:
        """Drop the cached blocks, and close the store if this dataset opened it (a client given stays open)."""
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None
        self._cache.clear()
        self._cached_bytes = 0

    # -- checks ------------------------------------------------------------------------------------

    def _output_names(self, rename: Mapping[str, str]) -> list[str]:
        for stored in rename:
            if stored not in self.fields:
                raise InvalidArgumentError(f"rename names '{stored}', which is not one of the dataset's fields "
                                           f"{self.fields}{did_you_mean(stored, self.fields)}")
        names = [rename.get(f, f) for f in self.fields]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"rename gives two fields one name: {names}")
        return names

    def _check_dtypes(self, dtypes: Mapping[str, Any], info: dict[str, Any]) -> dict[str, np.dtype]:
        kinds = {f["field_name"]: _kind(f) for f in info["fields"]}
        out: dict[str, np.dtype] = {}
        for stored, name in zip(self.fields, self.names):
            if name in dtypes:
                if kinds[stored] not in "ifb":
                    raise InvalidArgumentError(f"dtypes['{name}']: field '{stored}' holds text, not numbers")
                try:
                    out[name] = np.dtype(dtypes[name])
                except TypeError:
                    raise InvalidArgumentError(f"dtypes['{name}']={dtypes[name]!r} is not a numpy dtype") from None
            elif kinds[stored] in "if":
                out[name] = _DEFAULT_DTYPES[kinds[stored]]
        for name in dtypes:
            if name not in self.names:
                raise InvalidArgumentError(f"dtypes names '{name}', which is not an output field "
                                           f"{self.names}{did_you_mean(name, self.names)}")
        return out


# What PyTorch takes: int64 indices and class targets, float32 values.
_DEFAULT_DTYPES = {"i": np.dtype(np.int64), "f": np.dtype(np.float32)}
_INTS = {"INT8", "INT16", "INT32", "INT64"}


def _kind(field: dict[str, Any]) -> str:
    """'i' int, 'f' float, 'b' bool, 'o' anything else, for a field (or an ARRAY's elements)."""
    data_type = field["data_type"]
    if data_type == "ARRAY":
        data_type = field.get("element_data_type")
    if data_type in _INTS:
        return "i"
    if data_type in ("FLOAT", "DOUBLE", "FLOAT_VECTOR"):
        return "f"
    return "b" if data_type == "BOOL" else "o"


def _put(out: np.ndarray, where: np.ndarray, values: np.ndarray, name: str, collection: str) -> None:
    try:
        out[where] = values
    except ValueError:
        raise SchemaError(f"collection '{collection}': field '{name}' has arrays of different lengths in "
                          "different blocks; pad them to one length") from None
