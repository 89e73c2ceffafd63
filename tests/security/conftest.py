"""Figures and sizes for this folder's tests.

* At the end of the run, print the figure each test reports: a test calls pytest's
  ``record_property("figure", "...")`` before it asserts (so a failing test still
  shows what it measured), and the lines appear under a header naming the folder.
* Tests marked ``slow`` (the large sizes) run only when asked for: ``-m slow``.
"""

from __future__ import annotations

import os

import pytest

FOLDER = os.path.basename(os.path.dirname(os.path.abspath(__file__)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid = getattr(report, "nodeid", "")
            if getattr(report, "when", None) != "call" or f"/{FOLDER}/" not in f"/{nodeid}":
                continue
            lines += [(nodeid, f"{value}  [{report.outcome}]")
                      for name, value in report.user_properties if name == "figure"]
    if lines:
        terminalreporter.write_sep("-", f"figures: tests/{FOLDER}")
        for _, line in sorted(lines):
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="a large size: run it with -m slow")
    for item in items:
        if f"/{FOLDER}/" in f"/{item.nodeid}" and item.get_closest_marker("slow"):
            item.add_marker(skip)
