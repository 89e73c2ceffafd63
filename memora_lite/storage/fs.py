"""The file-system seam: every byte memora_lite reads or writes passes through here.

Two implementations share one small interface:

* :class:`OsFileSystem` — real files. Reads use ``os.pread`` (no shared file
  offset, so a store opened before ``fork()`` keeps working in the children);
  appends use one ``os.write`` (or ``os.writev``) per call; ``sync`` is ``fsync``.
* :class:`MemoryFileSystem` — files in a dict, for ``path=":memory:"`` stores and
  for crash tests: it remembers what was synced, and :meth:`MemoryFileSystem.crash`
  drops every byte and every rename that a power cut would lose.

>>> fs = MemoryFileSystem()
>>> fs.makedirs("/s")
>>> log = fs.open_appender("/s/a.log")
>>> log.append(b"hello")
>>> fs.crash()                      # never synced: the file is gone
>>> fs.exists("/s/a.log")
False
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import threading
from dataclasses import dataclass, field

from memora_lite.errors import LockedError


class Reader:
    """Random-access reads of one immutable file."""

    size: int

    def pread(self, offset: int, length: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class Appender:
    """Append-only writes to one file (the write-ahead log)."""

    size: int

    def append(self, data: bytes) -> None:
        raise NotImplementedError

    def append_parts(self, parts: list[bytes]) -> None:
        """Append the concatenation of ``parts``, as :meth:`append` would."""
        self.append(b"".join(parts))

    def sync(self) -> None:
        raise NotImplementedError

    def truncate(self, size: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class FileSystem:
    """The operations the storage engine needs; see the module docstring."""

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def listdir(self, path: str) -> list[str]:
        raise NotImplementedError

    def makedirs(self, path: str) -> None:
        raise NotImplementedError

    def read(self, path: str) -> bytes:
        raise NotImplementedError

    def open_reader(self, path: str) -> Reader:
        raise NotImplementedError

    def open_appender(self, path: str) -> Appender:
        """Open ``path`` for appending, creating it if missing."""
        raise NotImplementedError

    def write_file(self, path: str, data: bytes) -> None:
        """Create ``path`` holding ``data`` and sync it (its folder entry is synced by the caller)."""
        raise NotImplementedError

    def rename(self, src: str, dst: str) -> None:
        raise NotImplementedError

    def remove(self, path: str) -> None:
        raise NotImplementedError

    def rmtree(self, path: str) -> None:
        raise NotImplementedError

    def sync_dir(self, path: str) -> None:
        raise NotImplementedError

    def lock(self, path: str) -> object:
        """Take the exclusive writer lock at ``path``; LockedError names the holder otherwise."""
        raise NotImplementedError

    def unlock(self, handle: object) -> None:
        raise NotImplementedError

    def file_size(self, path: str) -> int:
        raise NotImplementedError

    def signature(self, path: str) -> tuple[int, ...]:
        """Changes whenever ``path`` is replaced or rewritten (how readers notice a new manifest)."""
        raise NotImplementedError


# -- real files ------------------------------------------------------------------------------------


class _OsReader(Reader):
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        self.size = os.fstat(self.fd).st_size

    def pread(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_MAX_GATHER = 512  # buffers per writev, well under every platform's IOV_MAX (1,024 on Linux)


class _OsAppender(Appender):
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o644)
        self.size = os.fstat(self.fd).st_size

    def append(self, data: bytes) -> None:
        written = os.write(self.fd, data)
        self.size += written
        if written < len(data):  # os.write may write less than asked on some file systems
            view = memoryview(data)[written:]
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
                self.size += written

    def append_parts(self, parts: list[bytes]) -> None:
        """One ``writev``: a large record's parts go to the kernel without being joined first."""
        if len(parts) > _MAX_GATHER:
            self.append(b"".join(parts))
            return
        written = os.writev(self.fd, parts)
        self.size += written
        if written < sum(map(len, parts)):  # a short write: finish the rest with plain writes
            self.append(b"".join(parts)[written:])

    def sync(self) -> None:
        os.fsync(self.fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        self.size = size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class OsFileSystem(FileSystem):
    """Real files through ``os``."""

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def open_reader(self, path: str) -> Reader:
        return _OsReader(path)

    def open_appender(self, path: str) -> Appender:
        return _OsAppender(path)

    def write_file(self, path: str, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)

    def rmtree(self, path: str) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def sync_dir(self, path: str) -> None:
        fd = os.open(path or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def file_size(self, path: str) -> int:
        return os.stat(path).st_size

    def signature(self, path: str) -> tuple[int, ...]:
        st = os.stat(path)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def lock(self, path: str) -> object:
        # flock: the lock belongs to this open file description, so nothing else this
        # process opens and closes (a backup copying the folder, say) can drop it, as it
        # would a POSIX lockf lock. A forked child would share the description and keep
        # the lock alive after the writer dies, so children close it at once (see
        # _forget_locks_in_child); exec'd children never get it (O_CLOEXEC).
        key = os.path.realpath(path)
        with _LOCKS_HELD_MUTEX:
            if key in _LOCKS_HELD:
                raise LockedError(
                    f"store '{os.path.dirname(path)}' is already open for writing in this process "
                    f"({os.getpid()}); reuse that client, or open this one with read_only=True"
                )
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise LockedError(
                        f"store '{os.path.dirname(path)}' is open for writing by process {holder}; close it "
                        "there, or open this one with read_only=True"
                    ) from None
                raise
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            _LOCKS_HELD[key] = fd
            return key

    def unlock(self, handle: object) -> None:
        with _LOCKS_HELD_MUTEX:
            fd = _LOCKS_HELD.pop(handle, -1)  # type: ignore[call-overload]
            if fd >= 0:
                os.close(fd)  # the last descriptor of the lock's file description: the lock goes


_LOCKS_HELD: dict[str, int] = {}  # realpath of LOCK -> the descriptor holding its flock
_LOCKS_HELD_MUTEX = threading.Lock()


_forks_seen = 0  # forks between this process and the one that imported this module


def forks_seen() -> int:
    """How many forks lie between this process and the one that imported memora_lite: state
    made before a fork (a writer's log) is recognised by it in the child."""
    return _forks_seen


def _after_fork_in_child() -> None:
    """Close inherited lock descriptors, so only the writer holds its lock; count the fork."""
    global _forks_seen
    _forks_seen += 1
    for fd in _LOCKS_HELD.values():
        os.close(fd)
    _LOCKS_HELD.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


# -- in-memory files, with crash simulation -----------------------------------------------------


@dataclass
class _MemFile:
    data: bytearray = field(default_factory=bytearray)
    durable: bytes | None = None  # content as of the last sync; None = never synced


class _MemReader(Reader):
    def __init__(self, file: _MemFile) -> None:
        self.file = file
        self.size = len(file.data)

    def pread(self, offset: int, length: int) -> bytes:
        return bytes(self.file.data[offset : offset + length])

    def close(self) -> None:
        pass


class _MemAppender(Appender):
    def __init__(self, fs: MemoryFileSystem, file: _MemFile) -> None:
        self.fs = fs
        self.file = file
        self.size = len(file.data)

    def append(self, data: bytes) -> None:
        self.fs.before_write(len(data))
        self.file.data += data
        self.size = len(self.file.data)

    def sync(self) -> None:
        self.fs.before_sync()
        self.file.durable = bytes(self.file.data)

    def truncate(self, size: int) -> None:
        del self.file.data[size:]
        self.size = size

    def close(self) -> None:
        pass


class MemoryFileSystem(FileSystem):
    """Files in memory. Tracks synced state so :meth:`crash` can model a power cut.

    Subclasses (the fault-injecting file systems in tests) override
    :meth:`before_write` and :meth:`before_sync` to fail on cue.
    """

    def __init__(self) -> None:
        self.files: dict[str, _MemFile] = {}
        self.dirs: set[str] = {"", "/"}
        self.durable_names: dict[str, _MemFile] = {}  # folder entries as of their last sync_dir
        # Guards the folder tables: a background flush creates, renames and lists files while
        # another thread appends to the log. Fault hooks run outside it.
        self.mutex = threading.RLock()

    def before_write(self, nbytes: int) -> None:
        """Hook for fault injection; the default does nothing."""

    def before_sync(self) -> None:
        """Hook for fault injection; the default does nothing."""

    def exists(self, path: str) -> bool:
        return path in self.files or path in self.dirs

    def listdir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        with self.mutex:
            names = {p[len(prefix) :].split("/")[0] for p in (*self.files, *self.dirs) if p.startswith(prefix)}
        if not self.exists(path):
            raise FileNotFoundError(path)
        return sorted(n for n in names if n)

    def makedirs(self, path: str) -> None:
        with self.mutex:
            while path not in self.dirs:
                self.dirs.add(path)
                path = os.path.dirname(path)

    def _file(self, path: str) -> _MemFile:
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, "no such file", path) from None

    def read(self, path: str) -> bytes:
        return bytes(self._file(path).data)

    def open_reader(self, path: str) -> Reader:
        return _MemReader(self._file(path))

    def open_appender(self, path: str) -> Appender:
        with self.mutex:
            return _MemAppender(self, self.files.setdefault(path, _MemFile()))

    def write_file(self, path: str, data: bytes) -> None:
        self.before_write(len(data))
        self.before_sync()
        with self.mutex:
            self.files[path] = _MemFile(bytearray(data), bytes(data))

    def rename(self, src: str, dst: str) -> None:
        with self.mutex:
            if src in self.files:
                self.files[dst] = self.files.pop(src)
                return
            moved = {p: f for p, f in self.files.items() if p.startswith(src + "/")}
            for p, f in moved.items():
                del self.files[p]
                self.files[dst + p[len(src) :]] = f
            self.dirs = {dst + d[len(src) :] if d == src or d.startswith(src + "/") else d for d in self.dirs}

    def remove(self, path: str) -> None:
        with self.mutex:
            self.files.pop(path, None)

    def rmtree(self, path: str) -> None:
        with self.mutex:
            for p in [p for p in self.files if p.startswith(path + "/")]:
                del self.files[p]
            self.dirs = {d for d in self.dirs if d != path and not d.startswith(path + "/")}

    def sync_dir(self, path: str) -> None:
        self.before_sync()
        prefix = path.rstrip("/") + "/"
        with self.mutex:
            for p in [p for p in self.durable_names if p.startswith(prefix) and "/" not in p[len(prefix) :]]:
                del self.durable_names[p]
            for p, f in self.files.items():
                if p.startswith(prefix) and "/" not in p[len(prefix) :]:
                    self.durable_names[p] = f

    def file_size(self, path: str) -> int:
        return len(self._file(path).data)

    def signature(self, path: str) -> tuple[int, ...]:
        f = self._file(path)
        return (id(f), len(f.data))

    def lock(self, path: str) -> object:
        return path  # one process owns an in-memory store

    def unlock(self, handle: object) -> None:
        pass

    def crash(self) -> None:
        """Forget everything a power cut would: unsynced bytes and unsynced folder entries.

        Folders themselves are kept (the engine creates them once, up front).
        """
        with self.mutex:
            survivors = {p: _MemFile(bytearray(f.durable or b""), f.durable) for p, f in self.durable_names.items()}
            self.files = survivors
            self.durable_names = dict(survivors)
