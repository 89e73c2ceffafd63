"""query and get: output fields, positional rows, count(*), windows, numpy output, and every filter form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from memora_lite import FieldNotFoundError, FilterError, InvalidArgumentError, Memora
from memora_lite._rows import cached_row
from memora_lite.results import rows_from_columns, to_lists, to_numpy
from memora_lite.storage import segment

N = 2500


def _rows() -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    words = ["apple", "apricot", "banana", "cherry", "date", "fig", "grape"]
    rows = []
    for i in rng.permutation(N).tolist():  # ids arrive out of order
        rows.append({
            "id": i,
            "score": float(rng.normal()),
            "count": int(rng.integers(-50, 50)),
            "flag": bool(rng.random() < 0.3),
            "word": words[int(rng.integers(0, len(words)))] if rng.random() < 0.9 else None,
            "tokens": rng.integers(0, 3000, size=int(rng.integers(0, 8))).tolist(),
            "meta": {"k": int(rng.integers(0, 5)), "tag": words[i % 7]},
        })
    return rows


ROWS = _rows()


@pytest.fixture
def db(client: Memora) -> Memora:
    # Three calls of different sizes: segments, a deletion, and a memtable are all involved.
    client.nosql.insert("t", ROWS[:1200])
    client.nosql.insert("t", ROWS[1200:2400])
    client.nosql.insert("t", {k: [r[k] for r in ROWS[2400:]] for k in ROWS[0]})
    return client


CASES: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ("", lambda r: True),
    ("0 <= id < 50", lambda r: 0 <= r["id"] < 50),
    ("50 > id >= 0", lambda r: 0 <= r["id"] < 50),
    ("id == 17", lambda r: r["id"] == 17),
    ("id != 17 and id < 30", lambda r: r["id"] != 17 and r["id"] < 30),
    ("id in [3, 1, 2400, 99999]", lambda r: r["id"] in (3, 1, 2400)),
    ("id not in [1, 2, 3] && id <= 5", lambda r: r["id"] not in (1, 2, 3) and r["id"] <= 5),
    ("id > 2490 || id < 3", lambda r: r["id"] > 2490 or r["id"] < 3),
    ("not (id >= 10)", lambda r: not r["id"] >= 10),
    ("!(id >= 10) and count > 0", lambda r: r["id"] < 10 and r["count"] > 0),
    ("score > 1.5", lambda r: r["score"] > 1.5),
    ("score <= -2 or count == 49", lambda r: r["score"] <= -2 or r["count"] == 49),
    ("count % 10 == 0", lambda r: r["count"] % 10 == 0),
    ("count > 2 * 10 + 5", lambda r: r["count"] > 25),
    ("count + 1 > 40", lambda r: r["count"] + 1 > 40),
    ("flag == true", lambda r: r["flag"]),
    ("flag == false and id < 100", lambda r: not r["flag"] and r["id"] < 100),
    ('word == "fig"', lambda r: r["word"] == "fig"),
    ("word == 'fig'", lambda r: r["word"] == "fig"),
    ('word like "ap%"', lambda r: r["word"] is not None and r["word"].startswith("ap")),
    ('word in ["date", "fig"]', lambda r: r["word"] in ("date", "fig")),
    ("word is null", lambda r: r["word"] is None),
    ("word is not null and id < 40", lambda r: r["word"] is not None and r["id"] < 40),
    ("array_length(tokens) == 0", lambda r: len(r["tokens"]) == 0),
    ("array_length(tokens) >= 6", lambda r: len(r["tokens"]) >= 6),
    ("array_contains(tokens, 5)", lambda r: 5 in r["tokens"]),
    ('meta["k"] == 3', lambda r: r["meta"]["k"] == 3),
    ('meta["tag"] == "fig" and id < 500', lambda r: r["meta"]["tag"] == "fig" and r["id"] < 500),
    ("(id < 100 or id > 2400) and (flag == true or count < -40)",
     lambda r: (r["id"] < 100 or r["id"] > 2400) and (r["flag"] or r["count"] < -40)),
]


@pytest.mark.parametrize(("expr", "reference"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_filter_matches_plain_python_reference(db: Memora, expr: str, reference: Callable[..., bool]) -> None:
    got = db.nosql.query("t", filter=expr)["data"]
    expected = sorted((r for r in ROWS if reference(r)), key=lambda r: r["id"])
    assert [r["id"] for r in got] == [r["id"] for r in expected]
    assert [dict(r) for r in got] == expected


def test_rows_index_by_position_in_output_fields_order(db: Memora) -> None:
    rows = db.nosql.query("t", filter="0 <= id < 5", output_fields=["tokens", "count", "word"])["data"]
    by_id = {r["id"]: r for r in ROWS}
    for row in rows:
        src = by_id[row["id"]]
        assert (row[0], row[1], row[2]) == (src["tokens"], src["count"], src["word"])
        assert row[3] == row["id"]  # the key is always included, after the fields asked for
        assert set(row) == {"id", "tokens", "count", "word"}
    with pytest.raises(IndexError):
        rows[0][4]


def test_limit_offset_and_count(db: Memora) -> None:
    q = db.nosql.query
    assert [r["id"] for r in q("t", filter="id < 100", limit=3, offset=5)["data"]] == [5, 6, 7]
    assert q("t", filter="id >= 2498", limit=10)["data"][-1]["id"] == 2499
    assert q("t", output_fields=["count(*)"])["data"] == [{"count(*)": N}]
    flagged = q("t", filter="flag == true", output_fields=["count(*)"])["data"][0]["count(*)"]
    assert flagged == sum(r["flag"] for r in ROWS)
    for bad in ({"limit": -1}, {"offset": -3}, {"limit": 1.5}, {"offset": None}):
        with pytest.raises(InvalidArgumentError):
            q("t", **bad)


def test_get_by_key_and_ids_keeps_the_order_asked(db: Memora) -> None:
    got = db.nosql.get("t", ids=[2499, 0, 77777, 1200], output_fields=["count"])["data"]
    by_id = {r["id"]: r for r in ROWS}
    assert [(r["id"], r["count"]) for r in got] == [(i, by_id[i]["count"]) for i in (2499, 0, 1200)]
    assert db.nosql.get("t", key=12345)["data"] == []


def test_many_ids_spread_over_many_blocks_come_back_in_the_order_asked(client: Memora) -> None:
    """A get of scattered ids touches one block per id; each block looks up only the ids it can hold."""
    client.nosql.insert("m", [{"id": i, "v": [i % 7] * 3} for i in range(0, 20_000, 2)])
    client.nosql.flush("m")
    rng = np.random.default_rng(5)
    asked = rng.integers(-5, 20_005, size=300).tolist()
    got = client.nosql.get("m", ids=asked)["data"]
    assert [r["id"] for r in got] == [k for k in asked if 0 <= k < 20_000 and k % 2 == 0]  # repeats repeat
    assert all(r["v"] == [r["id"] % 7] * 3 for r in got)


@pytest.mark.parametrize(("collection", "bad"), [("t", "5"), ("t", True), ("t", 1.0), ("s", 5)])
def test_a_key_of_the_wrong_type_is_a_clear_error(client: Memora, collection: str, bad: Any) -> None:
    client.nosql.insert("t", [{"id": 1, "x": 1}])
    client.nosql.insert("s", [{"id": "a", "x": 1}])
    good = 1 if collection == "t" else "a"
    for call in (lambda: client.nosql.get(collection, key=bad), lambda: client.nosql.get(collection, ids=[good, bad]),
                 lambda: client.nosql.delete(collection, ids=[bad])):
        with pytest.raises(InvalidArgumentError, match=f"collection '{collection}': primary key {bad!r} must be"):
            call()
    assert client.nosql.query(collection, output_fields=["count(*)"])["data"][0]["count(*)"] == 1  # nothing deleted


def test_numpy_output_is_columnar_in_stored_dtypes(client: Memora) -> None:
    ids = np.arange(100)
    tokens = np.random.default_rng(0).integers(0, 30_000, size=(100, 16))
    client.nosql.insert("n", {"id": ids, "tokens": tokens, "label": ids % 3})
    out = client.nosql.query("n", filter="10 <= id < 20", output_fields=["tokens", "label"], output="numpy")
    data = out["data"]
    assert data["tokens"].shape == (10, 16) and data["tokens"].dtype == np.int16
    np.testing.assert_array_equal(data["tokens"], tokens[10:20])
    np.testing.assert_array_equal(data["id"], np.arange(10, 20))
    np.testing.assert_array_equal(data["label"], np.arange(10, 20) % 3)


def test_unknown_output_field_names_the_stored_fields_and_suggests(client: Memora) -> None:
    client.nosql.insert("finetune_data", {"id": 0, "start_token": 1, "end_token": 2, "input_ids": [1, 2]})
    with pytest.raises(FieldNotFoundError) as err:
        client.nosql.query("finetune_data", filter="0 <= id < 50", output_fields=["input_ids", "start_positions"])
    message = str(err.value)
    assert "'start_positions'" in message and "did you mean 'start_token'" in message
    assert "stored fields: id, start_token, end_token, input_ids" in message
    with pytest.raises(FieldNotFoundError, match="did you mean 'end_token'"):
        client.nosql.query("finetune_data", output_fields=["end_positions"])


def test_filter_errors_carry_position_and_caret(db: Memora) -> None:
    with pytest.raises(FilterError) as err:
        db.nosql.query("t", filter="id < 5 and scor > 1")
    assert err.value.position == 11
    assert "did you mean 'score'" in str(err.value)
    assert "^" in str(err.value)
    with pytest.raises(FilterError):
        db.nosql.query("t", filter="id <")
    with pytest.raises(FilterError, match="word"):
        db.nosql.query("t", filter="word > 5")
    with pytest.raises(InvalidArgumentError):
        db.nosql.query("t", filter=None)  # type: ignore[arg-type]


def test_numpy_results_are_the_callers_own_arrays(client: Memora) -> None:
    client.nosql.insert("n", {"id": np.arange(10), "t": np.ones((10, 4), dtype=np.int64)})
    first = client.nosql.query("n", filter="id < 5", output="numpy")["data"]
    first["t"][:] = -7
    first["id"][:] = -7
    client.flush()
    for _ in range(2):  # once from the memtable's successor segment, once from the block cache
        again = client.nosql.query("n", filter="id < 5", output="numpy")["data"]
        assert again["t"].tolist() == [[1] * 4] * 5 and again["id"].tolist() == list(range(5))
        again["t"][:] = -9


def test_gets_by_key_equal_the_general_path(client: Memora) -> None:
    """``get(key=)`` and ``get(ids=)`` read row by row straight from cached blocks (``get_one``);
    they must give what the engine's batch path gives: every column kind, nulls, deleted rows,
    memtable rows, rows of a segment written before a field existed, missing and repeated ids."""
    old = [{"id": i, "n": i - 7, "tokens": list(range(i % 5)), "word": None if i % 3 else f"w{i}"}
           for i in range(0, 1500, 3)]
    client.nosql.insert("g", old)
    client.nosql.flush("g")  # a segment without the fields below
    rng = np.random.default_rng(11)
    new = [{"id": i, "n": i, "tokens": rng.integers(0, 30_000, 6).tolist(), "word": f"w{i}",
            "meta": {"k": i % 4} if i % 2 else None, "vec": rng.standard_normal(4).tolist(),
            "mask": [1] * (i % 7) + [0] * (7 - i % 7), "floats": [0.5] * (i % 3)}
           for i in range(1, 1500, 3)]
    client.nosql.insert("g", new)
    client.nosql.flush("g")
    client.nosql.insert("g", [{**new[0], "id": 5000}])  # stays in the memtable
    client.nosql.delete("g", ids=[3, 4])
    engine = client.nosql._store.engine("g")

    def general(keys: list[int], fields: list[str] | None) -> list[dict[str, Any]]:
        order = engine.schema.names if fields is None else list(dict.fromkeys([*fields, "id"]))
        return rows_from_columns(to_lists(engine.get(keys, order), order), order)

    for key in [*range(0, 1500), 5000, 5001, -1]:
        for fields in (None, ["mask", "word"], ["meta", "id", "vec"], ["tokens", "n", "word", "mask"]):
            got = client.nosql.get("g", key=key, output_fields=fields)["data"]
            assert got == general([key], fields), (key, fields)
            if got and fields:
                assert list(got[0]) == list(dict.fromkeys([*fields, "id"]))  # output order, key last if unasked
    rng = np.random.default_rng(2)
    for _ in range(30):
        keys = [*rng.integers(-3, 1503, size=40).tolist(), 5000, 7, 7]
        assert client.nosql.get("g", ids=keys)["data"] == general(keys, None)
    assert client.nosql.get("g", key=np.int64(7))["data"][0]["n"] == 7
    assert client.nosql.get("g", key=4)["data"] == []


def test_a_warm_get_is_one_compiled_call_that_keeps_its_blocks_recently_used(
        client: Memora, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a get has opened a row's blocks, the next get of that block is answered by
    ``_rows.cached_row`` alone, and it moves those blocks to the cache's recent end as the
    general road would, so a hot block is the last to be evicted."""
    client.nosql.insert("w", [{"id": i, "t": [i, i + 1, 0], "n": i * 2, "s": f"s{i}"} for i in range(3000)])
    client.nosql.flush("w")
    answered: list[list[Any] | None] = []

    def counted(*args: Any) -> list[Any] | None:
        answered.append(cached_row(*args))
        return answered[-1]

    monkeypatch.setattr(segment, "cached_row", counted)
    assert type(cached_row).__name__ == "cython_function_or_method"
    get = client.nosql.get
    assert get("w", key=5)["data"] == [{"id": 5, "t": [5, 6, 0], "n": 10, "s": "s5"}]
    assert answered == [None]  # cold: the general road opened and cached the blocks
    assert get("w", key=7, output_fields=["s", "t"])["data"] == [{"s": "s7", "t": [7, 8, 0], "id": 7}]
    assert answered[-1] == ["s7", [7, 8, 0], 7]
    items = client.nosql._store.engine("w").cache.items
    get("w", key=1500)  # block 1: opened, so now the most recent
    assert [k[2] for k in items][-1] == 1
    get("w", key=9)
    assert answered[-1] is not None and {k[2] for k in list(items)[-3:]} == {0}  # block 0 is recent again


def test_key_list_filters_read_row_by_row_and_equal_the_general_path(db: Memora) -> None:
    """``id in [...]`` and ``id == k`` are answered key by key (``get_columns``) when the keys alone
    decide the filter; rows, order, windows and every field must equal the general path's."""
    engine = db.nosql._store.engine("t")
    db.nosql.delete("t", ids=[5, 6])
    fields = ["tokens", "word", "meta", "score", "id"]
    rng = np.random.default_rng(9)
    filters = ["id == 17", "id == 5", "id in [2499, 0, 77777, 1200, 6, 1200]", "id in []",
               f"id in {rng.integers(-5, N + 5, 200).tolist()}", "id in [1, 2.0]", "id in [3, 1] or id > 2495",
               "id in [3, 1] and score > 0"]
    for text in filters:
        for limit, offset in ((None, 0), (2, 1), (0, 0), (None, 150)):
            general = to_lists(engine.query(text, fields, limit, offset), fields)
            assert engine.read(text, fields, limit, offset, "rows") == general, (text, limit, offset)
    got = db.nosql.query("t", filter="id in [7, 3, 9999]", output_fields=["count"])["data"]
    assert [r["id"] for r in got] == [3, 7]  # ascending key order, whatever order the filter lists


def test_range_reads_straight_from_blocks_equal_the_general_path(client: Memora) -> None:
    """``engine.read`` answers a pure key range from cached blocks (``_read_span``) when nothing
    needs merging; it must give exactly what the general path gives, rows and numpy alike,
    across blocks and segments, with windows, and stand aside when it cannot answer."""
    rng = np.random.default_rng(3)
    width = 12
    rows = [{"id": i, "x": int(rng.integers(-9, 9)), "f": float(i) / 3, "w": f"w{i % 5}",
             "t": rng.integers(0, 40_000, size=width).tolist()} for i in range(3000)]
    for lo, hi in ((0, 1100), (1100, 2050), (2050, 3000)):  # three segments, blocks of 1,024 rows
        client.nosql.insert("r", rows[lo:hi])
        client.nosql.flush("r")
    engine = client.nosql._store.engine("r")
    fields = ["t", "x", "f", "w", "id"]

    def both(filter_text: str, limit: int | None, offset: int, output: str) -> tuple[Any, Any]:
        batch = engine.query(filter_text, fields, limit, offset)
        general = to_numpy(batch, fields) if output == "numpy" else to_lists(batch, fields)
        return engine.read(filter_text, fields, limit, offset, output), general

    spans = [(0, 3000), (5, 60), (1000, 1100), (1020, 2100), (2999, 5000), (-50, 10), (700, 700)]
    spans += [tuple(sorted(rng.integers(-10, 3010, size=2).tolist())) for _ in range(25)]
    for lo, hi in spans:
        for limit, offset in ((None, 0), (7, 3), (2000, 1024), (0, 0)):
            for output in ("rows", "numpy"):
                fast, general = both(f"{lo} <= id < {hi}", limit, offset, output)
                assert fast.keys() == general.keys()
                for name in fields:
                    if output == "numpy":
                        assert fast[name].dtype == general[name].dtype and fast[name].shape == general[name].shape
                        np.testing.assert_array_equal(fast[name], general[name])
                    else:
                        assert fast[name] == general[name]
    assert engine._read_span((5, True, 1500, False), fields, None, 0, "numpy") is not None  # it did answer
    assert engine._read_span((5, True, 1500, False), fields, None, 0, "rows") is not None
    client.nosql.delete("r", ids=[10])
    assert engine._read_span((5, True, 1500, False), fields, None, 0, "rows") is None  # a deleted row: merge
    assert engine._read_span((11, True, 1500, False), fields, None, 0, "rows") is not None
    client.nosql.insert("r", {**rows[0], "id": 5000})
    assert engine._read_span((4000, True, 6000, False), fields, None, 0, "rows") is None  # memtable rows
    got = client.nosql.query("r", filter="4000 <= id < 6000", output_fields=["t"])["data"]
    assert [r["t"] for r in got] == [rows[0]["t"]]


def test_scans_leave_the_block_cache_alone_and_short_reads_fill_it(client: Memora) -> None:
    width = 16
    client.nosql.insert("s", [{"id": i, "t": [i % 7] * width} for i in range(4096)])
    client.nosql.flush("s")
    engine = client.nosql._store.engine("s")
    cache = engine.cache
    before = cache.used
    for lo in range(0, 4096, 1024):  # whole blocks, as a scan reads them
        got = client.nosql.query("s", filter=f"{lo} <= id < {lo + 1024}", output_fields=["t"], output="numpy")
        assert got["data"]["t"].tolist() == [[i % 7] * width for i in range(lo, lo + 1024)]
    assert cache.used == before  # a dense key column is implied, and token blocks went to scratch
    rows = client.nosql.query("s", filter="10 <= id < 60", output_fields=["t"])["data"]
    assert [r["t"] for r in rows] == [[i % 7] * width for i in range(10, 60)]
    assert cache.used > before  # a short read keeps its block for the reads after it
