"""Clients across processes: pickling, forked children, and readers that follow a live writer."""

from __future__ import annotations

import os
import pickle

import pytest

from memora_lite import InvalidArgumentError, Memora, ReadOnlyError


def test_a_client_pickles_as_a_read_only_client_on_the_same_store(tmp_path) -> None:
    path = os.path.join(tmp_path, "s")
    with Memora(path=path, project_id="p") as writer:
        writer.nosql.insert("c", [{"id": i} for i in range(10)])
        reader = pickle.loads(pickle.dumps(writer))
        assert reader.nosql.query("c", output_fields=["count(*)"])["data"] == [{"count(*)": 10}]
        with pytest.raises(ReadOnlyError, match="read-only"):
            reader.nosql.insert("c", {"id": 99})
        reader.close()
    with pytest.raises(InvalidArgumentError, match="cannot be pickled"):
        pickle.dumps(Memora(path=":memory:"))


def test_a_reader_sees_a_snapshot_that_moves_forward_through_appends_flushes_and_compaction(tmp_path) -> None:
    path = os.path.join(tmp_path, "s")
    writer = Memora(path=path, flush_bytes=4 << 10)
    writer.nosql.insert("c", {"id": 0, "t": [0]})
    reader = Memora(path=path, read_only=True)
    seen = 1
    for step in range(1, 60):
        writer.nosql.insert("c", {"id": step, "t": [step] * 20})
        if step % 17 == 0:
            writer.nosql.compact("c")
        rows = reader.nosql.query("c")["data"]
        assert [r["id"] for r in rows] == list(range(step + 1))
        assert len(rows) >= seen
        seen = len(rows)
    writer.nosql.delete("c", ids=[1, 2])
    assert reader.nosql.get("c", ids=[1, 2, 3])["data"] == [{"id": 3, "t": [3] * 20}]
    reader.close()
    writer.close()


def test_a_forked_child_reads_but_cannot_write_through_the_parents_client(tmp_path) -> None:
    path = os.path.join(tmp_path, "s")
    with Memora(path=path) as c:
        c.nosql.insert("c", [{"id": i} for i in range(5)])
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                assert len(c.nosql.query("c")["data"]) == 5
                try:
                    c.nosql.insert("c", {"id": 100})
                    code = 1
                except ReadOnlyError as exc:
                    code = 0 if str(os.getppid()) in str(exc) else 2
                c.close()  # must not flush or unlock on the parent's behalf
            except BaseException:
                code = 3
            os.write(write, bytes([code]))
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(read, 1) == b"\x00"
        c.nosql.insert("c", {"id": 6})  # the parent still writes, and still holds the lock
        assert len(c.nosql.query("c")["data"]) == 6


def test_a_reader_is_told_when_the_writer_drops_the_collection(tmp_path) -> None:
    from memora_lite import CollectionNotFoundError

    path = os.path.join(tmp_path, "s")
    with Memora(path=path) as writer:
        writer.nosql.insert("c", {"id": 1})
        writer.nosql.insert("late", {"id": 1})
        with Memora(path=path, read_only=True) as reader:
            assert reader.nosql.get("c", key=1)["data"] == [{"id": 1}]
            writer.nosql.drop_collection("c")
            with pytest.raises(CollectionNotFoundError, match="dropped"):
                reader.nosql.get("c", key=1)
            assert reader.nosql.list_collections() == ["late"]
