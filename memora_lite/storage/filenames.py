"""Every file name in a store folder, in one place (see docs/impl.md#files).

>>> segment_name(7), deletes_name(7, 9), wal_name(12)
('seg-000007.mls', 'seg-000007.del-000009', 'wal-000012.log')
>>> parse_number("wal-000012.log")
('wal', 12)
"""

from __future__ import annotations

import re

MANIFEST = "MANIFEST"
LOCK = "LOCK"
TRASH_PREFIX = ".trash-"
TEMP_SUFFIX = ".tmp"
DEFAULT_PROJECT = "default"

_NUMBERED = re.compile(r"^(seg|wal)-(\d{6,})(?:\.mls|\.log|\.del-(\d{6,}))$")
_COLLECTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_PROJECT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def segment_name(number: int) -> str:
    return f"seg-{number:06d}.mls"


def deletes_name(segment_number: int, number: int) -> str:
    return f"seg-{segment_number:06d}.del-{number:06d}"


def wal_name(number: int) -> str:
    return f"wal-{number:06d}.log"


def parse_number(name: str) -> tuple[str, int] | None:
    """``(kind, number)`` for a numbered store file, None for any other name."""
    m = _NUMBERED.match(name)
    if not m:
        return None
    kind = "del" if m.group(3) else m.group(1)
    return kind, int(m.group(3) or m.group(2))


def is_valid_collection_name(name: object) -> bool:
    """Milvus' rule: a letter or '_' then letters, digits, '_'; at most 255 characters.

    It admits no '/', '.', NUL or other character that could leave the store folder,
    and no name of a file the store keeps beside its collections (``LOCK``, in any case).
    """
    return isinstance(name, str) and _COLLECTION.fullmatch(name) is not None and name.upper() != LOCK


def is_valid_project_name(name: object) -> bool:
    """Letters, digits, '_', '.', '-'; not starting with '.' or '-'; at most 128 characters."""
    return isinstance(name, str) and _PROJECT.fullmatch(name) is not None
