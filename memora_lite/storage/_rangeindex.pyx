# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled lookup of the id range index: where one int key sits in a block's sorted int64 keys.

``search`` matches :func:`memora_lite.storage.rangeindex.search_numpy` (``numpy.searchsorted``
for one key), its twin; :func:`memora_lite.storage.rangeindex.search` picks between them.
It reads the array through numpy's C API rather than a typed memoryview, whose acquisition
costs more than the search itself: a ``get`` of a key that is not ``min_pk + row`` pays
one search (``benchmarks/test_key_lookup.py``).
"""

cimport numpy as cnp
from libc.stdint cimport int64_t

cnp.import_array()


def search(cnp.ndarray keys not None, object key, bint right) -> int:
    """Where ``key`` would be inserted in the sorted 1-D int64 ``keys``: before equal keys, or
    after them when ``right`` (``numpy.searchsorted``'s ``side``). ``key`` is an int in int64."""
    cdef int64_t k = key
    cdef Py_ssize_t lo = 0, hi, mid, stride
    cdef int64_t at
    cdef const char *data
    if cnp.PyArray_TYPE(keys) != cnp.NPY_INT64 or cnp.PyArray_NDIM(keys) != 1:
        raise TypeError(f"keys must be a 1-D int64 array, not {keys.ndim}-D {keys.dtype}")
    data = <const char *>cnp.PyArray_DATA(keys)
    stride = cnp.PyArray_STRIDE(keys, 0)
    hi = cnp.PyArray_DIM(keys, 0)
    while lo < hi:
        mid = lo + (hi - lo) // 2
        at = (<const int64_t *>(data + mid * stride))[0]  # any stride: a view of keys works too
        if at < k or (right and at == k):
            lo = mid + 1
        else:
            hi = mid
    return lo
