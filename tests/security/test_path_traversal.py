"""Collection and project names cannot reach outside the store folder.

A list of hostile names goes through every call that takes a collection name, and
through ``project_id``; a hypothesis property does the same with arbitrary text. The
test folder is walked before and after: no file or folder may appear anywhere but
inside the store folder. The store sits three folders deep in the walked tree, so
``../``, ``../../`` and absolute paths into the tree would all be seen. A name is
either refused with InvalidNameError or it is a plain name (the documented pattern)
and works, its files in ``<store>/<project>/<name>/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memora_lite import InvalidNameError, Memora, MemoraError

COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")  # and not LOCK, in any case: the writer lock file
PROJECT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def hostile(base: str) -> list[Any]:
    """Names that try to leave the store; ``base`` is the walked folder (for absolute paths into it)."""
    return [
        "..", ".", "../x", "../../x", "../../../x", "x/../../y", "/x", f"{base}/abs", f"{base}/../abs2", "a/b",
        "a\\b", "..\\x", "x\x00y", "\x00", "", " ", "x ", "~", "~root", "$HOME", "${HOME}", "%2e%2e%2fx", "..%2fx",
        "\u2025", "\uff0e\uff0e", "\u2024\u2024/x", "x\n", "x\ty", "é", "a.b", "-rf", ".trash-c", ".hidden", "x" * 256,
        "c:" , "C:\\x", "con", "x/", "/", "//", "./x", "x/.", "0abc",
        b"x", b"../x", 7, None, os.path.join(base, "p"),
    ]


def _tree(root: str) -> set[str]:
    found = set()
    for folder, dirs, files in os.walk(root):
        found.update(os.path.join(folder, n) for n in dirs + files)
    return found


def _outside(before: set[str], after: set[str], store: str) -> list[str]:
    return sorted(p for p in after - before if not (p == store or p.startswith(store + os.sep)))


CALLS: dict[str, Callable[[Any, Any], Any]] = {
    "insert": lambda db, name: db.insert(name, {"id": 1, "v": "x"}),
    "upsert": lambda db, name: db.upsert(name, [{"id": 1, "v": "x"}]),
    "create_collection": lambda db, name: db.create_collection(name),
    "query": lambda db, name: db.query(name, filter="id > 0"),
    "get": lambda db, name: db.get(name, key=1),
    "delete": lambda db, name: db.delete(name, ids=[1]),
    "describe_collection": lambda db, name: db.describe_collection(name),
    "flush": lambda db, name: db.flush(name),
    "compact": lambda db, name: db.compact(name),
    "drop_collection": lambda db, name: db.drop_collection(name),
    "has_collection": lambda db, name: db.has_collection(name),
}


def plain_collection(name: Any) -> bool:
    """A name docs/impl.md#files admits."""
    return isinstance(name, str) and COLLECTION.fullmatch(name) is not None and name.upper() != "LOCK"


def _try_every_call(db: Any, name: Any) -> list[str]:
    """Each call with ``name``: the outcomes that are wrong (neither a refusal nor a plain name working)."""
    wrong = []
    plain = plain_collection(name)
    for call, run in CALLS.items():
        if name is None and call == "flush":
            continue  # flush(None) flushes every collection, as documented
        try:
            result = run(db, name)
        except InvalidNameError:
            if plain:
                wrong.append(f"{call}({name!r}) refused a plain name")
            continue
        except MemoraError:
            continue  # e.g. CollectionNotFoundError: the name was checked and looked up
        except Exception as exc:
            wrong.append(f"{call}({name!r}) raised {type(exc).__name__}: {exc}")
            continue
        if not plain and not (call == "has_collection" and result is False):
            wrong.append(f"{call}({name!r}) accepted a name outside the pattern")
    return wrong


def test_hostile_collection_and_project_names_create_nothing_outside_the_store(
    tmp_path: os.PathLike[str], record_property: Callable[[str, object], None]
) -> None:
    base = os.path.join(tmp_path)
    store = os.path.join(base, "a", "b", "store")
    names = [*hostile(base), "LOCK", "lock", "MANIFEST", "default", "_", "x" * 255]
    os.makedirs(os.path.dirname(store))
    before = _tree(base)
    wrong = []
    with Memora(path=store) as client:
        for name in names:
            wrong += _try_every_call(client.nosql, name)
    for project in [*names, "..", "...", "a..b", "x" * 129]:
        plain = project is None or (isinstance(project, str) and PROJECT.fullmatch(project) is not None)
        try:
            Memora(path=store, project_id=project).close()
            if not plain:
                wrong.append(f"project_id={project!r} accepted")
        except InvalidNameError:
            if plain:
                wrong.append(f"project_id={project!r} refused a plain name")
        except Exception as exc:
            wrong.append(f"project_id={project!r} raised {type(exc).__name__}: {exc}")
    outside = _outside(before, _tree(base), store)
    record_property("figure", f"path traversal: {len(names)} collection names x {len(CALLS)} calls and "
                              f"{len(names) + 4} project ids: {len(outside)} files created outside the store, "
                              f"{len(wrong)} wrong outcomes")
    assert outside == []
    assert wrong == [], "\n".join(wrong)


PIECES = st.sampled_from(["..", ".", "/", "\\", "\x00", "~", "%2e", "%2f", "x", "_", "-", " ", "\n", "é", "LOCK",
                          "Lock", ".trash-", "MANIFEST", "wal-000001.log", "seg-000001.mls", "\uff0e", "\u2215"])
NAMES = st.one_of(st.text(max_size=30), st.lists(PIECES, max_size=8).map("".join),
                  st.from_regex(COLLECTION, fullmatch=True).map(lambda s: s[:60]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(collection=NAMES, project=NAMES)
def test_any_text_as_a_name_is_refused_or_stays_inside_the_store(
    tmp_path_factory: pytest.TempPathFactory, collection: str, project: str
) -> None:
    base = str(tmp_path_factory.mktemp("names"))
    store = os.path.join(base, "a", "b", "store")
    os.makedirs(os.path.dirname(store))
    before = _tree(base)
    wrong: list[str] = []
    try:
        client = Memora(path=store, project_id=project)
    except InvalidNameError:
        assert PROJECT.fullmatch(project) is None, f"project_id={project!r} refused a plain name"
        client, project = Memora(path=store), "default"
    with client:
        wrong += _try_every_call(client.nosql, collection)
        if plain_collection(collection):
            client.nosql.insert(collection, {"id": 5})
            folder = os.path.join(store, project, collection)
            assert os.path.isfile(os.path.join(folder, "MANIFEST")), folder
    assert _outside(before, _tree(base), store) == []
    assert wrong == []


def test_a_collection_named_like_the_lock_file_works_or_is_refused_as_a_name(tmp_path: os.PathLike[str]) -> None:
    """``LOCK`` fits the collection pattern, but ``<store>/<project>/LOCK`` is the writer lock file."""
    with Memora(path=os.path.join(tmp_path, "s")) as client:
        try:
            client.nosql.insert("LOCK", {"id": 1})
        except InvalidNameError:
            return
        assert client.nosql.get("LOCK", key=1)["data"] == [{"id": 1}]


def test_a_collection_with_the_longest_allowed_name_can_be_dropped(tmp_path: os.PathLike[str]) -> None:
    """255 characters is allowed, and a drop must not make a longer name (``.trash-<name>`` would be 262)."""
    name = "x" * 255
    with Memora(path=os.path.join(tmp_path, "s")) as client:
        client.nosql.insert(name, {"id": 1})
        client.nosql.drop_collection(name)
        assert not client.nosql.has_collection(name)


@pytest.mark.parametrize("name", [["x"], {"x": 1}, bytearray(b"x")])
def test_an_unhashable_collection_name_is_an_invalid_name_error(tmp_path: os.PathLike[str], name: Any) -> None:
    with Memora(path=os.path.join(tmp_path, "s")) as client:
        client.nosql.insert("c", {"id": 1})
        for call in CALLS.values():
            with pytest.raises(InvalidNameError):
                call(client.nosql, name)
