"""``Memora``: the client object. It opens the store folder and exposes ``.nosql``.

>>> from memora_lite import Memora
>>> with Memora(project_id="YOUR_PROJECT", api_key="ignored", path=":memory:") as client:
...     _ = client.nosql.insert(collection_name="finetune_data", data={"id": 0, "start_token": 5})
...     client.nosql.list_collections()
['finetune_data']
"""

from __future__ import annotations

import os
from typing import Any

from memora_lite.errors import ClosedError, InvalidArgumentError
from memora_lite.nosql import NoSQL
from memora_lite.storage.engine import DURABILITY_LEVELS, Options
from memora_lite.storage.store import MEMORY, Store
from memora_lite.strict import StrictNoSQL


class Memora:
    """An in-process Memora client on local files.

    Parameters
    ----------
    project_id : str, optional
        Names a sub-folder of the store, so projects stay apart (default ``"default"``).
    api_key : str, optional
        Accepted for compatibility with the cloud client and ignored.
    path : str or os.PathLike, optional
        Store folder; default ``$MEMORA_LITE_PATH``, else ``./memora_data``.
        ``":memory:"`` keeps everything in this process.
    read_only : bool
        Open without the writer lock; any number of readers may do so.
    durability : {"process", "full"}
        ``"process"`` (default): a returned write survives ``kill -9`` of this process.
        ``"full"``: it also survives power loss (the log is fsynced on every call).
    flush_bytes : int
        Memtable size at which rows are written to a new segment.
    strict : bool
        Refuse calls the cloud would refuse (query window, request size, field
        count): see :mod:`memora_lite.strict`. Off by default.
    """

    def __init__(self, project_id: str | None = None, api_key: str | None = None,
                 path: str | os.PathLike[str] | None = None, **options: Any) -> None:
        known = {"read_only", "durability", "flush_bytes", "segment_rows", "cache_bytes", "strict"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidArgumentError(f"Memora() got unknown option(s) {', '.join(unknown)}; "
                                       f"known: {', '.join(sorted(known))}")
        if options.get("durability", "process") not in DURABILITY_LEVELS:
            raise InvalidArgumentError(f"durability={options['durability']!r}; use one of {DURABILITY_LEVELS}")
        self.project_id = project_id
        self.path = path
        strict = options.pop("strict", False)
        if not isinstance(strict, bool):
            raise InvalidArgumentError(f"strict={strict!r}; use True or False")
        self._options = {**options, "strict": True} if strict else options  # what a pickled copy reopens with
        self._store: Store | None = Store(path, project_id, Options(**options))
        self._nosql = (StrictNoSQL if strict else NoSQL)(self._store)

    @property
    def nosql(self) -> NoSQL:
        if self._store is None:
            raise ClosedError("this Memora client is closed; create a new one")
        return self._nosql

    @property
    def in_memory(self) -> bool:
        return os.fspath(self.path) == MEMORY if self.path is not None else False

    def flush(self) -> None:
        """Make every write so far durable against power loss, in every collection."""
        self.nosql.flush()

    def close(self) -> None:
        """Flush buffered rows to segments and release the store; safe to call twice."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Memora:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as path and options; unpickling opens the store read-only (DataLoader workers, spawn)."""
        if self.in_memory:
            raise InvalidArgumentError(
                'a Memora(path=":memory:") store lives in one process and cannot be pickled; use a folder path'
            )
        path = self._store.root if self._store is not None else self.path
        return (_reopen_read_only, (self.project_id, path, self._options))

    def __repr__(self) -> str:
        state = "closed" if self._store is None else self._store.folder
        return f"Memora(project_id={self.project_id!r}, path={state!r})"


def _reopen_read_only(project_id: str | None, path: str, options: dict[str, Any]) -> Memora:
    return Memora(project_id=project_id, path=path, **{**options, "read_only": True})
