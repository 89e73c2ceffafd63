# cython: language_level=3, boundscheck=False, wraparound=False
"""Row validation kernels for the one-row ``insert`` fast path (see ``schema.RowChecker``).

Reads a Python list of ints in C, without building a numpy array per row.
"""

from cpython.object cimport PyObject


cdef extern from "Python.h":
    # Borrowed PyObject* throughout: no reference counting in the loop.
    bint PyLong_CheckExact(PyObject *o)
    bint PyList_CheckExact(object o)
    Py_ssize_t PyList_GET_SIZE(object o)
    PyObject *PyList_GET_ITEM(object o, Py_ssize_t i)
    long long PyLong_AsLongLongAndOverflow(PyObject *o, int *overflow)


def int_list_bounds(object values):
    """``(min, max)`` of a list of plain ints that all fit int64, else None.

    None (not an error) sends the row down the general path, which accepts what it
    can (bools, numpy ints, widening) and names the problem otherwise.

    >>> int_list_bounds([3, -1, 7]), int_list_bounds([]), int_list_bounds([1, True]), int_list_bounds((1,))
    ((-1, 7), (0, 0), None, None)
    """
    if not PyList_CheckExact(values):
        return None
    cdef Py_ssize_t n = PyList_GET_SIZE(values), i
    cdef long long lo = 0, hi = 0, v
    cdef int overflow = 0
    cdef PyObject *item
    for i in range(n):
        item = PyList_GET_ITEM(values, i)
        if not PyLong_CheckExact(item):
            return None
        v = PyLong_AsLongLongAndOverflow(item, &overflow)
        if overflow:
            return None
        if i == 0:
            lo = v
            hi = v
        elif v < lo:
            lo = v
        elif v > hi:
            hi = v
    return lo, hi
