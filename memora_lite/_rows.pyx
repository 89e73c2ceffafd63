# cython: language_level=3, boundscheck=False, wraparound=False
"""Row kernels: packing one inserted row, and building the rows a query returns.

:class:`RowEncoder` (the one-row ``insert`` fast path, see ``Schema.row_encoder``)
reads a row dict in C, checks every value, packs int lists into little-endian
bytes of the field's width, and frames the log record with its checksums: no
numpy array and no per-element Python work per row; :class:`PendingRows` holds such
rows column by column until they become a batch. ``build_rows`` makes result rows from
columns of values without a Python call per row (``build_row`` makes one); ``cached_row``
reads one stored row from a segment's cached blocks in one call (a get's road).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem, PyDict_Size
from cpython.object cimport PyObject
from libc.stdint cimport int16_t, int32_t, int64_t, int8_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

import numpy as np


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


cdef extern from "mlite_crc32.h":
    uint32_t mlite_masked_crc32(const uint8_t *data, size_t n) nogil


DEF FIELD_INT = 0  # a plain int within [low, high]
DEF FIELD_INTS = 1  # a list of at most `capacity` plain ints within [low, high], packed `size` bytes each
DEF FIELD_OTHER = 2  # any value a Python check accepts (returns the value to store, or None)
DEF RECORD_HEADER = 16  # u32 payload length, u32 type, u32 payload CRC, u32 CRC of the first 12 bytes
# An int list whose trailing run of one value spans more bytes than this is logged as
# [length, value, the values before the run] (docs/format.md#wal-payloads): a padded
# SQuAD row's record shrinks from ~1,180 to ~545 bytes, and the write with it.
DEF SHORT_FORM_SAVES = 8


cdef class PendingRows


cdef class RowEncoder:
    r"""Turns a one-row insert into its log record in one C pass: check, pack, frame.

    ``specs`` holds one entry per field, in schema order: ``("int", low, high)``,
    ``("ints", low, high, size, capacity)`` or ``("other", check)``. :meth:`encode`
    returns ``(key, values, record, held)`` -- the primary key (field ``pk_index``), the
    values as recovery reads them back (a tuple; int lists packed as little-endian bytes),
    the framed log record (docs/format.md#wal) whose payload is the msgpack array of
    those values, an int list less a long trailing run, and the bytes the values take
    (the payload's size with every list whole) -- or None to send the row down the
    general path, which accepts what it can and names the problem otherwise.

    >>> encoder = RowEncoder(("id", "t"), [("int", 0, 99), ("ints", -128, 127, 1, 16)], 0)
    >>> key, values, record, held = encoder.encode({"id": 7, "t": [1, -2]}, 5)
    >>> key, values, record[16:], held
    (7, (7, b'\x01\xfe'), b'\x92\x07\xc4\x02\x01\xfe', 6)
    >>> _, values, record, held = encoder.encode({"id": 7, "t": [5] + [0] * 15}, 5)
    >>> values[1], record[16:], held  # logged as [16 values, then 0 repeated, after b'\x05']
    (b'\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00', b'\x92\x07\x93\x10\x00\xc4\x01\x05', 20)
    >>> encoder.encode({"id": 7, "t": [1, 300]}, 5), encoder.encode({"id": 7, "t": (1,)}, 5)
    (None, None)
    """

    cdef tuple names
    cdef Py_ssize_t n_fields, pk_index
    cdef list checks
    cdef int kinds[64]
    cdef long long lows[64]
    cdef long long highs[64]
    cdef int sizes[64]
    cdef Py_ssize_t capacities[64]

    def __init__(self, tuple names, list specs, Py_ssize_t pk_index):
        cdef Py_ssize_t k
        if len(names) != len(specs) or not 0 < len(names) <= 64 or not 0 <= pk_index < len(names):
            raise ValueError("one spec per field, 1 to 64 fields, and the key among them")
        self.names = names
        self.n_fields = len(names)
        self.pk_index = pk_index
        self.checks = [None] * len(names)
        for k, spec in enumerate(specs):
            if spec[0] == "int":
                self.kinds[k], self.lows[k], self.highs[k] = FIELD_INT, spec[1], spec[2]
            elif spec[0] == "ints":
                if spec[3] not in (1, 2, 4, 8):
                    raise ValueError(f"packed int size {spec[3]} is not 1, 2, 4 or 8")
                self.kinds[k], self.lows[k], self.highs[k] = FIELD_INTS, spec[1], spec[2]
                self.sizes[k], self.capacities[k] = spec[3], spec[4]
            elif spec[0] == "other":
                self.kinds[k] = FIELD_OTHER
                self.checks[k] = spec[1]
            else:
                raise ValueError(f"unknown field spec {spec!r}")

    cdef Py_ssize_t _measure(self, Py_ssize_t k, PyObject *item, long long *v) noexcept:
        """Check ``item`` (borrowed, NULL when absent) as a value of field ``k``: -1 to decline it,
        else an int list's length, or 0 (an int field's value is then in ``*v``)."""
        cdef Py_ssize_t n
        if item is NULL:
            return -1
        if self.kinds[k] == FIELD_INT:
            return 0 if _plain_int(item, v) and self.lows[k] <= v[0] <= self.highs[k] else -1
        if self.kinds[k] == FIELD_INTS:
            if not PyList_CheckExact(<object>item):
                return -1
            n = PyList_GET_SIZE(<object>item)
            return n if n <= self.capacities[k] else -1
        return 0

    def encode(self, object row, uint32_t record_type, PendingRows into=None):
        """``(key, values, record, held)`` for a row this encoder takes, else None.

        With ``into`` (a :class:`PendingRows` of this encoder) the values go straight into
        its columns, as its next row, and the result is ``(key, record, held)``: the row
        counts once :meth:`PendingRows.keep` says so (after its record is written).
        """
        if into is None:
            return self._encode(row, record_type, None)
        if into.encoder is not self:
            raise ValueError("these pending rows belong to another encoder")
        into._reserve_row()
        try:
            return self._encode(row, record_type, into)
        finally:
            into._done()

    cdef object _encode(self, object row, uint32_t record_type, PendingRows into):
        cdef Py_ssize_t k, n, nbytes, run, size = _array_header_size(self.n_fields)
        cdef Py_ssize_t held = size  # the payload's size were every list logged whole
        cdef Py_ssize_t counts[64]
        cdef Py_ssize_t kept[64]  # an int list's values logged before its trailing run; -1: logged whole
        cdef long long ints[64]
        cdef char *data[64]  # each int list, packed
        cdef PyObject *item
        cdef long long v
        cdef list values = None
        cdef list others = None
        cdef char *out
        cdef object record, packed
        cdef object key = None
        if type(row) is not dict or PyDict_Size(row) != self.n_fields:
            return None
        if into is None:
            values = [None] * self.n_fields
        for k in range(self.n_fields):  # pass 1: check and pack every value, measure the payload
            item = PyDict_GetItem(row, self.names[k])
            n = self._measure(k, item, &v)
            if n < 0:
                return None
            if self.kinds[k] == FIELD_INT:
                size += _int_size(v)
                held += _int_size(v)
                ints[k] = v
                if k == self.pk_index:
                    key = <object>item
                if values is not None:
                    values[k] = <object>item
                else:
                    into._stage_int(k, v)
            elif self.kinds[k] == FIELD_INTS:
                nbytes = n * self.sizes[k]
                if values is not None:
                    packed = PyBytes_FromStringAndSize(NULL, nbytes)
                    values[k] = packed
                    data[k] = PyBytes_AS_STRING(packed)
                else:
                    data[k] = into._stage_ints(k, nbytes)
                if not _pack_list(<object>item, self.lows[k], self.highs[k], self.sizes[k], data[k], nbytes):
                    return None
                counts[k] = n
                held += _bin_header_size(nbytes) + nbytes
                run = _trailing_run(data[k], n, self.sizes[k])
                if run * self.sizes[k] > SHORT_FORM_SAVES:
                    kept[k] = n - run
                    size += (1 + _int_size(n) + _int_size(_value_at(data[k], n - 1, self.sizes[k]))
                             + _bin_header_size(kept[k] * self.sizes[k]) + kept[k] * self.sizes[k])
                else:
                    kept[k] = -1
                    size += _bin_header_size(nbytes) + nbytes
            else:
                stored = self.checks[k](<object>item)
                if stored is None:
                    return None
                packed = _packer().pack(stored)
                if others is None:
                    others = [None] * self.n_fields
                others[k] = packed
                size += len(packed)
                held += len(packed)
                if k == self.pk_index:
                    key = stored
                if values is not None:
                    values[k] = stored
                else:
                    into._stage_other(k, stored)
        if size > 0xFFFFFFFF:
            return None
        record = PyBytes_FromStringAndSize(NULL, RECORD_HEADER + size)
        out = PyBytes_AS_STRING(record) + RECORD_HEADER
        out = _put_array_header(out, self.n_fields)
        for k in range(self.n_fields):  # pass 2: write the payload
            if self.kinds[k] == FIELD_INT:
                out = _put_ll(out, ints[k])
            elif self.kinds[k] == FIELD_INTS:
                n = counts[k]
                if kept[k] >= 0:  # [length, tail value, values before the run]: padding is not logged
                    out[0] = <char>0x93
                    out = _put_ll(out + 1, n)
                    out = _put_ll(out, _value_at(data[k], n - 1, self.sizes[k]))
                    n = kept[k]
                nbytes = n * self.sizes[k]
                out = _put_bin_header(out, nbytes)
                memcpy(out, data[k], nbytes)
                out += nbytes
            else:
                packed = others[k]
                memcpy(out, PyBytes_AS_STRING(packed), len(packed))
                out += len(packed)
        _frame(PyBytes_AS_STRING(record), <uint32_t>size, record_type)
        if into is not None:
            into.ready = True
            return key, record, held
        # A tuple of ints and bytes: the collector stops tracking it.
        return key, tuple(values), record, held

    def encode_batch(self, list rows):
        """The columns of ``rows`` (row dicts) if this encoder takes every row, else None.

        One entry per field, in schema order: an int64 array for an int field,
        ``(values, offsets)`` for an int list field (values at the field's width, native
        order), the list of stored values for any other. Two passes and no object per
        row: check every row and measure the lists, then pack straight into the arrays.

        >>> encoder = RowEncoder(("id", "t"), [("int", 0, 99), ("ints", -128, 127, 1, 8)], 0)
        >>> ids, (values, offsets) = encoder.encode_batch([{"id": 7, "t": [1, -2]}, {"id": 8, "t": []}])
        >>> ids.tolist(), values.tolist(), offsets.tolist()
        ([7, 8], [1, -2], [0, 2, 2])
        >>> encoder.encode_batch([{"id": 7, "t": [1, -2]}, {"id": 8, "t": [300]}]) is None
        True
        """
        cdef Py_ssize_t n = len(rows), i, k, length, pos
        cdef Py_ssize_t totals[64]
        cdef PyObject *item
        cdef long long v
        cdef object row
        cdef int64_t[::1] ints
        cdef int64_t[::1] offsets
        cdef uint8_t[::1] packed
        cdef list stored
        cdef list columns = [None] * self.n_fields
        for k in range(self.n_fields):
            totals[k] = 0
        for i in range(n):  # pass 1: the fields exactly, ints in range, list types and lengths
            row = <object>PyList_GET_ITEM(rows, i)
            if type(row) is not dict or PyDict_Size(row) != self.n_fields:
                return None
            for k in range(self.n_fields):
                length = self._measure(k, PyDict_GetItem(row, self.names[k]), &v)
                if length < 0:
                    return None
                totals[k] += length
        for k in range(self.n_fields):  # pass 2: one column at a time, each value looked up again
            # The checks of "other" fields are Python code: whatever they change is caught, never trusted.
            if self.kinds[k] == FIELD_INT:
                column = np.empty(n, dtype=np.int64)
                ints = column
                for i in range(n):
                    if self._measure(k, _value(rows, i, self.names[k], self.n_fields), &v) < 0:
                        return None
                    ints[i] = v
                columns[k] = column
            elif self.kinds[k] == FIELD_INTS:
                column = np.empty(totals[k] * self.sizes[k], dtype=np.uint8)
                packed = column
                bounds = np.empty(n + 1, dtype=np.int64)
                offsets = bounds
                offsets[0] = pos = 0
                for i in range(n):
                    item = _value(rows, i, self.names[k], self.n_fields)
                    length = self._measure(k, item, &v)
                    if length < 0 or length > totals[k] - pos:
                        return None
                    if length and not _pack_list(<object>item, self.lows[k], self.highs[k], self.sizes[k],
                                                 <char *>&packed[pos * self.sizes[k]], length * self.sizes[k]):
                        return None
                    pos += length
                    offsets[i + 1] = pos
                if pos != totals[k]:
                    return None
                # Little-endian hosts only, like _pack_list.
                columns[k] = (column.view(f"i{self.sizes[k]}"), bounds)
            else:
                stored = [None] * n
                for i in range(n):
                    item = _value(rows, i, self.names[k], self.n_fields)
                    if item is NULL:
                        return None
                    value = self.checks[k](<object>item)
                    if value is None:
                        return None
                    stored[i] = value
                columns[k] = stored
        return columns



cdef class PendingRows:
    r"""One-row inserts gathered column by column, until they become a batch (the memtable's
    pending rows): no Python object per row or per value.

    :meth:`RowEncoder.encode` with ``into=`` writes a row's values here, past the rows
    held; :meth:`keep` counts it (the engine calls it once the row's record is written,
    so a row refused after encoding -- a duplicate key -- is simply overwritten by the
    next). :meth:`add` takes a row as recovery reads it back from the log, checking every
    value again (a replayed log is input like any other). :meth:`take` hands the rows
    over as columns, in :meth:`RowEncoder.encode_batch`'s form, and starts again.

    >>> encoder = RowEncoder(("id", "t"), [("int", 0, 99), ("ints", -128, 127, 1, 8)], 0)
    >>> pending = PendingRows(encoder)
    >>> key, record, held = encoder.encode({"id": 7, "t": [1, -2]}, 4, into=pending)
    >>> pending.keep(); pending.add((8, b"")); len(pending)
    2
    >>> ids, (values, offsets) = pending.take()
    >>> ids.tolist(), values.tolist(), offsets.tolist(), len(pending)
    ([7, 8], [1, -2], [0, 2, 2], 0)
    >>> pending.add((7, b"\x01\x02\x03" * 3))
    Traceback (most recent call last):
    ...
    ValueError: row 0, field 't': 9 bytes are not 1-byte values, at most 8
    """

    cdef readonly RowEncoder encoder
    cdef Py_ssize_t n, rows_cap
    cdef bint busy  # a row is being staged: staging again now (re-entrant user code) is refused
    cdef bint ready  # a row is staged, waiting for keep()
    cdef list arrays  # per field: its int64 column (int), packed bytes (int list) or list (other)
    cdef list offsets  # per int list field: int64 row starts, in values
    cdef list staged  # per other field: the staged row's value
    cdef char *data[64]  # each int and int list field's array
    cdef int64_t *starts[64]  # each int list field's offsets
    # Bytes of each int list field: held, allocated, and those of the staged row.
    cdef Py_ssize_t used[64]
    cdef Py_ssize_t room[64]
    cdef Py_ssize_t pending[64]

    def __init__(self, RowEncoder encoder):
        cdef Py_ssize_t k
        self.encoder = encoder
        self.arrays = [None] * encoder.n_fields
        self.offsets = [None] * encoder.n_fields
        self.staged = [None] * encoder.n_fields
        self.n = self.rows_cap = 0
        for k in range(encoder.n_fields):
            self.used[k] = self.room[k] = self.pending[k] = 0
            if encoder.kinds[k] == FIELD_OTHER:
                self.arrays[k] = []
        self._grow_rows(64)

    def __len__(self):
        return self.n

    cdef int _grow_rows(self, Py_ssize_t rows) except -1:
        """Room for ``rows`` rows in every row-indexed array, the held rows kept."""
        cdef Py_ssize_t k
        cdef uint8_t[::1] view
        cdef int64_t[::1] ints
        for k in range(self.encoder.n_fields):
            if self.encoder.kinds[k] == FIELD_INT:
                grown = np.empty(rows, dtype=np.int64)
                if self.n:
                    grown[: self.n] = self.arrays[k][: self.n]
                self.arrays[k] = grown
                view = grown.view(np.uint8)
                self.data[k] = <char *>&view[0]
            elif self.encoder.kinds[k] == FIELD_INTS:
                grown = np.empty(rows + 1, dtype=np.int64)
                grown[: self.n + 1] = self.offsets[k][: self.n + 1] if self.offsets[k] is not None else 0
                self.offsets[k] = grown
                ints = grown
                self.starts[k] = &ints[0]
        self.rows_cap = rows
        return 0

    cdef int _reserve_row(self) except -1:
        if self.busy:
            raise RuntimeError("a row is already being staged into these pending rows")
        if self.n == self.rows_cap:
            self._grow_rows(2 * self.rows_cap)
        self.busy = True
        self.ready = False
        return 0

    cdef char *_stage_ints(self, Py_ssize_t k, Py_ssize_t nbytes) except NULL:
        """Where the staged row's ``nbytes`` bytes of int list ``k`` go (grown to fit)."""
        cdef uint8_t[::1] view
        if self.used[k] + nbytes > self.room[k] or self.arrays[k] is None:
            grown = np.empty(max(2 * self.room[k], self.used[k] + nbytes, 4096), dtype=np.uint8)
            if self.used[k]:
                grown[: self.used[k]] = self.arrays[k][: self.used[k]]
            self.arrays[k] = grown
            self.room[k] = len(grown)
            view = grown
            self.data[k] = <char *>&view[0]
        self.pending[k] = nbytes
        return self.data[k] + self.used[k]

    cdef inline void _stage_int(self, Py_ssize_t k, int64_t v) noexcept:
        (<int64_t *>self.data[k])[self.n] = v

    cdef inline void _stage_other(self, Py_ssize_t k, object value):
        self.staged[k] = value

    cdef inline void _done(self) noexcept:
        self.busy = False

    def keep(self):
        """Count the row the last :meth:`RowEncoder.encode` staged here."""
        cdef Py_ssize_t k
        cdef RowEncoder e = self.encoder
        if not self.ready:
            raise RuntimeError("no row is staged: encode one into these pending rows first")
        self.ready = False
        for k in range(e.n_fields):
            if e.kinds[k] == FIELD_INTS:
                self.used[k] += self.pending[k]
                self.starts[k][self.n + 1] = self.used[k] // e.sizes[k]
            elif e.kinds[k] == FIELD_OTHER:
                (<list>self.arrays[k]).append(self.staged[k])
                self.staged[k] = None
        self.n += 1

    def add(self, object row):
        """Hold one row given as its values in field order (ints, int lists as little-endian
        packed bytes, other values as stored): ValueError names the first misfit."""
        cdef Py_ssize_t k, length
        cdef long long v
        cdef RowEncoder e = self.encoder
        if (type(row) is not tuple and type(row) is not list) or len(row) != e.n_fields:
            raise ValueError(f"row {self.n}: expected {e.n_fields} values, got {type(row).__name__}")
        self._reserve_row()
        try:
            for k in range(e.n_fields):
                value = row[k]
                if e.kinds[k] == FIELD_INT:
                    if not _plain_int(<PyObject *>value, &v) or not e.lows[k] <= v <= e.highs[k]:
                        raise ValueError(f"row {self.n}, field '{e.names[k]}': {value!r} is not an int in range")
                    self._stage_int(k, v)
                elif e.kinds[k] == FIELD_INTS:
                    if type(value) is not bytes:
                        raise ValueError(f"row {self.n}, field '{e.names[k]}': {type(value).__name__} is not "
                                         "packed values")
                    length = len(value)
                    if length % e.sizes[k] or length > e.capacities[k] * e.sizes[k]:
                        raise ValueError(f"row {self.n}, field '{e.names[k]}': {length} bytes are not "
                                         f"{e.sizes[k]}-byte values, at most {e.capacities[k]}")
                    memcpy(self._stage_ints(k, length), PyBytes_AS_STRING(value), length)
                else:
                    self._stage_other(k, value)
            self.ready = True
            self.keep()
        finally:
            self._done()

    def take(self, object arena=None):
        """The rows held, as columns (copies), in :meth:`RowEncoder.encode_batch`'s form; then none.

        A row staged but not yet kept stays staged, as the first row of what follows.
        Int lists are copied into arrays from ``arena`` (its ``empty(n, dtype)``) when given.
        """
        cdef Py_ssize_t k
        cdef RowEncoder e = self.encoder
        if self.busy:  # user code inside encode reading the memtable: the half-staged row would move
            raise RuntimeError("a row is being staged into these pending rows; take them after")
        columns = [None] * e.n_fields
        for k in range(e.n_fields):
            if e.kinds[k] == FIELD_INT:
                columns[k] = self.arrays[k][: self.n].copy()
                if self.ready:
                    (<int64_t *>self.data[k])[0] = (<int64_t *>self.data[k])[self.n]
            elif e.kinds[k] == FIELD_INTS:
                held = self.arrays[k][: self.used[k]] if self.arrays[k] is not None else np.empty(0, dtype=np.uint8)
                if arena is None:
                    values = held.copy()
                else:
                    values = arena.empty(len(held), held.dtype)
                    values[:] = held
                columns[k] = (values.view(f"i{e.sizes[k]}"), self.offsets[k][: self.n + 1].copy())
                if self.ready and self.pending[k]:
                    memmove(self.data[k], self.data[k] + self.used[k], self.pending[k])
                self.used[k] = 0
            else:
                columns[k] = self.arrays[k]
                self.arrays[k] = []
        self.n = 0
        return columns


cdef inline PyObject *_value(list rows, Py_ssize_t i, object name, Py_ssize_t n_fields):
    """Borrowed ``rows[i][name]``, or NULL when there is no longer a row ``i`` that is a dict of
    ``n_fields`` fields holding it."""
    if i >= PyList_GET_SIZE(rows):
        return NULL
    cdef object row = <object>PyList_GET_ITEM(rows, i)
    if type(row) is not dict or PyDict_Size(row) != n_fields:
        return NULL
    return PyDict_GetItem(row, name)


cdef object _local_packer = None


cdef object _packer():
    global _local_packer
    if _local_packer is None:
        import msgpack
        _local_packer = msgpack.Packer(use_bin_type=True, autoreset=True)
    return _local_packer


cdef inline bint _plain_int(PyObject *item, long long *v) noexcept:
    cdef int overflow = 0
    if not PyLong_CheckExact(item):
        return False
    if not mlite_compact_long(item, v):
        v[0] = PyLong_AsLongLongAndOverflow(item, &overflow)
    return not overflow


# msgpack, as msgpack-python's Packer writes it: the smallest form, big-endian.

cdef inline Py_ssize_t _array_header_size(Py_ssize_t n) noexcept:
    return 1 if n < 16 else 3


cdef inline char *_put_array_header(char *out, Py_ssize_t n) noexcept:
    if n < 16:
        out[0] = <char>(0x90 | n)
        return out + 1
    out[0] = <char>0xdc
    return _put_be(out + 1, n, 2)


cdef inline Py_ssize_t _bin_header_size(Py_ssize_t n) noexcept:
    return 2 if n < 0x100 else 3 if n < 0x10000 else 5


cdef inline char *_put_bin_header(char *out, Py_ssize_t n) noexcept:
    if n < 0x100:
        out[0] = <char>0xc4
        return _put_be(out + 1, n, 1)
    if n < 0x10000:
        out[0] = <char>0xc5
        return _put_be(out + 1, n, 2)
    out[0] = <char>0xc6
    return _put_be(out + 1, n, 4)


cdef inline Py_ssize_t _int_size(long long v) noexcept:
    if -32 <= v < 128:
        return 1
    if v > 0:
        return 2 if v <= 0xff else 3 if v <= 0xffff else 5 if v <= 0xffffffff else 9
    return 2 if v >= -0x80 else 3 if v >= -0x8000 else 5 if v >= -0x80000000 else 9


cdef char *_put_ll(char *out, long long v) noexcept:
    if -32 <= v < 128:
        out[0] = <char>v
        return out + 1
    cdef Py_ssize_t n = _int_size(v) - 1
    if v > 0:
        out[0] = <char>(0xcc if n == 1 else 0xcd if n == 2 else 0xce if n == 4 else 0xcf)
    else:
        out[0] = <char>(0xd0 if n == 1 else 0xd1 if n == 2 else 0xd2 if n == 4 else 0xd3)
    return _put_be(out + 1, <unsigned long long>v, n)


cdef inline char *_put_be(char *out, unsigned long long v, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = <char>(v >> (8 * (n - 1 - i)))
    return out + n


cdef inline void _put_le32(char *out, uint32_t v) noexcept:
    out[0] = <char>v
    out[1] = <char>(v >> 8)
    out[2] = <char>(v >> 16)
    out[3] = <char>(v >> 24)


cdef void _frame(char *record, uint32_t size, uint32_t record_type) noexcept:
    """Fill a record's 16-byte header for the ``size``-byte payload after it."""
    _put_le32(record, size)
    _put_le32(record + 4, record_type)
    _put_le32(record + 8, mlite_masked_crc32(<const uint8_t *>record + RECORD_HEADER, size))
    _put_le32(record + 12, mlite_masked_crc32(<const uint8_t *>record, 12))


ctypedef fused int_t:
    int8_t
    int16_t
    int32_t
    int64_t


cdef bint _pack(object values, Py_ssize_t n, long long lo, long long hi, int_t *out) noexcept:
    cdef Py_ssize_t i
    cdef long long v
    cdef PyObject *item
    cdef int_t narrow
    for i in range(n):
        item = PyList_GET_ITEM(values, i)
        if not _plain_int(item, &v) or v < lo or v > hi:
            return False
        narrow = <int_t>v
        memcpy(<char *>out + i * sizeof(int_t), &narrow, sizeof(int_t))  # out need not be aligned
    return True


cdef Py_ssize_t _trailing_run(const char *data, Py_ssize_t n, int size) noexcept:
    """How many of the ``n`` packed ints at ``data`` (``size`` bytes each, 8-byte aligned) end
    the list as one run of equal values; 0 for an empty list."""
    cdef Py_ssize_t i = n - 1
    if n == 0:
        return 0
    if size == 1:
        while i > 0 and (<const uint8_t *>data)[i - 1] == (<const uint8_t *>data)[n - 1]:
            i -= 1
    elif size == 2:
        while i > 0 and (<const uint16_t *>data)[i - 1] == (<const uint16_t *>data)[n - 1]:
            i -= 1
    elif size == 4:
        while i > 0 and (<const uint32_t *>data)[i - 1] == (<const uint32_t *>data)[n - 1]:
            i -= 1
    else:
        while i > 0 and (<const uint64_t *>data)[i - 1] == (<const uint64_t *>data)[n - 1]:
            i -= 1
    return n - i


cdef long long _value_at(const char *data, Py_ssize_t i, int size) noexcept:
    """Packed int ``i`` at ``data`` (``size`` bytes each, 8-byte aligned), sign-extended."""
    if size == 1:
        return (<const int8_t *>data)[i]
    if size == 2:
        return (<const int16_t *>data)[i]
    if size == 4:
        return (<const int32_t *>data)[i]
    return (<const int64_t *>data)[i]


cdef bint _pack_list(object values, long long lo, long long hi, int size, char *out, Py_ssize_t nbytes) noexcept:
    """Pack a list of plain ints into ``out`` as little-endian ints of ``size`` bytes; False if an
    element is not a plain int in ``[lo, hi]`` or the list changed length since it was measured."""
    cdef Py_ssize_t n = PyList_GET_SIZE(values)
    if n * size != nbytes:
        return False
    # Little-endian hosts only (x86-64, arm64), like the store's files; one loop per width.
    if size == 1:
        return _pack(values, n, lo, hi, <int8_t *>out)
    if size == 2:
        return _pack(values, n, lo, hi, <int16_t *>out)
    if size == 4:
        return _pack(values, n, lo, hi, <int32_t *>out)
    return _pack(values, n, lo, hi, <int64_t *>out)


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


def build_row(type row_type, tuple names, list values):
    """One result row: ``names[k]`` maps to ``values[k]`` (a get's row, without :func:`build_rows`'
    columns of one value each).

    >>> from memora_lite.results import Row
    >>> row = build_row(Row, ("x", "id"), ["a", 1])
    >>> row, row[1]
    ({'x': 'a', 'id': 1}, 1)
    """
    cdef Py_ssize_t m = len(names), k
    if len(values) != m:
        raise ValueError(f"{m} names but {len(values)} values")
    row = row_type.__new__(row_type)
    for k in range(m):
        PyDict_SetItem(row, names[k], values[k])
    row._order = names
    return row


def cached_row(object items, str path, Py_ssize_t block, Py_ssize_t row, tuple fields, str primary_key,
               object key):
    """Row ``row`` of block ``block`` of segment ``path``, in ``fields`` order, from cached blocks
    alone: the values as Python objects, or None where some field's block is not cached or has
    no row reader (the caller then takes the general road, which opens and caches blocks).

    ``items`` is a :class:`~memora_lite.storage.segment.BlockCache`'s ordered dict,
    ``(path, field, block) -> (block, size, row reader)``; a block read here moves to its
    end, as a ``BlockCache.get`` would move it. The primary key's value is ``key`` itself,
    by which the row was found. This is a get's whole read once its blocks are warm: one
    call instead of a Python loop over the fields.

    >>> from collections import OrderedDict
    >>> items = OrderedDict({("s", "t", 0): (None, 8, [7, 8, 9].__getitem__)})
    >>> cached_row(items, "s", 0, 2, ("id", "t"), "id", 5), cached_row(items, "s", 1, 2, ("t",), "id", 5)
    ([5, 9], None)
    """
    cdef list values = []
    cdef object name, cache_key, read
    cdef object block_number = block  # one int object shared by every field's cache key
    cdef PyObject *item
    touch = items.move_to_end
    for name in fields:
        if name == primary_key:
            values.append(key)
            continue
        cache_key = (path, name, block_number)
        item = PyDict_GetItem(items, cache_key)  # an OrderedDict keeps its items in its dict part
        if item is NULL:
            return None
        read = (<tuple>item)[2]
        if read is None:
            return None
        touch(cache_key)
        values.append(read(row))
    return values
