"""Filter expression trees: the nodes :func:`~memora_lite.query.parser.parse` builds.

Every node is a small frozen dataclass.  ``pos`` (keyword-only, ignored by
``==`` and ``repr``) is the zero-based offset in the filter text of the token
the node came from, so later stages can point a caret at it.  ``str(node)``
renders a canonical form that parses back to an equal tree.

>>> tree = And((Compare("<=", Literal(0), Field("id")), Compare("<", Field("id"), Literal(50))))
>>> str(tree)
'0 <= id and id < 50'
>>> sorted(referenced_fields(Like(JsonPath("meta", ("a", 0)), "x%")))
['meta']
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "And",
    "Arith",
    "Call",
    "Compare",
    "Expr",
    "Field",
    "In",
    "IsNull",
    "JsonPath",
    "Like",
    "Literal",
    "Neg",
    "Not",
    "Or",
    "children",
    "kind_of",
    "literal_text",
    "referenced_fields",
    "same_value",
    "walk",
]

# Binding strength used by __str__ to decide where parentheses are needed;
# it mirrors the parser's precedence table (loosest first).
_P_OR, _P_AND, _P_NOT, _P_CMP, _P_ADD, _P_MUL, _P_NEG, _P_ATOM = 1, 2, 3, 4, 5, 6, 7, 9


@dataclass(frozen=True, slots=True)
class Expr:
    """Base class of every filter node."""

    pos: int = field(default=0, compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    @property
    def precedence(self) -> int:
        return _P_ATOM


def _wrap(node: Expr, at_least: int) -> str:
    text = str(node)
    return f"({text})" if node.precedence < at_least else text


def kind_of(value: Any) -> str | None:
    """The value class filters compare within: "bool", "num", "str", "list", "dict" or None.

    bool is its own class (``true == 1`` is false), unlike in Python.

    >>> kind_of(True), kind_of(3), kind_of(2.5), kind_of("x"), kind_of(None)
    ('bool', 'num', 'num', 'str', None)
    """
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "num"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    # numpy scalars arrive here when rows come from typed columns.
    if hasattr(value, "dtype") and getattr(value, "shape", None) == ():
        return kind_of(value.item())
    return None


def same_value(a: Any, b: Any) -> bool:
    """Filter equality: like ``==`` but values of different classes are never equal.

    >>> same_value(1, 1.0), same_value(True, 1), same_value([1, "a"], (1, "a"))
    (True, False, True)
    """
    kind = kind_of(a)
    if kind is None or kind != kind_of(b):
        return False
    if kind == "list":
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if kind == "dict":
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return bool(a == b)


def literal_text(value: Any) -> str:
    """Render a literal value the way the filter language spells it.

    >>> literal_text('say "hi"'), literal_text(True), literal_text((1, 2.5))
    ('"say \\\\"hi\\\\""', 'true', '[1, 2.5]')
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "(1e999 - 1e999)"  # the language has no nan literal; this folds back to nan
        if math.isinf(value):
            return "1e999" if value > 0 else "-1e999"
        return repr(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch == "\\":
                out.append("\\\\")
            elif ch == '"':
                out.append('\\"')
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ch == "\r":
                out.append("\\r")
            elif ord(ch) < 0x20 or 0xD800 <= ord(ch) <= 0xDFFF:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, tuple):
        return "[" + ", ".join(literal_text(v) for v in value) + "]"
    raise TypeError(f"not a filter literal: {value!r}")


@dataclass(frozen=True, slots=True)
class Literal(Expr):
    """A constant: int, float, str, bool, or a tuple of those (a ``[...]`` list)."""

    value: Any

    def __str__(self) -> str:
        return literal_text(self.value)

    @property
    def precedence(self) -> int:
        # A negative number renders with a leading '-', which binds like unary minus.
        value = self.value
        if kind_of(value) == "num" and (value < 0 or math.isnan(value)):
            return _P_NEG
        return _P_ATOM


@dataclass(frozen=True, slots=True)
class Field(Expr):
    """A column of the collection, by name."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class JsonPath(Expr):
    """``field["key"][0]...``: a value inside a JSON field, or one element of an ARRAY field."""

    field: str
    keys: tuple[str | int, ...]

    def __str__(self) -> str:
        return self.field + "".join(f"[{literal_text(k)}]" for k in self.keys)


@dataclass(frozen=True, slots=True)
class Neg(Expr):
    """Unary minus of a non-constant operand (constants are folded by the parser)."""

    item: Expr

    def __str__(self) -> str:
        # "--a" is safe: the lexer has no "--" token, so it reads back as two minuses.
        return "-" + _wrap(self.item, _P_NEG)

    @property
    def precedence(self) -> int:
        return _P_NEG


@dataclass(frozen=True, slots=True)
class Arith(Expr):
    """``left op right`` with op one of ``+ - * / %``."""

    op: str
    left: Expr
    right: Expr

    def __str__(self) -> str:
        p = self.precedence
        return f"{_wrap(self.left, p)} {self.op} {_wrap(self.right, p + 1)}"

    @property
    def precedence(self) -> int:
        return _P_ADD if self.op in "+-" else _P_MUL


@dataclass(frozen=True, slots=True)
class Call(Expr):
    """A function call; ``name`` is the canonical lower-case function name."""

    name: str
    args: tuple[Expr, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(str(a) for a in self.args)})"


@dataclass(frozen=True, slots=True)
class Compare(Expr):
    """``left op right`` with op one of ``== != < <= > >=``."""

    op: str
    left: Expr
    right: Expr

    def __str__(self) -> str:
        return f"{_wrap(self.left, _P_ADD)} {self.op} {_wrap(self.right, _P_ADD)}"

    @property
    def precedence(self) -> int:
        return _P_CMP


@dataclass(frozen=True, slots=True)
class In(Expr):
    """``field_expr in [values]`` (or ``not in`` when ``negate``)."""

    field_expr: Expr
    values: tuple[Any, ...]
    negate: bool = False
    # Where each list element starts, for type errors that point at one element.
    value_pos: tuple[int, ...] = field(default=(), compare=False, repr=False, kw_only=True)

    def __str__(self) -> str:
        op = "not in" if self.negate else "in"
        return f"{_wrap(self.field_expr, _P_ADD)} {op} {literal_text(self.values)}"

    @property
    def precedence(self) -> int:
        return _P_CMP


@dataclass(frozen=True, slots=True)
class Like(Expr):
    """``field like "pattern"``: ``%`` matches any run, ``_`` one character."""

    field: Expr
    pattern: str

    def __str__(self) -> str:
        return f"{_wrap(self.field, _P_ADD)} like {literal_text(self.pattern)}"

    @property
    def precedence(self) -> int:
        return _P_CMP


@dataclass(frozen=True, slots=True)
class IsNull(Expr):
    """``field is null`` (or ``is not null`` when ``negate``)."""

    field: Field
    negate: bool = False

    def __str__(self) -> str:
        return f"{self.field} is {'not null' if self.negate else 'null'}"

    @property
    def precedence(self) -> int:
        return _P_CMP


@dataclass(frozen=True, slots=True)
class Not(Expr):
    """Logical negation: true exactly where ``item`` is false (nulls included)."""

    item: Expr

    def __str__(self) -> str:
        return "not " + _wrap(self.item, _P_NOT)

    @property
    def precedence(self) -> int:
        return _P_NOT


@dataclass(frozen=True, slots=True)
class And(Expr):
    """True where every item is true."""

    items: tuple[Expr, ...]

    def __str__(self) -> str:
        return " and ".join(_wrap(i, _P_NOT) for i in self.items)

    @property
    def precedence(self) -> int:
        return _P_AND


@dataclass(frozen=True, slots=True)
class Or(Expr):
    """True where any item is true."""

    items: tuple[Expr, ...]

    def __str__(self) -> str:
        return " or ".join(_wrap(i, _P_AND) for i in self.items)

    @property
    def precedence(self) -> int:
        return _P_OR


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``node``, left to right."""
    if isinstance(node, (And, Or)):
        return node.items
    if isinstance(node, (Compare, Arith)):
        return (node.left, node.right)
    if isinstance(node, (Not, Neg)):
        return (node.item,)
    if isinstance(node, In):
        return (node.field_expr,)
    if isinstance(node, (Like, IsNull)):
        return (node.field,)
    if isinstance(node, Call):
        return node.args
    return ()


def walk(node: Expr) -> Iterator[Expr]:
    """Every node of the tree, parents before children (no recursion, so any depth is safe)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def referenced_fields(expr: Expr | None) -> set[str]:
    """Names of the fields a filter reads, so the engine loads only those columns.

    >>> from memora_lite.query.ast import Compare, Field, Literal
    >>> referenced_fields(Compare("==", Field("a"), Literal(1)))
    {'a'}
    >>> referenced_fields(None)
    set()
    """
    if expr is None:
        return set()
    out: set[str] = set()
    for node in walk(expr):
        if isinstance(node, Field):
            out.add(node.name)
        elif isinstance(node, JsonPath):
            out.add(node.field)
    return out
