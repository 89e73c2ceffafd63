"""The memora pytest plugin, exercised the way users meet it: pytest runs a small test file that uses it."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

import memora_lite.testing.plugin  # noqa: F401  (loaded once here, so each in-process run below reuses it)

pytest_plugins = ["pytester"]

PLUGIN = "memora_lite.testing.plugin"


def _installed() -> bool:
    return any(ep.value == PLUGIN for ep in metadata.entry_points(group="pytest11"))


# From an installed package the pytest11 entry point loads the plugin; from a source checkout, -p does.
PLUGIN_ARGS = () if _installed() else ("-p", PLUGIN)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # Warnings are errors, except pytest's note that the plugin, already imported by this
    # process, cannot have its asserts rewritten (it asserts nothing). Hypothesis' plugin,
    # whose session summary takes seconds, has no business in these runs.
    return pytester.runpytest("--strict-markers", "-W", "error", "-W", "ignore::pytest.PytestAssertRewriteWarning",
                              "-p", "no:hypothesispytest", *PLUGIN_ARGS, *args)


def test_each_test_gets_a_fresh_in_memory_client_closed_afterwards(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        from memora_lite import ClosedError, Memora

        seen = []

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_isolated(memora, n):
            assert isinstance(memora, Memora) and memora.in_memory
            memora.nosql.insert(collection_name="docs", data={"id": 1, "n": n})
            assert memora.nosql.query(collection_name="docs", output_fields=["count(*)"])["data"][0]["count(*)"] == 1
            seen.append(memora)

        def test_clients_of_earlier_tests_are_closed():
            assert len(set(map(id, seen))) == 3
            for client in seen:
                with pytest.raises(ClosedError):
                    client.nosql.list_collections()
    """)
    run(pytester).assert_outcomes(passed=4)


def test_marker_path_tmp_stores_in_tmp_path_and_reopens(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import os
        import pytest

        @pytest.mark.memora(path="tmp")
        def test_on_disk(memora, memora_factory, tmp_path):
            assert not memora.in_memory
            assert os.path.commonpath([memora.path, tmp_path]) == str(tmp_path)
            memora.nosql.insert(collection_name="docs", data={"id": 1, "text": "kept"})
            memora.close()
            again = memora_factory(path="tmp")
            assert again.nosql.get(collection_name="docs", ids=[1])["data"][0]["text"] == "kept"
    """)
    run(pytester).assert_outcomes(passed=1)


def test_indirect_parameter_runs_one_test_on_memory_and_on_disk(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.parametrize("memora", ["memory", "tmp", {"path": "tmp", "strict": True}], indirect=True)
        def test_both(memora):
            memora.nosql.insert(collection_name="docs", data=[{"id": i} for i in range(3)])
            assert len(memora.nosql.query(collection_name="docs", filter="id >= 0", limit=10)["data"]) == 3
    """)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_both?memory? PASSED*", "*test_both?tmp? PASSED*"])


def test_marker_seeds_collections_from_rows_and_files(pytester: pytest.Pytester) -> None:
    data = pytester.mkdir("data")
    (data / "docs.jsonl").write_text('{"id": 1, "text": "a"}\n{"id": 2, "text": "b"}\n')
    (data / "tags.json").write_text('[{"id": 1, "tags": [3, 4]}]')
    pytester.makepyfile("""
        import pytest

        @pytest.mark.memora(seed={"docs": "data/docs.jsonl", "tags": "data/tags.json",
                                  "rows": [{"id": 5, "x": 1.5}], "cols": {"id": [1, 2], "y": [True, False]}})
        def test_seeded(memora):
            q = memora.nosql.query
            assert [r["text"] for r in q(collection_name="docs")["data"]] == ["a", "b"]
            assert q(collection_name="tags")["data"][0]["tags"] == [3, 4]
            assert q(collection_name="rows")["data"] == [{"id": 5, "x": 1.5}]
            assert [r["y"] for r in q(collection_name="cols")["data"]] == [True, False]
    """)
    run(pytester).assert_outcomes(passed=1)


def test_marker_strict_makes_cloud_limits_fail_locally(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        from memora_lite import StrictModeError

        @pytest.mark.memora(strict=True)
        def test_window(memora):
            memora.nosql.insert(collection_name="docs", data={"id": 1})
            with pytest.raises(StrictModeError):
                memora.nosql.query(collection_name="docs", filter="id > 0", offset=16_000, limit=1_000)

        def test_default_is_lenient(memora):
            memora.nosql.insert(collection_name="docs", data={"id": 1})
            assert memora.nosql.query(collection_name="docs", offset=16_000, limit=1_000)["data"] == []
    """)
    run(pytester).assert_outcomes(passed=2)


def test_memora_patch_fixture_runs_code_that_builds_its_own_cloud_client(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(app="""
        def record(event_id):
            from memorapy import Memora
            client = Memora(project_id="prod", api_key="sk-live")
            client.nosql.insert(collection_name="events", data={"id": event_id, "kind": "signup"})
    """)
    pytester.makepyfile("""
        import app

        def test_record(memora_patch):
            app.record(7)
            rows = memora_patch.client("prod").nosql.query(collection_name="events", filter="id == 7")["data"]
            assert rows == [{"id": 7, "kind": "signup"}]

        def test_state_does_not_leak_between_tests(memora_patch):
            assert not memora_patch.client("prod").nosql.has_collection("events")
    """)
    run(pytester).assert_outcomes(passed=2)


def test_bad_marker_options_fail_the_test_with_the_known_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.memora(flush_byte=10)
        def test_typo(memora):
            pass
    """)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown option(s) flush_byte*flush_bytes*"])


def test_a_suite_that_uses_no_fixture_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_plain():
            assert 1 + 1 == 2
    """)
    run(pytester).assert_outcomes(passed=1)
    assert not (pytester.path / "memora_data").exists()


def test_the_plugin_is_declared_as_a_pytest11_entry_point() -> None:
    if sys.version_info < (3, 11):
        pytest.skip("tomllib arrived in Python 3.11")
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    config = tomllib.loads(pyproject.read_text())
    assert config["project"]["entry-points"]["pytest11"] == {"memora": PLUGIN}
    assert config["project"]["scripts"]["memora-lite"] == "memora_lite.cli:main"
