"""Every exception memora_lite raises, in one hierarchy under :class:`MemoraError`.

Catch ``MemoraError`` to handle anything the store rejects. Each class also
inherits the builtin a Python user would reach for first (``KeyError`` for a
missing name, ``ValueError`` for a bad value) so existing ``except`` clauses keep
working.  Messages name the collection, field, value or filter position at
fault, and say how to fix it when there is one fix.

>>> from memora_lite import Memora, MemoraError
>>> with Memora(path=":memory:") as client:
...     try:
...         client.nosql.query(collection_name="nope")
...     except MemoraError as exc:
...         print(type(exc).__name__)
CollectionNotFoundError
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MemoraError(Exception):
    """Base class of every error memora_lite raises on purpose."""


class InvalidArgumentError(MemoraError, ValueError):
    """A call's arguments are malformed (wrong type, conflicting options, negative limit)."""


class InvalidNameError(MemoraError, ValueError):
    """A collection or project name could reach outside the store folder or is malformed."""


class CollectionNotFoundError(MemoraError, KeyError):
    """The named collection does not exist in this store."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class FieldNotFoundError(MemoraError, KeyError):
    """A field named in a call or a filter is not in the collection's schema."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SchemaError(MemoraError, ValueError):
    """A row, column or field definition does not fit the collection's schema."""


class DuplicateIdError(MemoraError, ValueError):
    """An insert names a primary key that is already stored (use ``upsert``)."""


class FilterError(MemoraError, ValueError):
    """A filter expression is malformed, names an unknown field or mixes types.

    Attributes
    ----------
    expression : str
        The filter text as given.
    position : int
        Zero-based character offset of the offending token.
    """

    def __init__(self, message: str, expression: str = "", position: int = 0) -> None:
        self.expression = expression
        self.position = position
        self.reason = message
        if expression:
            caret = " " * position + "^"
            message = f"{message} at position {position}\n  {expression}\n  {caret}"
        super().__init__(message)


class CorruptionError(MemoraError, OSError):
    """An on-disk structure failed its checksum or is malformed.

    The message names the file and, where known, the byte offset.
    """


class CodecError(CorruptionError):
    """An encoded chunk could not be decoded: its lengths or offsets are inconsistent."""


class LockedError(MemoraError, OSError):
    """Another process holds the store's write lock."""


class ReadOnlyError(MemoraError, OSError):
    """A write was attempted on a store opened read-only, or one that turned read-only."""


class StaleDatasetError(MemoraError, RuntimeError):
    """Rows a training dataset indexed were deleted, or no longer match its filter: make a new dataset."""


class ClosedError(MemoraError, RuntimeError):
    """The client was closed; open a new ``Memora`` to continue."""


class StrictModeError(MemoraError, ValueError):
    """A call the cloud would refuse: ``Memora(..., strict=True)`` enforces its documented limits.

    The message names the limit and where it is documented (docs/testing.md#strict-mode).
    """


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest candidate, or ``""``.

    Closeness is difflib's ratio, helped by shared ``_``-separated words so that
    ``start_positions`` finds ``start_token``.

    >>> did_you_mean("finetuning_data", ["finetune_data", "other"])
    " (did you mean 'finetune_data'?)"
    >>> did_you_mean("start_positions", ["start_token", "end_token", "input_ids"])
    " (did you mean 'start_token'?)"
    >>> did_you_mean("zzz", ["abc"])
    ''
    """
    best, best_score = "", 0.0
    words = set(name.lower().split("_"))
    for candidate in candidates:
        score = difflib.SequenceMatcher(None, name.lower(), candidate.lower()).ratio()
        shared = words & set(candidate.lower().split("_"))
        if shared:
            score += 0.5 * max(len(w) for w in shared) / max(len(name), 1) + 0.2
        if score > best_score:
            best, best_score = candidate, score
    return f" (did you mean '{best}'?)" if best_score >= 0.6 else ""
