"""Torn log tails with garbage after them: cut the log at every byte of its last two records, append junk.

tests/storage/test_recovery.py cuts a log of one-row inserts on disk, and appends
junk to a whole log. Here the log holds every record type (one-row and batch
inserts and upserts, deletes, a schema change) and each cut is followed by each
kind of junk a crash leaves: nothing, zeros, random bytes. The store must open and
hold exactly the rows of the records before the cut.

One case is damage by the rules of docs/format.md#wal, not a torn tail: when the
junk happens to end exactly where the torn record's length field says it ends, the
record is whole but fails its checksum, and that raises CorruptionError naming the
file and the record's offset. The test checks that rule on those cuts.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import pytest

from memora_lite import CorruptionError
from memora_lite.nosql import NoSQL
from memora_lite.storage.engine import Options
from memora_lite.storage.format import WAL_MAGIC, WAL_RECORD_HEADER
from memora_lite.storage.fs import MemoryFileSystem
from memora_lite.storage.store import Store
from memora_lite.storage.wal import read_records

ROOT = "/p"
FOLDER = "/p/default/c"


def _build() -> tuple[MemoryFileSystem, list[dict[int, Any]]]:
    """A store whose log holds every record type; the model after each record."""
    fs = MemoryFileSystem()
    db = NoSQL(Store(ROOT, None, Options(), fs=fs))
    states: list[dict[int, Any]] = []

    def read() -> None:
        states.append({r["id"]: dict(r) for r in db.query("c")["data"]})

    db.insert("c", {"id": 1, "tokens": [101, 7, 102, 0], "s": "one"})
    read()
    db.insert("c", [{"id": k, "tokens": [k] * (k % 4), "s": f"b{k}"} for k in range(10, 40)])
    read()
    db.upsert("c", {"id": 12, "tokens": [-5, 6], "s": "up"})
    read()
    db.delete("c", ids=[11, 13, 14])
    read()
    db.insert("c", [{"id": 50, "tokens": [300, 70000], "s": "wide", "extra": 1.5}])  # grows the schema
    read()
    db.upsert("c", [{"id": k, "tokens": [k, k], "s": f"u{k}", "extra": None} for k in (1, 20, 60)])
    read()
    db.insert("c", {"id": 61, "tokens": [1, 2, 3] * 10, "s": "last", "extra": 2.5})
    read()
    return fs, states


def _wal_name(fs: MemoryFileSystem) -> str:
    (name,) = [n for n in fs.listdir(FOLDER) if n.endswith(".log")]
    return os.path.join(FOLDER, name)


def _image(fs: MemoryFileSystem, wal: str, data: bytes) -> MemoryFileSystem:
    """A copy of ``fs`` with the log replaced by ``data``."""
    copy = MemoryFileSystem()
    for folder in sorted(fs.dirs):
        copy.makedirs(folder)
    for path in list(fs.files):
        copy.write_file(path, data if path == wal else fs.read(path))
    return copy


def _junk_kinds() -> dict[str, bytes]:
    rng = random.Random(4)
    return {
        "nothing": b"",
        "zeros": b"\x00" * 4096,
        "random 5": bytes(rng.randrange(256) for _ in range(5)),
        "random 300": bytes(rng.randrange(256) for _ in range(300)),
    }


def test_every_cut_in_the_last_two_records_plus_junk_opens_to_the_records_before_the_cut(
    record_property: Callable[[str, object], None],
) -> None:
    fs, states = _build()
    wal = _wal_name(fs)
    data = fs.read(wal)
    records, valid = read_records(data, wal)
    assert len(records) == len(states) and valid == len(data)
    ends = [len(WAL_MAGIC)]
    for _, payload in records:
        ends.append(ends[-1] + WAL_RECORD_HEADER.size + len(payload))
    trials = damaged = 0
    wrong: list[str] = []
    for cut in range(ends[-3], len(data)):
        kept = sum(1 for e in ends[1:] if e <= cut)
        torn_start = ends[kept]
        for kind, junk in _junk_kinds().items():
            trials += 1
            image = _image(fs, wal, data[:cut] + junk)
            torn_length = int.from_bytes(data[torn_start : torn_start + 4], "little")
            rest = cut + len(junk) - torn_start - WAL_RECORD_HEADER.size
            whole = cut - torn_start >= 4 and rest == torn_length
            try:
                db = NoSQL(Store(ROOT, None, Options(), fs=image))
                got = {r["id"]: dict(r) for r in db.query("c")["data"]}
            except CorruptionError as exc:
                if whole and f"offset {torn_start}" in str(exc) and wal in str(exc):
                    damaged += 1  # the documented damage rule: a whole record that fails its checksum
                    continue
                wrong.append(f"cut {cut} + {kind}: {exc}")
                continue
            if got != (states[kept - 1] if kept else {}):
                wrong.append(f"cut {cut} + {kind}: {len(got)} rows, expected the {kept} records before the cut")
                continue
            if kind != "random 300":
                continue
            db.insert("c", {"id": 999, "tokens": [9], "s": "after"})  # the writer cut the junk off first
            again = NoSQL(Store(ROOT, None, Options(), fs=image))
            after = {r["id"]: r["s"] for r in again.query("c", output_fields=["s"])["data"]}
            if after != {**{k: r["s"] for k, r in got.items()}, 999: "after"}:
                wrong.append(f"cut {cut} + {kind}: rows written after recovery did not survive a reopen")
    record_property("figure", f"torn tails: {trials} cuts x junk over the last 2 of {len(records)} records, "
                              f"{len(wrong)} wrong, {damaged} whole-but-bad records refused as damage")
    assert not wrong, wrong[:5]
    assert trials > 1000


@pytest.mark.parametrize("cut_into", ["header", "payload"])
def test_a_torn_record_whose_payload_reads_back_as_zeros_opens_without_it(cut_into: str) -> None:
    """A power cut can leave a file's new length with zeros where the last write's data never landed."""
    fs, states = _build()
    wal = _wal_name(fs)
    data = fs.read(wal)
    records, _ = read_records(data, wal)
    last = len(data) - WAL_RECORD_HEADER.size - len(records[-1][1])
    keep = last + (WAL_RECORD_HEADER.size if cut_into == "payload" else 6)
    image = _image(fs, wal, data[:keep] + b"\x00" * (len(data) - keep))
    db = NoSQL(Store(ROOT, None, Options(), fs=image))
    assert {r["id"]: dict(r) for r in db.query("c")["data"]} == states[-2]
