"""Expression tree -> the primary-key ranges and points a filter can match.

The engine keeps rows sorted by primary key, so knowing that ``0 <= id < 50``
admits only keys in ``[0, 50)`` lets it read just those rows.  :func:`plan`
walks the tree: comparisons and ``in`` lists on the key give ranges and points,
``and`` intersects, ``or`` unites, ``not`` complements when its operand is
decided by the key alone; anything else leaves the key unconstrained.  The
plan is always a superset of the matching keys; when ``exact`` it is the set
itself and the engine need not evaluate the filter at all.

>>> from memora_lite.query.ast import Compare, Field, Literal, And
>>> p = plan(And((Compare("<=", Literal(0), Field("id")), Compare("<", Field("id"), Literal(50)))), "id")
>>> p.ranges, p.points, p.exact
([(0, True, 50, False)], None, True)
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from memora_lite.query.ast import And, Compare, Expr, Field, In, Literal, Not, Or, kind_of

__all__ = ["KeyPlan", "Range", "plan"]

Range = tuple[Any, bool, Any, bool]
"""``(lo, lo_inclusive, hi, hi_inclusive)``; ``lo``/``hi`` None is an open end."""

_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_FULL: Range = (None, False, None, False)


@dataclass(frozen=True)
class KeyPlan:
    """The keys a filter can match: the union of ``ranges`` and ``points``.

    Attributes
    ----------
    ranges : list of Range or None
        None when the key is unconstrained (then ``points`` is None too);
        otherwise sorted, non-overlapping, merged ranges (possibly empty).
    points : list or None
        Sorted unique keys outside every range, or None when there are none.
    exact : bool
        True when the key constraint alone decides the filter, so matching rows
        are exactly the admitted keys.
    """

    ranges: list[Range] | None = None
    points: list[Any] | None = None
    exact: bool = True

    @property
    def unconstrained(self) -> bool:
        return self.ranges is None

    @property
    def empty(self) -> bool:
        """True when no key can match."""
        return self.ranges == [] and not self.points

    def admits(self, key: Any) -> bool:
        """Whether one key is in the plan."""
        if self.ranges is None:
            return True
        if self.points:
            i = bisect_right(self.points, key)
            if i and self.points[i - 1] == key:
                return True
        return _admitter(self.ranges)(key)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Boolean mask of the ``keys`` the plan admits.

        >>> import numpy as np
        >>> KeyPlan([(None, False, 2, True)], [5]).contains(np.arange(7)).tolist()
        [True, True, True, False, False, True, False]
        """
        keys = np.asarray(keys)
        if self.ranges is None:
            return np.ones(len(keys), dtype=bool)
        out = np.zeros(len(keys), dtype=bool)
        if self.ranges:
            out |= self._in_ranges(keys)
        if self.points:
            out |= _isin(keys, self.points)
        return out

    def _in_ranges(self, keys: np.ndarray) -> np.ndarray:
        assert self.ranges is not None
        if len(self.ranges) <= 4:
            out = np.zeros(len(keys), dtype=bool)
            for lo, lo_inc, hi, hi_inc in self.ranges:
                inside = np.ones(len(keys), dtype=bool)
                if lo is not None:
                    inside &= (keys >= lo) if lo_inc else (keys > lo)
                if hi is not None:
                    inside &= (keys <= hi) if hi_inc else (keys < hi)
                out |= inside
            return out
        # Many ranges (e.g. from 'not in [...]'): the only range a key can be in is
        # the last one starting at or below it, since ranges are sorted and disjoint.
        ranges = self.ranges
        object_keys = keys.dtype == object
        open_start = ranges[0][0] is None
        starts = [r[0] for r in (ranges[1:] if open_start else ranges)]
        index = np.searchsorted(_bounds(starts, object_keys), keys, side="right") - (0 if open_start else 1)
        found = index >= 0
        index = np.clip(index, 0, len(ranges) - 1)
        # Open ends borrow the range's other bound as a placeholder; their masks ignore it.
        lo = _bounds([r[2] if r[0] is None else r[0] for r in ranges], object_keys)[index]
        hi = _bounds([r[0] if r[2] is None else r[2] for r in ranges], object_keys)[index]
        lo_open = np.array([r[0] is not None and not r[1] for r in ranges])[index]
        hi_none = np.array([r[2] is None for r in ranges])[index]
        hi_inc = np.array([r[3] for r in ranges])[index]
        below_hi = np.where(hi_inc, keys <= hi, keys < hi)
        return found & (~lo_open | (keys != lo)) & (hi_none | below_hi)


def _bounds(values: list[Any], object_keys: bool) -> np.ndarray:
    if object_keys:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    return np.asarray(values)


def _isin(keys: np.ndarray, points: list[Any]) -> np.ndarray:
    if keys.dtype.kind in "iu":
        # Ints and floats apart, so int64 keys beyond 2**53 are not rounded.
        ints = [p for p in points if isinstance(p, int)]
        floats = [p for p in points if not isinstance(p, int)]
        out = np.isin(keys, np.array(ints, dtype=np.int64)) if ints else np.zeros(len(keys), dtype=bool)
        if floats:
            out |= np.isin(keys, np.array(floats, dtype=np.float64))
        return out
    wanted = set(points)
    return np.fromiter((k in wanted for k in keys.tolist()), dtype=bool, count=len(keys))


# ---------------------------------------------------------------------------
# Set algebra on (ranges, points)


def _lo_key(r: Range) -> tuple[Any, ...]:
    # Sort order of range starts: open first, then by value, inclusive before exclusive.
    return (0,) if r[0] is None else (1, r[0], 0 if r[1] else 1)


def _is_empty(r: Range) -> bool:
    lo, lo_inc, hi, hi_inc = r
    if lo is None or hi is None:
        return False
    return bool(lo > hi or (lo == hi and not (lo_inc and hi_inc)))


def _in_range(key: Any, r: Range) -> bool:
    lo, lo_inc, hi, hi_inc = r
    if lo is not None and not (key >= lo if lo_inc else key > lo):
        return False
    return hi is None or bool(key <= hi if hi_inc else key < hi)


def _ends_after(a: Range, b: Range) -> bool:
    """Whether ``a`` reaches at least as far right as ``b``."""
    if a[2] is None:
        return True
    if b[2] is None:
        return False
    return bool(a[2] > b[2] or (a[2] == b[2] and (a[3] or not b[3])))


def _merge(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, disjoint ranges covering the same keys; touching ranges are joined."""
    out: list[Range] = []
    for r in sorted((r for r in ranges if not _is_empty(r)), key=_lo_key):
        if out:
            last = out[-1]
            lo, lo_inc = r[0], r[1]
            # Joined when r starts inside last, or exactly at its end with one side inclusive.
            touches = last[2] is None or lo is None or lo < last[2] or (lo == last[2] and (lo_inc or last[3]))
            if touches:
                end = last if _ends_after(last, r) else r
                out[-1] = (last[0], last[1], end[2], end[3])
                continue
        out.append(r)
    return out


def _intersect_range(a: Range, b: Range) -> Range:
    if a[0] is None:
        lo, lo_inc = b[0], b[1]
    elif b[0] is None or a[0] > b[0]:
        lo, lo_inc = a[0], a[1]
    elif b[0] > a[0]:
        lo, lo_inc = b[0], b[1]
    else:
        lo, lo_inc = a[0], a[1] and b[1]
    if a[2] is None:
        hi, hi_inc = b[2], b[3]
    elif b[2] is None or a[2] < b[2]:
        hi, hi_inc = a[2], a[3]
    elif b[2] < a[2]:
        hi, hi_inc = b[2], b[3]
    else:
        hi, hi_inc = a[2], a[3] and b[3]
    return (lo, lo_inc, hi, hi_inc)


def _normal(ranges: list[Range], points: Iterable[Any], exact: bool) -> KeyPlan:
    """Canonical plan: points inside a range dropped, points on an open range end absorbed."""
    if not points and len(ranges) <= 1:
        # The common single-range case (0 <= id < 50), without the general machinery.
        if not ranges or _is_empty(ranges[0]):
            return KeyPlan([], None, exact)
        lo, lo_inc, hi, hi_inc = ranges[0]
        if lo is None and hi is None:
            return KeyPlan(None, None, exact)
        if lo is not None and lo == hi:
            return KeyPlan([], [lo], exact)
        return KeyPlan([ranges[0]], None, exact)
    merged = _merge(ranges)
    loose: list[Any] = []
    j = 0
    for p in sorted(set(points)):
        # Both lists are sorted: skip the ranges that end before p, then look at one.
        while j < len(merged) and merged[j][2] is not None and merged[j][2] < p:
            j += 1
        if j < len(merged):
            lo, lo_inc, hi, hi_inc = merged[j]
            if _in_range(p, merged[j]):
                continue
            if hi is not None and hi == p:
                merged[j] = (lo, lo_inc, hi, True)
                continue
            if lo is not None and lo == p:
                merged[j] = (lo, True, hi, hi_inc)
                continue
        loose.append(p)
    merged = _merge(merged)
    if merged == [_FULL]:
        return KeyPlan(None, None, exact)
    # A range of one key is a point; merged ranges never touch it, so it stays disjoint.
    single = [r[0] for r in merged if r[0] is not None and r[1] and r[3] and r[0] == r[2]]
    if single:
        merged = [r for r in merged if not (r[0] is not None and r[1] and r[3] and r[0] == r[2])]
        loose = sorted([*loose, *single])
    return KeyPlan(merged, loose or None, exact)


def _admitter(ranges: list[Range]) -> Any:
    """A function telling whether a key lies in one of the sorted, disjoint ``ranges``."""
    starts = [_lo_key(r) for r in ranges]

    def admits(key: Any) -> bool:
        # The last range starting at or before key is the only one that can hold it.
        i = bisect_right(starts, (1, key, 0)) - 1
        return i >= 0 and _in_range(key, ranges[i])

    return admits


def _intersect(a: KeyPlan, b: KeyPlan) -> KeyPlan:
    exact = a.exact and b.exact
    if a.ranges is None:
        return KeyPlan(b.ranges, b.points, exact)
    if b.ranges is None:
        return KeyPlan(a.ranges, a.points, exact)
    # Two-pointer sweep over the sorted range lists: linear, not all pairs.
    ranges: list[Range] = []
    i = j = 0
    while i < len(a.ranges) and j < len(b.ranges):
        ranges.append(_intersect_range(a.ranges[i], b.ranges[j]))
        if _ends_after(a.ranges[i], b.ranges[j]):
            j += 1
        else:
            i += 1
    points: list[Any] = []
    if a.points or b.points:
        in_a, in_b = _admitter(a.ranges), _admitter(b.ranges)
        a_points, b_points = set(a.points or ()), set(b.points or ())
        points = [p for p in a_points if p in b_points or in_b(p)] + [p for p in b_points if in_a(p)]
    return _normal(ranges, points, exact)


def _complement(a: KeyPlan) -> KeyPlan:
    """Every key not admitted by ``a`` (only meaningful when ``a`` is exact)."""
    if a.ranges is None:
        return KeyPlan([], None, True)
    # Points are ranges of one key; the gaps between the merged list are the answer.
    covered = _merge([*a.ranges, *((p, True, p, True) for p in a.points or ())])
    gaps: list[Range] = []
    lo: Any = None
    lo_inc = False
    for r in covered:
        if r[0] is not None:
            gaps.append((lo, lo_inc, r[0], not r[1]))
        if r[2] is None:
            lo = _END
            break
        lo, lo_inc = r[2], not r[3]
    if lo is not _END:
        gaps.append((lo, lo_inc, None, False))
    return _normal(gaps, (), True)


_END = object()  # marks "the last range runs to +infinity" in _complement


# ---------------------------------------------------------------------------
# The walk

_UNKNOWN = KeyPlan(None, None, False)


def _plannable(value: Any) -> bool:
    kind = kind_of(value)
    if kind == "str":
        return True
    return kind == "num" and not (isinstance(value, float) and math.isnan(value))


def _leaf(node: Expr, key: str) -> KeyPlan:
    if isinstance(node, Literal):
        return KeyPlan(None, None, True) if node.value is True else KeyPlan([], None, True)
    if isinstance(node, Compare):
        if isinstance(node.left, Field) and node.left.name == key and isinstance(node.right, Literal):
            op, value = node.op, node.right.value
        elif isinstance(node.right, Field) and node.right.name == key and isinstance(node.left, Literal):
            op, value = _FLIP[node.op], node.left.value
        else:
            return _UNKNOWN
        if not _plannable(value):
            return _UNKNOWN
        if op == "==":
            return KeyPlan([], [value], True)
        if op == "!=":
            return _normal([(None, False, value, False), (value, False, None, False)], (), True)
        if op in ("<", "<="):
            return KeyPlan([(None, False, value, op == "<=")], None, True)
        return KeyPlan([(value, op == ">=", None, False)], None, True)
    if isinstance(node, In) and isinstance(node.field_expr, Field) and node.field_expr.name == key:
        if not all(_plannable(v) for v in node.values):
            return _UNKNOWN
        admitted = _normal([], node.values, True)
        return _complement(admitted) if node.negate else admitted
    return _UNKNOWN


def _plan(node: Expr, key: str) -> KeyPlan:
    if isinstance(node, And):
        out = _plan(node.items[0], key)
        for item in node.items[1:]:
            out = _intersect(out, _plan(item, key))
        return out
    if isinstance(node, Or):
        # Unite all items at once: folding pairwise would re-sort the growing
        # point list per item, quadratic for 'id == 1 or id == 2 or ...'.
        parts = [_plan(item, key) for item in node.items]
        exact = all(p.exact for p in parts)
        if any(p.ranges is None for p in parts):
            return KeyPlan(None, None, exact)
        ranges = [r for p in parts for r in p.ranges or ()]
        return _normal(ranges, [x for p in parts for x in p.points or ()], exact)
    if isinstance(node, Not):
        inner = _plan(node.item, key)
        return _complement(inner) if inner.exact else _UNKNOWN
    return _leaf(node, key)


def plan(expr: Expr | None, primary_key: str) -> KeyPlan:
    """The primary keys ``expr`` can match.

    Parameters
    ----------
    expr : Expr or None
        A parsed filter; None admits every key.
    primary_key : str
        Name of the collection's primary key field.

    Returns
    -------
    KeyPlan
        Ranges and points admitting every key that can match, and whether
        they decide the filter by themselves (``exact``).

    Examples
    --------
    >>> from memora_lite.models import Field as F
    >>> from memora_lite.query.parser import parse
    >>> fields = {"id": F("id", "INT64", is_primary=True), "n": F("n", "INT64")}
    >>> plan(parse("id in [3, 1, 3] or id >= 10", fields), "id")
    KeyPlan(ranges=[(10, True, None, False)], points=[1, 3], exact=True)
    >>> plan(parse("id < 5 and n == 2", fields), "id")
    KeyPlan(ranges=[(None, False, 5, False)], points=None, exact=False)
    >>> plan(parse("id < 0 and id > 5", fields), "id").ranges
    []
    """
    if expr is None:
        return KeyPlan(None, None, True)
    try:
        return _plan(expr, primary_key)
    except TypeError:
        # Keys of different classes (say a str and an int) cannot be ordered;
        # the filter then cannot use the key order, but stays correct unplanned.
        return _UNKNOWN
