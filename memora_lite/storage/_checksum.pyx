# cython: language_level=3
"""Compiled CRC-32 for every checksum the store writes and checks (``csrc/mlite_crc32.c``).

``crc32(data, crc)`` equals ``zlib.crc32(data, crc)``, its twin, for any contiguous
buffer; :func:`memora_lite.storage.format.masked_crc` picks between them. The kernel folds
64 bytes per step with carry-less multiplies where the CPU has them (x86-64: Intel since
2010, AMD since 2011): 2.3-2.8x zlib 1.2.13's ``crc32`` on what a store checksums
(``benchmarks/test_checksum_speed.py``), which matters because every log record, segment
block and footer is checksummed when written and again when read.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint8_t, uint32_t

cdef extern from "mlite_crc32.h":
    uint32_t mlite_crc32(uint32_t crc, const uint8_t *data, size_t n) nogil

# Releasing the GIL pays only when another thread can run meanwhile: from 64 KiB (~6 us of CRC).
cdef Py_ssize_t NOGIL_BYTES = 1 << 16


def crc32(object data, uint32_t crc=0) -> int:
    """CRC-32 of the bytes of ``data`` (any C-contiguous buffer), continuing ``crc``."""
    cdef Py_buffer view
    cdef uint32_t out
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        if view.len >= NOGIL_BYTES:
            with nogil:
                out = mlite_crc32(crc, <const uint8_t *>view.buf, <size_t>view.len)
        else:
            out = mlite_crc32(crc, <const uint8_t *>view.buf, <size_t>view.len)
    finally:
        PyBuffer_Release(&view)
    return out
