"""Power loss through the file-system seam: every byte not fsynced is dropped, then the store reopens.

The in-memory file system (``storage/fs.py``) knows what each sync made durable. A
recording subclass takes a *power-cut image* just before every sync — exactly what
``MemoryFileSystem.crash()`` would keep at that instant — so one run of a workload
yields a power cut at every point where the durable state changes: inside a write,
inside a flush, between the manifest's temp file and its rename, and so on. Each
image is opened by a new store (a crashed process never closes) and checked:

* every level: the image opens, and holds the state after some prefix of the calls
  (a power cut never leaves half a call, nor rows that were never written);
* ``durability="full"``: that prefix includes every call that had returned;
* ``durability="process"``: it includes at least every call before the last
  ``flush()`` that had returned.
"""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from memora_lite.nosql import NoSQL
from memora_lite.storage.engine import Options
from memora_lite.storage.fs import Appender, MemoryFileSystem
from memora_lite.storage.store import Store

ROOT = "/p"


def row(key: int, version: int) -> dict[str, Any]:
    """The row stored under ``key`` by its ``version``-th write: content checkable from the two numbers."""
    n = (key * 7 + version) % 23
    return {"id": key, "v": version, "tokens": [(key + i) % 300 for i in range(n)], "s": f"r{key}.{version}"}


class _GatedAppender(Appender):
    """An appender whose sync holds the file system's gate, so an image never sees half a sync."""

    def __init__(self, inner: Appender, gate: threading.RLock) -> None:
        self.inner = inner
        self.gate = gate

    @property
    def size(self) -> int:  # type: ignore[override]
        return self.inner.size

    def append(self, data: bytes) -> None:
        self.inner.append(data)

    def sync(self) -> None:
        with self.gate:
            self.inner.sync()

    def truncate(self, size: int) -> None:
        self.inner.truncate(size)

    def close(self) -> None:
        self.inner.close()


class PowerCutRecorder(MemoryFileSystem):
    """Calls ``on_cut(self)`` just before every sync, with every other sync held off meanwhile."""

    def __init__(self, on_cut: Callable[[PowerCutRecorder], None]) -> None:
        super().__init__()
        self.on_cut = on_cut
        self.gate = threading.RLock()

    def before_sync(self) -> None:
        self.on_cut(self)

    def write_file(self, path: str, data: bytes) -> None:
        with self.gate:
            super().write_file(path, data)

    def sync_dir(self, path: str) -> None:
        with self.gate:
            super().sync_dir(path)

    def open_appender(self, path: str) -> Appender:
        return _GatedAppender(super().open_appender(path), self.gate)


def power_cut_image(fs: MemoryFileSystem) -> MemoryFileSystem:
    """A new file system holding what ``fs.crash()`` would keep now, leaving ``fs`` running."""
    image = MemoryFileSystem()
    for folder in sorted(fs.dirs):
        image.makedirs(folder)
    folders = set()
    for path, f in list(fs.durable_names.items()):
        image.write_file(path, f.durable or b"")
        folders.add(os.path.dirname(path))
    for folder in folders:
        image.sync_dir(folder)
    return image


def stored_rows(fs: MemoryFileSystem, durability: str) -> dict[int, dict[str, Any]]:
    """Open a new store on ``fs`` as the next process would, and read every row."""
    db = NoSQL(Store(ROOT, None, Options(durability=durability), fs=fs))
    if not db.has_collection("c"):
        return {}
    return {r["id"]: dict(r) for r in db.query("c", output_fields=["id", "v", "tokens", "s"])["data"]}


def as_rows(state: dict[int, int]) -> dict[int, dict[str, Any]]:
    return {k: row(k, v) for k, v in state.items()}


class Workload:
    """Random calls on one collection, with the model state after each call."""

    def __init__(self, db: NoSQL, seed: int) -> None:
        self.db = db
        self.rng = random.Random(seed)
        self.model: dict[int, int] = {}
        self.states: list[dict[int, int]] = [{}]  # states[j]: the model after j calls
        self.acked = 0  # calls that returned
        self.flushed = 0  # calls that had returned when the last flush() returned
        self.next_key = 0

    def step(self) -> None:
        rng, model = self.rng, self.model
        roll = rng.random()
        if roll < 0.35 or not model:
            keys = [self.next_key]
            self.next_key += 1
            self.db.insert("c", row(keys[0], 0))
        elif roll < 0.55:
            count = rng.randint(2, 25)
            keys = list(range(self.next_key, self.next_key + count))
            self.next_key += count
            self.db.insert("c", [row(k, 0) for k in keys])
        elif roll < 0.70:
            keys = rng.sample(sorted(model), min(len(model), rng.randint(1, 6)))
            if rng.random() < 0.3:
                keys.append(self.next_key)
                self.next_key += 1
            new = {k: model.get(k, -1) + 1 for k in keys}
            self.db.upsert("c", row(keys[0], new[keys[0]]) if len(keys) == 1 else [row(k, new[k]) for k in keys])
            model.update(new)
            keys = []
        elif roll < 0.82:
            gone = rng.sample(sorted(model), min(len(model), rng.randint(1, 4)))
            self.db.delete("c", ids=[*gone, 10**9])
            for k in gone:
                del model[k]
            keys = []
        elif roll < 0.95:
            self.db.flush("c")
            self.flushed = self.acked + 1
            keys = []
        else:
            self.db.compact("c")
            keys = []
        for k in keys:
            model[k] = 0
        self.acked += 1
        self.states.append(dict(model))


@pytest.mark.parametrize("durability", ["full", "process"])
def test_a_power_cut_at_every_sync_opens_to_a_prefix_holding_every_acknowledged_call(
    durability: str, record_property: Callable[[str, object], None]
) -> None:
    images: list[tuple[MemoryFileSystem, int, int]] = []  # (image, calls returned, calls before last flush)
    running: list[Workload] = []

    def on_cut(fs: PowerCutRecorder) -> None:
        if running:
            images.append((power_cut_image(fs), running[0].acked, running[0].flushed))

    fs = PowerCutRecorder(on_cut)
    store = Store(ROOT, None, Options(durability=durability, flush_bytes=6 << 10), fs=fs)
    work = Workload(NoSQL(store), seed=11 if durability == "full" else 12)
    running.append(work)
    for _ in range(160):
        work.step()
    images.append((power_cut_image(fs), work.acked, work.flushed))
    fs.crash()  # the documented way, once: the same as the last image
    images.append((fs, work.acked, work.flushed))

    failed_opens, lost, matched = [], 0, 0
    for number, (image, acked, flushed) in enumerate(images):
        try:
            got = stored_rows(image, durability)
        except Exception as exc:  # any error opening or reading is a failed open
            failed_opens.append(f"cut {number}: {type(exc).__name__}: {exc}")
            continue
        low = acked if durability == "full" else flushed
        prefixes = [j for j in range(low, min(acked + 1, len(work.states) - 1) + 1)
                    if as_rows(work.states[j]) == got]
        if prefixes:
            matched += 1
        else:
            lost += 1
    record_property("figure", f"power loss ({durability}): {len(images)} power cuts over {work.acked} calls, "
                              f"{lost} cuts lost an acknowledged call or showed a partial one, "
                              f"{len(failed_opens)} failed opens")
    assert not failed_opens, failed_opens[:3]
    assert lost == 0
    assert matched == len(images) > 100


def test_concurrent_writers_with_full_durability_lose_nothing_they_were_told_was_stored(
    record_property: Callable[[str, object], None]
) -> None:
    acked: set[int] = set()
    images: list[tuple[MemoryFileSystem, frozenset[int]]] = []
    started = threading.Event()

    def on_cut(fs: PowerCutRecorder) -> None:
        if started.is_set():
            images.append((power_cut_image(fs), frozenset(acked)))  # acks first: each returned before now

    fs = PowerCutRecorder(on_cut)
    db = NoSQL(Store(ROOT, None, Options(durability="full", flush_bytes=16 << 10), fs=fs))
    db.insert("c", row(10**6, 0))
    acked.add(10**6)
    started.set()
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(60):
                key = t * 1000 + i
                if i % 10 == 9:
                    db.insert("c", [row(key, 0), row(key + 500, 0)])
                    acked.update((key, key + 500))
                else:
                    db.insert("c", row(key, 0))
                    acked.add(key)
        except BaseException as exc:  # reported below; a thread must not die silently
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    attempted = set(acked)
    images.append((power_cut_image(fs), frozenset(acked)))
    lost = wrong = failed = 0
    for image, acked_then in images:
        try:
            got = stored_rows(image, "full")
        except Exception:
            failed += 1
            continue
        lost += len(acked_then - set(got))
        wrong += sum(1 for k, r in got.items() if k not in attempted or r != row(k, 0))
    record_property("figure", f"power loss (full, 4 threads): {len(images)} power cuts, {len(attempted)} rows, "
                              f"{lost} acknowledged rows lost, {wrong} wrong rows, {failed} failed opens")
    assert (lost, wrong, failed) == (0, 0, 0)
    assert len(images) > 20
