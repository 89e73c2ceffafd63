"""Fixtures and hooks shared by every test folder.

* ``client`` runs an API test on an in-memory and an on-disk store.
* Tests marked ``slow`` (the large sizes, the real model) run only when asked for: ``-m slow``.
* At the end of the run, the figure each test reports is printed, grouped by folder: a
  test calls ``record_property("figure", "...")`` before it asserts, so a failing test
  still shows what it measured.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from memora_lite import Memora


@pytest.fixture(params=["memory", "disk"])
def client(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[Memora]:
    """A fresh client, once in memory and once on disk: every API test runs on both."""
    path = ":memory:" if request.param == "memory" else os.path.join(tmp_path, "store")
    c = Memora(path=path, flush_bytes=64 << 10)  # small memtable: reads cross segments and memtable
    yield c
    c.close()


@pytest.fixture
def disk_client(tmp_path: os.PathLike[str]) -> Iterator[Memora]:
    c = Memora(path=os.path.join(tmp_path, "store"), flush_bytes=64 << 10)
    yield c
    c.close()


@pytest.fixture
def reopen(tmp_path: os.PathLike[str]) -> Callable[[Memora], Memora]:
    """Close a disk client and open its store again."""

    def _reopen(c: Memora) -> Memora:
        c.close()
        return Memora(path=c.path, flush_bytes=64 << 10)

    return _reopen


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="a large size: run it with -m slow")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    by_folder: dict[str, list[tuple[str, str]]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            folder = "/".join(report.nodeid.split("/")[:2])
            by_folder.setdefault(folder, []).extend(
                (report.nodeid, f"{value}  [{report.outcome}]")
                for name, value in report.user_properties if name == "figure"
            )
    for folder, lines in sorted(by_folder.items()):
        if lines:
            terminalreporter.write_sep("-", f"figures: {folder}")
            for _, line in sorted(lines):
                terminalreporter.write_line(line)
