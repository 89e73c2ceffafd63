"""The ``memora`` pytest plugin: a fresh, isolated memora_lite client per test, in one line.

Installed with memora_lite and registered through the ``pytest11`` entry point, so
there is nothing to configure: it declares its marker and fixtures, and does
nothing until a test asks for one. (Without the entry point, e.g. from a source
checkout, enable it with ``-p memora_lite.testing.plugin``.)

Fixtures
--------
``memora``
    A new client for this test, closed afterwards. In memory by default, so tests
    never see each other's rows.
``memora_factory``
    ``memora_factory(path=":memory:", seed=None, **options)`` opens more clients;
    each is closed after the test. ``path="tmp"`` always means the same folder
    inside this test's ``tmp_path``, so a test can close a client and reopen it.
``memora_patch``
    :func:`memora_lite.patch` active for the test: code that builds its own cloud
    client (``from memorapy import Memora``) runs on a local store.

Marker
------
``@pytest.mark.memora(path="tmp", strict=True, seed={...}, project_id=..., **options)``
configures ``memora`` (and ``memora_patch``, which takes ``path``, ``strict`` and
the options). ``path``: ``":memory:"`` (default, also ``"memory"``), ``"tmp"`` (a
folder in ``tmp_path``, also ``"disk"``) or a folder of your own. ``seed`` maps
collection names to rows, a dict of columns, or a ``.json``/``.jsonl``/``.parquet``
file (a relative path is taken from the test file's folder). The same keywords
work as an indirect parameter::

    @pytest.mark.parametrize("memora", ["memory", "tmp"], indirect=True)
    def test_both_stores(memora): ...

Example test file::

    import pytest

    def test_insert_then_query(memora):
        memora.nosql.insert(collection_name="docs", data={"id": 1, "text": "hi"})
        assert memora.nosql.get(collection_name="docs", ids=[1])["data"][0]["text"] == "hi"

    @pytest.mark.memora(path="tmp", seed={"docs": "data/docs.jsonl"}, strict=True)
    def test_on_disk_with_seed_rows(memora):
        assert memora.nosql.query(collection_name="docs", filter="id >= 0", limit=10)["data"]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from memora_lite.client import Memora
from memora_lite.errors import InvalidArgumentError
from memora_lite.patching import Patch
from memora_lite.storage.store import MEMORY
from memora_lite.testing import seeding

MARKER = "memora"
MEMORY_NAMES = (None, MEMORY, "memory")
TMP_NAMES = ("tmp", "disk")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(path=':memory:', strict=False, seed=None, project_id=None, **options): configure the memora "
        "fixture: path 'tmp' stores in tmp_path; seed maps collections to rows or a .json/.jsonl/.parquet file",
    )


def _settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The fixture's keywords: the marker's, then the indirect parameter's (a path, or a dict)."""
    out: dict[str, Any] = {}
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        if len(marker.args) > 1:
            raise InvalidArgumentError(f"@pytest.mark.{MARKER} takes at most one positional argument (the path)")
        out.update({"path": marker.args[0]} if marker.args else {}, **marker.kwargs)
    param = getattr(request, "param", None)
    if isinstance(param, dict):
        out.update(param)
    elif param is not None:
        out["path"] = param
    return out


@pytest.fixture
def memora_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., Memora]]:
    """Open memora_lite clients for this test; each is closed when the test ends."""
    opened: list[Memora] = []

    def open_client(path: str | os.PathLike[str] | None = MEMORY, **options: Any) -> Memora:
        client = _open(request, path, **options)
        opened.append(client)
        return client

    yield open_client
    for client in reversed(opened):
        _release(client)


@pytest.fixture
def memora(request: pytest.FixtureRequest) -> Iterator[Memora]:
    """A fresh memora_lite client for this test (in memory unless the ``memora`` marker says otherwise)."""
    client = _open(request, **_settings(request))
    yield client
    _release(client)


@pytest.fixture
def memora_patch(request: pytest.FixtureRequest) -> Iterator[Patch]:
    """:func:`memora_lite.patch` active for this test; ``memora_patch.client(project_id)`` opens a client."""
    options = _settings(request)
    options.pop("seed", None)
    options.pop("project_id", None)
    path = options.pop("path", None)
    with Patch(None if path in MEMORY_NAMES else _resolve(request, path), **options) as active:
        yield active


def _open(request: pytest.FixtureRequest, path: str | os.PathLike[str] | None = MEMORY, *,
          seed: dict[str, Any] | None = None, **options: Any) -> Memora:
    client = Memora(path=_resolve(request, path), **options)
    try:
        for collection_name, source in (seed or {}).items():
            seeding.seed(client, collection_name, source, base=request.path.parent)
    except BaseException:
        _release(client)
        raise
    return client


def _resolve(request: pytest.FixtureRequest, path: str | os.PathLike[str] | None) -> str | os.PathLike[str]:
    if path in MEMORY_NAMES:
        return MEMORY
    if path in TMP_NAMES:
        return os.path.join(request.getfixturevalue("tmp_path"), "memora")
    assert path is not None
    return path


def _release(client: Memora) -> None:
    store = client._store
    if client.in_memory and store is not None:
        # An in-memory store vanishes on close, so turning its buffered rows into a
        # segment first (what close() does for a folder) would be wasted work.
        for engine in store.engines.values():
            engine.close(flush=False)
    client.close()
