"""Bit flips in every on-disk file, thousands of positions: CorruptionError or identical answers.

tests/storage/test_corruption.py flips about 150 bits per file of a small store on
disk. This suite flips thousands, in a store whose segments hold every column
encoding (tokens1, plain, utf8, msgpack, msgpack_ragged, ragged_plain, null masks),
with deletion vectors and a log holding every record type. Each damaged copy is
opened by a new store and asked a full scan (numpy output), a ``get`` and filtered
queries. Each answer must be a CorruptionError or identical to the undamaged one:
any other exception or any differing answer is counted.

The trials run in a child interpreter so that a crash (a segfault in a compiled
decoder) is seen as one instead of killing the test run. Run this file directly
to flip a chosen number of positions: ``python tests/crash/test_bit_flips.py 20000``.
"""

from __future__ import annotations

import faulthandler
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from memora_lite.errors import CorruptionError
from memora_lite.models import DataType, Field
from memora_lite.nosql import NoSQL
from memora_lite.storage.engine import Options
from memora_lite.storage.fs import MemoryFileSystem
from memora_lite.storage.store import Store
from memora_lite.testing.squad import squad_columns

ROOT = "/p"
FOLDER = "/p/default/c"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIELDS = [
    Field("id", DataType.INT64, is_primary=True),
    Field("input_ids", DataType.ARRAY, element_data_type=DataType.INT32, max_capacity=96),
    Field("attention_mask", DataType.ARRAY, element_data_type=DataType.INT8, max_capacity=96),
    Field("start_token", DataType.INT64),
    Field("title", DataType.VARCHAR, nullable=True),
    Field("meta", DataType.JSON),
    Field("vec", DataType.FLOAT_VECTOR, dim=4),
    Field("scores", DataType.ARRAY, element_data_type=DataType.FLOAT),
    Field("tags", DataType.ARRAY, element_data_type=DataType.VARCHAR),
    Field("flag", DataType.BOOL),
    Field("ratio", DataType.DOUBLE, nullable=True),
]


def _rows(keys: range, squad: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    rows = []
    for k in keys:
        i = k % len(squad["id"])
        row = {"id": k, "input_ids": squad["input_ids"][i].tolist(),
               "attention_mask": squad["attention_mask"][i].tolist(), "start_token": int(squad["start_token"][i]),
               "meta": {"k": k, "l": [k % 3, "x"]} if k % 8 == 0 else k,
               "vec": [k / 7, -k, 0.5, 1e-3], "scores": [k / 3] * (k % 4),
               "tags": ["t"] * (k % 3) if k % 4 else [f"é{k}"], "flag": k % 2 == 0}
        if k % 5:
            row["title"] = f"title {k} ünïcode"
        if k % 7:
            row["ratio"] = k / 11
        rows.append(row)
    return rows


def build_store() -> MemoryFileSystem:
    """Two segments (one with a deletion vector) and a log with every record type."""
    squad = squad_columns(300, seed=5, seq_len=96)
    fs = MemoryFileSystem()
    db = NoSQL(Store(ROOT, None, Options(), fs=fs))
    db.create_collection("c", fields=FIELDS)
    db.insert("c", _rows(range(0, 1040), squad))
    db.flush("c")
    db.insert("c", _rows(range(1100, 1200), squad))
    db.flush("c")
    db.delete("c", ids=[3, 4, 500, 1030, 1101])
    db.flush("c")
    db.insert("c", _rows(range(1300, 1301), squad)[0])  # one-row insert
    db.insert("c", _rows(range(1301, 1305), squad))
    db.upsert("c", _rows(range(10, 12), squad)[0])
    db.upsert("c", _rows(range(1302, 1304), squad))
    db.delete("c", ids=[1, 1302, 1150])
    return fs


def answers(fs: MemoryFileSystem) -> list[Any]:
    """What a new process would be told: a full scan, a get, filtered queries."""
    db = NoSQL(Store(ROOT, None, Options(read_only=True), fs=fs))
    return [
        db.query("c", output="numpy")["data"],
        db.get("c", ids=[1303, 7, 1150, 700, 11, 1199])["data"],
        db.query("c", filter="title like 'title 1%' and array_length(tags) == 2", output_fields=["vec"])["data"],
        db.query("c", filter="995 <= id < 1105 and (meta['k'] % 3 == 0 or flag)",
                 output_fields=["scores", "ratio", "flag", "input_ids"])["data"],
        db.query("c", filter="flag", output_fields=["count(*)"])["data"],
    ]


def same(a: Any, b: Any) -> bool:
    """Equal values, dtypes and shapes, arrays compared whole (masked arrays: values and masks)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if type(a) is not type(b) or a.dtype != b.dtype or a.shape != b.shape:
            return False
        if np.ma.isMaskedArray(a):
            return bool(np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b))) and same(
                np.ma.getdata(a)[~np.ma.getmaskarray(a)], np.ma.getdata(b)[~np.ma.getmaskarray(b)])
        return same(a.tolist(), b.tolist()) if a.dtype == object else bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _copy_with(fs: MemoryFileSystem, target: str, data: bytes) -> MemoryFileSystem:
    copy = MemoryFileSystem()
    for folder in sorted(fs.dirs):
        copy.makedirs(folder)
    for path in fs.files:
        copy.write_file(path, data if path == target else fs.read(path))
    return copy


def positions(fs: MemoryFileSystem, trials: int, seed: int) -> list[tuple[str, int, int]]:
    """(file, byte, bit) to flip: every byte of small files, and spread over big ones, ``trials`` in all."""
    rng = random.Random(seed)
    files = {name: len(fs.read(os.path.join(FOLDER, name))) for name in fs.listdir(FOLDER)}
    total = sum(files.values())
    chosen = []
    for name, size in sorted(files.items()):
        share = max(min(size, 40), round(trials * size / total))
        if share >= size:
            picks = list(range(size))
        else:  # evenly spaced, then jittered: every region of the file, not one cluster
            picks = sorted({min(size - 1, int(i * size / share) + rng.randrange(max(1, size // share)))
                            for i in range(share)})
        chosen += [(name, p, rng.randrange(8)) for p in picks]
    return chosen


def run_trials(trials: int, seed: int = 1) -> dict[str, Any]:
    fs = build_store()
    expected = answers(fs)
    counts: dict[str, Any] = {"trials": 0, "corruption": 0, "identical": 0, "wrong": [], "other": [], "files": {}}
    for name, pos, bit in positions(fs, trials, seed):
        path = os.path.join(FOLDER, name)
        data = bytearray(fs.read(path))
        data[pos] ^= 1 << bit
        counts["trials"] += 1
        counts["files"][name] = counts["files"].get(name, 0) + 1
        try:
            got = answers(_copy_with(fs, path, bytes(data)))
        except CorruptionError as exc:
            if name not in str(exc):
                counts["other"].append(f"{name}@{pos}.{bit}: the error does not name the file: {exc}")
            counts["corruption"] += 1
            continue
        except Exception as exc:
            counts["other"].append(f"{name}@{pos}.{bit}: {type(exc).__name__}: {exc}")
            continue
        if same(got, expected):
            counts["identical"] += 1
        else:
            counts["wrong"].append(f"{name}@{pos}.{bit}")
    return counts


def _flip_in_child(trials: int) -> tuple[int, dict[str, Any] | None, str]:
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), str(trials)], capture_output=True, text=True,
                          env=env, timeout=1200)
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, (json.loads(lines[-1]) if proc.returncode == 0 and lines else None), proc.stderr[-3000:]


@pytest.mark.parametrize("trials", [2000, pytest.param(25000, marks=pytest.mark.slow)])
def test_flipped_bits_anywhere_raise_corruption_or_change_no_answer(
    trials: int, record_property: Callable[[str, object], None]
) -> None:
    status, counts, stderr = _flip_in_child(trials)
    crashes = 0 if status == 0 else 1
    if counts is None:
        record_property("figure", f"bit flips: the child interpreter died (status {status}): 1 crash")
        pytest.fail(f"the flipping interpreter died with status {status}:\n{stderr}")
    files = ", ".join(f"{n} {c}" for n, c in sorted(counts["files"].items()))
    record_property("figure", f"bit flips: {counts['trials']} flips over {len(counts['files'])} files ({files}): "
                              f"{counts['corruption']} CorruptionError, {counts['identical']} identical answers, "
                              f"{len(counts['wrong'])} wrong answers, {len(counts['other'])} other errors, "
                              f"{crashes} interpreter crashes")
    assert not counts["wrong"], counts["wrong"][:10]
    assert not counts["other"], counts["other"][:10]
    assert counts["trials"] >= trials * 0.9 and counts["corruption"] > 0
    assert any(n.endswith(".mls") for n in counts["files"]) and any(".del-" in n for n in counts["files"])
    assert any(n.endswith(".log") for n in counts["files"]) and "MANIFEST" in counts["files"]


if __name__ == "__main__":
    faulthandler.enable()
    print(json.dumps(run_trials(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)))
