"""The memtable's arena: the arrays a bulk insert fills, carved from large chunks.

A bulk insert narrows each int column into a fresh array that the memtable keeps until
its flush: ~100 MB for 87,599 SQuAD-shaped rows, all of it new memory. On 4 KiB pages the
first write to every page traps into the kernel: ~25,000 faults, each microseconds on a
virtual machine, which in a process's first fill can cost more than the narrowing. numpy
asks the kernel for transparent huge pages on any allocation of 4 MiB or more, so arrays
carved from 32 MiB chunks fault once per 2 MiB. Each memtable has its own arena, so its
chunks are freed with its batches after the flush, and one collection's rows never pin
another's memory. RocksDB's memtable arena does the same (``memtable_huge_page_size``).
"""

from __future__ import annotations

import threading

import numpy as np

CHUNK_BYTES = 32 << 20
# Smaller arrays come from np.empty: they fault few pages, and the allocator reuses freed ones.
SMALL_BYTES = 256 << 10
ALIGN = 64  # every array starts on a cache line (numpy's own allocations start on 16 bytes)


class Arena:
    """Numpy arrays carved one after another from chunks of ``chunk_bytes``.

    An array holds its chunk alive; a chunk goes when every array carved from it has.
    Arrays under ``SMALL_BYTES``, or over half a chunk, are allocated on their own.
    Thread-safe: a bulk insert narrows outside the engine's lock while a one-row insert
    may turn its pending rows into a batch under it.

    >>> arena = Arena(chunk_bytes=4 << 20)
    >>> a, b = arena.empty(1 << 19, np.dtype(np.int16)), arena.empty(1 << 19, np.dtype(np.int8))
    >>> a.base is b.base, a.flags.writeable, b.ctypes.data - a.ctypes.data
    (True, True, 1048576)
    >>> arena.empty(10, np.dtype(np.int64)).base is None
    True
    """

    def __init__(self, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.chunk_bytes = chunk_bytes
        self.chunk: np.ndarray | None = None
        self.used = 0
        self.lock = threading.Lock()

    def empty(self, n: int, dtype: np.dtype) -> np.ndarray:
        """A 1-D array of ``n`` uninitialised values of ``dtype``."""
        nbytes = n * dtype.itemsize
        if nbytes < SMALL_BYTES or nbytes > self.chunk_bytes // 2:
            return np.empty(n, dtype=dtype)
        with self.lock:
            start = self._aligned(self.used) if self.chunk is not None else 0
            if self.chunk is None or start + nbytes > len(self.chunk):
                # A fresh chunk: under ALIGN bytes of it go to alignment, and nbytes is at most half of it.
                self.chunk = np.empty(self.chunk_bytes, dtype=np.uint8)
                start = self._aligned(0)
            self.used = start + nbytes
            return self.chunk[start:self.used].view(dtype)

    def _aligned(self, offset: int) -> int:
        """The first offset at or after ``offset`` whose address in the chunk is a multiple of ``ALIGN``."""
        address = self.chunk.ctypes.data + offset  # type: ignore[union-attr]
        return offset + (-address) % ALIGN
