"""The write-ahead log's framing: round trips, torn tails, damage."""

from __future__ import annotations

import pytest

from memora_lite import CorruptionError
from memora_lite.storage.format import WAL_MAGIC, WAL_RECORD_HEADER
from memora_lite.storage.fs import MemoryFileSystem
from memora_lite.storage.wal import WalWriter, frame, read_records


def _log(*payloads: bytes) -> bytes:
    return WAL_MAGIC + b"".join(frame(1, p) for p in payloads)


def test_records_round_trip_in_order() -> None:
    fs = MemoryFileSystem()
    fs.makedirs("/c")
    log = WalWriter.create(fs, "/c/w.log")
    for i in range(20):
        log.append(frame(1 + i % 3, bytes([i]) * i))
    records, valid = read_records(fs.read("/c/w.log"), "w.log")
    assert [(t, bytes(p)) for t, p in records] == [(1 + i % 3, bytes([i]) * i) for i in range(20)]
    assert valid == log.size


def test_every_truncation_keeps_the_complete_records_before_it() -> None:
    payloads = [b"alpha", b"", b"gamma" * 10]
    data = _log(*payloads)
    ends = [len(WAL_MAGIC)]
    for p in payloads:
        ends.append(ends[-1] + WAL_RECORD_HEADER.size + len(p))
    for cut in range(len(data) + 1):
        records, valid = read_records(data[:cut], "w.log")
        complete = [e for e in ends[1:] if e <= cut]
        assert len(records) == len(complete)
        if complete:
            assert valid == complete[-1]
        else:
            assert valid == (len(WAL_MAGIC) if cut >= len(WAL_MAGIC) else 0)


def test_reopen_cuts_the_torn_tail_so_new_records_follow_valid_ones() -> None:
    fs = MemoryFileSystem()
    fs.makedirs("/c")
    fs.write_file("/c/w.log", _log(b"one", b"two")[:-1])
    _records, valid = read_records(fs.read("/c/w.log"), "w.log")
    log = WalWriter.reopen(fs, "/c/w.log", valid)
    log.append(frame(1, b"three"))
    assert [bytes(p) for _, p in read_records(fs.read("/c/w.log"), "w.log")[0]] == [b"one", b"three"]


def test_a_flipped_bit_in_a_complete_record_is_corruption() -> None:
    data = bytearray(_log(b"first", b"second"))
    data[len(WAL_MAGIC) + WAL_RECORD_HEADER.size] ^= 1
    with pytest.raises(CorruptionError, match="offset 8"):
        read_records(bytes(data), "w.log")


def test_zeros_or_garbage_after_the_records_are_a_torn_tail() -> None:
    assert len(read_records(_log(b"a") + b"\x00" * 100, "w")[0]) == 1
    assert len(read_records(_log(b"a") + bytes(range(200, 256)) * 3, "w")[0]) == 1


@pytest.mark.parametrize("offset", range(WAL_RECORD_HEADER.size + 4))
def test_a_damaged_last_record_that_is_still_whole_is_corruption(offset: int) -> None:
    data = bytearray(_log(b"first", b"last"))
    last = len(data) - WAL_RECORD_HEADER.size - 4
    data[last + offset] ^= 0x10  # the header (length, type, CRCs) or the payload of the last record
    with pytest.raises(CorruptionError, match=f"offset {last}"):
        read_records(bytes(data), "w.log")


def test_bad_magic_is_corruption_but_a_partial_magic_is_an_empty_log() -> None:
    with pytest.raises(CorruptionError, match="bad magic"):
        read_records(b"NOTAWAL!" + b"\x00" * 10, "w")
    assert read_records(WAL_MAGIC[:3], "w") == ([], 0)


def test_the_worked_example_in_docs_format_md_is_what_we_write() -> None:
    from memora_lite.schema import Schema

    schema = Schema.infer({"id": [7], "tokens": [[101, 102]]}, "id")
    _, _, record, _ = schema.row_encoder.encode({"id": 7, "tokens": [101, 102]}, 4)
    assert record.hex(" ") == "06 00 00 00 04 00 00 00 50 16 19 1b 9b 8f 46 5e 92 07 c4 02 65 66"
    assert record == frame(4, b"\x92\x07\xc4\x02\x65\x66")
