"""Tests marked ``slow`` in this folder (the example end to end, on the real packaged model) run with ``-m slow``."""

from __future__ import annotations

import os

import pytest

FOLDER = os.path.basename(os.path.dirname(os.path.abspath(__file__)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "slow" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="loads the real model: run it with -m slow")
    for item in items:
        if f"/{FOLDER}/" in f"/{item.nodeid}" and item.get_closest_marker("slow"):
            item.add_marker(skip)
