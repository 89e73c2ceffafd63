"""Damaged files: every flipped bit either raises CorruptionError or changes no answer."""

from __future__ import annotations

import os
import shutil

import pytest

from memora_lite import CorruptionError, Memora


def _build(path: str) -> None:
    """Segments, a deletion vector, and a log with records in it (copied while the writer is open)."""
    source = path + "-source"
    with Memora(path=source, flush_bytes=16 << 10) as c:
        c.nosql.insert("c", [{"id": i, "tokens": [i % 7] * (i % 5), "s": f"v{i}", "f": i / 3} for i in range(600)])
        c.nosql.delete("c", ids=[3, 4, 5])
        c.flush()
        c.nosql.insert("c", {"id": 1000, "tokens": [1], "s": "x", "f": 0.5})
        c.nosql.insert("c", [{"id": 1001, "tokens": [2], "s": "y", "f": 1.5}])
        c.nosql.delete("c", key=7)
        shutil.copytree(source, path, ignore=shutil.ignore_patterns("LOCK"))


def _answers(path: str) -> list:
    with Memora(path=path, read_only=True) as c:
        return c.nosql.query("c")["data"]


def test_flipped_bits_in_every_file_raise_corruption_or_change_nothing(tmp_path) -> None:
    base = os.path.join(tmp_path, "base")
    _build(base)
    expected = _answers(base)
    folder = os.path.join(base, "default", "c")
    names = sorted(n for n in os.listdir(folder))
    assert any(n.endswith(".mls") for n in names) and "MANIFEST" in names
    assert any(".del-" in n for n in names)
    assert any(n.endswith(".log") and os.path.getsize(os.path.join(folder, n)) > 100 for n in names)
    trials = errors = 0
    for name in names:
        size = os.path.getsize(os.path.join(folder, name))
        for pos in range(0, size, max(1, size // 150)):
            trial = os.path.join(tmp_path, "trial")
            shutil.copytree(base, trial)
            target = os.path.join(trial, "default", "c", name)
            with open(target, "r+b") as f:
                f.seek(pos)
                byte = f.read(1)[0]
                f.seek(pos)
                f.write(bytes([byte ^ (1 << (pos % 8))]))
            trials += 1
            try:
                got = _answers(trial)
            except CorruptionError as exc:
                errors += 1
                assert name in str(exc) or "MANIFEST" in str(exc)
            else:
                assert got == expected, f"{name} offset {pos}: wrong rows returned without an error"
            shutil.rmtree(trial)
    assert trials > 300 and errors > 0


def test_a_truncated_segment_is_corruption_naming_the_file(tmp_path) -> None:
    path = os.path.join(tmp_path, "s")
    _build(path)
    folder = os.path.join(path, "default", "c")
    segment = next(n for n in sorted(os.listdir(folder)) if n.endswith(".mls"))
    with open(os.path.join(folder, segment), "r+b") as f:
        f.truncate(os.path.getsize(os.path.join(folder, segment)) - 5)
    with pytest.raises(CorruptionError, match=segment):
        _answers(path)
