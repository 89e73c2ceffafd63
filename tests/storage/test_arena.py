"""The memtable's arena: arrays carved from shared chunks, never overlapping, freed with the memtable."""

from __future__ import annotations

import gc
import itertools
import sys
import threading
import weakref

import numpy as np
import pytest

from memora_lite import Memora
from memora_lite.codecs import narrow_ints
from memora_lite.storage import arena as arena_module
from memora_lite.storage.arena import ALIGN, SMALL_BYTES, Arena

CHUNK = 4 << 20


def _span(array: np.ndarray) -> tuple[int, int]:
    return array.ctypes.data, array.ctypes.data + array.nbytes


def test_arrays_carved_from_one_chunk_are_aligned_apart_and_keep_their_values() -> None:
    arena = Arena(chunk_bytes=CHUNK)
    rng = np.random.default_rng(4)
    sizes = [(int(n), np.dtype(t)) for n, t in zip(rng.integers(SMALL_BYTES, CHUNK // 2, 12),
                                                    rng.choice(["i1", "i2", "i4", "i8", "u2"], 12))]
    arrays = [arena.empty(int(n) // d.itemsize, d) for n, d in sizes]
    for i, a in enumerate(arrays):
        a[:] = i
        assert a.flags.c_contiguous and a.flags.writeable and a.ctypes.data % ALIGN == 0
    spans = sorted(_span(a) for a in arrays)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))  # no two overlap
    assert all(bool((a == i).all()) for i, a in enumerate(arrays))
    assert len({id(a.base) for a in arrays}) < len(arrays)  # chunks are shared


@pytest.mark.parametrize("nbytes", [0, SMALL_BYTES - 1, CHUNK // 2 + 1, 3 * CHUNK])
def test_small_and_large_arrays_are_allocated_on_their_own(nbytes: int) -> None:
    arena = Arena(chunk_bytes=CHUNK)
    array = arena.empty(nbytes, np.dtype(np.uint8))
    assert array.shape == (nbytes,) and array.base is None and arena.chunk is None


def test_a_chunk_lives_while_an_array_of_it_does() -> None:
    arena = Arena(chunk_bytes=CHUNK)
    first, second, third = (arena.empty(3 * CHUNK // 8, np.dtype(np.uint8)) for _ in range(3))
    assert first.base is second.base and third.base is arena.chunk is not first.base  # 4.5 MiB: two chunks
    chunk = weakref.ref(first.base)
    del arena, third, first
    gc.collect()
    assert chunk() is not None
    del second
    gc.collect()
    assert chunk() is None


def test_narrowing_fills_the_array_it_is_given_and_refuses_one_that_does_not_fit() -> None:
    values = np.arange(-5, 300, dtype=np.int64)
    out = np.full(len(values), 7, dtype=np.int16)
    narrowed, lo, hi = narrow_ints(values, np.dtype(np.int16), out)
    assert narrowed is out and (lo, hi) == (-5, 299) and out.tolist() == values.tolist()
    for bad in (np.empty(len(values) - 1, np.int16), np.empty(len(values), np.int32),
                np.empty((len(values), 2), np.int16)[:, 0]):
        with pytest.raises(ValueError, match="contiguous array of 305 int16"):
            narrow_ints(values, np.dtype(np.int16), bad)


@pytest.mark.parametrize("path", ["numpy columns", "one row per call"])
def test_the_memtable_keeps_inserted_int_lists_in_its_arena(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both insert roads put their int lists in the memtable's arena, and the rows read back
    whole; a flush starts the next memtable on an arena of its own."""
    monkeypatch.setattr(arena_module, "SMALL_BYTES", 1)
    rows = [{"id": i, "t": [1000 + i, 5, 0, 0], "n": i} for i in range(5000)]  # int16 from the first row on
    with Memora(path=":memory:") as client:
        client.nosql.insert("c", rows[0])
        if path == "numpy columns":
            client.nosql.insert("c", {"id": np.arange(1, 5000), "t": np.array([r["t"] for r in rows[1:]]),
                                      "n": np.arange(1, 5000)})
        else:
            for row in rows[1:]:
                client.nosql.insert("c", row)
        memtable = client.nosql._store.engine("c").memtable  # one-row inserts: a batch per 4,096
        chunk = memtable.arena.chunk
        assert chunk is not None
        assert any(b.columns["t"].values.base is chunk for b in memtable.batches)
        got = client.nosql.query("c", filter="id >= 0", output_fields=["t", "n"])["data"]
        assert [[r["id"], r["t"], r["n"]] for r in got] == [[r["id"], r["t"], r["n"]] for r in rows]
        client.nosql.flush("c")
        assert client.nosql._store.engine("c").memtable.arena.chunk is None
        assert client.nosql.get("c", key=4321)["data"][0]["t"] == rows[4321]["t"]


def test_threads_carving_at_once_never_get_overlapping_arrays() -> None:
    arena = Arena(chunk_bytes=CHUNK)
    got: list[np.ndarray] = []

    def carve(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for n in rng.integers(SMALL_BYTES, CHUNK // 8, 150):
            got.append(arena.empty(int(n), np.dtype(np.uint8)))

    threads = [threading.Thread(target=carve, args=(seed,)) for seed in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads between almost any two bytecodes
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    spans = sorted(_span(a) for a in got)
    assert len(spans) == 1200 and all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))
