"""The store against a plain-Python model: random calls, reopens, flushes, compactions and crashes.

A hypothesis state machine drives one collection on the in-memory file system with
``durability="full"``, and a dict of the rows it should hold. Every call's result and
every read is compared with the model. "kill" abandons the store as kill -9 would
(what reached the file system stays; a background flush stops where it was) and
"power cut" also drops every unsynced byte (``MemoryFileSystem.crash()``); at this
durability level neither may lose a row.
The schema is inferred, so int arrays widen and optional fields appear as the calls
go on; the model knows the inference rule that matters here (a field every row of the
first call had is required from then on).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from memora_lite import DuplicateIdError, SchemaError
from memora_lite.nosql import NoSQL
from memora_lite.storage.engine import Options
from memora_lite.storage.fs import MemoryFileSystem
from memora_lite.storage.store import Store

ROOT = "/p"
KEYS = st.integers(0, 60)
TOKENS = st.lists(st.one_of(st.integers(0, 120), st.integers(-40_000, 40_000), st.integers(-2**40, 2**40)),
                  max_size=12)
ROWS = st.fixed_dictionaries(
    {"v": st.integers(-5, 5), "t": TOKENS},
    optional={"s": st.text(max_size=8), "f": st.floats(allow_nan=False, allow_infinity=False, width=64)},
)
COUNTS = {"runs": 0, "steps": 0, "reopens": 0, "kills": 0, "power_cuts": 0}


class ProcessKilled(BaseException):
    """Raised in a killed process's threads at their next file-system call."""


class ProcessView:
    """The in-memory disk as one process sees it. Once :meth:`kill` returns, no call of that
    process reaches the disk -- not even from its background flush thread, which an abandoned
    store would otherwise leave running -- as after kill -9. A call in progress finishes
    first, as a system call does."""

    def __init__(self, disk: MemoryFileSystem) -> None:
        self.disk = disk
        self.alive = True
        self.gate = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.disk, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self.gate:
                if not self.alive:
                    raise ProcessKilled(name)
                return method(*args, **kwargs)
        return call

    def kill(self) -> None:
        with self.gate:
            self.alive = False


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row without its null fields: a field the row never had reads back as None."""
    return {k: v for k, v in row.items() if v is not None}


class StoreVersusModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.fs = MemoryFileSystem()
        self.options = Options(durability="full", flush_bytes=4 << 10, segment_rows=16)
        self._open()
        self.model: dict[int, dict[str, Any]] = {}
        self.required: set[str] | None = None  # fields every row must have; None until the collection exists
        COUNTS["runs"] += 1

    def _open(self) -> None:
        self.process = ProcessView(self.fs)
        self.db = NoSQL(Store(ROOT, None, self.options, fs=self.process))  # type: ignore[arg-type]

    def _stored(self) -> dict[int, dict[str, Any]]:
        if not self.db.has_collection("c"):
            return {}
        return {r["id"]: _plain(dict(r)) for r in self.db.query("c")["data"]}

    # -- writes --------------------------------------------------------------------------------------

    def _refusal(self, rows: list[dict[str, Any]], insert: bool) -> type[Exception] | None:
        """The error the call must raise (then it writes nothing), or None."""
        if self.required is not None and any(not self.required <= row.keys() for row in rows):
            return SchemaError  # a row lacks a field every earlier row had (inferred as not nullable)
        if insert and {row["id"] for row in rows} & set(self.model):
            return DuplicateIdError
        return None

    def _write(self, rows: list[dict[str, Any]], insert: bool) -> None:
        COUNTS["steps"] += 1
        call = self.db.insert if insert else self.db.upsert
        data: Any = rows[0] if len(rows) == 1 else rows
        refusal = self._refusal(rows, insert)
        if refusal is not None:
            with pytest.raises(refusal):
                call("c", data)
            return  # all or nothing: the invariant checks that nothing was written
        keys = [row["id"] for row in rows]
        assert call("c", data) == {"insert_count" if insert else "upsert_count": len(keys), "ids": keys}
        if self.required is None:  # the first call infers the schema: fields every row has are required
            self.required = set.intersection(*(set(row) for row in rows))
        self.model.update({row["id"]: _plain(row) for row in rows})

    @rule(key=KEYS, value=ROWS)
    def insert_one(self, key: int, value: dict[str, Any]) -> None:
        self._write([{"id": key, **value}], insert=True)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=8, unique=True), values=st.lists(ROWS, min_size=8, max_size=8))
    def insert_batch(self, keys: list[int], values: list[dict[str, Any]]) -> None:
        self._write([{"id": k, **v} for k, v in zip(keys, values)], insert=True)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=6, unique=True), values=st.lists(ROWS, min_size=6, max_size=6))
    def upsert(self, keys: list[int], values: list[dict[str, Any]]) -> None:
        self._write([{"id": k, **v} for k, v in zip(keys, values)], insert=False)

    @rule(keys=st.lists(KEYS, max_size=6))
    def delete_ids(self, keys: list[int]) -> None:
        COUNTS["steps"] += 1
        if not self.db.has_collection("c"):
            return
        live = set(keys) & set(self.model)
        assert self.db.delete("c", ids=keys) == {"delete_count": len(live)}
        for k in live:
            del self.model[k]

    @rule(threshold=st.integers(-6, 6))
    def delete_by_filter(self, threshold: int) -> None:
        COUNTS["steps"] += 1
        if not self.db.has_collection("c"):
            return
        gone = [k for k, r in self.model.items() if r["v"] > threshold]
        assert self.db.delete("c", filter=f"v > {threshold}") == {"delete_count": len(gone)}
        for k in gone:
            del self.model[k]

    # -- reads ---------------------------------------------------------------------------------------

    @rule(lo=KEYS, span=st.integers(0, 30), threshold=st.integers(-6, 6))
    def query(self, lo: int, span: int, threshold: int) -> None:
        COUNTS["steps"] += 1
        if not self.db.has_collection("c"):
            return
        got = [_plain(dict(r)) for r in self.db.query("c", filter=f"{lo} <= id < {lo + span} and v >= {threshold}")
               ["data"]]
        assert got == [self.model[k] for k in sorted(self.model) if lo <= k < lo + span and self.model[k]["v"] >=
                       threshold]

    @rule(lo=KEYS, span=st.integers(0, 30), offset=st.integers(0, 4), limit=st.none() | st.integers(0, 8),
          numpy=st.booleans())
    def range_read(self, lo: int, span: int, offset: int, limit: int | None, numpy: bool) -> None:
        """A pure key range (the read served straight from blocks when nothing needs merging)."""
        COUNTS["steps"] += 1
        if not self.db.has_collection("c"):
            return
        want = [self.model[k] for k in sorted(self.model) if lo <= k < lo + span][offset:]
        want = want if limit is None else want[:limit]
        got = self.db.query("c", filter=f"{lo} <= id < {lo + span}", output_fields=["t", "v"], limit=limit,
                            offset=offset, output="numpy" if numpy else "rows")["data"]
        if numpy:
            assert got["id"].tolist() == [r["id"] for r in want]
            assert got["v"].tolist() == [r["v"] for r in want]
            assert [list(map(int, t)) for t in got["t"]] == [r["t"] for r in want]
        else:
            assert [(r[0], r[1], r["id"]) for r in got] == [(r["t"], r["v"], r["id"]) for r in want]

    @rule(keys=st.lists(KEYS, max_size=6))
    def get(self, keys: list[int]) -> None:
        COUNTS["steps"] += 1
        if not self.db.has_collection("c"):
            return
        got = [_plain(dict(r)) for r in self.db.get("c", ids=keys)["data"]]
        assert got == [self.model[k] for k in keys if k in self.model]
        if keys:
            one = self.db.get("c", key=keys[0])["data"]
            assert [_plain(dict(r)) for r in one] == ([self.model[keys[0]]] if keys[0] in self.model else [])

    # -- maintenance and crashes ---------------------------------------------------------------------

    @rule()
    def flush(self) -> None:
        COUNTS["steps"] += 1
        self.db.flush()

    @rule()
    def compact(self) -> None:
        COUNTS["steps"] += 1
        if self.db.has_collection("c"):
            self.db.compact("c")

    @rule()
    def reopen(self) -> None:
        COUNTS["steps"] += 1
        COUNTS["reopens"] += 1
        self.db._store.close()
        self._open()

    @rule()
    def kill(self) -> None:
        COUNTS["steps"] += 1
        COUNTS["kills"] += 1
        self.process.kill()
        self._open()  # the old store is abandoned, never closed; what reached the file system stays

    @rule()
    def power_cut(self) -> None:
        COUNTS["steps"] += 1
        COUNTS["power_cuts"] += 1
        self.process.kill()
        self.fs.crash()
        self._open()

    @invariant()
    def holds_exactly_the_model(self) -> None:
        assert self._stored() == self.model


@pytest.mark.parametrize("examples", [100, pytest.param(3000, marks=pytest.mark.slow)])
def test_the_store_never_diverges_from_a_dict(examples: int, record_property: Callable[[str, object], None]) -> None:
    for key in COUNTS:
        COUNTS[key] = 0
    outcome = "0 divergences"
    try:
        run_state_machine_as_test(StoreVersusModel, settings=settings(
            max_examples=examples, stateful_step_count=30, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
    except BaseException:
        outcome = "a DIVERGENCE (the shrunk case is printed above)"
        raise
    finally:
        record_property("figure", f"state machine: {COUNTS['runs']} runs, {COUNTS['steps']} steps "
                                  f"({COUNTS['reopens']} reopens, {COUNTS['kills']} kills, "
                                  f"{COUNTS['power_cuts']} power cuts): {outcome}")
