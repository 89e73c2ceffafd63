"""What a test pays for a fresh store: memora_lite in memory against sqlite3's ``:memory:``, in the same run.

Three groups, each with its sqlite3 peer, so the report reads as ratios:

* ``fresh store``: open an in-memory client, create one collection (a declared
  schema), release it the way the ``memora`` fixture does;
* ``fresh store + one row``: the same, plus one row written and read back;
* ``suite of N tests``: pytest runs N generated tests (1,000 when measured) that
  each take the ``memora`` fixture and create a collection, against N tests that
  each open sqlite3 and create a table, and N tests that do nothing. The
  difference to the empty suite, divided by N, is the per-test cost of the fixture.

Measure::

    python -m pytest benchmarks/test_fixtures_speed.py --benchmark-enable --benchmark-only \\
        --benchmark-group-by=group --benchmark-columns=min,median,mean,rounds

With benchmarks disabled (the default ``addopts``) each body runs once, with a
100-test suite, as a smoke test.
"""

from __future__ import annotations

import sqlite3
import textwrap
from importlib import metadata

import pytest

from memora_lite import Memora
from memora_lite.models import DataType, Field
from memora_lite.testing.plugin import _release

pytest_plugins = ["pytester"]

FIELDS = [
    Field("id", DataType.INT64, is_primary=True),
    Field("text", DataType.VARCHAR, max_length=256),
    Field("input_ids", DataType.ARRAY, element_data_type=DataType.INT32, max_capacity=512),
]
ROW = {"id": 1, "text": "a question", "input_ids": [101, 2054, 2003, 102]}
SQLITE_TABLE = "create table docs (id integer primary key, text text, input_ids blob)"
PLUGIN = "memora_lite.testing.plugin"


def measuring(config: pytest.Config) -> bool:
    return not (config.getoption("benchmark_disable") and not config.getoption("benchmark_enable"))


def memora_fresh() -> None:
    client = Memora(path=":memory:")
    client.nosql.create_collection("docs", fields=FIELDS)
    _release(client)


def sqlite_fresh() -> None:
    con = sqlite3.connect(":memory:")
    con.execute(SQLITE_TABLE)
    con.close()


def memora_one_row() -> None:
    client = Memora(path=":memory:")
    client.nosql.create_collection("docs", fields=FIELDS)
    client.nosql.insert(collection_name="docs", data=ROW)
    assert client.nosql.get(collection_name="docs", ids=[1])["data"][0]["text"] == "a question"
    _release(client)


def sqlite_one_row() -> None:
    con = sqlite3.connect(":memory:")
    con.execute(SQLITE_TABLE)
    con.execute("insert into docs values (?, ?, ?)", (1, "a question", bytes(16)))
    assert con.execute("select text from docs where id = 1").fetchone()[0] == "a question"
    con.close()


@pytest.mark.benchmark(group="fresh store")
def test_memora_fresh_client_and_collection(benchmark: pytest.FixtureRequest) -> None:
    benchmark(memora_fresh)


@pytest.mark.benchmark(group="fresh store")
def test_sqlite_fresh_connection_and_table(benchmark: pytest.FixtureRequest) -> None:
    benchmark(sqlite_fresh)


@pytest.mark.benchmark(group="fresh store + one row")
def test_memora_fresh_store_one_row(benchmark: pytest.FixtureRequest) -> None:
    benchmark(memora_one_row)


@pytest.mark.benchmark(group="fresh store + one row")
def test_sqlite_fresh_store_one_row(benchmark: pytest.FixtureRequest) -> None:
    benchmark(sqlite_one_row)


SUITES = {
    "memora": """
        from memora_lite.models import DataType, Field
        FIELDS = [Field("id", DataType.INT64, is_primary=True), Field("text", DataType.VARCHAR, max_length=256)]

        @pytest.mark.parametrize("n", range({n}))
        def test_case(memora, n):
            memora.nosql.create_collection("docs", fields=FIELDS)
    """,
    "sqlite": """
        import sqlite3

        @pytest.fixture
        def db():
            con = sqlite3.connect(":memory:")
            yield con
            con.close()

        @pytest.mark.parametrize("n", range({n}))
        def test_case(db, n):
            db.execute("create table docs (id integer primary key, text text)")
    """,
    "nothing": """
        @pytest.mark.parametrize("n", range({n}))
        def test_case(n):
            pass
    """,
}


@pytest.mark.benchmark(group="suite of N tests")
@pytest.mark.parametrize("suite", list(SUITES))
def test_suite(benchmark: pytest.FixtureRequest, pytester: pytest.Pytester, request: pytest.FixtureRequest,
               suite: str) -> None:
    n = 1_000 if measuring(request.config) else 100
    pytester.makepyfile("import pytest\n" + textwrap.dedent(SUITES[suite]).replace("{n}", str(n)))
    installed = any(ep.value == PLUGIN for ep in metadata.entry_points(group="pytest11"))
    args = ["-q", "-p", "no:hypothesispytest", "-p", "no:cacheprovider",
            "-W", "ignore::pytest.PytestAssertRewriteWarning", *(() if installed else ("-p", PLUGIN))]

    def run() -> None:
        pytester.runpytest(*args).assert_outcomes(passed=n)

    benchmark.pedantic(run, rounds=3 if measuring(request.config) else 1, iterations=1)
