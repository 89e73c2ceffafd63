"""Expression tree + column batch -> boolean row mask.

Scalar columns are compared with whole-array numpy operations; ``VARCHAR``
equality and ordering use numpy's element-wise object comparisons; ``ARRAY``
functions work on the flat values of a :class:`~memora_lite.columns.Ragged`.
JSON values and mixed-class comparisons fall back to a per-row loop.

The null rule (also in ``docs/filters.md``): a comparison, ``in``, ``like`` or
function call on a null value, a missing JSON key or a value of another class is
false, under every operator including ``!=``.  ``not`` simply inverts, so
``not (a == 1)`` is true on rows where ``a`` is null.  ``is null`` reads
:meth:`Batch.null_mask`.

>>> import numpy as np
>>> from memora_lite.columns import Batch
>>> from memora_lite.query.ast import Compare, Field, Literal
>>> batch = Batch({"a": np.array([1, 5, 9])}, 3)
>>> evaluate(Compare(">", Field("a"), Literal(4)), batch).tolist()
[False, True, True]
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from memora_lite.columns import Batch, Ragged, object_array
from memora_lite.errors import FieldNotFoundError
from memora_lite.query.ast import (
    And,
    Arith,
    Call,
    Compare,
    Expr,
    Field,
    In,
    IsNull,
    JsonPath,
    Like,
    Literal,
    Neg,
    Not,
    Or,
    kind_of,
    same_value,
)

__all__ = ["evaluate", "like_matcher"]

_NUMPY_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def evaluate(expr: Expr | None, batch: Batch) -> np.ndarray:
    """The rows of ``batch`` where ``expr`` is true, as a boolean mask.

    Parameters
    ----------
    expr : Expr or None
        A tree from :func:`~memora_lite.query.parser.parse`; None means every row.
    batch : Batch
        Rows to test; it may hold more columns than the expression reads.

    Returns
    -------
    numpy.ndarray
        A new ``bool`` array of length ``batch.size``.

    Examples
    --------
    >>> import numpy as np
    >>> from memora_lite.columns import Batch
    >>> from memora_lite.models import Field
    >>> from memora_lite.query.parser import parse
    >>> fields = {"a": Field("a", "INT64"), "s": Field("s", "VARCHAR", nullable=True)}
    >>> s = np.array(["apple", None, "avocado"], dtype=object)
    >>> batch = Batch({"a": np.array([1, 2, 3]), "s": s}, 3, {"s": np.array([False, True, False])})
    >>> evaluate(parse("a % 2 == 1 and s like 'a%o'", fields), batch).tolist()
    [False, False, True]
    >>> evaluate(parse("s is null or a > 2", fields), batch).tolist()
    [False, True, True]
    """
    if expr is None:
        return np.ones(batch.size, dtype=bool)
    # Arithmetic on columns may divide by zero or overflow; those rows are
    # handled explicitly, so numpy's warnings would only be noise (or errors under -W error).
    with np.errstate(all="ignore"):
        mask = _Evaluator(batch).condition(expr)
    return np.asarray(mask, dtype=bool)


# ---------------------------------------------------------------------------
# LIKE


@lru_cache(maxsize=256)
def like_matcher(pattern: str) -> Callable[[str], bool]:
    """A function telling whether a string matches a ``like`` pattern.

    ``%`` matches any run of characters, ``_`` exactly one; ``\\%``, ``\\_`` and
    ``\\\\`` stand for the character itself.  The pattern is split at ``%`` into
    fixed-width pieces that are found left to right (leftmost match is always
    safe for ``%``), so matching is linear in practice and a pattern can never
    cause the catastrophic backtracking a translated ``.*`` regex can.  Pieces
    with ``_`` become a regex of ``re.escape``-d text and ``.``: no repetition,
    no user syntax.

    >>> m = like_matcher("ab%c_")
    >>> m("abXYZcd"), m("abcd"), m("abc")
    (True, True, False)
    >>> like_matcher("100\\\\%")("100%"), like_matcher("100\\\\%")("1000")
    (True, False)
    """
    pieces: list[list[str | None]] = [[]]  # None stands for '_'
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_\\":
            pieces[-1].append(pattern[i + 1])
            i += 2
            continue
        if c == "%":
            pieces.append([])
        elif c == "_":
            pieces[-1].append(None)
        else:
            pieces[-1].append(c)
        i += 1
    segments = [_Segment(p) for p in pieces]
    if len(segments) == 1:
        only = segments[0]
        return lambda s: len(s) == only.width and only.at(s, 0)
    first, last, middle = segments[0], segments[-1], [s for s in segments[1:-1] if s.width]
    need = first.width + last.width + sum(s.width for s in middle)

    def match(s: str) -> bool:
        if len(s) < need or not first.at(s, 0):
            return False
        pos, stop = first.width, len(s) - last.width
        for segment in middle:
            found = segment.find(s, pos, stop)
            if found < 0:
                return False
            pos = found + segment.width
        return last.at(s, stop)

    return match


class _Segment:
    """A fixed-width piece of a like pattern: literal text, or text with '_' wildcards."""

    __slots__ = ("literal", "regex", "width")

    def __init__(self, chars: Sequence[str | None]) -> None:
        self.width = len(chars)
        if None in chars:
            parts = ["." if c is None else re.escape(c) for c in chars]
            self.regex: re.Pattern[str] | None = re.compile("".join(parts), re.DOTALL)
            self.literal = ""
        else:
            self.regex = None
            self.literal = "".join(c for c in chars if c is not None)

    def at(self, s: str, pos: int) -> bool:
        if self.regex is None:
            return s.startswith(self.literal, pos)
        return self.regex.match(s, pos) is not None

    def find(self, s: str, start: int, stop: int) -> int:
        if self.regex is None:
            return s.find(self.literal, start, stop)
        m = self.regex.search(s, start, stop)
        return -1 if m is None else m.start()


# ---------------------------------------------------------------------------
# Values


class _Vec:
    """One value per row (or one constant): ``data`` plus a mask of rows that hold a value.

    ``form`` is "const" (a Python value), "typed" (numeric/bool ndarray),
    "object" (ndarray of Python values) or "ragged" (a Ragged).
    """

    __slots__ = ("data", "form", "valid")

    def __init__(self, data: Any, valid: np.ndarray | None, form: str) -> None:
        self.data = data
        self.valid = valid
        self.form = form

    def numeric(self) -> bool:
        if self.form == "typed":
            return True
        return self.form == "const" and kind_of(self.data) in ("num", "bool")


def _both(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _widen(data: Any) -> Any:
    # Integer columns do arithmetic in int64 so a literal like 1000 fits next to INT8.
    if isinstance(data, np.ndarray) and data.dtype.kind in "iu" and data.dtype != np.int64:
        return data.astype(np.int64)
    return data


def _objects(vec: _Vec, n: int) -> np.ndarray:
    """The values as a 1-D object array of plain Python values."""
    if vec.form == "const":
        out = np.empty(n, dtype=object)
        out.fill(vec.data)  # fill(), not out[:] = ..., so a tuple stays one value per row
        return out
    if vec.form == "ragged":
        return object_array(vec.data.to_lists(), n)
    if vec.form == "typed":
        return vec.data.astype(object)  # astype(object) yields Python ints/floats/bools
    return vec.data


def _isin_numbers(data: np.ndarray, values: Sequence[Any]) -> np.ndarray:
    """``np.isin`` for a numeric column against the numeric (non-bool) ``values``."""
    numbers = [v for v in values if kind_of(v) == "num"]
    if not numbers:
        return np.zeros(len(data), dtype=bool)
    if data.dtype.kind == "f":
        # Same precision as '==': a FLOAT column meets its literals rounded to float32.
        return np.isin(data, np.array(numbers, dtype=np.float64).astype(data.dtype))
    # Ints and floats apart, so large int64 values are not rounded through float64.
    ints = [v for v in numbers if isinstance(v, int)]
    floats = [v for v in numbers if not isinstance(v, int)]
    hits = np.zeros(len(data), dtype=bool)
    if ints:
        hits |= np.isin(data, np.array(ints, dtype=np.int64))
    if floats:
        hits |= np.isin(data, np.array(floats, dtype=np.float64))
    return hits


def _dynamic_compare(op: str, a: Any, b: Any) -> bool:
    kind = kind_of(a)
    if kind is None or kind != kind_of(b):
        return False
    if op == "==":
        return same_value(a, b)
    if op == "!=":
        return not same_value(a, b)
    if kind in ("num", "str"):
        return bool(_NUMPY_COMPARE[op](a, b))
    return False


def _hash_key(value: Any) -> tuple[str, Any] | None:
    kind = kind_of(value)
    if kind in ("num", "str", "bool"):
        return (kind, value.item() if isinstance(value, np.generic) else value)
    return None


def _python_arith(op: str, a: Any, b: Any) -> Any:
    """Arithmetic on JSON values; None where the row has no numeric answer."""
    if kind_of(a) != "num" or kind_of(b) != "num":
        return None
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        return None
    return a / b if op == "/" else a % b


class _Evaluator:
    __slots__ = ("batch", "n")

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.n = batch.size

    def rows(self, valid: np.ndarray | None) -> np.ndarray:
        return np.arange(self.n) if valid is None else np.flatnonzero(valid)

    def finish(self, hits: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
        hits = np.asarray(hits, dtype=bool)
        if hits.shape != (self.n,):
            hits = np.broadcast_to(hits, (self.n,)).copy()
        return hits if valid is None else hits & valid

    def rowwise(self, fn: Callable[..., bool], parts: Sequence[_Vec], valid: np.ndarray | None) -> np.ndarray:
        """Apply ``fn`` to the Python values of each valid row."""
        out = np.zeros(self.n, dtype=bool)
        rows = self.rows(valid)
        if len(rows):
            columns = [_objects(p, self.n)[rows] for p in parts]
            out[rows] = [bool(fn(*values)) for values in zip(*columns, strict=True)]
        return out

    # -- conditions --------------------------------------------------------

    def condition(self, node: Expr) -> np.ndarray:
        if isinstance(node, And):
            out = self.condition(node.items[0]).copy()
            for item in node.items[1:]:
                if not out.any():
                    break  # nothing left to keep: later items cannot change the answer
                out &= self.condition(item)
            return out
        if isinstance(node, Or):
            out = self.condition(node.items[0]).copy()
            for item in node.items[1:]:
                if out.all():
                    break
                out |= self.condition(item)
            return out
        if isinstance(node, Not):
            return ~self.condition(node.item)
        if isinstance(node, Compare):
            return self.compare(node.op, self.value(node.left), self.value(node.right))
        if isinstance(node, In):
            return self.membership(node)
        if isinstance(node, Like):
            return self.like(node)
        if isinstance(node, IsNull):
            null = self.batch.null_mask(node.field.name)
            if null is None:
                return np.full(self.n, node.negate)
            null = np.asarray(null, dtype=bool)
            return ~null if node.negate else null.copy()
        if isinstance(node, Call) and node.name != "array_length":
            return self.contains(node)
        if isinstance(node, Literal):
            return np.full(self.n, node.value is True)
        # A BOOL field, a JSON value or a BOOL array element used as a condition.
        vec = self.value(node)
        if vec.form == "typed":
            return self.finish(vec.data.astype(bool), vec.valid)
        return self.rowwise(lambda v: v is True or (isinstance(v, np.bool_) and bool(v)), [vec], vec.valid)

    def compare(self, op: str, left: _Vec, right: _Vec) -> np.ndarray:
        valid = _both(left.valid, right.valid)
        if left.numeric() and right.numeric():
            # Both sides typed numbers or bools: one numpy operation.
            return self.finish(_NUMPY_COMPARE[op](left.data, right.data), valid)
        if op != "!=" and {left.form, right.form} == {"object", "const"}:
            obj, const = (left, right) if left.form == "object" else (right, left)
            if isinstance(const.data, str):
                rows = self.rows(valid)
                fn = _NUMPY_COMPARE[op]
                try:
                    # Exact for strings: str == x is only true for a str x, and
                    # ordering a non-str against a str raises instead of guessing.
                    hits = fn(obj.data[rows], const.data) if obj is left else fn(const.data, obj.data[rows])
                except TypeError:
                    pass
                else:
                    out = np.zeros(self.n, dtype=bool)
                    out[rows] = np.asarray(hits, dtype=bool)
                    return out
        return self.rowwise(lambda a, b: _dynamic_compare(op, a, b), [left, right], valid)

    def membership(self, node: In) -> np.ndarray:
        vec = self.value(node.field_expr)
        values = node.values
        if vec.form == "typed":
            data = vec.data
            if data.dtype == bool:
                wanted = [v for v in values if kind_of(v) == "bool"]
                hits = np.isin(data, wanted) if wanted else np.zeros(self.n, dtype=bool)
            else:
                hits = _isin_numbers(data, values)
        elif vec.form == "object" and values and all(type(v) is str for v in values):
            wanted_str = set(values)
            rows = self.rows(vec.valid)
            hits = np.zeros(self.n, dtype=bool)
            hits[rows] = [isinstance(v, str) and v in wanted_str for v in vec.data[rows]]
        else:
            keys = {_hash_key(v) for v in values} - {None}
            hits = self.rowwise(lambda v: _hash_key(v) in keys, [vec], vec.valid)
        if node.negate:
            hits = ~hits
        return self.finish(hits, vec.valid)

    def like(self, node: Like) -> np.ndarray:
        vec = self.value(node.field)
        match = like_matcher(node.pattern)
        return self.rowwise(lambda v: isinstance(v, str) and match(v), [vec], vec.valid)

    def contains(self, node: Call) -> np.ndarray:
        vec = self.value(node.args[0])
        arg = node.args[1]
        assert isinstance(arg, Literal)
        wanted = (arg.value,) if node.name == "array_contains" else tuple(arg.value)
        need_all = node.name == "array_contains_all"
        if vec.form == "ragged":
            ragged: Ragged = vec.data
            if need_all:
                out = np.ones(self.n, dtype=bool)
                for value in wanted:
                    out &= self.ragged_hits(ragged, (value,))
            else:
                out = self.ragged_hits(ragged, wanted)
            return self.finish(out, vec.valid)

        def test(row: Any) -> bool:
            if not isinstance(row, (list, tuple)):
                return False
            present = [any(same_value(e, w) for e in row) for w in wanted]
            return all(present) if need_all else any(present)

        return self.rowwise(test, [vec], vec.valid)

    def ragged_hits(self, ragged: Ragged, wanted: Sequence[Any]) -> np.ndarray:
        """Rows of ``ragged`` holding at least one of ``wanted`` (class-strict)."""
        values = ragged.values
        if values.dtype == object:
            keys = {_hash_key(w) for w in wanted} - {None}
            equal = np.fromiter((_hash_key(v) in keys for v in values), dtype=bool, count=len(values))
        elif values.dtype == bool:
            bools = [w for w in wanted if kind_of(w) == "bool"]
            equal = np.isin(values, bools) if bools else np.zeros(len(values), dtype=bool)
        else:
            equal = _isin_numbers(values, wanted)
        out = np.zeros(self.n, dtype=bool)
        positions = np.flatnonzero(equal)
        if len(positions):
            out[np.searchsorted(ragged.offsets, positions, side="right") - 1] = True
        return out

    # -- values ------------------------------------------------------------

    def column(self, name: str) -> _Vec:
        try:
            data = self.batch.columns[name]
        except KeyError:
            have = ", ".join(self.batch.columns)
            raise FieldNotFoundError(f"the filter reads '{name}' but the batch holds only: {have}") from None
        null = self.batch.null_mask(name)
        valid = None if null is None else ~np.asarray(null, dtype=bool)
        if isinstance(data, Ragged):
            return _Vec(data, valid, "ragged")
        return _Vec(data, valid, "object" if data.dtype == object else "typed")

    def value(self, node: Expr) -> _Vec:
        if isinstance(node, Literal):
            return _Vec(node.value, None, "const")
        if isinstance(node, Field):
            return self.column(node.name)
        if isinstance(node, JsonPath):
            return self.path(node)
        if isinstance(node, Arith):
            return self.arith(node.op, self.value(node.left), self.value(node.right))
        if isinstance(node, Neg):
            item = self.value(node.item)
            if item.form in ("typed", "const"):
                return _Vec(-_widen(item.data), item.valid, item.form)
            return self.arith("-", _Vec(0, None, "const"), item)
        if isinstance(node, Call) and node.name == "array_length":
            return self.length(self.value(node.args[0]))
        return _Vec(self.condition(node), None, "typed")

    def arith(self, op: str, left: _Vec, right: _Vec) -> _Vec:
        valid = _both(left.valid, right.valid)
        if left.numeric() and right.numeric():
            a, b = _widen(left.data), _widen(right.data)
            if op in "/%" and right.form != "const":
                # A zero divisor in a column makes that row's value undefined (null), not inf.
                nonzero = np.asarray(b != 0)
                valid = nonzero if valid is None else valid & nonzero
            if op == "+":
                data = np.add(a, b)
            elif op == "-":
                data = np.subtract(a, b)
            elif op == "*":
                data = np.multiply(a, b)
            elif op == "/":
                data = np.true_divide(a, b)
            else:
                data = np.remainder(a, b)
            return _Vec(np.broadcast_to(data, (self.n,)), valid, "typed")
        rows = self.rows(valid)
        out = np.empty(self.n, dtype=object)
        ok = np.zeros(self.n, dtype=bool)
        if len(rows):
            a_values, b_values = _objects(left, self.n)[rows], _objects(right, self.n)[rows]
            results = [_python_arith(op, a, b) for a, b in zip(a_values, b_values, strict=True)]
            out[rows] = results
            ok[rows] = [r is not None for r in results]
        return _Vec(out, ok, "object")

    def length(self, vec: _Vec) -> _Vec:
        if vec.form == "ragged":
            return _Vec(vec.data.lengths(), vec.valid, "typed")
        rows = self.rows(vec.valid)
        out = np.zeros(self.n, dtype=np.int64)
        ok = np.zeros(self.n, dtype=bool)
        for i in rows:
            v = vec.data[i]
            if isinstance(v, (list, tuple)):
                out[i] = len(v)
                ok[i] = True
        return _Vec(out, ok, "typed")

    def path(self, node: JsonPath) -> _Vec:
        base = self.column(node.field)
        if base.form == "ragged":
            # ARRAY element: arr[k] exists where the row is longer than k.
            ragged: Ragged = base.data
            k = int(node.keys[0])
            starts = ragged.offsets[:-1]
            present = ragged.lengths() > k
            if len(ragged.values):
                data = ragged.values[np.where(present, starts + k, 0)]
            else:
                data = np.zeros(self.n, dtype=ragged.values.dtype)
            valid = _both(present, base.valid)
            return _Vec(data, valid, "object" if data.dtype == object else "typed")
        out = np.empty(self.n, dtype=object)
        ok = np.zeros(self.n, dtype=bool)
        for i in self.rows(base.valid):
            value = base.data[i]
            for key in node.keys:
                if isinstance(key, str):
                    value = value.get(key) if isinstance(value, dict) else None
                elif isinstance(value, list) and key < len(value):
                    value = value[key]
                else:
                    value = None
                if value is None:
                    break
            if value is not None:
                out[i] = value
                ok[i] = True
        return _Vec(out, ok, "object")
