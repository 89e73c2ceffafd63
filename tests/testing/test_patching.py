"""memora_lite.patch(): the cloud client's imports give local clients while it is active, and nothing after."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

import memora_lite
from memora_lite import ClosedError, InvalidArgumentError, Memora, StrictModeError
from memora_lite.patching import MODULE_NAMES


def app_store_event(event_id: int, module: str = "memorapy") -> None:
    """Production code as the cloud docs write it: it builds its own client."""
    client_class = __import__(module).Memora
    client = client_class(project_id="prod", api_key="sk-live", timeout=30)
    client.nosql.insert(collection_name="events", data={"id": event_id, "kind": "signup"})
    client.close()


def test_both_spellings_share_one_store_while_active() -> None:
    with memora_lite.patch() as p:
        app_store_event(1, "memorapy")
        app_store_event(2, "memoradb")
        from memoradb import Memora as Cloud

        client = Cloud(project_id="prod")
        assert isinstance(client, Memora)
        assert [r["id"] for r in client.nosql.query(collection_name="events")["data"]] == [1, 2]
        assert p.client("prod").nosql.has_collection("events")
        assert not p.client("other").nosql.has_collection("events")  # projects stay apart


def test_the_cloud_modules_go_away_and_state_resets_when_the_patch_ends() -> None:
    with memora_lite.patch():
        app_store_event(1)
        from memorapy import Memora as Cloud

        kept = Cloud(project_id="prod")
    assert all(name not in sys.modules for name in MODULE_NAMES)
    with pytest.raises(ImportError):
        __import__("memorapy")
    with pytest.raises(ClosedError, match="has ended"):
        kept.nosql.list_collections()
    with memora_lite.patch() as p:
        assert p.client("prod").nosql.list_collections() == []


def test_as_a_decorator_each_call_starts_empty() -> None:
    @memora_lite.patch()
    def count_after_one_event() -> int:
        app_store_event(1)
        from memorapy import Memora as Cloud

        client = Cloud(project_id="prod")
        return int(client.nosql.query(collection_name="events", output_fields=["count(*)"])["data"][0]["count(*)"])

    assert count_after_one_event.__name__ == "count_after_one_event"
    assert count_after_one_event() == count_after_one_event() == 1


def test_closing_one_handle_leaves_the_shared_store_open() -> None:
    with memora_lite.patch() as p:
        from memorapy import Memora as Cloud

        first, second = Cloud(project_id="prod"), Cloud(project_id="prod")
        first.nosql.insert(collection_name="t", data={"id": 1})
        first.close()
        with pytest.raises(ClosedError):
            first.nosql.list_collections()
        assert second.nosql.list_collections() == ["t"]
        with Cloud(project_id="prod") as third:
            assert third.nosql.get(collection_name="t", ids=[1])["data"] == [{"id": 1}]
        assert p.client("prod").nosql.list_collections() == ["t"]


def test_an_already_imported_cloud_module_has_its_class_swapped_and_restored() -> None:
    real = types.ModuleType("memorapy")
    real.Memora = object  # type: ignore[attr-defined]
    sys.modules["memorapy"] = real
    try:
        with memora_lite.patch():
            import memorapy

            assert memorapy is real and issubclass(real.Memora, Memora)  # type: ignore[attr-defined]
            app_store_event(5)
        assert real.Memora is object  # type: ignore[attr-defined]
        assert sys.modules["memorapy"] is real
    finally:
        del sys.modules["memorapy"]


def test_patches_nest_and_unwind_in_order() -> None:
    with memora_lite.patch() as outer:
        app_store_event(1)
        with memora_lite.patch() as inner:
            app_store_event(2)
            assert inner.client("prod").nosql.get(collection_name="events", ids=[1, 2])["data"][0]["id"] == 2
        from memorapy import Memora as Cloud

        assert Cloud(project_id="prod").nosql.get(collection_name="events", ids=[1, 2])["data"] == [
            {"id": 1, "kind": "signup"}]
        assert outer.active and not inner.active


def test_options_reach_every_client_and_are_checked_up_front(tmp_path: Path) -> None:
    with memora_lite.patch(strict=True):
        from memorapy import Memora as Cloud

        client = Cloud(project_id="prod")
        client.nosql.insert(collection_name="t", data={"id": 1})
        with pytest.raises(StrictModeError):
            client.nosql.query(collection_name="t")  # an empty filter needs a limit in the cloud
    with memora_lite.patch(path=tmp_path / "store"):
        app_store_event(9)
    with Memora(project_id="prod", path=tmp_path / "store") as client:
        assert client.nosql.get(collection_name="events", ids=[9])["data"][0]["kind"] == "signup"
    with pytest.raises(InvalidArgumentError, match="flush_byte"):
        memora_lite.patch(flush_byte=1)


def test_a_patch_is_entered_once_and_a_client_needs_it_active() -> None:
    p = memora_lite.patch()
    with pytest.raises(InvalidArgumentError, match="not active"):
        p.client()
    with p, pytest.raises(InvalidArgumentError, match="already active"):
        p.__enter__()
    assert not p.active
