"""Fixtures shared by every test folder."""

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
