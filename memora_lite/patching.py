"""``memora_lite.patch()``: run unchanged production code, written for the cloud client, on a local store.

While a patch is active, ``from memorapy import Memora`` and ``from memoradb import
Memora`` (the cloud docs use both spellings) give memora_lite clients. Every client
made during the patch shares one store (in memory unless ``path=`` is given), so
rows the code under test writes through its own client are visible to the test
through another. When the patch ends the store is closed and the modules are put
back: the next patch starts empty.

>>> import memora_lite
>>> def production_code():  # imports the cloud client at call time, as it would in the app
...     from memorapy import Memora
...     client = Memora(project_id="prod", api_key="secret")
...     client.nosql.insert(collection_name="events", data={"id": 1, "kind": "signup"})
>>> with memora_lite.patch() as p:
...     production_code()
...     p.client(project_id="prod").nosql.query(collection_name="events", filter="id == 1")["data"]
[{'id': 1, 'kind': 'signup'}]
>>> @memora_lite.patch()
... def test_counts():
...     production_code()
...     from memoradb import Memora
...     return Memora(project_id="prod").nosql.query(collection_name="events", output_fields=["count(*)"])["data"]
>>> test_counts(), test_counts()  # each call starts from an empty store
([{'count(*)': 1}], [{'count(*)': 1}])
"""

from __future__ import annotations

import functools
import os
import sys
import types
from collections.abc import Callable
from typing import Any, TypeVar

from memora_lite import errors, models
from memora_lite.client import Memora
from memora_lite.errors import ClosedError, InvalidArgumentError
from memora_lite.nosql import NoSQL
from memora_lite.storage.store import MEMORY

MODULE_NAMES = ("memorapy", "memoradb")
"""The cloud client's import names that a patch provides."""

F = TypeVar("F", bound=Callable[..., Any])
_MISSING = object()


def patch(path: str | os.PathLike[str] | None = None, *, strict: bool = False, **options: Any) -> Patch:
    """Route the cloud client's imports to memora_lite while active; a context manager and a decorator.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Store folder shared by every client made during the patch; default in memory.
    strict : bool
        Enforce the cloud's documented limits (see :mod:`memora_lite.strict`).
    **options
        Other :class:`~memora_lite.Memora` options (``flush_bytes``, ``durability``, ...).

    Returns
    -------
    Patch
        Use as ``with patch() as p:`` (``p.client(project_id)`` opens a client on the
        shared store) or as ``@patch()`` on a function (each call gets a fresh store).

    >>> with patch():
    ...     from memorapy import Memora
    ...     type(Memora(project_id="p", api_key="k").nosql).__name__
    'NoSQL'
    >>> "memorapy" in __import__("sys").modules  # put back when the patch ends
    False
    """
    return Patch(path, strict=strict, **options)


class Patch:
    """One activation of :func:`patch`: the shared store, the stand-in modules and what they replaced."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, strict: bool = False, **options: Any) -> None:
        self.path = MEMORY if path is None else path
        self.options = {"strict": strict, **options}
        Memora(path=MEMORY, **self.options).close()  # refuse bad options now, not inside the code under test
        self._clients: dict[str | None, Memora] | None = None
        self._cloud_class: type[Memora] = Memora
        self._saved: list[tuple[str, Any, Any]] = []

    @property
    def active(self) -> bool:
        return self._clients is not None

    def client(self, project_id: str | None = None) -> Memora:
        """A client on the patch's shared store, as the code under test would get it."""
        if self._clients is None:
            raise InvalidArgumentError("this patch is not active; use it as `with memora_lite.patch() as p:`")
        return self._cloud_class(project_id)

    def _shared(self, project_id: str | None) -> Memora:
        assert self._clients is not None
        shared = self._clients.get(project_id)
        if shared is None:
            shared = self._clients[project_id] = Memora(project_id=project_id, path=self.path, **self.options)
        return shared

    def __enter__(self) -> Patch:
        if self._clients is not None:
            raise InvalidArgumentError("this patch is already active; nest a new memora_lite.patch() instead")
        self._clients = {}
        self._cloud_class = _cloud_client_class(self)
        for name in MODULE_NAMES:
            real = sys.modules.get(name)
            if real is not None:  # the real client was imported earlier: swap the class it exports
                self._saved.append((name, real, getattr(real, "Memora", _MISSING)))
                real.Memora = self._cloud_class  # type: ignore[attr-defined]
                continue
            self._saved.append((name, None, None))
            sys.modules[name] = _stand_in(name, self._cloud_class)
            sys.modules[f"{name}.models"] = models
        return self

    def __exit__(self, *exc: object) -> None:
        for name, real, attribute in reversed(self._saved):
            if real is None:
                sys.modules.pop(name, None)
                sys.modules.pop(f"{name}.models", None)
            elif attribute is _MISSING:
                del real.Memora
            else:
                real.Memora = attribute
        self._saved.clear()
        clients, self._clients = self._clients or {}, None
        for client in clients.values():
            client.close()

    def __call__(self, func: F) -> F:
        """Decorate ``func`` so that each call runs inside a fresh activation of this patch."""

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with Patch(self.path, **self.options):
                return func(*args, **kwargs)

        return run  # type: ignore[return-value]


def _cloud_client_class(active: Patch) -> type[Memora]:
    """A ``Memora`` subclass whose instances are handles on ``active``'s shared store."""

    class CloudMemora(Memora):
        """memora_lite standing in for the cloud ``Memora`` client (see :func:`memora_lite.patch`).

        ``project_id`` picks the project; ``api_key`` and any cloud connection
        settings are accepted and ignored. ``close()`` closes this handle only:
        the shared store lives until the patch ends.
        """

        def __init__(self, project_id: str | None = None, api_key: str | None = None, **settings: Any) -> None:
            self.__dict__.update(active._shared(project_id).__dict__)
            self._activation = active._clients

        @property
        def nosql(self) -> NoSQL:
            if active._clients is not self._activation:
                raise ClosedError("the memora_lite.patch() this client was made in has ended, and its store with it")
            return super().nosql

        def close(self) -> None:
            self._store = None

    CloudMemora.__name__ = CloudMemora.__qualname__ = "Memora"
    return CloudMemora


def _stand_in(name: str, client_class: type[Memora]) -> types.ModuleType:
    module = types.ModuleType(name, f"memora_lite standing in for the cloud client '{name}' (memora_lite.patch)")
    module.Memora = client_class  # type: ignore[attr-defined]
    module.models = models  # type: ignore[attr-defined]
    module.Field = models.Field  # type: ignore[attr-defined]
    module.DataType = models.DataType  # type: ignore[attr-defined]
    module.errors = errors  # type: ignore[attr-defined]
    module.MemoraError = errors.MemoraError  # type: ignore[attr-defined]
    return module
