"""Prints, at the end of the run, the figure each test in this folder reports.

A test reports its figure with pytest's ``record_property("figure", "...")`` (before
it asserts, so a failing test still shows what it measured); this hook prints those
lines under a header naming the folder.
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
