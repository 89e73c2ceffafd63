"""The ``client`` fixture of tests/interop: the every-type collection, in memory and on disk."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from every_type import FIELDS, ROWS, make_row

from memora_lite import Memora


@pytest.fixture(params=["memory", "disk"])
def client(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[Memora]:
    path = ":memory:" if request.param == "memory" else os.path.join(tmp_path, "store")
    c = Memora(path=path, flush_bytes=4 << 10)  # small memtable: rows in segments and in the log
    c.nosql.create_collection("every", fields=FIELDS)
    for start in range(0, ROWS, 10):
        c.nosql.insert(collection_name="every", data=[make_row(i) for i in range(start, min(start + 10, ROWS))])
    yield c
    c.close()
