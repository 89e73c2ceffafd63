"""Filter text -> checked expression tree: the tokenizer, the parser and the type check.

The grammar and its rules are in ``docs/filters.md``; this module is their only
implementation.  Three stages, each a plain loop over the text or tree (no
``eval``/``exec``/``compile``, no regex with nested repetition):

1. ``_tokenize`` splits the text into tokens, each with its character offset.
2. ``_Parser`` is a precedence-climbing parser; it folds constant sub-expressions
   (``2 * 3``, ``1 == 1``) and bounds nesting so no ``RecursionError`` escapes.
   Its result depends only on the text, so it is cached by text.
3. ``_Checker`` resolves field names against the schema and rejects type
   mismatches; it is cheap and runs on every call, so a schema change is never
   hidden by a stale cache.

Every failure is a :class:`~memora_lite.errors.FilterError` carrying the offset
of the offending token.

>>> from memora_lite.models import DataType, Field as SchemaField
>>> fields = {"id": SchemaField("id", DataType.INT64, is_primary=True)}
>>> str(parse("0 <= id < 50", fields))
'0 <= id and id < 50'
>>> parse("   ", fields) is None
True
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from memora_lite.errors import FilterError, did_you_mean
from memora_lite.models import DataType
from memora_lite.models import Field as SchemaField
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
    literal_text,
    same_value,
)
from memora_lite.query.evaluate import like_matcher  # constant folding matches like evaluation does

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_FILTER_LENGTH", "parse"]

MAX_FILTER_LENGTH = 65_536
"""Longest filter text accepted, in characters."""

MAX_DEPTH = 200
"""Deepest nesting accepted: parentheses, ``not``, unary minus and operator chains all count."""

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

FUNCTIONS: dict[str, tuple[str, int]] = {
    "array_length": ("array_length", 1),
    "array_contains": ("array_contains", 2),
    "array_contains_all": ("array_contains_all", 2),
    "array_contains_any": ("array_contains_any", 2),
    # Milvus spells the JSON-list versions json_*; they mean the same here.
    "json_contains": ("array_contains", 2),
    "json_contains_all": ("array_contains_all", 2),
    "json_contains_any": ("array_contains_any", 2),
}
"""Accepted function names (lower case) -> (canonical name, argument count)."""

# ---------------------------------------------------------------------------
# Tokenizer

_NUM, _STR, _NAME, _KW, _OP, _EOF = range(6)
Token = tuple[int, Any, int, int]  # (kind, value, start, end)

_KEYWORDS = frozenset({"and", "or", "not", "in", "like", "is", "null", "true", "false"})
_TWO_CHAR = frozenset({"==", "!=", "<=", ">=", "&&", "||"})
_ONE_CHAR = frozenset("<>+-*/%()[],!")
_CMP_OPS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_SPACE = re.compile(r"\s+")
_NAME_RUN = re.compile(r"[^\W\d]\w*")
# No nested repetition: every alternative is a straight run, so matching is linear.
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WORD_CHAR = re.compile(r"[\w.]")
_STRING_RUN = {'"': re.compile(r'[^"\\]*'), "'": re.compile(r"[^'\\]*")}
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f"}
_HEX = frozenset("0123456789abcdefABCDEF")


def _tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; two EOF tokens end the list so look-ahead never overruns."""
    tokens: list[Token] = []
    append = tokens.append
    n = len(text)
    i = 0
    while i < n:
        c = text[i]
        if c == " ":
            i += 1
            continue
        if c in _ONE_CHAR or c in "=&|":
            two = text[i : i + 2]
            if two in _TWO_CHAR:
                append((_OP, two, i, i + 2))
                i += 2
            elif c in _ONE_CHAR:
                append((_OP, c, i, i + 1))
                i += 1
            elif c == "=":
                raise FilterError("'=' is not an operator; compare with '=='", text, i)
            else:
                word = "and" if c == "&" else "or"
                raise FilterError(f"'{c}' is not an operator; use '{c}{c}' or '{word}'", text, i)
            continue
        if c == '"' or c == "'":
            i = _string(text, i, append)
            continue
        if "0" <= c <= "9" or (c == "." and i + 1 < n and "0" <= text[i + 1] <= "9"):
            i = _number(text, i, append)
            continue
        m = _NAME_RUN.match(text, i)
        if m is not None:
            word = m.group()
            lower = word.lower()
            if lower in _KEYWORDS:
                append((_KW, lower, i, m.end()))
            else:
                append((_NAME, word, i, m.end()))
            i = m.end()
            continue
        m = _SPACE.match(text, i)
        if m is not None:
            i = m.end()
            continue
        raise FilterError(f"unexpected character {c!r}", text, i)
    append((_EOF, None, n, n))
    append((_EOF, None, n, n))
    return tokens


def _number(text: str, i: int, append: Callable[[Token], None]) -> int:
    m = _NUMBER.match(text, i)
    assert m is not None  # the caller saw a digit, or '.' then a digit
    end = m.end()
    if end < len(text) and _WORD_CHAR.match(text, end):
        raise FilterError(f"malformed number {text[i : end + 1]!r}", text, i)
    raw = m.group()
    if "." in raw or "e" in raw or "E" in raw:
        append((_NUM, float(raw), i, end))
        return end
    # Check the length before int(): huge digit strings are slow to convert (and
    # Python refuses past 4,300 digits); 2**63 itself is allowed so '-9223372036854775808' works.
    digits = raw.lstrip("0") or "0"
    if len(digits) > 19 or int(digits) > 2**63:
        raise FilterError(f"integer {_clip(raw)} is out of the INT64 range", text, i)
    append((_NUM, int(digits), i, end))
    return end


def _string(text: str, i: int, append: Callable[[Token], None]) -> int:
    quote = text[i]
    run = _STRING_RUN[quote]
    n = len(text)
    parts: list[str] = []
    j = i + 1
    while True:
        m = run.match(text, j)
        assert m is not None  # '*' always matches
        parts.append(m.group())
        j = m.end()
        if j >= n:
            raise FilterError(f"unterminated string: no closing {quote}", text, i)
        if text[j] == quote:
            append((_STR, "".join(parts), i, j + 1))
            return j + 1
        # A backslash.
        if j + 1 >= n:
            raise FilterError(f"unterminated string: no closing {quote}", text, i)
        e = text[j + 1]
        simple = _ESCAPES.get(e)
        if simple is not None:
            parts.append(simple)
            j += 2
        elif e in "xu":
            width = 2 if e == "x" else 4
            digits = text[j + 2 : j + 2 + width]
            if len(digits) != width or not all(d in _HEX for d in digits):
                raise FilterError(f"'\\{e}' needs {width} hex digits", text, j)
            parts.append(chr(int(digits, 16)))
            j += 2 + width
        else:
            # Unknown escapes stay as written, so like patterns keep '\%' and '\_'.
            parts.append("\\" + e)
            j += 2


def _clip(raw: str, limit: int = 30) -> str:
    return raw if len(raw) <= limit else raw[:limit] + "..."


# ---------------------------------------------------------------------------
# Constant folding (shared by the parser; the evaluator follows the same rules)

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


_CLASS_WORDS = {"num": "number", "str": "string", "bool": "bool", "list": "list"}


def _describe_literal(value: Any) -> str:
    name = _CLASS_WORDS.get(kind_of(value) or "", "value")
    return f"{name} literal {_clip(literal_text(value), 40)}"


def _fold_compare(text: str, op: str, left: Literal, right: Literal, pos: int) -> Literal:
    a, b = left.value, right.value
    ka, kb = kind_of(a), kind_of(b)
    if ka != kb:
        message = f"cannot compare {_describe_literal(a)} with {_describe_literal(b)}"
        raise FilterError(message, text, right.pos)
    if op in ("==", "!="):
        equal = same_value(a, b)
        return Literal(equal if op == "==" else not equal, pos=left.pos)
    if ka not in ("num", "str"):
        raise FilterError(f"'{op}' cannot order {ka} values; use == or !=", text, pos)
    return Literal(bool(_COMPARE[op](a, b)), pos=left.pos)


def _check_int(text: str, value: Any, pos: int) -> Any:
    if isinstance(value, int) and not (INT64_MIN <= value <= INT64_MAX):
        raise FilterError(f"integer result {_clip(str(value))} overflows INT64", text, pos)
    return value


def _fold_arith(text: str, op: str, left: Literal, right: Literal, pos: int) -> Literal:
    for side in (left, right):
        if kind_of(side.value) != "num":
            raise FilterError(f"'{op}' needs numbers, not {_describe_literal(side.value)}", text, side.pos)
    a, b = left.value, right.value
    if op == "+":
        value = a + b
    elif op == "-":
        value = a - b
    elif op == "*":
        value = a * b
    elif op == "/":
        value = a / b  # b != 0: the caller rejects literal zero divisors first
    else:
        value = a % b
    return Literal(_check_int(text, value, pos), pos=left.pos)


# ---------------------------------------------------------------------------
# Parser

# Binding power of each level (loosest first); an operator is consumed by
# expr(min_bp) when its power is >= min_bp, and its right side parses at power + 1.
_BP_OR, _BP_AND, _BP_NOT, _BP_CMP, _BP_ADD, _BP_MUL, _BP_NEG = 1, 2, 3, 4, 5, 6, 7
_INFIX_BP = {"or": _BP_OR, "||": _BP_OR, "and": _BP_AND, "&&": _BP_AND, "+": _BP_ADD, "-": _BP_ADD}
_INFIX_BP.update({"*": _BP_MUL, "/": _BP_MUL, "%": _BP_MUL})


class _Parser:
    __slots__ = ("depth", "i", "text", "tokens")

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    def fail(self, message: str, pos: int) -> FilterError:
        return FilterError(message, self.text, pos)

    def show(self, token: Token) -> str:
        if token[0] == _EOF:
            return "the end of the filter"
        return repr(self.text[token[2] : token[3]])

    def parse(self) -> Expr:
        node, _ = self.expr(0)
        token = self.tokens[self.i]
        if token[0] != _EOF:
            if token[0] == _OP and token[1] == ")":
                raise self.fail("unmatched ')'", token[2])
            raise self.fail(f"unexpected {self.show(token)} after a complete expression", token[2])
        return node

    def is_comparison(self, token: Token) -> bool:
        kind, value = token[0], token[1]
        if kind == _OP:
            return value in _CMP_OPS
        if kind == _KW:
            if value in ("in", "like", "is"):
                return True
            nxt = self.tokens[self.i + 1]
            return value == "not" and nxt[0] == _KW and nxt[1] == "in"
        return False

    def expr(self, min_bp: int) -> tuple[Expr, int]:
        """Parse operators of power >= ``min_bp``; return the node and its tree height."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"filter is nested more than {MAX_DEPTH} levels deep", self.tokens[self.i][2])
        left, height = self.prefix(min_bp)
        tokens = self.tokens
        while True:
            token = tokens[self.i]
            kind, value, pos = token[0], token[1], token[2]
            if kind != _OP and kind != _KW:
                break
            if self.is_comparison(token):
                if min_bp > _BP_CMP:
                    break
                left, height = self.comparison(left, height)
                continue
            bp = _INFIX_BP.get(value)
            if bp is None:
                if value == "[":
                    raise self.fail("only a field name can be followed by [...]", pos)
                break
            if bp < min_bp:
                break
            if bp <= _BP_AND:
                left, height = self.logical(left, height, bp)
                continue
            self.i += 1
            right, right_height = self.expr(bp + 1)
            left = self.arith(value, left, right, pos)
            height = max(height, right_height) + 1
            if height > MAX_DEPTH:
                raise self.fail(f"expression is more than {MAX_DEPTH} operators deep", pos)
        if height > MAX_DEPTH:
            # Parentheses, prefixes and operator chains together: the tree itself is
            # bounded, so every later walk over it (check, evaluate, str) stays shallow.
            raise self.fail(f"filter is nested more than {MAX_DEPTH} levels deep", left.pos)
        self.depth -= 1
        return left, height

    def logical(self, left: Expr, height: int, bp: int) -> tuple[Expr, int]:
        # Collect a whole run of 'or' (or 'and') at once: one flat node, no deep tree.
        node_type = Or if bp == _BP_OR else And
        words = ("or", "||") if bp == _BP_OR else ("and", "&&")
        items = list(left.items) if isinstance(left, node_type) else [left]
        first = self.tokens[self.i][2]
        while True:
            token = self.tokens[self.i]
            if token[0] not in (_OP, _KW) or token[1] not in words:
                break
            self.i += 1
            right, right_height = self.expr(bp + 1)
            height = max(height, right_height)
            items.extend(right.items if isinstance(right, node_type) else (right,))
        height += 1
        if height > MAX_DEPTH:
            raise self.fail(f"filter is nested more than {MAX_DEPTH} levels deep", first)
        return node_type(tuple(items), pos=first), height

    def arith(self, op: str, left: Expr, right: Expr, pos: int) -> Expr:
        if op in "/%" and isinstance(right, Literal) and kind_of(right.value) == "num" and right.value == 0:
            raise self.fail("division by zero", right.pos)
        if isinstance(left, Literal) and isinstance(right, Literal):
            return _fold_arith(self.text, op, left, right, pos)
        for side in (left, right):
            if isinstance(side, Literal) and kind_of(side.value) != "num":
                raise self.fail(f"'{op}' needs numbers, not {_describe_literal(side.value)}", side.pos)
        return Arith(op, left, right, pos=pos)

    def comparison(self, left: Expr, height: int) -> tuple[Expr, int]:
        tokens = self.tokens
        token = tokens[self.i]
        kind, value, pos = token[0], token[1], token[2]
        node: Expr
        if kind == _OP:
            # A chain a < b <= c means (a < b) and (b <= c).
            links: list[Expr] = []
            while tokens[self.i][0] == _OP and tokens[self.i][1] in _CMP_OPS:
                op, op_pos = tokens[self.i][1], tokens[self.i][2]
                self.i += 1
                right, right_height = self.expr(_BP_ADD)
                height = max(height, right_height)
                if isinstance(left, Literal) and isinstance(right, Literal):
                    links.append(_fold_compare(self.text, op, left, right, op_pos))
                else:
                    links.append(Compare(op, left, right, pos=op_pos))
                left = right
            node = links[0] if len(links) == 1 else And(tuple(links), pos=links[0].pos)
            height += 1 if len(links) == 1 else 2
        elif value == "is":
            self.i += 1
            negate = tokens[self.i][0] == _KW and tokens[self.i][1] == "not"
            self.i += 1 if negate else 0
            after = tokens[self.i]
            if after[0] != _KW or after[1] != "null":
                word = "'is not'" if negate else "'is'"
                raise self.fail(f"{word} must be followed by 'null', found {self.show(after)}", after[2])
            self.i += 1
            if not isinstance(left, Field):
                raise self.fail("'is null' applies to a field name, not to an expression", pos)
            node = IsNull(left, negate, pos=pos)
            height += 1
        elif value == "like":
            self.i += 1
            pattern = tokens[self.i]
            if pattern[0] != _STR:
                raise self.fail(f"'like' needs a quoted pattern, found {self.show(pattern)}", pattern[2])
            self.i += 1
            if isinstance(left, Literal):
                if not isinstance(left.value, str):
                    raise self.fail(f"'like' needs a string, not {_describe_literal(left.value)}", left.pos)
                node = Literal(like_matcher(pattern[1])(left.value), pos=left.pos)
            else:
                node = Like(left, pattern[1], pos=pos)
            height += 1
        else:  # 'in' or 'not in'
            negate = value == "not"
            self.i += 2 if negate else 1
            opener = tokens[self.i]
            if opener[0] != _OP or opener[1] != "[":
                word = "not in" if negate else "in"
                raise self.fail(f"'{word}' needs a [...] list, found {self.show(opener)}", opener[2])
            values, positions = self.list_literal()
            if isinstance(left, Literal):
                for v, p in zip(values, positions, strict=True):
                    if kind_of(v) != kind_of(left.value):
                        raise self.fail(
                            f"cannot compare {_describe_literal(left.value)} with {_describe_literal(v)}", p
                        )
                hit = any(same_value(left.value, v) for v in values)
                node = Literal(hit != negate, pos=left.pos)
            else:
                node = In(left, values, negate, pos=pos, value_pos=positions)
            height += 1
        after = tokens[self.i]
        if self.is_comparison(after):
            raise self.fail(f"{self.show(after)} cannot follow {value!r} here; add parentheses", after[2])
        return node, height

    def prefix(self, min_bp: int) -> tuple[Expr, int]:
        tokens = self.tokens
        token = tokens[self.i]
        kind, value, pos = token[0], token[1], token[2]
        if kind in (_NUM, _STR):
            self.i += 1
            if kind == _NUM and value == 2**63:
                raise self.fail("integer 9223372036854775808 is out of the INT64 range", pos)
            return Literal(value, pos=pos), 1
        if kind == _NAME:
            self.i += 1
            nxt = tokens[self.i]
            if nxt[0] == _OP and nxt[1] == "(":
                return self.call(value, pos)
            if nxt[0] == _OP and nxt[1] == "[":
                return self.path(value, pos), 1
            return Field(value, pos=pos), 1
        if kind == _OP:
            if value == "(":
                self.i += 1
                node, height = self.expr(0)
                closer = tokens[self.i]
                if closer[0] == _OP and closer[1] == ")":
                    self.i += 1
                    return node, height
                if closer[0] == _EOF:
                    raise self.fail("unclosed '('", pos)
                found = self.show(closer)
                raise self.fail(f"expected ')' to close the '(' at {pos}, found {found}", closer[2])
            if value == "[":
                values, _ = self.list_literal()
                return Literal(values, pos=pos), 1
            if value == "-" or value == "+":
                return self.sign(value, pos)
            if value == "!":
                return self.negation(min_bp, pos)
        if kind == _KW:
            if value == "true" or value == "false":
                self.i += 1
                return Literal(value == "true", pos=pos), 1
            if value == "not":
                return self.negation(min_bp, pos)
            if value == "null":
                raise self.fail("'null' is only valid in 'is null' or 'is not null'", pos)
        if kind == _EOF:
            raise self.fail("unexpected end of the filter: expected a value", pos)
        raise self.fail(f"expected a value, found {self.show(token)}", pos)

    def negation(self, min_bp: int, pos: int) -> tuple[Expr, int]:
        if min_bp > _BP_NOT:
            raise self.fail(f"{self.show(self.tokens[self.i])} needs parentheses here", pos)
        self.i += 1
        item, height = self.expr(_BP_NOT)
        if isinstance(item, Literal):
            if not isinstance(item.value, bool):
                raise self.fail(f"'not' needs a condition, not {_describe_literal(item.value)}", item.pos)
            return Literal(not item.value, pos=pos), height
        return Not(item, pos=pos), height + 1

    def sign(self, op: str, pos: int) -> tuple[Expr, int]:
        self.i += 1
        token = self.tokens[self.i]
        if op == "-" and token[0] == _NUM and token[1] == 2**63:
            # The one integer whose magnitude only fits when negative.
            self.i += 1
            return Literal(INT64_MIN, pos=pos), 1
        item, height = self.expr(_BP_NEG)
        if isinstance(item, Literal):
            if kind_of(item.value) != "num":
                raise self.fail(f"unary '{op}' needs a number, not {_describe_literal(item.value)}", item.pos)
            value = -item.value if op == "-" else item.value
            return Literal(_check_int(self.text, value, pos), pos=pos), height
        if op == "+":
            return item, height
        return Neg(item, pos=pos), height + 1

    def path(self, name: str, pos: int) -> Expr:
        tokens = self.tokens
        keys: list[str | int] = []
        while tokens[self.i][0] == _OP and tokens[self.i][1] == "[":
            self.i += 1
            key = tokens[self.i]
            if key[0] == _STR or (key[0] == _NUM and isinstance(key[1], int) and key[1] <= INT64_MAX):
                keys.append(key[1])
            elif key[0] == _OP and key[1] == "]":
                raise self.fail(f'empty [] after {name!r}: put a "key" or an index inside', key[2])
            else:
                found = self.show(key)
                raise self.fail(f'expected a "key" or a non-negative integer index, found {found}', key[2])
            self.i += 1
            closer = tokens[self.i]
            if closer[0] != _OP or closer[1] != "]":
                raise self.fail(f"expected ']', found {self.show(closer)}", closer[2])
            self.i += 1
        return JsonPath(name, tuple(keys), pos=pos)

    def call(self, name: str, pos: int) -> tuple[Expr, int]:
        spec = FUNCTIONS.get(name.lower())
        if spec is None:
            known = ", ".join(sorted(FUNCTIONS))
            hint = did_you_mean(name.lower(), FUNCTIONS)
            raise self.fail(f"unknown function {name!r}{hint}; known functions: {known}", pos)
        canonical, arity = spec
        tokens = self.tokens
        self.i += 1  # the '('
        args: list[Expr] = []
        height = 0
        if not (tokens[self.i][0] == _OP and tokens[self.i][1] == ")"):
            while True:
                arg, arg_height = self.expr(0)
                args.append(arg)
                height = max(height, arg_height)
                token = tokens[self.i]
                if token[0] == _OP and token[1] == ",":
                    self.i += 1
                    continue
                if token[0] == _OP and token[1] == ")":
                    break
                if token[0] == _EOF:
                    raise self.fail(f"unclosed '(' of {name}()", pos + len(name))
                raise self.fail(f"expected ',' or ')' in {name}(), found {self.show(token)}", token[2])
        self.i += 1  # the ')'
        if len(args) != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise self.fail(f"{canonical}() takes {arity} {plural}, got {len(args)}", pos)
        return Call(canonical, tuple(args), pos=pos), height + 1

    def list_literal(self) -> tuple[tuple[Any, ...], tuple[int, ...]]:
        tokens = self.tokens
        open_pos = tokens[self.i][2]
        self.i += 1
        values: list[Any] = []
        positions: list[int] = []
        while True:
            token = tokens[self.i]
            if token[0] == _OP and token[1] == "]":
                self.i += 1
                return tuple(values), tuple(positions)
            if token[0] == _EOF:
                raise self.fail("unclosed '['", open_pos)
            item, _ = self.expr(_BP_ADD)
            if not isinstance(item, Literal):
                raise self.fail("list elements must be constants", item.pos)
            if isinstance(item.value, tuple):
                raise self.fail("lists cannot be nested", item.pos)
            values.append(item.value)
            positions.append(item.pos)
            token = tokens[self.i]
            if token[0] == _OP and token[1] == ",":
                self.i += 1
            elif not (token[0] == _OP and token[1] == "]"):
                if token[0] == _EOF:
                    raise self.fail("unclosed '['", open_pos)
                raise self.fail(f"expected ',' or ']' in a list, found {self.show(token)}", token[2])


def _syntax_tree(text: str) -> Expr:
    try:
        return _Parser(text, _tokenize(text)).parse()
    except RecursionError:
        # Only reachable when the caller's own stack is already deep; the depth
        # limit keeps ordinary calls far from Python's recursion limit.
        raise FilterError(f"filter is nested too deeply (limit {MAX_DEPTH} levels)") from None


_cached_syntax_tree = lru_cache(maxsize=4096)(_syntax_tree)
_CACHED_LENGTH = 2048  # longer texts are rare and would pin too much memory in the cache


# ---------------------------------------------------------------------------
# Type check against the schema

_KIND_OF_TYPE = {
    DataType.BOOL: "bool",
    DataType.VARCHAR: "str",
    DataType.JSON: "json",
    DataType.ARRAY: "array",
    DataType.FLOAT_VECTOR: "vector",
}


def _type_kind(data_type: DataType) -> str:
    return _KIND_OF_TYPE.get(data_type, "num")


class _Checker:
    """Walks a tree once, resolving fields and checking the class of every operand.

    ``kind()`` answers with a plain string (see ``_type_kind``; "dyn" is a JSON
    value, known only per row); descriptions for messages are built only on the
    error path, which keeps the common case to a few dict look-ups per node.
    """

    __slots__ = ("collection", "fields", "text")

    def __init__(self, text: str, fields: Mapping[str, SchemaField], collection: str) -> None:
        self.text = text
        self.fields = fields
        self.collection = collection

    def fail(self, message: str, pos: int) -> FilterError:
        return FilterError(message, self.text, pos)

    def field(self, name: str, pos: int) -> SchemaField:
        spec = self.fields.get(name)
        if spec is None:
            where = f"collection '{self.collection}'" if self.collection else "the collection"
            stored = ", ".join(self.fields) or "(none)"
            hint = did_you_mean(name, self.fields)
            raise self.fail(f"{where} has no field '{name}'{hint}; stored fields: {stored}", pos)
        if spec.data_type is DataType.FLOAT_VECTOR:
            raise self.fail(f"FLOAT_VECTOR field '{name}' cannot be used in a filter", pos)
        return spec

    def label(self, node: Expr) -> str:
        """How messages name an operand: "INT64 field 'age'", 'string literal "x"', ..."""
        if isinstance(node, Literal):
            return _describe_literal(node.value)
        if isinstance(node, Field):
            return f"{self.field(node.name, node.pos).data_type.value} field '{node.name}'"
        if isinstance(node, JsonPath):
            spec = self.field(node.field, node.pos)
            if spec.data_type is DataType.ARRAY and spec.element_data_type is not None:
                return f"{spec.element_data_type.value} element {node}"
            return f"JSON value {node}"
        if isinstance(node, Call):
            return str(node) if node.name == "array_length" else f"{node.name}(...)"
        if isinstance(node, (Arith, Neg)):
            return f"expression '{node}'"
        return f"condition '{node}'"

    def element(self, node: Expr) -> str:
        """Element class of an ARRAY field operand; "" when unknown (JSON lists)."""
        if isinstance(node, Field):
            spec = self.field(node.name, node.pos)
            if spec.element_data_type is not None:
                return _type_kind(spec.element_data_type)
        return ""

    # -- conditions --------------------------------------------------------

    def condition(self, node: Expr) -> None:
        """Raise unless ``node`` yields true/false per row."""
        if isinstance(node, (And, Or)):
            for item in node.items:
                self.condition(item)
        elif isinstance(node, Compare):
            self.compare(node)
        elif isinstance(node, Not):
            self.condition(node.item)
        elif isinstance(node, In):
            self.membership(node)
        elif isinstance(node, Like):
            self.like(node)
        elif isinstance(node, IsNull):
            self.field(node.field.name, node.field.pos)
        elif isinstance(node, Call) and node.name != "array_length":
            self.call(node)
        else:
            kind = self.kind(node)
            if kind == "bool" or kind == "dyn":
                return  # a BOOL field, a JSON value (true where it is true) or a literal
            hint = f", e.g. '{node} > 0'" if kind == "num" and not isinstance(node, Literal) else ""
            raise self.fail(f"expected a condition, found {self.label(node)}{hint}", node.pos)

    def compare(self, node: Compare) -> None:
        left_kind, right_kind = self.kind(node.left), self.kind(node.right)
        if left_kind == right_kind and (left_kind == "num" or left_kind == "str"):
            return  # the common case, fully ordered
        op = node.op
        kinds = (left_kind, right_kind)
        if "dyn" in kinds:
            # A JSON value's class is only known per row; rows of another class compare false.
            other = node.right if left_kind == "dyn" else node.left
            if self.kind(other) in ("array", "json"):
                raise self.fail(f"cannot compare {self.label(other)} with a JSON value", other.pos)
        elif not (left_kind == right_kind or set(kinds) == {"array", "list"} or "json" in kinds):
            # Point at the side that does not fit: the literal, or else the right operand.
            left_literal = isinstance(node.left, Literal) and not isinstance(node.right, Literal)
            culprit, other = (node.left, node.right) if left_literal else (node.right, node.left)
            raise self.fail(f"cannot compare {self.label(other)} with {self.label(culprit)}", culprit.pos)
        if op != "==" and op != "!=":
            for side, kind in ((node.left, left_kind), (node.right, right_kind)):
                if kind in ("bool", "list", "array", "json"):
                    raise self.fail(f"'{op}' cannot order {self.label(side)}; use == or !=", node.pos)
        if set(kinds) == {"array", "list"}:
            array, values = (node.left, node.right) if left_kind == "array" else (node.right, node.left)
            assert isinstance(values, Literal)
            self.elements(array, values.value, (values.pos,) * len(values.value))

    def elements(self, array: Expr, values: Any, positions: tuple[int, ...]) -> None:
        """Check literal values against the element class of an ARRAY field."""
        element = self.element(array)
        for value, pos in zip(values, positions, strict=True):
            if element and kind_of(value) != element:
                words = _CLASS_WORDS[element]
                message = f"{self.label(array)} holds {words} elements, not {_describe_literal(value)}"
                raise self.fail(message, pos)

    def membership(self, node: In) -> None:
        subject = node.field_expr
        kind = self.kind(subject)
        if kind in ("array", "json", "list"):
            hint = "; use array_contains_any()" if kind == "array" else ""
            raise self.fail(f"'in' needs a single value, not {self.label(subject)}{hint}", subject.pos)
        if kind == "dyn":
            return
        positions = node.value_pos or (node.pos,) * len(node.values)
        for value, pos in zip(node.values, positions, strict=True):
            if kind_of(value) != kind:
                message = f"cannot compare {self.label(subject)} with {_describe_literal(value)}"
                raise self.fail(message, pos)

    def like(self, node: Like) -> None:
        if self.kind(node.field) not in ("str", "dyn"):
            raise self.fail(f"'like' needs a VARCHAR field, not {self.label(node.field)}", node.field.pos)

    def call(self, node: Call) -> str:
        target = node.args[0]
        if self.kind(target) not in ("array", "json", "dyn"):
            raise self.fail(f"{node.name}() needs an ARRAY field, not {self.label(target)}", target.pos)
        if node.name == "array_length":
            return "num"
        arg = node.args[1]
        if not isinstance(arg, Literal):
            raise self.fail(f"the second argument of {node.name}() must be a constant", arg.pos)
        if node.name == "array_contains":
            if isinstance(arg.value, tuple):
                raise self.fail(
                    "array_contains() takes one value; use array_contains_all() or array_contains_any() "
                    "for a list",
                    arg.pos,
                )
            self.elements(target, (arg.value,), (arg.pos,))
        else:
            if not isinstance(arg.value, tuple):
                raise self.fail(f"{node.name}() needs a [...] list as its second argument", arg.pos)
            self.elements(target, arg.value, (arg.pos,) * len(arg.value))
        return "bool"

    # -- values ------------------------------------------------------------

    def kind(self, node: Expr) -> str:
        """The class of values ``node`` yields (raising on any error inside it)."""
        if isinstance(node, Literal):
            return kind_of(node.value) or ""
        if isinstance(node, Field):
            return _type_kind(self.field(node.name, node.pos).data_type)
        if isinstance(node, JsonPath):
            return self.path(node)
        if isinstance(node, (Arith, Neg)):
            parts = (node.left, node.right) if isinstance(node, Arith) else (node.item,)
            for part in parts:
                if self.kind(part) not in ("num", "dyn"):
                    op = node.op if isinstance(node, Arith) else "-"
                    raise self.fail(f"'{op}' needs numbers, not {self.label(part)}", part.pos)
            return "num"
        if isinstance(node, Call):
            return self.call(node)
        self.condition(node)
        return "bool"

    def path(self, node: JsonPath) -> str:
        spec = self.field(node.field, node.pos)
        if spec.data_type is DataType.JSON:
            return "dyn"
        if spec.data_type is DataType.ARRAY and len(node.keys) == 1 and isinstance(node.keys[0], int):
            assert spec.element_data_type is not None
            return _type_kind(spec.element_data_type)
        label = f"{spec.data_type.value} field '{node.field}'"
        if spec.data_type is DataType.ARRAY:
            raise self.fail(f"{label} takes one integer index, e.g. {node.field}[0]", node.pos)
        raise self.fail(f'{label} is not JSON; only JSON fields take ["key"] paths', node.pos)


# ---------------------------------------------------------------------------
# Public entry point


def parse(text: str, fields: Mapping[str, SchemaField], collection: str = "") -> Expr | None:
    """Parse and type-check a filter against a collection's fields.

    Parameters
    ----------
    text : str
        The filter, e.g. ``'0 <= id < 50 and tag like "a%"'``; empty or blank means all rows.
    fields : Mapping[str, Field]
        The collection's fields by name.
    collection : str
        Collection name, used in error messages.

    Returns
    -------
    Expr or None
        The expression tree, or None for an empty filter.

    Raises
    ------
    FilterError
        For any text that is not a valid filter; ``.position`` is the offset of the culprit.

    Examples
    --------
    >>> from memora_lite.models import Field as F
    >>> fields = {"id": F("id", "INT64", is_primary=True), "title": F("title", "VARCHAR")}
    >>> str(parse("id IN [1, 2] AND title LIKE 'ab%'", fields))
    'id in [1, 2] and title like "ab%"'
    >>> try:
    ...     parse("titel == 'x'", fields, "docs")
    ... except FilterError as exc:
    ...     print(exc)
    collection 'docs' has no field 'titel' (did you mean 'title'?); stored fields: id, title at position 0
      titel == 'x'
      ^
    """
    if not isinstance(text, str):
        raise FilterError(f"a filter must be a string, not {type(text).__name__}")
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter is {len(text):,} characters long; the limit is {MAX_FILTER_LENGTH:,}")
    if not text or text.isspace():
        return None
    tree = _cached_syntax_tree(text) if len(text) <= _CACHED_LENGTH else _syntax_tree(text)
    try:
        _Checker(text, fields, collection).condition(tree)
    except RecursionError:
        raise FilterError(f"filter is nested too deeply (limit {MAX_DEPTH} levels)") from None
    return tree
