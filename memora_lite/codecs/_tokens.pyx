# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled token kernels: thin wrappers of ``csrc/mlite_tokens.c``, plus list and int-width conversion.

Every function matches its namesake in :mod:`memora_lite.codecs.tokens_numpy`
(signature, results, status codes); callers validate and allocate, these
functions release the GIL and compute. Layout: ``docs/format.md#tokens1``.
"""

cimport cython
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLongLong
from cpython.number cimport PyNumber_Index
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer, Py_buffer
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport (INT64_MAX, INT64_MIN, int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t,
                          uint32_t, uint64_t)

import numpy as np


cdef extern from "mlite_tokens.h" nogil:
    ctypedef struct mlite_tokens_header:
        uint64_t n_rows
        uint64_t n_kept
        uint64_t n_values
        int64_t base
        unsigned w
        unsigned lw
        int kept_shared

    ctypedef struct mlite_tokens_stats:
        uint64_t n_kept
        uint64_t max_len
        int64_t min
        int64_t max
        int any
        int kept_same

    int mlite_tokens_split(const void *values, unsigned elem_size, int is_signed, const int64_t *offsets,
                           size_t n_rows, int64_t *kept, mlite_tokens_stats *stats)
    int mlite_tokens_pack(const void *values, unsigned elem_size, int is_signed, const int64_t *offsets,
                          const int64_t *kept, const mlite_tokens_header *h, uint8_t *body)
    int mlite_tokens_body_size(const mlite_tokens_header *h, uint64_t *size)
    int mlite_tokens_check(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                           int64_t width)
    int mlite_tokens_unpack(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                            int64_t width, void *out, size_t out_len, unsigned elem_size,
                            int64_t lo, int64_t hi, int64_t *offsets)
    int mlite_tokens_unpack_rows(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                                 uint64_t first, uint64_t count, uint64_t kept_before, int64_t width,
                                 void *out, size_t out_len, unsigned elem_size, int64_t lo, int64_t hi,
                                 int64_t *offsets)
    int mlite_tokens_index(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                           int64_t *starts, int64_t *kept_starts, int64_t *uniform)
    void mlite_ints_narrow_parallel(const void *src, unsigned src_size, int src_signed, void *dst,
                                    unsigned dst_size, size_t n, int64_t *lo, int64_t *hi, unsigned threads)
    int mlite_isa_available(int isa)
    int mlite_isa()
    enum: MLITE_NARROW_PART_BYTES
    int mlite_isa_select(int isa)


# The builds of the kernels that fold a minimum and maximum (split, the row copies of
# unpack, narrow), by their number in mlite_tokens.h. Each computes exactly the same.
BUILDS = ("baseline", "avx2")


def builds() -> tuple:
    """The builds this module holds and this CPU runs, baseline first.

    >>> builds()[0]
    'baseline'
    """
    return tuple(name for number, name in enumerate(BUILDS) if mlite_isa_available(number))


def build() -> str:
    """The build in use: the last of :func:`builds` unless :func:`select_build` chose another.

    >>> build() in builds()
    True
    """
    return BUILDS[mlite_isa()]


def select_build(str name) -> str:
    """Use build ``name`` from now on, in every thread; returns the one in use before.

    For tests and diagnosis (the test suite runs every build through the same checks).

    >>> before = select_build("baseline"); build()
    'baseline'
    >>> select_build(before)
    'baseline'
    >>> select_build("sse9")
    Traceback (most recent call last):
    ...
    ValueError: no 'sse9' build of the token kernels here; this module and CPU run: ...
    """
    before = build()
    if name not in BUILDS or not mlite_isa_select(BUILDS.index(name)):
        raise ValueError(f"no {name!r} build of the token kernels here; this module and CPU run: "
                         f"{', '.join(builds())}")
    return before


DEF MLITE_E_BODY_STATUS = 2  # MLITE_E_BODY in mlite_tokens.h

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
    h.kept_shared = bool(header.kept_shared)
    return h


cdef inline const uint8_t *_bytes_ptr(const uint8_t[::1] buf) noexcept:
    return &buf[0] if buf.shape[0] else <const uint8_t *>_EMPTY


cdef bint _rows_ok(Py_ssize_t n_values, const int64_t[::1] offsets, const int64_t[::1] kept) noexcept:
    """Whether offsets index n_values values (0 first, never decreasing, n_values last) and match kept."""
    cdef Py_ssize_t i, n = kept.shape[0]
    if offsets.shape[0] != n + 1 or offsets[0] != 0 or offsets[n] != n_values:
        return False
    for i in range(n):
        if offsets[i + 1] < offsets[i]:
            return False
    return True


cdef const uint8_t[::1] _value_bytes(object values, unsigned *elem_size, int *is_signed) except *:
    """The raw bytes of a 1-D C-contiguous native-order integer array, with its element type."""
    dtype = values.dtype
    if values.ndim != 1 or dtype.kind not in "iu" or not dtype.isnative or not values.flags.c_contiguous:
        raise TypeError("token values must be a 1-D C-contiguous native-order integer array")
    elem_size[0] = dtype.itemsize
    is_signed[0] = dtype.kind == "i"
    return values.view(np.uint8)


# The encoder kernels trust their arguments, so these wrappers check, in O(rows), whatever
# would otherwise let a wrong argument make them read or write out of bounds.

def split(object values, const int64_t[::1] offsets, int64_t[::1] kept) -> tuple:
    """Fill ``kept`` with each row's length less its maximal trailing run.

    ``values`` is any 1-D integer array. Returns ``(n_kept, min, max, max_len,
    kept_same)``: min and max over all values (0 when there are none; max as a
    Python int, so a uint64 value above int64 shows), the longest row's length,
    and whether every kept value is the same (True when none is kept).
    """
    cdef unsigned elem_size
    cdef int is_signed, status
    cdef const uint8_t[::1] raw = _value_bytes(values, &elem_size, &is_signed)
    cdef size_t n = kept.shape[0]
    cdef mlite_tokens_stats stats
    if not _rows_ok(values.shape[0], offsets, kept):
        raise ValueError("offsets must run from 0 to len(values), never decrease, and hold len(kept) + 1")
    if n == 0:
        return 0, 0, 0, 0, True
    with nogil:
        status = mlite_tokens_split(&raw[0] if raw.shape[0] else <const uint8_t *>_EMPTY, elem_size,
                                    is_signed, &offsets[0], n, &kept[0], &stats)
    if status:
        raise ValueError(f"token values of {elem_size} bytes are not supported")
    same = stats.kept_same != 0
    if not stats.any:
        return stats.n_kept, 0, 0, stats.max_len, same
    if is_signed:
        return stats.n_kept, stats.min, stats.max, stats.max_len, same
    # the kernel stores unsigned min and max as int64
    return stats.n_kept, <uint64_t>stats.min, <uint64_t>stats.max, stats.max_len, same


def pack(object values, const int64_t[::1] offsets, const int64_t[::1] kept,
         object header, uint8_t[::1] body) -> None:
    """Write the body of the rows split by :func:`split` into the uint8 array ``body``."""
    cdef unsigned elem_size
    cdef int is_signed
    cdef const uint8_t[::1] raw = _value_bytes(values, &elem_size, &is_signed)
    cdef mlite_tokens_header h = _header(header)
    cdef uint64_t size, total = 0
    cdef Py_ssize_t i
    if not _rows_ok(values.shape[0], offsets, kept) or <uint64_t>kept.shape[0] != h.n_rows:
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
        mlite_tokens_pack(&raw[0] if raw.shape[0] else <const uint8_t *>_EMPTY, elem_size, is_signed,
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
    cdef size_t size = body.shape[0], out_len = _out_len(out, elem_size)
    cdef void *dest = &out[0] if out.shape[0] else <void *>_EMPTY
    cdef int64_t *starts = _offsets_ptr(offsets, h.n_rows + 1)
    cdef int status
    with nogil:
        status = mlite_tokens_unpack(data, size, &h, width, dest, out_len, elem_size, lo, hi, starts)
    return status


def unpack_rows(const uint8_t[::1] body, object header, uint64_t first, uint64_t count,
                uint64_t kept_before, int64_t width, uint8_t[::1] out, unsigned elem_size,
                int64_t lo, int64_t hi, object offsets) -> int:
    """Decode rows ``first .. first + count - 1`` into ``out`` (their values exactly), as :func:`unpack`.

    ``kept_before`` is the block's kept count before row ``first`` (from :func:`index`);
    ``offsets`` (int64, ``count + 1``) is filled when given.
    """
    cdef mlite_tokens_header h = _header(header)
    cdef const uint8_t *data = _bytes_ptr(body)
    cdef size_t size = body.shape[0], out_len = _out_len(out, elem_size)
    cdef void *dest = &out[0] if out.shape[0] else <void *>_EMPTY
    cdef int64_t *starts = _offsets_ptr(offsets, count + 1)
    cdef int status
    with nogil:
        status = mlite_tokens_unpack_rows(data, size, &h, first, count, kept_before, width, dest, out_len,
                                          elem_size, lo, hi, starts)
    return status


def index(const uint8_t[::1] body, object header, int64_t[::1] starts, int64_t[::1] kept_starts) -> tuple:
    """Validate ``body`` and fill ``starts`` / ``kept_starts`` (``n_rows + 1`` each) with the
    running sums of row lengths and kept lengths.

    Returns ``(status, uniform)``: ``uniform`` is the length every row shares, or -1.
    """
    cdef mlite_tokens_header h = _header(header)
    cdef const uint8_t *data = _bytes_ptr(body)
    cdef size_t size = body.shape[0]
    cdef int status
    cdef int64_t uniform = -1
    if <uint64_t>starts.shape[0] != h.n_rows + 1 or <uint64_t>kept_starts.shape[0] != h.n_rows + 1:
        raise ValueError("starts and kept_starts must hold n_rows + 1 entries")
    with nogil:
        status = mlite_tokens_index(data, size, &h, &starts[0], &kept_starts[0], &uniform)
    return status, uniform


cdef size_t _out_len(uint8_t[::1] out, unsigned elem_size) except? 0:
    if elem_size not in (1, 2, 4, 8) or out.shape[0] % elem_size:
        raise ValueError(f"out must hold whole elements of 1, 2, 4 or 8 bytes, not {elem_size}")
    return out.shape[0] // elem_size


cdef int64_t *_offsets_ptr(object offsets, uint64_t entries) except? NULL:
    cdef int64_t[::1] starts
    if offsets is None:
        return NULL
    starts = offsets
    if <uint64_t>starts.shape[0] != entries:
        raise ValueError(f"offsets must hold {entries} entries")
    return &starts[0]


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


# Token ids repeat: every row of a vocabulary's texts draws on the same few thousand ints. Lists
# share one int object per value below this bound (CPython itself shares -5..256), so a row
# costs a pointer copy per element, not an allocation, and freeing it later costs no free.
DEF SHARED_INTS = 1 << 16
cdef PyObject *_shared[SHARED_INTS]  # the table holds one reference to each, for the process's life


cdef extern from "Python.h":
    # Raw PyObject* forms: the loop below manages every reference itself.
    void Py_INCREF_PTR "Py_INCREF"(PyObject *o)
    void PyList_SET_ITEM_PTR "PyList_SET_ITEM"(object list, Py_ssize_t i, PyObject *o)
    PyObject *PyLong_FromLongLong_PTR "PyLong_FromLongLong"(long long v)


cdef int _fill_list(list row, const int64_t *values, Py_ssize_t n) except -1:
    """Set ``row[j] = int(values[j])`` for a fresh list of ``n`` empty slots."""
    cdef Py_ssize_t j
    cdef int64_t v
    cdef PyObject *item
    for j in range(n):
        v = values[j]
        if <uint64_t>v < SHARED_INTS:
            item = _shared[v]
            if item is NULL:
                item = PyLong_FromLongLong_PTR(v)
                if item is NULL:
                    raise MemoryError()
                _shared[v] = item
            Py_INCREF_PTR(item)
        else:
            item = PyLong_FromLongLong_PTR(v)
            if item is NULL:
                raise MemoryError()
        PyList_SET_ITEM_PTR(row, j, item)
    return 0


def build_lists(const int64_t[::1] values, const int64_t[::1] offsets) -> list:
    """Rows of a flat int64 array as Python lists of ints."""
    cdef Py_ssize_t n = offsets.shape[0] - 1, i
    if n < 0 or offsets[0] != 0 or offsets[n] != values.shape[0]:
        raise ValueError("offsets must start at 0 and end at len(values)")
    for i in range(n):
        if offsets[i + 1] < offsets[i]:
            raise ValueError("offsets must not decrease")
    return _lists(<const int64_t *>&values[0] if values.shape[0] else <const int64_t *>_EMPTY, &offsets[0], n)


cdef list _lists(const int64_t *values, const int64_t *offsets, Py_ssize_t n):
    """Rows ``values[offsets[i]:offsets[i + 1]]`` as Python lists (offsets checked by the caller)."""
    cdef Py_ssize_t i
    cdef list out = PyList_New(n), row
    for i in range(n):
        row = PyList_New(offsets[i + 1] - offsets[i])
        Py_INCREF(row)
        PyList_SET_ITEM(out, i, row)  # in the outer list first: a failure below frees it with the list
        if offsets[i + 1] > offsets[i]:
            _fill_list(row, values + offsets[i], offsets[i + 1] - offsets[i])
    return out


def unpack_lists(const uint8_t[::1] body, object header, uint64_t first, uint64_t count,
                 uint64_t kept_before, uint64_t n_values) -> tuple:
    """Rows ``first .. first + count - 1`` as Python lists of ints: ``(status, rows)``.

    ``n_values`` is their total length (from :func:`index`); ``rows`` is None unless
    ``status`` is 0. Decodes into a C buffer, then fills the lists from it.
    """
    cdef mlite_tokens_header h = _header(header)
    cdef const uint8_t *data = _bytes_ptr(body)
    cdef size_t size = body.shape[0]
    cdef int64_t *values
    cdef int64_t *offsets
    cdef int status
    if count > h.n_rows or n_values > h.n_values:
        return MLITE_E_BODY_STATUS, None
    values = <int64_t *>PyMem_Malloc((n_values + count + 1) * sizeof(int64_t))
    if values is NULL:
        raise MemoryError()
    offsets = values + n_values
    try:
        with nogil:
            status = mlite_tokens_unpack_rows(data, size, &h, first, count, kept_before, -1, values,
                                              n_values, 8, INT64_MIN, INT64_MAX, offsets)
        if status:
            return status, None
        return 0, _lists(values, offsets, count)
    finally:
        PyMem_Free(values)


DEF ROW_STACK = 512  # values a row decodes into on the stack; longer rows borrow the heap


cdef class RowDecoder:
    """One opened tokens1 block's rows as Python lists, one C call per row (a ``get``'s hot path).

    Holds the body and the row index for the decoder's life, so :meth:`row` converts
    no argument: a call costs the row's values, not the ~3 us of buffer conversions a
    :func:`unpack_lists` call pays. ``on_error(status)`` raises for a kernel status
    (should it return, ValueError is raised instead).
    """

    cdef Py_buffer body
    cdef bint held
    cdef mlite_tokens_header h
    cdef const int64_t[::1] starts
    cdef const int64_t[::1] kept_starts
    cdef object on_error

    def __cinit__(self, object body, object header, const int64_t[::1] starts, const int64_t[::1] kept_starts,
                  object on_error):
        self.h = _header(header)
        if <uint64_t>starts.shape[0] != self.h.n_rows + 1 or <uint64_t>kept_starts.shape[0] != self.h.n_rows + 1:
            raise ValueError("starts and kept_starts must hold n_rows + 1 entries")
        PyObject_GetBuffer(body, &self.body, PyBUF_SIMPLE)
        self.held = True
        self.starts = starts
        self.kept_starts = kept_starts
        self.on_error = on_error

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.body)

    def row(self, Py_ssize_t i) -> list:
        """Row ``i`` as a list of ints (IndexError outside the block)."""
        cdef int64_t stack[ROW_STACK]
        cdef int64_t *values = stack
        cdef int64_t length
        cdef int status
        cdef list out
        if i < 0 or <uint64_t>i >= self.h.n_rows:
            raise IndexError(f"row {i} of a {self.h.n_rows}-row tokens1 block")
        length = self.starts[i + 1] - self.starts[i]
        if length < 0 or <uint64_t>length > self.h.n_values:
            self._fail(MLITE_E_BODY_STATUS)
        if length > ROW_STACK:
            values = <int64_t *>PyMem_Malloc(length * sizeof(int64_t))
            if values is NULL:
                raise MemoryError()
        try:
            status = mlite_tokens_unpack_rows(<const uint8_t *>self.body.buf, self.body.len, &self.h, i, 1,
                                              self.kept_starts[i], -1, values, length, 8, INT64_MIN, INT64_MAX,
                                              NULL)
            if status:  # the kernel also refuses a row whose length is no longer ``length``
                self._fail(status)
            out = PyList_New(length)
            _fill_list(out, values, length)
            return out
        finally:
            if values is not stack:
                PyMem_Free(values)

    cdef int _fail(self, int status) except -1:
        self.on_error(status)
        raise ValueError(f"tokens1 kernel status {status}")


ctypedef fused narrow_src:
    int8_t
    int16_t
    int32_t
    int64_t
    uint8_t
    uint16_t
    uint32_t

ctypedef fused narrow_dst:
    int8_t
    int16_t
    int32_t
    int64_t


# ``narrow`` uses no more threads than its input holds this many bytes: a column under twice
# this narrows on the calling thread alone.
NARROW_PART_BYTES = MLITE_NARROW_PART_BYTES


def narrow(const narrow_src[::1] values, narrow_dst[::1] out, unsigned threads=1) -> tuple:
    """Copy ``values`` into ``out`` (of equal length) as ``out``'s type, in one pass that also
    finds their range: ``(lo, hi, fits)``. Where not ``fits``, some value lies outside ``out``'s
    type and ``out`` holds it truncated; the caller converts again after widening. The loop is
    ``mlite_ints_narrow`` (``csrc/mlite_tokens.c``), on up to ``threads`` threads for a column
    of megabytes (``mlite_ints_narrow_parallel``)."""
    cdef Py_ssize_t n = values.shape[0]
    cdef int64_t lo, hi
    cdef int is_signed = narrow_src is int8_t or narrow_src is int16_t or narrow_src is int32_t or narrow_src is int64_t
    if out.shape[0] != n:
        raise ValueError(f"out holds {out.shape[0]} values, not {n}")
    if n == 0:
        return 0, 0, True
    with nogil:
        mlite_ints_narrow_parallel(&values[0], sizeof(narrow_src), is_signed, &out[0], sizeof(narrow_dst), n,
                                   &lo, &hi, threads)
    cdef object shift = 8 * sizeof(narrow_dst) - 1  # a Python int: 1 << 63 overflows C's int
    bound = 1 << shift
    return lo, hi, -bound <= lo and hi < bound
