"""The Operations base class that file systems subclass, and the handler argument types.

The module keeps upstream's name (``pyfuse3._pyfuse3``) so imports written for pyfuse3 3.4 work.
Every request handler is a coroutine function; a handler the file system does not override
answers ENOSYS, which the kernel treats per operation (see docs/design.md).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import inspect
import logging
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NewType, ParamSpec, TypeVar, overload

from ._types import FUSEError

if TYPE_CHECKING:
    from ._request import ReaddirToken
    from ._session import PollHandle
    from ._types import (
        EntryAttributes,
        FileInfo,
        FileRange,
        RequestContext,
        SetattrFields,
        StatvfsData,
    )

__all__ = [
    "ConnectionInfo",
    "FileHandleT",
    "FileLock",
    "FileNameT",
    "FlagT",
    "InodeT",
    "ModeT",
    "Operations",
    "XAttrNameT",
    "errors_as_fuse",
]

FileHandleT = int  # plain aliases since upstream 3.5
InodeT = int
FileNameT = NewType("FileNameT", bytes)
FlagT = NewType("FlagT", int)
ModeT = NewType("ModeT", int)
XAttrNameT = NewType("XAttrNameT", bytes)

log = logging.getLogger("pyfuse3")


@dataclass(frozen=True)
class FileLock:
    """A POSIX record lock (``fcntl.F_RDLCK``, ``F_WRLCK`` or ``F_UNLCK``) on ``length`` bytes
    from ``start`` (length 0: to the end of the file), held or asked for by process ``pid``."""

    type: int
    start: int
    length: int
    pid: int


@dataclass
class ConnectionInfo:
    """The kernel connection as negotiated at INIT, given to ``Operations.init_connection()``.

    ``capable`` names what the kernel and libfuse offer; ``want`` what the file system will use
    (already filled from pyfuse3's defaults, the ``Operations`` attributes and the conn-info
    mount options). Edit ``want`` and the limits; a name in ``want`` that the kernel does not
    offer makes main() raise ValueError. ``max_read`` is the ``max_read=`` mount option and
    cannot be changed here. Capability names are libfuse's ``FUSE_CAP_*`` in lower case
    (``"writeback_cache"``, ``"posix_acl"``, ``"readdirplus"``, ``"readdirplus_auto"``,
    ``"flock_locks"``, ``"posix_locks"``, ``"parallel_dirops"``, ``"cache_symlinks"``,
    ``"auto_inval_data"``, ``"explicit_inval_data"``, ...: see ``pyfuse3.CAPABILITIES``).
    """

    proto_major: int
    proto_minor: int
    capable: frozenset[str]
    want: set[str] = field(default_factory=set)
    max_write: int = 0
    max_read: int = 0
    max_readahead: int = 0
    max_background: int = 0
    congestion_threshold: int = 0
    time_gran: int = 0


P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C", bound=type)


@overload
def errors_as_fuse(target: C) -> C: ...
@overload
def errors_as_fuse(target: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]: ...


def errors_as_fuse(target: Any) -> Any:
    """Answer an ``OSError`` raised by a handler with its own errno instead of EIO.

    Decorates one handler (an ``async def``), or an ``Operations`` subclass: then every
    request handler the class defines. Without it, an OSError is a handler failure like any
    other (EIO, logged), which keeps a file system's own bugs visible; with it, code that
    forwards to ``os`` calls (a passthrough) passes their errors on. An OSError without an
    errno still answers EIO.
    """
    if isinstance(target, type):
        from ._request import OP_NAMES

        for name in OP_NAMES:
            fn = target.__dict__.get(name)
            if fn is not None and inspect.iscoroutinefunction(fn):
                setattr(target, name, errors_as_fuse(fn))
        return target
    if not inspect.iscoroutinefunction(target):
        raise TypeError(f"errors_as_fuse() decorates an async def handler or an Operations "
                        f"subclass, not {target!r}")

    @functools.wraps(target)
    async def handler(*args: Any, **kwargs: Any) -> Any:
        try:
            return await target(*args, **kwargs)
        except OSError as e:
            raise FUSEError(e.errno or errno.EIO) from e

    return handler


def _nosys() -> FUSEError:
    return FUSEError(errno.ENOSYS)


class Operations:
    """Base class for file systems: override the handlers your file system supports.

    Inode numbers and file handles are ints, names are bytes. Handlers raise
    ``FUSEError(errno)`` to answer with an error.
    """

    supports_dot_lookup: bool = True
    """Whether lookup() handles ``.`` and ``..`` (needed to export the file system over NFS)."""

    enable_writeback_cache: bool = False
    """Let the kernel cache writes and send them in batches."""

    enable_acl: bool = False
    """Let the kernel enforce POSIX ACLs stored in ``system.posix_acl_*`` xattrs."""

    def init_connection(self, conn: ConnectionInfo) -> None:
        """Choose the connection's capabilities and limits: edit ``conn`` in place.

        Called once at INIT, before init() and before any request; must not block. The
        default keeps what pyfuse3, the ``Operations`` attributes and the mount options chose.
        """

    def init(self) -> None:
        """Called once the kernel connection is up, before any request. Must not block."""

    def destroy(self) -> None:
        """Called once when the session ends (after the last request, from close() or an
        unmount), if init() was called. Must not block; exceptions are logged."""

    async def lookup(self, parent_inode: InodeT, name: FileNameT,
                     ctx: RequestContext) -> EntryAttributes:
        """Look up ``name`` in a directory; each success adds one to the inode's lookup count."""
        raise _nosys()

    async def forget(self, inode_list: Sequence[tuple[InodeT, int]]) -> None:
        """Decrease lookup counts by the given amounts; must not raise."""

    async def getattr(self, inode: InodeT, ctx: RequestContext) -> EntryAttributes:
        """Return the attributes of an inode."""
        raise _nosys()

    async def setattr(self, inode: InodeT, attr: EntryAttributes, fields: SetattrFields,
                      fh: FileHandleT | None, ctx: RequestContext) -> EntryAttributes:
        """Change the attributes flagged in ``fields`` and return the new attributes."""
        raise _nosys()

    async def readlink(self, inode: InodeT, ctx: RequestContext) -> FileNameT:
        """Return the target of a symbolic link."""
        raise _nosys()

    async def mknod(self, parent_inode: InodeT, name: FileNameT, mode: ModeT, rdev: int,
                    ctx: RequestContext) -> EntryAttributes:
        """Create a file, device node, FIFO or socket (counts as a lookup)."""
        raise _nosys()

    async def mkdir(self, parent_inode: InodeT, name: FileNameT, mode: ModeT,
                    ctx: RequestContext) -> EntryAttributes:
        """Create a directory (counts as a lookup)."""
        raise _nosys()

    async def unlink(self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext) -> None:
        """Remove a name; keep the inode until its lookup count drops to zero."""
        raise _nosys()

    async def rmdir(self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext) -> None:
        """Remove an empty directory."""
        raise _nosys()

    async def symlink(self, parent_inode: InodeT, name: FileNameT, target: FileNameT,
                      ctx: RequestContext) -> EntryAttributes:
        """Create a symbolic link (counts as a lookup)."""
        raise _nosys()

    async def rename(self, parent_inode_old: InodeT, name_old: FileNameT,
                     parent_inode_new: InodeT, name_new: FileNameT, flags: FlagT,
                     ctx: RequestContext) -> None:
        """Rename an entry; ``flags`` may hold RENAME_EXCHANGE or RENAME_NOREPLACE."""
        raise _nosys()

    async def link(self, inode: InodeT, new_parent_inode: InodeT, new_name: FileNameT,
                   ctx: RequestContext) -> EntryAttributes:
        """Create a hard link (counts as a lookup)."""
        raise _nosys()

    async def open(self, inode: InodeT, flags: FlagT, ctx: RequestContext) -> FileInfo:
        """Open a file and return its FileInfo."""
        raise _nosys()

    async def read(self, fh: FileHandleT, off: int, size: int) -> bytes | FileRange:
        """Return up to ``size`` bytes from ``off`` (fewer only at end of file).

        Any bytes-like object will do; a FileRange hands the kernel bytes of an open file
        instead, spliced without passing through Python.
        """
        raise _nosys()

    async def write(self, fh: FileHandleT, off: int, buf: bytes) -> int:
        """Write ``buf`` at ``off`` and return the number of bytes written."""
        raise _nosys()

    async def flush(self, fh: FileHandleT) -> None:
        """Called on each close() of a file descriptor."""
        raise _nosys()

    async def release(self, fh: FileHandleT) -> None:
        """Called once when the last reference to an open file is gone."""
        raise _nosys()

    async def fsync(self, fh: FileHandleT, datasync: bool) -> None:
        """Flush file data (and metadata unless ``datasync``) to stable storage."""
        raise _nosys()

    async def opendir(self, inode: InodeT, ctx: RequestContext) -> FileHandleT | FileInfo:
        """Open a directory and return a handle for readdir(), or a FileInfo with the handle
        and flags (``cache_readdir`` with ``keep_cache``: the kernel may cache the listing)."""
        raise _nosys()

    async def readdir(self, fh: FileHandleT, start_id: int, token: ReaddirToken) -> None:
        """List entries after ``start_id`` with readdir_reply() until it returns False."""
        raise _nosys()

    async def releasedir(self, fh: FileHandleT) -> None:
        """Release a directory handle."""
        raise _nosys()

    async def fsyncdir(self, fh: FileHandleT, datasync: bool) -> None:
        """Flush a directory to stable storage."""
        raise _nosys()

    async def statfs(self, ctx: RequestContext) -> StatvfsData:
        """Return file system statistics."""
        raise _nosys()

    def stacktrace(self) -> None:
        """Log the stack of every thread; triggered by setting xattr ``fuse_stacktrace`` on /."""
        lines = []
        for ident, frame in sys._current_frames().items():
            name = next((t.name for t in threading.enumerate() if t.ident == ident), ident)
            lines.append(f"\n# Thread {name}\n" + "".join(traceback.format_stack(frame)))
        log.error("Stack traces of all threads:%s", "".join(lines))

    async def setxattr(self, inode: InodeT, name: XAttrNameT, value: bytes,
                       ctx: RequestContext) -> None:
        """Set an extended attribute."""
        raise _nosys()

    async def getxattr(self, inode: InodeT, name: XAttrNameT, ctx: RequestContext) -> bytes:
        """Return an extended attribute's value; raise FUSEError(ENOATTR) if there is none."""
        raise _nosys()

    async def listxattr(self, inode: InodeT, ctx: RequestContext) -> Sequence[XAttrNameT]:
        """Return the names of an inode's extended attributes."""
        raise _nosys()

    async def removexattr(self, inode: InodeT, name: XAttrNameT, ctx: RequestContext) -> None:
        """Remove an extended attribute; raise FUSEError(ENOATTR) if there is none."""
        raise _nosys()

    async def access(self, inode: InodeT, mode: ModeT, ctx: RequestContext) -> bool:
        """Whether the caller may access the inode in ``mode`` (unused with default_permissions)."""
        raise _nosys()

    async def create(self, parent_inode: InodeT, name: FileNameT, mode: ModeT, flags: FlagT,
                     ctx: RequestContext) -> tuple[FileInfo, EntryAttributes]:
        """Create and open a file (counts as a lookup)."""
        raise _nosys()

    async def poll(self, inode: InodeT, fh: FileHandleT, poll_handle: PollHandle | None,
                   ctx: RequestContext) -> int:
        """Return the events ready on an open file (``select.POLLIN`` ..., 0 if none).

        ``poll_handle`` is None when the caller only wants the current events; otherwise keep
        it and call its ``notify()`` once the readiness changes (it wakes the pollers once).
        The default raises ENOSYS: the kernel then treats every file as always ready.
        """
        raise _nosys()

    async def flock(self, fh: FileHandleT, owner: int, operation: int) -> None:
        """Apply a BSD lock (``fcntl.LOCK_SH``/``LOCK_EX``/``LOCK_UN``, ``| LOCK_NB``).

        ``owner`` identifies the open file description holding the lock. Without LOCK_NB,
        wait (await) until the lock is granted; the caller's signal cancels the handler. A
        conflict with LOCK_NB: raise ``FUSEError(errno.EWOULDBLOCK)``. Only if this method
        is overridden does the kernel forward flock(); otherwise it keeps the locks locally.
        """
        raise _nosys()

    async def fallocate(self, fh: FileHandleT, mode: int, offset: int, length: int) -> None:
        """Allocate, or with ``mode`` flags (``FALLOC_FL_KEEP_SIZE``, ``PUNCH_HOLE``,
        ``ZERO_RANGE``) punch or zero, ``length`` bytes at ``offset``.

        The default raises ENOSYS: the caller then gets EOPNOTSUPP.
        """
        raise _nosys()

    async def lseek(self, fh: FileHandleT, offset: int, whence: int) -> int:
        """Find data or a hole (``os.SEEK_DATA``/``SEEK_HOLE``) from ``offset``; return the
        offset found, or raise ``FUSEError(errno.ENXIO)`` past the end.

        The default raises ENOSYS: the kernel then treats the whole file as data.
        """
        raise _nosys()

    async def getlk(self, fh: FileHandleT, owner: int, lock: FileLock) -> FileLock:
        """Return a lock that conflicts with ``lock`` (asked for by ``owner``), or ``lock``
        with type ``fcntl.F_UNLCK`` if there is none. The kernel forwards POSIX locks only
        to file systems that override both getlk() and setlk()."""
        raise _nosys()

    async def setlk(self, fh: FileHandleT, owner: int, lock: FileLock, wait: bool) -> None:
        """Acquire, change or release (``F_UNLCK``) a POSIX lock for ``owner``.

        On a conflict: with ``wait`` (F_SETLKW) await until it can be granted (the caller's
        signal cancels the handler), else raise ``FUSEError(errno.EAGAIN)``. Any close of
        the file by the owner releases its locks: pyfuse3 then calls setlk(F_UNLCK) before
        flush().
        """
        raise _nosys()

    async def bmap(self, inode: InodeT, blocksize: int, idx: int) -> int:
        """Map block ``idx`` (of ``blocksize`` bytes) of a file to a block of the device.

        Sent only for file systems mounted on a block device (the ``blkdev`` mount option,
        FIBMAP). The default raises ENOSYS, which the kernel remembers for the mount.
        """
        raise _nosys()

    async def ioctl(self, fh: FileHandleT, cmd: int, arg: int, in_data: bytes, out_size: int,
                    flags: int) -> bytes | int | tuple[int, bytes]:
        """Handle ``ioctl(2)`` on an open file (or directory: ``flags`` has FUSE_IOCTL_DIR).

        The kernel forwards only restricted ioctls: ``cmd`` encodes the sizes, ``in_data``
        holds the bytes the caller passes (``_IOC_SIZE(cmd)`` for _IOW commands) and the
        result may carry up to ``out_size`` bytes back (_IOR commands). ``arg`` is the raw
        argument (useful for _IO commands that take an integer). Return the output bytes
        (ioctl returns 0), an int (ioctl's return value, no output) or both as a tuple.
        Unrestricted ioctls (CUSE only) are refused with ENOSYS. The default raises ENOSYS;
        the caller then gets ENOTTY.
        """
        raise _nosys()

    async def copy_file_range(self, fh_in: FileHandleT, off_in: int, fh_out: FileHandleT,
                              off_out: int, length: int, flags: int) -> int:
        """Copy up to ``length`` bytes between two open files of this file system without
        passing them through the caller; return the number copied.

        The default raises ENOSYS: the kernel then copies with reads and writes.
        """
        raise _nosys()


async def release_with_unlock(ops: Operations, fh: FileHandleT, owner: int) -> None:
    """RELEASE of a file that held a BSD lock: ``flock(LOCK_UN)`` for its owner, then
    ``release()`` (both always; an error of either answers the request)."""
    try:
        await ops.flock(fh, owner, fcntl.LOCK_UN)
    finally:
        await ops.release(fh)


async def flush_with_unlock(ops: Operations, fh: FileHandleT, owner: int) -> None:
    """FLUSH with POSIX locks on: ``setlk(F_UNLCK)`` over the whole file for the closing
    owner, then ``flush()`` (both always)."""
    try:
        await ops.setlk(fh, owner, FileLock(fcntl.F_UNLCK, 0, 0, 0), False)
    finally:
        await ops.flush(fh)
