"""The compiled CRC-32 behind every stored checksum equals zlib's, its twin, at every length and alignment."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memora_lite import BACKEND
from memora_lite.storage import format as storage_format

NUMPY_REQUESTED = os.environ.get("MEMORA_LITE_BACKEND", "").strip().lower() == "numpy"
needs_compiled = pytest.mark.skipif(NUMPY_REQUESTED, reason="MEMORA_LITE_BACKEND=numpy: no compiled kernels")


def _compiled():  # type: ignore[no-untyped-def]
    from memora_lite.storage._checksum import crc32

    return crc32


def test_the_compiled_checksum_is_the_one_in_use() -> None:
    if NUMPY_REQUESTED:
        assert BACKEND == "numpy" and storage_format._crc32 is zlib.crc32
    else:
        assert storage_format._crc32 is _compiled()


@needs_compiled
def test_every_length_and_alignment_around_the_folding_steps_matches_zlib() -> None:
    """Lengths 0..700 cover the tables alone (< 64 bytes), one 64-byte fold, the 16-byte
    steps and every tail; offsets 0..16 every alignment of the loads."""
    crc32 = _compiled()
    data = np.random.default_rng(7).integers(0, 256, 800, dtype=np.uint8).tobytes()
    view = memoryview(data)
    for offset in range(17):
        for n in range(701):
            part = view[offset : offset + n]
            assert crc32(part) == zlib.crc32(part), (offset, n)
            assert crc32(part, 0xDEADBEEF) == zlib.crc32(part, 0xDEADBEEF), (offset, n)


@needs_compiled
@pytest.mark.parametrize("n", [1 << 16, (1 << 16) + 5, 1_000_003, 3 << 20])
def test_large_buffers_match_zlib(n: int) -> None:
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
    assert _compiled()(data) == zlib.crc32(data)  # numpy arrays too: any contiguous buffer


@needs_compiled
@settings(max_examples=300)
@given(st.binary(max_size=4096), st.integers(0, 2**32 - 1), st.integers(0, 4096))
def test_a_crc_continued_over_parts_is_the_crc_of_the_whole(data: bytes, start: int, cut: int) -> None:
    crc32 = _compiled()
    assert crc32(data, start) == zlib.crc32(data, start)
    assert crc32(data[cut:], crc32(data[:cut], start)) == zlib.crc32(data, start)


@needs_compiled
def test_what_zlib_refuses_is_refused() -> None:
    crc32 = _compiled()
    with pytest.raises(TypeError):
        crc32("text")
    with pytest.raises(ValueError, match="not C-contiguous"):
        crc32(np.arange(10)[::2])


def test_masked_checksums_are_zlibs_crc_masked() -> None:
    """docs/format.md#checksums: the stored value is zlib's CRC-32 rotated right 15 bits plus 0xA282EAD8."""
    data = bytes(range(256)) * 300
    crc = zlib.crc32(data)
    assert storage_format.masked_crc(data) == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    assert storage_format.masked_crc_of_parts([data[:1000], b"", data[1000:]]) == storage_format.masked_crc(data)
