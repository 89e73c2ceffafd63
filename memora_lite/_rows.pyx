# cython: language_level=3, boundscheck=False, wraparound=False
"""Row kernels: packing one inserted row, and building the rows a query returns.

``pack_int_list`` (the one-row ``insert`` fast path, see ``schema.RowChecker``)
reads a Python list of ints in C, checks every element, and packs it into
little-endian bytes of the field's width in the same pass: no numpy array and no
per-element Python work per row. ``build_rows`` makes result rows from columns of
values without a Python call per row.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_SetItem
from cpython.object cimport PyObject
from libc.stdint cimport int16_t, int32_t, int64_t, int8_t


cdef extern from *:
    """
    /* Read a small int without a function call: every token id and mask value is one.
       Uses CPython's public-unstable API on 3.12+, the digit layout before it. */
    static inline int mlite_compact_long(PyObject *o, long long *out) {
    #if PY_VERSION_HEX >= 0x030C0000
        if (PyUnstable_Long_IsCompact((PyLongObject *)o)) {
            *out = (long long)PyUnstable_Long_CompactValue((PyLongObject *)o);
            return 1;
        }
        return 0;
    #else
        Py_ssize_t size = Py_SIZE(o);
        if (size == 0) { *out = 0; return 1; }
        if (size == 1) { *out = (long long)((PyLongObject *)o)->ob_digit[0]; return 1; }
        if (size == -1) { *out = -(long long)((PyLongObject *)o)->ob_digit[0]; return 1; }
        return 0;
    #endif
    }
    """
    bint mlite_compact_long(PyObject *o, long long *out) noexcept


cdef extern from "Python.h":
    # Borrowed PyObject* throughout: no reference counting in the loop.
    bint PyLong_CheckExact(PyObject *o)
    bint PyList_CheckExact(object o)
    Py_ssize_t PyList_GET_SIZE(object o)
    PyObject *PyList_GET_ITEM(object o, Py_ssize_t i)
    long long PyLong_AsLongLongAndOverflow(PyObject *o, int *overflow)


def pack_int_list(object values, long long lo, long long hi, int itemsize, Py_ssize_t capacity):
    """``values`` as little-endian ``itemsize``-byte ints, if it is a list of at most
    ``capacity`` plain ints within ``[lo, hi]``; else None.

    None (not an error) sends the row down the general path, which accepts what it
    can (bools, numpy ints, widening an inferred type) and names the problem otherwise.

    >>> pack_int_list([1, -2], -128, 127, 1, 10), pack_int_list([300], -128, 127, 1, 10)
    (b'\\x01\\xfe', None)
    >>> pack_int_list([1, True], -128, 127, 1, 10), pack_int_list((1,), -128, 127, 1, 10)
    (None, None)
    """
    if not PyList_CheckExact(values):
        return None
    cdef Py_ssize_t n = PyList_GET_SIZE(values), i
    if n > capacity or itemsize not in (1, 2, 4, 8):
        return None
    out = PyBytes_FromStringAndSize(NULL, n * itemsize)
    cdef char *buf = PyBytes_AS_STRING(out)
    # Little-endian hosts only (x86-64, arm64), like the store's files; one loop per width.
    cdef bint ok
    if itemsize == 1:
        ok = _pack(values, n, lo, hi, <int8_t *>buf)
    elif itemsize == 2:
        ok = _pack(values, n, lo, hi, <int16_t *>buf)
    elif itemsize == 4:
        ok = _pack(values, n, lo, hi, <int32_t *>buf)
    else:
        ok = _pack(values, n, lo, hi, <int64_t *>buf)
    return out if ok else None


ctypedef fused int_t:
    int8_t
    int16_t
    int32_t
    int64_t


cdef bint _pack(object values, Py_ssize_t n, long long lo, long long hi, int_t *out) noexcept:
    cdef Py_ssize_t i
    cdef long long v
    cdef int overflow = 0
    cdef PyObject *item
    for i in range(n):
        item = PyList_GET_ITEM(values, i)
        if not PyLong_CheckExact(item):
            return False
        if not mlite_compact_long(item, &v):
            v = PyLong_AsLongLongAndOverflow(item, &overflow)
        if overflow or v < lo or v > hi:
            return False
        out[i] = <int_t>v
    return True


def build_rows(type row_type, tuple names, list columns) -> list:
    """Result rows from columns of values: row ``i`` maps ``names[k]`` to ``columns[k][i]``.

    ``row_type`` is a dict subclass with an ``_order`` slot (``results.Row``), set to
    ``names`` in every row; each column is a list, all of one length.

    >>> from memora_lite.results import Row
    >>> rows = build_rows(Row, ("x", "id"), [["a", "b"], [1, 2]])
    >>> rows[1], rows[1][0]
    ({'x': 'b', 'id': 2}, 'b')
    """
    cdef Py_ssize_t m = len(names), n, i, k
    cdef list out
    cdef object row
    if len(columns) != m:
        raise ValueError(f"{m} names but {len(columns)} columns")
    n = len(<list>columns[0]) if m else 0
    for k in range(m):
        if len(<list>columns[k]) != n:
            raise ValueError("columns differ in length")
    new = row_type.__new__
    out = [None] * n
    for i in range(n):
        row = new(row_type)
        for k in range(m):
            PyDict_SetItem(row, names[k], (<list>columns[k])[i])
        row._order = names
        out[i] = row
    return out
