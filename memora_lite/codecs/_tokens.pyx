# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled token kernels: thin wrappers of ``csrc/mlite_tokens.c``, plus list conversion.

Every function matches its namesake in :mod:`memora_lite.codecs.tokens_numpy`
(signature, results, status codes); callers validate and allocate, these
functions release the GIL and compute. Layout: ``docs/format.md#tokens1``.
"""

cimport cython
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLongLong
from cpython.number cimport PyNumber_Index
from cpython.ref cimport Py_INCREF
from libc.stdint cimport int64_t, uint8_t, uint64_t

import numpy as np


cdef extern from "mlite_tokens.h" nogil:
    ctypedef struct mlite_tokens_header:
        uint64_t n_rows
        uint64_t n_kept
        uint64_t n_values
        int64_t base
        unsigned w
        unsigned lw

    uint64_t mlite_tokens_split(const int64_t *values, const int64_t *offsets, size_t n_rows,
                                int64_t *kept)
    void mlite_tokens_pack(const int64_t *values, const int64_t *offsets, const int64_t *kept,
                           const mlite_tokens_header *h, uint8_t *body)
    int mlite_tokens_body_size(const mlite_tokens_header *h, uint64_t *size)
    int mlite_tokens_check(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                           int64_t width)
    int mlite_tokens_unpack(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                            int64_t width, void *out, size_t out_len, unsigned elem_size,
                            int64_t lo, int64_t hi, int64_t *offsets)


# Stands in for the data pointer of an empty buffer, which a memoryview cannot index.
cdef uint64_t _EMPTY[1]


cdef mlite_tokens_header _header(object header) except *:
    """Copy a TokenHeader into the C struct; OverflowError if a field does not fit its C type."""
    cdef mlite_tokens_header h
    h.n_rows = header.n_rows
    h.n_kept = header.n_kept
    h.n_values = header.n_values
    h.base = header.base
    h.w = header.w
    h.lw = header.lw
    return h


cdef inline const uint8_t *_bytes_ptr(const uint8_t[::1] buf) noexcept:
    return &buf[0] if buf.shape[0] else <const uint8_t *>_EMPTY


cdef bint _rows_ok(const int64_t[::1] values, const int64_t[::1] offsets, const int64_t[::1] kept) noexcept:
    """Whether offsets index values (0 first, never decreasing, len(values) last) and match kept."""
    cdef Py_ssize_t i, n = kept.shape[0]
    if offsets.shape[0] != n + 1 or offsets[0] != 0 or offsets[n] != values.shape[0]:
        return False
    for i in range(n):
        if offsets[i + 1] < offsets[i]:
            return False
    return True


# The encoder kernels trust their arguments, so these wrappers check, in O(rows), whatever
# would otherwise let a wrong argument make them read or write out of bounds.

def split(const int64_t[::1] values, const int64_t[::1] offsets, int64_t[::1] kept) -> int:
    """Fill ``kept`` with each row's length less its maximal trailing run; return the total."""
    cdef size_t n = kept.shape[0]
    cdef uint64_t total
    if not _rows_ok(values, offsets, kept):
        raise ValueError("offsets must run from 0 to len(values), never decrease, and hold len(kept) + 1")
    if n == 0:
        return 0
    with nogil:
        total = mlite_tokens_split(&values[0] if values.shape[0] else <const int64_t *>_EMPTY,
                                   &offsets[0], n, &kept[0])
    return total


def pack(const int64_t[::1] values, const int64_t[::1] offsets, const int64_t[::1] kept,
         object header, uint8_t[::1] body) -> None:
    """Write the body of the rows split by :func:`split` into the uint8 array ``body``."""
    cdef mlite_tokens_header h = _header(header)
    cdef uint64_t size, total = 0
    cdef Py_ssize_t i
    if not _rows_ok(values, offsets, kept) or <uint64_t>kept.shape[0] != h.n_rows:
        raise ValueError("offsets must run from 0 to len(values), never decrease, and hold n_rows + 1")
    for i in range(kept.shape[0]):
        if kept[i] < 0 or kept[i] > offsets[i + 1] - offsets[i]:
            raise ValueError(f"kept[{i}] is not within its row")
        total += <uint64_t>kept[i]
    if total != h.n_kept or mlite_tokens_body_size(&h, &size) != 0 or size != <uint64_t>body.shape[0]:
        raise ValueError("body length must match the header, and header.n_kept must equal sum(kept)")
    if h.n_rows == 0:
        return
    with nogil:
        mlite_tokens_pack(&values[0] if values.shape[0] else <const int64_t *>_EMPTY,
                          &offsets[0], &kept[0], &h, &body[0])


def check(const uint8_t[::1] body, object header, int64_t width) -> int:
    """Validate ``body`` (bytes-like) against ``header``; ``width >= 0`` demands that row length."""
    cdef mlite_tokens_header h = _header(header)
    cdef const uint8_t *data = _bytes_ptr(body)
    cdef size_t size = body.shape[0]
    cdef int status
    with nogil:
        status = mlite_tokens_check(data, size, &h, width)
    return status


def unpack(const uint8_t[::1] body, object header, int64_t width, uint8_t[::1] out,
           unsigned elem_size, int64_t lo, int64_t hi, object offsets) -> int:
    """Decode ``body`` into ``out``, a uint8 view of ``n_values`` native elements of ``elem_size`` bytes.

    Every value must lie in ``[lo, hi]``; ``offsets`` (int64, ``n_rows + 1``) is
    filled when given.
    """
    cdef mlite_tokens_header h = _header(header)
    cdef const uint8_t *data = _bytes_ptr(body)
    cdef size_t size = body.shape[0]
    cdef void *dest = &out[0] if out.shape[0] else <void *>_EMPTY
    cdef size_t out_len
    cdef int64_t[::1] starts
    cdef int64_t *starts_ptr = NULL
    cdef int status
    if elem_size not in (1, 2, 4, 8) or out.shape[0] % elem_size:
        raise ValueError(f"out must hold whole elements of 1, 2, 4 or 8 bytes, not {elem_size}")
    out_len = out.shape[0] // elem_size
    if offsets is not None:
        starts = offsets
        if <uint64_t>starts.shape[0] != h.n_rows + 1:
            raise ValueError("offsets must hold n_rows + 1 entries")
        starts_ptr = &starts[0]
    with nogil:
        status = mlite_tokens_unpack(data, size, &h, width, dest, out_len, elem_size, lo, hi,
                                     starts_ptr)
    return status


@cython.boundscheck(True)
def flatten_lists(object rows) -> tuple:
    """Rows of Python ints as flat int64 values and offsets; TypeError/OverflowError on a bad element."""
    cdef list lists = [r if type(r) is list else list(r) for r in rows]
    cdef Py_ssize_t n = len(lists), i, j, total = 0, pos = 0
    cdef list row
    cdef object item
    offsets = np.empty(n + 1, dtype=np.int64)
    cdef int64_t[::1] starts = offsets
    starts[0] = 0
    for i in range(n):
        total += len(<list>lists[i])
        starts[i + 1] = total
    values = np.empty(total, dtype=np.int64)
    cdef int64_t[::1] flat = values
    for i in range(n):
        row = <list>lists[i]
        # Bounds stay checked: an element's __index__ could shrink a row being read.
        for j in range(starts[i + 1] - starts[i]):
            item = row[j]
            # Cython's own conversion would truncate a float through __int__; ints pass by __index__.
            flat[pos] = item if type(item) is int else PyNumber_Index(item)
            pos += 1
    return values, offsets


def build_lists(const int64_t[::1] values, const int64_t[::1] offsets) -> list:
    """Rows of a flat int64 array as Python lists of ints."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i, j, start, end
    cdef list out, row
    cdef object item
    if n < 0 or offsets[0] != 0 or offsets[n] != values.shape[0]:
        raise ValueError("offsets must start at 0 and end at len(values)")
    for i in range(n):
        if offsets[i + 1] < offsets[i]:
            raise ValueError("offsets must not decrease")
    out = PyList_New(n)
    for i in range(n):
        start = offsets[i]
        end = offsets[i + 1]
        row = PyList_New(end - start)
        for j in range(end - start):
            item = PyLong_FromLongLong(values[start + j])
            Py_INCREF(item)
            PyList_SET_ITEM(row, j, item)
        Py_INCREF(row)
        PyList_SET_ITEM(out, i, row)
    return out
