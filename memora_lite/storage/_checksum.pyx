# cython: language_level=3
"""Compiled CRC-32 for every checksum the store writes and checks (``csrc/mlite_crc32.c``).

``crc32(data, crc)`` equals ``zlib.crc32(data, crc)``, its twin, for any contiguous
buffer; :func:`memora_lite.storage.format.masked_crc` picks between them. The kernel folds
64 bytes per step with carry-less multiplies where the CPU has them (every x86-64 since
2010): ~4.5x zlib 1.2's speed, which matters because every log record, segment block and
footer is checksummed when written and again when read.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint8_t, uint32_t

cdef extern from "mlite_crc32.h":
    uint32_t mlite_crc32(uint32_t crc, const uint8_t *data, size_t n) nogil

# Below this many bytes releasing the GIL costs more than the checksum (~6 us at 64 KiB).
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
