"""The Operations base class that file systems subclass, and the handler argument types.

The module keeps upstream's name (``pyfuse3._pyfuse3``) so imports written for pyfuse3 3.4 work.
Every request handler is a coroutine function; a handler the file system does not override
answers as the operation table says (``_opcodes.OPERATIONS``: ENOSYS, which the kernel treats
per operation, or nothing for ``forget``; see docs/operations.md).
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
import types
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, NewType, ParamSpec, TypeVar, overload

from ._opcodes import OP_NAMES, Interrupt
from ._types import ConnectionInfo, FileLock, FUSEError

if f"{__package__}._install_check" not in sys.modules:  # not imported by our __init__
    from ._install_check import clash_error

    raise clash_error()

if TYPE_CHECKING:
    from ._notify import PollHandle
    from ._readdir import ReaddirToken
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
    "interruptible",
    "uninterruptible",
]

FileHandleT = int  # plain aliases since upstream 3.5
InodeT = int
FileNameT = NewType("FileNameT", bytes)
FlagT = NewType("FlagT", int)
ModeT = NewType("ModeT", int)
XAttrNameT = NewType("XAttrNameT", bytes)

log = logging.getLogger("pyfuse3")


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


#: The attribute interruptible() and uninterruptible() set on a handler (an Interrupt); the
#: session reads it once per operation.
INTERRUPT_MARK = "pyfuse3_interrupt"
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


@overload
def uninterruptible(handler: C) -> C: ...
@overload
def uninterruptible(handler: H) -> H: ...


def uninterruptible(handler: Any) -> Any:
    """Let a handler run to its end whatever signal its caller gets.

    By default the kernel's INTERRUPT cancels a waiting handler (its caller gets EINTR) only
    when the caller is being killed, or for a lock wait. A handler that makes a change in
    several steps (a remote rename, a write and its metadata) would then stop halfway:
    decorated, it is never cancelled for an INTERRUPT. The killed caller waits for its end,
    so bound the handler's waits with timeouts. pyfuse3's own stop (terminate(), an unmount)
    still cancels it.

    On an ``Operations`` subclass, marks every request handler the class itself defines.
    Returns a marked copy of ``handler`` (no wrapper: ``mkdir = uninterruptible(Base.mkdir)``
    leaves Base's unmarked), or the class; pyfuse3 reads the mark once per operation at
    init(), so it costs nothing per request. Also under errors_as_fuse, in either order.
    TypeError if ``handler`` is neither an ``async def`` function nor a class.
    """
    return _mark(handler, Interrupt.INTERRUPT_NEVER, "uninterruptible")


@overload
def interruptible(handler: C) -> C: ...
@overload
def interruptible(handler: H) -> H: ...


def interruptible(handler: Any) -> Any:
    """Cancel a waiting handler on any signal its caller gets, also one it handles.

    The caller then gets EINTR, and a program's own signal handler runs (Ctrl-C reaches a
    Python program as KeyboardInterrupt). For handlers that wait without bound for something
    to happen: a read of a stream, a wait for a change. Not for handlers of calls that never
    fail with EINTR on a local file system (stat(), open(), mkdir()): the kernel restarts no
    call a file system answered, so programs that take signals all the time (Go's runtime
    preempts goroutines with SIGURG; profilers) would fail. Lock waits (setlk, flock) are
    interruptible without the mark.

    Marks as uninterruptible() does (a copy, or every request handler a class defines);
    TypeError likewise.
    """
    return _mark(handler, Interrupt.INTERRUPT_ANY, "interruptible")


def _mark(handler: Any, mode: int, decorator: str) -> Any:
    if isinstance(handler, type):
        for name in OP_NAMES:
            fn = handler.__dict__.get(name)
            if isinstance(fn, types.FunctionType) and inspect.iscoroutinefunction(fn):
                setattr(handler, name, _mark(fn, mode, decorator))
        return handler
    if not (isinstance(handler, types.FunctionType) and inspect.iscoroutinefunction(handler)):
        raise TypeError(f"{decorator}() decorates an async def handler or an Operations "
                        f"subclass, not {handler!r}")
    marked = types.FunctionType(handler.__code__, handler.__globals__, handler.__name__,
                                handler.__defaults__, handler.__closure__)
    functools.update_wrapper(marked, handler)
    marked.__kwdefaults__ = handler.__kwdefaults__
    setattr(marked, INTERRUPT_MARK, mode)
    return marked


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

    enable_parallel_dirops: bool = False
    """Let the kernel send several lookups and readdirs of one directory at once (without it,
    one at a time). For file systems whose lookup() waits on a network or a database; a
    lookup may then run while a readdir of the same directory is suspended. libfuse 3.17+
    (older ones never pass it on: then it is left out of ``ConnectionInfo.want``)."""

    enable_passthrough: bool = False
    """Ask for kernel passthrough: an open() or create() returning ``FileInfo(...,
    backing_fd=fd)`` has its reads and writes done by the kernel on that file (libfuse 3.18,
    Linux 6.9, CAP_SYS_ADMIN; excludes the writeback cache and handle_killpriv)."""

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
        """Look up ``name`` in directory ``parent_inode``; return its attributes.

        Each success adds one to the inode's lookup count (see forget()). The kernel caches
        the name for ``entry_timeout`` and the attributes for ``attr_timeout`` seconds of the
        result; invalidate_entry()/invalidate_inode() end that early. ``name`` may be ``.``
        or ``..`` when :attr:`supports_dot_lookup` is set. Errors: ENOENT if there is no such
        entry, ENOTDIR, EACCES, ENAMETOOLONG. A result with ``st_ino`` 0 is a negative entry:
        the kernel caches the name's absence for ``entry_timeout`` (``EntryAttributes()``
        with only ``entry_timeout`` set; other attributes in it are logged as a forgotten
        ``st_ino``).
        """
        raise _nosys()

    async def forget(self, inode_list: Sequence[tuple[InodeT, int]]) -> None:
        """Decrease lookup counts: ``inode_list`` holds (inode, count) pairs.

        An inode whose count reaches 0 and that has no names left may be freed. At unmount
        the kernel need not send forgets for every inode still counted: drop those after
        main() returns. Must not raise (an exception is logged; the kernel gets no answer
        either way).
        """

    async def getattr(self, inode: InodeT, ctx: RequestContext) -> EntryAttributes:
        """Return the attributes of an inode (``stat(2)``), cached by the kernel for the
        result's ``attr_timeout`` seconds. Errors: ENOENT for an inode that is gone."""
        raise _nosys()

    async def statx(self, inode: InodeT, mask: int, flags: int, fh: FileHandleT | None,
                    ctx: RequestContext) -> EntryAttributes:
        """Return the attributes of an inode with its birth time (``statx(2)``): as getattr(),
        plus ``st_birthtime_ns`` when known (set it; left unset, the caller learns that the file
        system has no birth time for the file). ``mask``: the statx fields the caller asked
        for (STATX_BTIME, STATX_BASIC_STATS bits); ``flags``: its AT_STATX_* sync flags;
        ``fh``: the open file's handle when asked through a descriptor, else None.

        The kernel asks only when a caller wants the birth time and the cached attributes are
        stale; the reply refreshes that cache for ``attr_timeout`` seconds, birth time
        included. Needs libfuse 3.18 (earlier builds never call it) and Linux 6.6. The default
        raises ENOSYS: the kernel then answers every later statx(2) on this mount from
        getattr(), without a birth time and without asking again.
        """
        raise _nosys()

    async def setattr(self, inode: InodeT, attr: EntryAttributes, fields: SetattrFields,
                      fh: FileHandleT | None, ctx: RequestContext) -> EntryAttributes:
        """Change the attributes flagged in ``fields`` (values taken from ``attr``) and
        return all the inode's attributes after the change.

        ``fh`` is the open file's handle for calls made through a file descriptor
        (``ftruncate``, ``futimens``, ``fchmod``), else None. ``update_size`` truncates or
        extends the data. With ``default_permissions`` the kernel has already checked the
        caller's rights. Errors: EPERM, EACCES, EFBIG, EROFS.
        """
        raise _nosys()

    async def readlink(self, inode: InodeT, ctx: RequestContext) -> FileNameT:
        """Return the target of a symbolic link (bytes). Errors: EINVAL if not a symlink."""
        raise _nosys()

    async def mknod(self, parent_inode: InodeT, name: FileNameT, mode: ModeT, rdev: int,
                    ctx: RequestContext) -> EntryAttributes:
        """Create a regular file, device node, FIFO or socket named ``name``; return its
        attributes (counts as a lookup, like lookup()).

        ``mode`` holds the file type and the permission bits; ``rdev`` the device number for
        device nodes. Errors: EEXIST, ENOSPC, ENAMETOOLONG.
        """
        raise _nosys()

    async def mkdir(self, parent_inode: InodeT, name: FileNameT, mode: ModeT,
                    ctx: RequestContext) -> EntryAttributes:
        """Create a directory; return its attributes (counts as a lookup).

        ``mode`` includes ``stat.S_IFDIR`` (added by pyfuse3, as upstream). Errors: EEXIST,
        ENOSPC, ENAMETOOLONG.
        """
        raise _nosys()

    async def unlink(self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext) -> None:
        """Remove the name ``name`` (not a directory) from ``parent_inode``.

        Open files and counted lookups keep the inode alive: free it only when its lookup
        count drops to zero (forget()). Errors: ENOENT, EISDIR, EPERM.
        """
        raise _nosys()

    async def rmdir(self, parent_inode: InodeT, name: FileNameT, ctx: RequestContext) -> None:
        """Remove the empty directory ``name``. Errors: ENOENT, ENOTDIR, ENOTEMPTY."""
        raise _nosys()

    async def symlink(self, parent_inode: InodeT, name: FileNameT, target: FileNameT,
                      ctx: RequestContext) -> EntryAttributes:
        """Create a symbolic link ``name`` pointing to ``target``; return its attributes
        (counts as a lookup). Errors: EEXIST, ENAMETOOLONG."""
        raise _nosys()

    async def rename(self, parent_inode_old: InodeT, name_old: FileNameT,
                     parent_inode_new: InodeT, name_new: FileNameT, flags: FlagT,
                     ctx: RequestContext) -> None:
        """Rename ``name_old`` in ``parent_inode_old`` to ``name_new`` in
        ``parent_inode_new``, replacing a target that exists (``rename(2)``).

        ``flags``: RENAME_NOREPLACE (fail with EEXIST if the target exists) or
        RENAME_EXCHANGE (swap the two entries); raise EINVAL for flags not supported.
        Errors: ENOENT, ENOTEMPTY (target a non-empty directory), EISDIR, ENOTDIR, EXDEV.
        """
        raise _nosys()

    async def link(self, inode: InodeT, new_parent_inode: InodeT, new_name: FileNameT,
                   ctx: RequestContext) -> EntryAttributes:
        """Give ``inode`` the additional name ``new_name`` in ``new_parent_inode``; return
        its attributes with the new link count (counts as a lookup). Errors: EEXIST, EPERM
        (directories), EMLINK."""
        raise _nosys()

    async def open(self, inode: InodeT, flags: FlagT, ctx: RequestContext) -> FileInfo:
        """Open a file; return a :class:`FileInfo` with the handle later requests get.

        ``flags`` are open(2)'s (``os.O_RDONLY`` ... ``os.O_TRUNC``, ``os.O_APPEND``;
        ``O_CREAT``/``O_EXCL`` are handled by the kernel and create()). The FileInfo also
        tells the kernel how to cache: ``keep_cache`` keeps pages cached by earlier opens
        (True by default, as upstream; set False when data may have changed outside the
        kernel's view, or invalidate it), ``direct_io`` bypasses the page cache. Errors:
        EACCES, ENOENT, EISDIR.
        """
        raise _nosys()

    async def read(self, fh: FileHandleT, off: int, size: int) -> bytes | FileRange:
        """Return up to ``size`` bytes from ``off`` (fewer only at end of file).

        Any bytes-like object will do; a FileRange hands the kernel bytes of an open file
        instead, spliced without passing through Python.
        """
        raise _nosys()

    async def write(self, fh: FileHandleT, off: int, buf: bytes) -> int:
        """Write ``buf`` at ``off`` in the open file ``fh``; return the number of bytes
        written (all of them unless an error stops the write part-way).

        Reporting more than ``len(buf)`` answers EIO. Without the writeback cache, every
        ``write(2)`` reaches this handler before it returns; with it
        (:attr:`enable_writeback_cache`) the kernel sends data later, in batches, and caches
        the size itself. Errors: ENOSPC, EFBIG, EIO.
        """
        raise _nosys()

    async def flush(self, fh: FileHandleT) -> None:
        """Called on each ``close()`` of a file descriptor of the open file (there may be
        several after ``dup()`` or ``fork()``); an error is returned by that close. The last
        chance to report a write error to the caller. Default: ENOSYS, which the kernel
        remembers and treats as success from then on."""
        raise _nosys()

    async def release(self, fh: FileHandleT) -> None:
        """Called once when the last reference to the open file ``fh`` is gone; free the
        handle. The result goes nowhere (the caller's close() has returned)."""
        raise _nosys()

    async def fsync(self, fh: FileHandleT, datasync: bool) -> None:
        """Make the file's data (and its metadata unless ``datasync``) durable
        (``fsync(2)``, ``fdatasync(2)``). Default: ENOSYS, which the kernel remembers and
        treats as success from then on."""
        raise _nosys()

    async def opendir(self, inode: InodeT, ctx: RequestContext) -> FileHandleT | FileInfo:
        """Open a directory and return a handle for readdir(), or a FileInfo with the handle
        and flags (``cache_readdir`` with ``keep_cache``: the kernel may cache the listing)."""
        raise _nosys()

    async def readdir(self, fh: FileHandleT, start_id: int, token: ReaddirToken) -> None:
        """List the entries of an open directory, from the one after ``start_id``.

        Call :func:`readdir_reply` for each entry, giving each a ``next_id`` that marks the
        position after it (``start_id`` is 0 on the first call, then the ``next_id`` of the
        last entry the kernel kept); stop and return when it returns False (the reply buffer
        is full, the kernel asks again). A ``next_id`` of 0 or equal to ``start_id`` would make
        the listing start over forever, so readdir_reply() refuses it (ValueError). Include
        ``.`` and ``..`` if you want them listed. With READDIRPLUS (``token.plus``) every entry
        counts as a lookup.
        """
        raise _nosys()

    async def releasedir(self, fh: FileHandleT) -> None:
        """Release the directory handle ``fh`` from opendir(); called once per opendir()."""
        raise _nosys()

    async def fsyncdir(self, fh: FileHandleT, datasync: bool) -> None:
        """Make the directory's entries durable (``fsync(2)`` on a directory)."""
        raise _nosys()

    async def statfs(self, ctx: RequestContext) -> StatvfsData:
        """Return file system statistics (``statvfs(2)``, ``df``) as a :class:`StatvfsData`."""
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
        """Set the extended attribute ``name`` of ``inode`` to ``value``.

        Errors: ENOTSUP if the file system has no extended attributes, ERANGE or E2BIG for
        values it cannot store. Names ``system.posix_acl_*`` carry ACLs (:attr:`enable_acl`).
        """
        raise _nosys()

    async def getxattr(self, inode: InodeT, name: XAttrNameT, ctx: RequestContext) -> bytes:
        """Return an extended attribute's value; raise FUSEError(ENOATTR) if there is none."""
        raise _nosys()

    async def listxattr(self, inode: InodeT, ctx: RequestContext) -> Sequence[XAttrNameT]:
        """Return the names (bytes) of an inode's extended attributes; the kernel builds the
        list ``listxattr(2)`` returns and handles the caller's buffer size."""
        raise _nosys()

    async def removexattr(self, inode: InodeT, name: XAttrNameT, ctx: RequestContext) -> None:
        """Remove an extended attribute; raise FUSEError(ENOATTR) if there is none."""
        raise _nosys()

    async def access(self, inode: InodeT, mode: ModeT, ctx: RequestContext) -> bool:
        """Whether the caller (``ctx``) may access ``inode`` in ``mode`` (``os.R_OK`` ...,
        or ``os.F_OK``); return a bool. Not called when the file system is mounted with
        ``default_permissions``: the kernel checks then. Default: ENOSYS, which the kernel
        remembers and treats as "allowed"."""
        raise _nosys()

    async def create(self, parent_inode: InodeT, name: FileNameT, mode: ModeT, flags: FlagT,
                     ctx: RequestContext) -> tuple[FileInfo, EntryAttributes]:
        """Create a regular file ``name`` with ``mode`` and open it with ``flags``; return
        ``(FileInfo, EntryAttributes)`` (counts as a lookup). Errors: EEXIST (with
        ``O_EXCL``), ENOSPC, ENAMETOOLONG. Default: ENOSYS, after which the kernel uses
        mknod() and open()."""
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

    async def tmpfile(self, parent_inode: InodeT, mode: int, flags: int,
                      ctx: RequestContext) -> tuple[FileInfo, EntryAttributes]:
        """Create a file without a name in directory ``parent_inode`` and open it
        (``open(2)`` with O_TMPFILE), as create() does: it lives while it is open or known to
        the kernel, and ``linkat(2)`` may give it a name later (a ``link()`` request). Needs
        libfuse 3.18 (earlier builds never call it) and Linux 6.1. The default raises ENOSYS;
        the kernel then answers EOPNOTSUPP to O_TMPFILE on this mount, without asking again.
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
