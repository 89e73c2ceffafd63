"""A store folder: one project's collections, the writer lock, and the shared block cache.

Layout (docs/impl.md#files)::

    <root>/<project>/LOCK               flock()ed by the one writer process
    <root>/<project>/<collection>/      one folder per collection: MANIFEST, log, segments

Collection and project names are checked against a strict pattern before any
path is built, so no name reaches outside the root.

>>> store = Store(":memory:", None, Options())
>>> store.names()
[]
"""

from __future__ import annotations

import os
from typing import Any

from memora_lite.errors import CollectionNotFoundError, InvalidNameError, SchemaError, did_you_mean
from memora_lite.schema import Schema
from memora_lite.storage import filenames
from memora_lite.storage.engine import CollectionEngine, Options
from memora_lite.storage.fs import FileSystem, MemoryFileSystem, OsFileSystem
from memora_lite.storage.segment import BlockCache

MEMORY = ":memory:"
ENV_PATH = "MEMORA_LITE_PATH"


def resolve_root(path: str | os.PathLike[str] | None) -> str:
    """``path``, else ``$MEMORA_LITE_PATH``, else ``./memora_data``, made absolute."""
    if path is None:
        path = os.environ.get(ENV_PATH) or "memora_data"
    path = os.fspath(path)
    return path if path == MEMORY else os.path.abspath(path)


class Store:
    def __init__(self, path: str | os.PathLike[str] | None, project_id: str | None, options: Options,
                 fs: FileSystem | None = None) -> None:
        self.root = resolve_root(path)
        self.project = filenames.DEFAULT_PROJECT if project_id is None else project_id
        if not filenames.is_valid_project_name(self.project):
            raise InvalidNameError(
                f"project_id {self.project!r} is not valid: use letters, digits, '_', '.', '-' "
                "(at most 128, not starting with '.' or '-')"
            )
        self.fs = fs or (MemoryFileSystem() if self.root == MEMORY else OsFileSystem())
        self.folder = os.path.join("/memory" if self.root == MEMORY else self.root, self.project)
        self.options = options
        self.cache = BlockCache(options.cache_bytes)
        self.engines: dict[str, CollectionEngine] = {}
        self.lock_handle: Any = None
        if options.read_only:
            return
        self.fs.makedirs(self.folder)
        self.lock_handle = self.fs.lock(os.path.join(self.folder, filenames.LOCK))
        for name in self.fs.listdir(self.folder):
            if name.startswith(filenames.TRASH_PREFIX):  # a drop that crashed before it finished
                self.fs.rmtree(os.path.join(self.folder, name))

    def _check_name(self, name: object) -> str:
        if not filenames.is_valid_collection_name(name):
            raise InvalidNameError(
                f"collection name {name!r} is not valid: start with a letter or '_', then letters, digits "
                "or '_', at most 255 characters"
            )
        return name  # type: ignore[return-value]

    def names(self) -> list[str]:
        if not self.fs.exists(self.folder):
            return []
        return [
            n for n in self.fs.listdir(self.folder)
            if filenames.is_valid_collection_name(n)
            and self.fs.exists(os.path.join(self.folder, n, filenames.MANIFEST))
        ]

    def exists(self, name: object) -> bool:
        return filenames.is_valid_collection_name(name) and (name in self.engines or name in self.names())

    def engine(self, name: object) -> CollectionEngine:
        """The open engine of an existing collection; CollectionNotFoundError says what does exist."""
        engine = self.engines.get(name) if type(name) is str else None  # every name in it was checked
        if engine is not None:
            return engine
        name = self._check_name(name)
        names = self.names()
        if name not in names:
            where = f"project '{self.project}' in {self.root}"
            listing = ", ".join(names) if names else "none yet; insert creates one"
            raise CollectionNotFoundError(
                f"collection '{name}' does not exist in {where}{did_you_mean(name, names)}; "
                f"collections: {listing}"
            )
        engine = CollectionEngine(self.fs, os.path.join(self.folder, name), name, self.options, self.cache)
        self.engines[name] = engine
        return engine

    def create(self, name: object, schema: Schema) -> CollectionEngine:
        name = self._check_name(name)
        if self.exists(name):
            existing = self.engine(name)
            if existing.schema.fields != schema.fields:
                raise SchemaError(
                    f"collection '{name}' already exists with fields {', '.join(existing.schema.names)}; "
                    "drop_collection first to change its schema"
                )
            return existing
        folder = os.path.join(self.folder, name)
        self.fs.rmtree(folder)  # a folder without MANIFEST is a create that crashed
        engine = CollectionEngine.create(self.fs, folder, name, schema, self.options, self.cache)
        self.fs.sync_dir(self.folder)
        self.engines[name] = engine
        return engine

    def drop(self, name: object) -> None:
        engine = self.engine(name)
        engine.close(flush=False)
        del self.engines[engine.name]
        trash = os.path.join(self.folder, f"{filenames.TRASH_PREFIX}{os.getpid()}")  # short: names run to 255
        self.fs.rmtree(trash)
        self.fs.rename(engine.folder, trash)  # one rename: the collection vanishes whole
        self.fs.sync_dir(self.folder)
        self.fs.rmtree(trash)

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()
        self.engines.clear()
        if self.lock_handle is not None:
            self.fs.unlock(self.lock_handle)
            self.lock_handle = None
