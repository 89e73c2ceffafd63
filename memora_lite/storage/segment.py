"""Immutable segment files: rows sorted by primary key, stored column by column in blocks.

Layout (docs/format.md#segment)::

    [8s magic]
    [column blocks ...]           each block: one column's values for <= 1,024 rows, encoded by a codec
    [footer: msgpack map]         rows, schema, per-column list of blocks (encoding, offset, length, CRC),
                                  first primary key of every block, min/max primary key
    [trailer: u64 footer offset][u32 footer length][u32 footer masked CRC][8s magic]

Every block carries its own CRC, checked when the block is read; the footer's CRC
is checked on open. A block decodes with nothing but the footer: the encoding name
is recorded per block, so old segments keep decoding when new encodings arrive.

>>> import numpy as np
>>> from memora_lite.columns import Batch
>>> from memora_lite.schema import Schema
>>> from memora_lite.storage.fs import MemoryFileSystem
>>> fs = MemoryFileSystem(); fs.makedirs("/c")
>>> schema = Schema.infer({"id": [1, 2, 3], "x": [10, 20, 30]}, "id")
>>> batch, _ = schema.to_batch({"id": [1, 2, 3], "x": [10, 20, 30]}, "c")
>>> write_segment(fs, "/c/seg-000001.mls", batch, schema)
(1, 3)
>>> seg = SegmentReader(fs, "/c/seg-000001.mls")
>>> seg.read_rows(["x"], np.array([0, 2])).columns["x"].tolist()
[10, 30]
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Sequence
from threading import Thread
from typing import Any

import msgpack
import numpy as np

from memora_lite import codecs
from memora_lite._rows import cached_row
from memora_lite.codecs import TokenBlock
from memora_lite.codecs.backend import usable_cpus
from memora_lite.columns import Batch, Column, Ragged, concat, take
from memora_lite.errors import CodecError, CorruptionError
from memora_lite.schema import Schema, column_kind, element_dtype, null_column, widen
from memora_lite.storage.format import SEGMENT_BLOCK_ROWS, SEGMENT_MAGIC, SEGMENT_TRAILER, masked_crc
from memora_lite.storage.fs import FileSystem
from memora_lite.storage.rangeindex import search

CachedBlock = tuple[Column | TokenBlock, np.ndarray | None]  # one column's block and its null mask
CacheItem = tuple[CachedBlock, int, Callable[[int], Any] | None]  # the block, its size in bytes, its row reader
DEFAULT_CACHE_BYTES = 64 << 20  # opened blocks kept; scans bypass it, so this bounds what gets and short reads keep
# zstd level 1: token blocks come out as small as at 3 and decompress ~30% faster (docs/format.md#measurements)
SEGMENT_CODEC_LEVEL = 1
# Blocks encode on this many threads: the token kernels and zstd release the GIL, so a flush
# uses the cores it may run on. The cap of 4 is a chosen bound, not a measured optimum (the
# benchmark machine has 2 cores: benchmarks/test_segment_write.py).
ENCODE_THREADS = min(4, usable_cpus())


def write_segment(
    fs: FileSystem, path: str, batch: Batch | Sequence[Batch], schema: Schema, block_rows: int = SEGMENT_BLOCK_ROWS
) -> tuple[Any, Any]:
    """Write ``batch`` (already sorted by primary key) to a new segment file and sync it.

    ``batch`` may also be consecutive batches whose concatenation is the segment's
    rows (a memtable's, in key order): each block is then a view of the batch that
    holds it, so a flush never copies the whole memtable into one batch first.
    Returns the ``(min_pk, max_pk)`` it holds.
    """
    chunks = [batch] if isinstance(batch, Batch) else list(batch)
    if not chunks:
        raise ValueError("write_segment needs a batch, or at least one of the batches it joins")
    bounds = np.cumsum([0, *(len(c) for c in chunks)])
    n = int(bounds[-1])
    keys = concat([c.columns[schema.primary_key] for c in chunks])
    parts = [SEGMENT_MAGIC]
    offset = len(SEGMENT_MAGIC)

    def add(blob: bytes, crc: int) -> list[int]:
        nonlocal offset
        entry = [offset, len(blob), crc]
        parts.append(blob)
        offset += len(blob)
        return entry

    starts = list(range(0, n, block_rows)) or [0]
    spans = [slice(start, min(start + block_rows, n)) for start in starts]
    tasks = [(_rows_of(chunks, bounds, f.field_name, rows), column_kind(f)) for f in schema.fields for rows in spans]
    # One block per column encodes on the calling thread: starting threads would cost more than
    # the work (a unit test's store flushes a handful of rows).
    encoded = iter(_encode_blocks(tasks, ENCODE_THREADS if len(spans) > 1 else 1))
    columns: dict[str, Any] = {}
    for f in schema.fields:
        name = f.field_name
        null_mask = _null_mask(chunks, name)
        blocks, nulls = [], []
        for rows in spans:
            encoding, blob, crc = next(encoded)
            blocks.append([encoding, *add(blob, crc)])
            if null_mask is not None and null_mask[rows].any():
                bits = np.packbits(null_mask[rows], bitorder="little").tobytes()
                nulls.append(add(bits, masked_crc(bits)))
            else:
                nulls.append(None)
        columns[name] = {"kind": column_kind(f), "blocks": blocks, "nulls": nulls}
    first_keys = [_plain(keys[s]) for s in starts] if n else []
    footer = msgpack.packb(
        {
            "rows": n,
            "block_rows": block_rows,
            "schema": schema.to_dict(),
            "columns": columns,
            "first_keys": first_keys,
            "min_pk": _plain(keys[0]) if n else None,
            "max_pk": _plain(keys[-1]) if n else None,
        },
        use_bin_type=True,
    )
    parts.append(footer)
    parts.append(SEGMENT_TRAILER.pack(offset, len(footer), masked_crc(footer), SEGMENT_MAGIC))
    fs.write_file(path, b"".join(parts))
    return (first_keys[0], _plain(keys[-1])) if n else (None, None)


def _rows_of(chunks: list[Batch], bounds: np.ndarray, name: str, rows: slice) -> Column:
    """Rows ``rows`` of column ``name`` across consecutive ``chunks`` (``bounds``: where each
    starts): a view when one chunk holds them all, else the pieces joined (at most a block)."""
    first = int(np.searchsorted(bounds, rows.start, side="right")) - 1
    pieces = []
    for i in range(max(first, 0), len(chunks)):
        if bounds[i] >= rows.stop:
            break
        lo, hi = max(rows.start, bounds[i]) - bounds[i], min(rows.stop, bounds[i + 1]) - bounds[i]
        pieces.append(take(chunks[i].columns[name], slice(int(lo), int(hi))))
    return concat(pieces) if pieces else take(chunks[0].columns[name], slice(0, 0))


def _null_mask(chunks: list[Batch], name: str) -> np.ndarray | None:
    """Column ``name``'s null mask over all ``chunks``, or None when no row is null."""
    masks = [c.null_mask(name) for c in chunks]
    if all(m is None for m in masks):
        return None
    return np.concatenate([m if m is not None else np.zeros(len(c), dtype=bool) for m, c in zip(masks, chunks)])


def _encode_blocks(tasks: list[tuple[Column, str]], threads: int) -> list[tuple[str, bytes, int]]:
    """Each ``(rows of a column, kind)`` block encoded and compressed, with its checksum, in task order.

    Thread ``k`` of ``threads`` takes tasks ``k, k + threads, ...``: the heavy token blocks
    spread over all threads, and the calling thread takes share 0 rather than wait.
    """
    def encode(share: list[tuple[Column, str]]) -> list[tuple[str, bytes, int]]:
        out = []
        for column, kind in share:
            encoding, blob = codecs.encode_column(column, kind, SEGMENT_CODEC_LEVEL)
            out.append((encoding, blob, masked_crc(blob)))
        return out

    shares = [tasks[k::threads] for k in range(threads)]
    encoded_shares: list[list[tuple[str, bytes, int]]] = [[] for _ in shares]
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            encoded_shares[k] = encode(shares[k])
        except BaseException as error:  # re-raised on the calling thread below
            errors.append(error)

    # Plain threads started per segment, not a concurrent.futures pool: a pool kept for the
    # process would not survive a fork, and every pool refuses work once the interpreter has
    # begun to exit, which is when a background flush still running must finish.
    helpers = []
    for k in range(1, threads):
        helper = Thread(target=run, args=(k,), name=f"memora-encode-{k}")
        try:
            helper.start()
        except RuntimeError:  # no new threads this late in interpreter shutdown: this thread encodes share k
            run(k)
        else:
            helpers.append(helper)
    run(0)
    for helper in helpers:
        helper.join()
    if errors:
        raise errors[0]
    encoded: list[Any] = [None] * len(tasks)
    for k, share in enumerate(encoded_shares):
        encoded[k::threads] = share
    return encoded


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class SegmentReader:
    """Reads one segment file lazily: the footer on open, blocks on demand (CRC-checked)."""

    def __init__(self, fs: FileSystem, path: str, cache: BlockCache | None = None) -> None:
        self.path = path
        self.file = fs.open_reader(path)
        self.cache = cache if cache is not None else BlockCache()
        size = self.file.size
        if size < len(SEGMENT_MAGIC) + SEGMENT_TRAILER.size:
            raise CorruptionError(f"{path}: {size} bytes is too short for a segment")
        trailer = self.file.pread(size - SEGMENT_TRAILER.size, SEGMENT_TRAILER.size)
        footer_offset, footer_len, footer_crc, magic = SEGMENT_TRAILER.unpack(trailer)
        if self.file.pread(0, len(SEGMENT_MAGIC)) != SEGMENT_MAGIC:
            raise CorruptionError(f"{path}: bad magic at offset 0; not a memora_lite segment")
        if magic != SEGMENT_MAGIC or footer_offset + footer_len + SEGMENT_TRAILER.size != size:
            raise CorruptionError(f"{path}: bad trailer at offset {size - SEGMENT_TRAILER.size}")
        footer = self.file.pread(footer_offset, footer_len)
        if masked_crc(footer) != footer_crc:
            raise CorruptionError(f"{path}: footer at offset {footer_offset} fails its checksum")
        try:
            meta = msgpack.unpackb(footer, raw=False, strict_map_key=False)
            self.rows: int = int(meta["rows"])
            self.block_rows: int = int(meta["block_rows"])
            self.schema = Schema.from_dict(meta["schema"])
            self.columns: dict[str, Any] = meta["columns"]
            self.first_keys: list[Any] = meta["first_keys"]
            self.min_pk, self.max_pk = meta["min_pk"], meta["max_pk"]
            # Keys are unique and sorted; when they are the ints min_pk, min_pk + 1, ..., max_pk
            # (ids assigned in order), key k sits at row k - min_pk: no search at all.
            self.dense = (type(self.min_pk) is int and type(self.max_pk) is int
                          and self.max_pk - self.min_pk + 1 == self.rows)
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptionError(f"{path}: footer at offset {footer_offset} is malformed ({exc})") from None
        self.data_end = footer_offset
        nblocks = max(1, -(-self.rows // self.block_rows)) if self.block_rows > 0 else -1
        if nblocks < 0 or any(len(c["blocks"]) != nblocks for c in self.columns.values()):
            raise CorruptionError(f"{path}: footer lists a block count that does not match {self.rows} rows")

    def close(self) -> None:
        self.file.close()

    @property
    def block_count(self) -> int:
        return len(self.first_keys)

    def block_size(self, block: int) -> int:
        return min(self.block_rows, self.rows - block * self.block_rows)

    def _blob(self, entry: list[Any], what: str) -> bytes:
        offset, length, crc = entry
        if not (offset >= 0 and offset + length <= self.data_end):
            raise CorruptionError(f"{self.path}: {what} at offset {offset} lies outside the data area")
        blob = self.file.pread(offset, length)
        if len(blob) != length or masked_crc(blob) != crc:
            raise CorruptionError(f"{self.path}: {what} at offset {offset} fails its checksum")
        return blob

    def read_block(self, name: str, block: int, fill_cache: bool = True) -> CachedBlock:
        """One column's values and null mask for one block (opened once, then cached).

        Token arrays come back as a :class:`~memora_lite.codecs.TokenBlock`, which
        decodes just the rows asked of it; every other column decoded whole.

        With ``fill_cache=False`` a block not yet cached is not added (a scan reads
        its blocks once: caching them would only evict blocks that get reused), and
        a TokenBlock so read lives in this thread's scratch buffer: use it before
        the thread's next such read.
        """
        key = (self.path, name, block)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        spec = self.columns[name]
        f = self.schema.field(name)
        encoding, *entry = spec["blocks"][block]
        rows = self.block_size(block)
        blob = self._blob(entry, f"block {block} of column '{name}'")
        try:
            column = codecs.open_column(encoding, blob, rows, spec["kind"], element_dtype(f), f.dim,
                                        scratch=not fill_cache)
        except CodecError as exc:
            where = f"block {block} of column '{name}' at offset {entry[0]}"
            raise CorruptionError(f"{self.path}: {where}: {exc}") from None
        nulls = None
        if spec["nulls"][block] is not None:
            bits = np.frombuffer(self._blob(spec["nulls"][block], f"null mask {block} of '{name}'"), np.uint8)
            if len(bits) * 8 < rows:
                raise CorruptionError(f"{self.path}: null mask {block} of '{name}' is too short")
            nulls = np.unpackbits(bits, count=rows, bitorder="little").astype(bool)
        if isinstance(column, np.ndarray | Ragged):
            for array in (column.values, column.offsets) if isinstance(column, Ragged) else (column,):
                array.flags.writeable = False  # shared through the cache: readers slice it, nobody writes
        value = (column, nulls)
        if fill_cache:
            self.cache.put(key, value, _nbytes(column), _row_reader(column, nulls))
        return value

    def position(self, key: Any) -> int:
        """The row holding primary key ``key``, or -1 (the id range index's point lookup).

        >>> import numpy as np
        >>> from memora_lite.columns import Batch
        >>> from memora_lite.schema import Schema
        >>> from memora_lite.storage.fs import MemoryFileSystem
        >>> fs = MemoryFileSystem(); fs.makedirs("/c")
        >>> schema = Schema.infer({"id": [1]}, "id")
        >>> _ = write_segment(fs, "/c/s.mls", Batch({"id": np.array([3, 5, 9])}, 3), schema)
        >>> [SegmentReader(fs, "/c/s.mls").position(k) for k in (5, 6, 9)]
        [1, -1, 2]
        """
        if not self.rows or not self.min_pk <= key <= self.max_pk:
            return -1
        if self.dense and type(key) is int:
            return key - self.min_pk  # type: ignore[no-any-return]
        block = bisect_right(self.first_keys, key) - 1
        keys = self.keys(block)
        i = search(keys, key)
        return block * self.block_rows + i if i < len(keys) and keys[i] == key else -1

    def row_values(self, position: int, fields: Sequence[str], key: Any) -> list[Any] | None:
        """Row ``position``'s values in ``fields`` order as Python objects (its key is ``key``);
        None when a field is not in this segment (the caller reads it as null the general way).

        >>> from memora_lite.columns import Batch, Ragged
        >>> from memora_lite.schema import Schema
        >>> from memora_lite.storage.fs import MemoryFileSystem
        >>> fs = MemoryFileSystem(); fs.makedirs("/c")
        >>> schema = Schema.infer({"id": [1], "t": [[1]]}, "id")
        >>> t = Ragged.from_lists([[7, 0], [8, 9]], np.dtype(np.int64))
        >>> _ = write_segment(fs, "/c/s.mls", Batch({"id": np.array([3, 5]), "t": t}, 2), schema)
        >>> SegmentReader(fs, "/c/s.mls").row_values(1, ["t", "id"], 5)
        [[8, 9], 5]
        """
        block, i = divmod(position, self.block_rows)
        primary_key = self.schema.primary_key
        values = cached_row(self.cache.items, self.path, block, i, tuple(fields), primary_key, key)
        if values is not None:
            return values
        values = []
        for name in fields:
            if name == primary_key:
                values.append(key)  # the row was found by it
                continue
            if name not in self.columns:
                return None
            column, nulls = self.read_block(name, block)
            if nulls is not None and nulls[i]:
                values.append(None)
            elif type(column) is TokenBlock:
                values.append(column.row(i))
            elif type(column) is Ragged:
                values.append(column.row(i).tolist())
            elif column.ndim == 1:
                values.append(column.item(i))
            else:
                values.append(column[i].tolist())
        return values

    def keys(self, block: int) -> np.ndarray:
        """Primary keys of one block, sorted."""
        return self.read_block(self.schema.primary_key, block)[0]  # type: ignore[return-value]

    def read_rows(self, names: list[str], rows: np.ndarray, schema: Schema | None = None) -> Batch:
        """Rows at sorted, unique positions ``rows``, as a Batch of ``names`` in ``schema``'s types.

        Columns the segment predates read as null; narrower stored ints widen. A run of
        consecutive rows in a block is sliced, not gathered.
        """
        schema = schema or self.schema
        pieces = []  # (block, rows of it: a slice when consecutive, else positions)
        first, last = (int(rows[0]), int(rows[-1])) if len(rows) else (0, -1)
        if last - first + 1 == len(rows) and len(rows) and first // self.block_rows == last // self.block_rows:
            block = first // self.block_rows  # the common case: one run inside one block
            pieces.append((block, slice(first - block * self.block_rows, last - block * self.block_rows + 1)))
        elif len(rows):
            blocks = rows // self.block_rows
            for group in np.split(rows, np.flatnonzero(np.diff(blocks)) + 1):
                block = int(group[0]) // self.block_rows
                local = group - block * self.block_rows
                first, last = int(local[0]), int(local[-1])
                pieces.append((block, slice(first, last + 1) if last - first + 1 == len(local) else local))
        out: dict[str, Column] = {}
        nulls: dict[str, np.ndarray] = {}
        for name in names:
            f = schema.field(name)
            if name not in self.columns:
                out[name], nulls[name] = null_column(f, len(rows))
                continue
            parts, masks, any_null = [], [], False
            for block, selector in pieces:
                column, mask = self.read_block(name, block)
                parts.append(_take(column, selector, element_dtype(f)))
                masks.append(mask[selector] if mask is not None else np.zeros(len(parts[-1]), dtype=bool))
                any_null = any_null or mask is not None
            column = concat(parts) if parts else null_column(f, 0)[0]
            out[name] = widen(column, element_dtype(f))
            if any_null:
                nulls[name] = np.concatenate(masks)
        return Batch(out, len(rows), nulls)


def _take(column: Column | TokenBlock, selector: slice | np.ndarray, dtype: np.dtype) -> Column:
    """Rows of a cached block: a slice or sorted positions; a TokenBlock decodes only their span."""
    if not isinstance(column, TokenBlock):
        return take(column, selector)
    if isinstance(selector, slice):
        return column.ragged(selector.start, selector.stop, dtype)
    first = int(selector[0])
    return column.ragged(first, int(selector[-1]) + 1, dtype).take(selector - first)


def _nbytes(column: Column | TokenBlock) -> int:
    if isinstance(column, TokenBlock):
        return column.nbytes
    if isinstance(column, Ragged):
        return int(column.values.nbytes + column.offsets.nbytes)
    return int(column.nbytes) * (8 if column.dtype == object else 1)


def _row_reader(column: Column | TokenBlock, nulls: np.ndarray | None) -> Callable[[int], Any] | None:
    """The C-level call that turns row ``i`` of a block into its Python value, kept in the
    cache beside the block for :func:`~memora_lite._rows.cached_row`; None where a get
    needs :meth:`SegmentReader.row_values`' general road (nulls, ragged or 2-D values)."""
    if nulls is not None:
        return None
    if type(column) is TokenBlock:
        return column.row
    if type(column) is np.ndarray and column.ndim == 1:
        return column.item
    return None


class BlockCache:
    """A least-recently-used cache of decoded blocks, bounded in bytes.

    ``items`` maps ``(segment path, field, block)`` to ``(block, size, row reader)``;
    :func:`~memora_lite._rows.cached_row` reads it directly, so a get over warm blocks
    is one C call.
    """

    def __init__(self, capacity: int = DEFAULT_CACHE_BYTES) -> None:
        self.capacity = capacity
        self.used = 0
        self.items: OrderedDict[tuple[str, str, int], CacheItem] = OrderedDict()

    def get(self, key: tuple[str, str, int]) -> CachedBlock | None:
        item = self.items.get(key)
        if item is None:
            return None
        self.items.move_to_end(key)
        return item[0]

    def put(self, key: tuple[str, str, int], value: CachedBlock, size: int,
            row_reader: Callable[[int], Any] | None = None) -> None:
        self.items[key] = (value, size, row_reader)
        self.used += size
        while self.used > self.capacity and len(self.items) > 1:
            _, (_, old, _) = self.items.popitem(last=False)
            self.used -= old

    def drop(self, path: str) -> None:
        """Forget every block of one file (after compaction removes it)."""
        for key in [k for k in self.items if k[0] == path]:
            self.used -= self.items.pop(key)[1]
