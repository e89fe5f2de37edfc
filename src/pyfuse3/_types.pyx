# cython: language_level=3, binding=False
"""Data classes exchanged between handlers and the kernel.

Each class holds the libfuse C struct by value, so a reply is a struct copy with no conversion
left to do. Setters convert once, at assignment, and refuse values the C field cannot hold
(OverflowError) instead of truncating them.
"""
cimport cython
from libc.stdint cimport UINT32_MAX, int64_t
from libc.string cimport memset
from posix.fcntl cimport flock as c_flock
from posix.stat cimport S_IFREG, struct_stat
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec
from pyfuse3._libfuse.stat cimport (
    STATX_BASIC_STATS, STATX_BTIME, major, minor, stat_times, struct_statx,
)
from pyfuse3._libfuse.fuse_lowlevel cimport (
    FUSE_SET_ATTR_ATIME, FUSE_SET_ATTR_ATIME_NOW, FUSE_SET_ATTR_CTIME, FUSE_SET_ATTR_GID,
    FUSE_SET_ATTR_MODE, FUSE_SET_ATTR_MTIME, FUSE_SET_ATTR_MTIME_NOW, FUSE_SET_ATTR_SIZE,
    FUSE_SET_ATTR_UID, fuse_ctx, fuse_ino_t, fuse_req_ctx,
)

from dataclasses import dataclass, field
import os
import pickle
from operator import index

cdef int64_t NS = 1_000_000_000
_NANOS_PER_SEC = NS

_ENTRY_FIELDS = (
    "st_ino", "generation", "entry_timeout", "attr_timeout", "st_mode", "st_nlink", "st_uid",
    "st_gid", "st_rdev", "st_size", "st_blksize", "st_blocks", "st_atime_ns", "st_ctime_ns",
    "st_mtime_ns", "st_birthtime_ns",
)
_STATVFS_FIELDS = (
    "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree",
    "f_favail", "f_namemax",
)


cdef inline int64_t _as_ns(object val) except? -1:
    # Floats are accepted (upstream does) and truncated to whole nanoseconds.
    if type(val) is int:
        return val
    if isinstance(val, float):
        return int(val)
    return index(val)  # TypeError for anything that is not an integer


cdef inline object _get_ns(timespec* ts):
    return <object>ts.tv_sec * NS + ts.tv_nsec


cdef inline int _set_ns(timespec* ts, object val) except -1:
    cdef int64_t ns = _as_ns(val)
    ts.tv_sec = ns // NS  # floor division: negative times split correctly
    ts.tv_nsec = ns % NS
    return 0


@cython.freelist(64)
@cython.final
cdef class EntryAttributes:
    """Attributes of a directory entry and its inode, as returned by lookup, getattr and friends.

    Time fields are integers in nanoseconds; floats are accepted and truncated.
    """

    def __cinit__(self):
        memset(&self.fuse_param, 0, sizeof(self.fuse_param))
        self.fuse_param.attr_timeout = 300
        self.fuse_param.entry_timeout = 300
        self.fuse_param.attr.st_mode = S_IFREG
        self.fuse_param.attr.st_blksize = 4096
        self.fuse_param.attr.st_nlink = 1
        self.has_birthtime = False

    @property
    def st_ino(self):
        """Inode number (also the entry's node id)."""
        return self.fuse_param.ino

    @st_ino.setter
    def st_ino(self, val):
        self.fuse_param.ino = val
        self.fuse_param.attr.st_ino = val

    @property
    def generation(self):
        """Inode generation: (st_ino, generation) must be unique for the file system's life."""
        return self.fuse_param.generation

    @generation.setter
    def generation(self, val):
        self.fuse_param.generation = val

    @property
    def entry_timeout(self):
        """Seconds the kernel may cache the name-to-inode mapping."""
        return self.fuse_param.entry_timeout

    @entry_timeout.setter
    def entry_timeout(self, val):
        self.fuse_param.entry_timeout = _timeout(val)

    @property
    def attr_timeout(self):
        """Seconds the kernel may cache these attributes."""
        return self.fuse_param.attr_timeout

    @attr_timeout.setter
    def attr_timeout(self, val):
        self.fuse_param.attr_timeout = _timeout(val)

    @property
    def st_mode(self):
        """File type and permission bits."""
        return self.fuse_param.attr.st_mode

    @st_mode.setter
    def st_mode(self, val):
        self.fuse_param.attr.st_mode = val

    @property
    def st_nlink(self):
        """Number of hard links."""
        return self.fuse_param.attr.st_nlink

    @st_nlink.setter
    def st_nlink(self, val):
        self.fuse_param.attr.st_nlink = _kernel_u32(val, "st_nlink")

    @property
    def st_uid(self):
        """Owner user id."""
        return self.fuse_param.attr.st_uid

    @st_uid.setter
    def st_uid(self, val):
        self.fuse_param.attr.st_uid = val

    @property
    def st_gid(self):
        """Owner group id."""
        return self.fuse_param.attr.st_gid

    @st_gid.setter
    def st_gid(self, val):
        self.fuse_param.attr.st_gid = val

    @property
    def st_rdev(self):
        """Device number, for device nodes."""
        return self.fuse_param.attr.st_rdev

    @st_rdev.setter
    def st_rdev(self, val):
        self.fuse_param.attr.st_rdev = _kernel_u32(val, "st_rdev")

    @property
    def st_size(self):
        """Size in bytes."""
        return self.fuse_param.attr.st_size

    @st_size.setter
    def st_size(self, val):
        self.fuse_param.attr.st_size = _non_negative(val)

    @property
    def st_blocks(self):
        """Allocated 512-byte blocks."""
        return self.fuse_param.attr.st_blocks

    @st_blocks.setter
    def st_blocks(self, val):
        self.fuse_param.attr.st_blocks = _non_negative(val)

    @property
    def st_blksize(self):
        """Preferred I/O block size."""
        return self.fuse_param.attr.st_blksize

    @st_blksize.setter
    def st_blksize(self, val):
        self.fuse_param.attr.st_blksize = _kernel_u32(val, "st_blksize")

    @property
    def st_atime_ns(self):
        """Access time in nanoseconds since the epoch."""
        return _get_ns(&(<stat_times*>&self.fuse_param.attr).st_atim)

    @st_atime_ns.setter
    def st_atime_ns(self, val):
        _set_ns(&(<stat_times*>&self.fuse_param.attr).st_atim, val)

    @property
    def st_mtime_ns(self):
        """Modification time in nanoseconds since the epoch."""
        return _get_ns(&(<stat_times*>&self.fuse_param.attr).st_mtim)

    @st_mtime_ns.setter
    def st_mtime_ns(self, val):
        _set_ns(&(<stat_times*>&self.fuse_param.attr).st_mtim, val)

    @property
    def st_ctime_ns(self):
        """Status change time in nanoseconds since the epoch."""
        return _get_ns(&(<stat_times*>&self.fuse_param.attr).st_ctim)

    @st_ctime_ns.setter
    def st_ctime_ns(self, val):
        _set_ns(&(<stat_times*>&self.fuse_param.attr).st_ctim, val)

    @property
    def st_birthtime_ns(self):
        """Creation time in nanoseconds since the epoch (0 until set). Only a statx() reply
        carries it to the kernel (``statx(2)``'s ``stx_btime``, STATX_BTIME in its mask when
        set); lookup and getattr replies have no field for it."""
        return _get_ns(&self.birthtime) if self.has_birthtime else 0

    @st_birthtime_ns.setter
    def st_birthtime_ns(self, val):
        _set_ns(&self.birthtime, val)
        self.has_birthtime = True

    def __getstate__(self):
        return {name: getattr(self, name) for name in _ENTRY_FIELDS
                if self.has_birthtime or name != "st_birthtime_ns"}

    def __setstate__(self, state):
        for name in _ENTRY_FIELDS:
            if name in state:
                setattr(self, name, state[name])

    def __reduce__(self):
        return (EntryAttributes, (), self.__getstate__())

    def __repr__(self):
        return (f"<EntryAttributes st_ino={self.st_ino} st_mode={self.st_mode:#o} "
                f"st_size={self.st_size}>")


cdef inline double _timeout(object val) except? -1:
    cdef double t = val
    if not t >= 0:  # also refuses NaN
        raise ValueError(f"timeout must be a non-negative number of seconds, not {val!r}")
    return t


cdef inline unsigned int _kernel_u32(object val, str name) except? 0xFFFFFFFF:
    # Fields the kernel keeps in 32 bits (struct fuse_attr): libfuse would cut larger values.
    cdef unsigned long long v = val  # (negative: OverflowError from the conversion)
    if v > UINT32_MAX:
        if name == "st_rdev":
            raise OverflowError(f"st_rdev must be a device number the kernel can carry "
                                f"(os.makedev(major, minor) with major < 4096 and minor < "
                                f"1048576), got {val}")
        raise OverflowError(f"{name} must be 0 to 4294967295 (the kernel keeps 32 bits), "
                            f"got {val}")
    return <unsigned int>v


def _file_type_problem(mode):
    return (f"st_mode {mode:#o}, which names no file type (stat.S_IFREG | {mode & 0o7777:#o} "
            f"for a regular file, S_IFDIR for a directory, ...; the kernel answers EIO)")


cdef int no_file_type(unsigned int mode, object name) except -1:
    if name is None:
        raise ValueError(_file_type_problem(mode))
    raise ValueError(f"readdir_reply(): {name!r} has {_file_type_problem(mode)}")


cdef inline int64_t _non_negative(object val) except? -1:
    cdef int64_t v = val
    if v < 0:
        raise OverflowError(f"value must not be negative, got {v}")
    return v


@cython.freelist(64)
@cython.final
@cython.embedsignature(False)  # Cython 3.3 embeds the keyword-only marker in the wrong place
cdef class FileInfo:
    """FileInfo(fh=0, direct_io=False, keep_cache=True, nonseekable=False, *, noflush=False, cache_readdir=False, changed=False, backing_fd=-1)

    Reply to open, create and opendir: the handle and how the kernel should treat the file.

    direct_io: bypass the page cache (every read and write reaches the file system);
    keep_cache: keep cached pages from earlier opens; nonseekable: the file has no position;
    noflush: no FLUSH request on close (flush() is not called); cache_readdir (opendir, with
    keep_cache): the kernel may answer later listings of the directory from its cache.
    changed (open only; close-to-open): the file changed since the kernel may have cached it,
    so pyfuse3 drops the kernel's cached attributes before the open completes and the kernel
    drops its cached pages (keep_cache is ignored); reads after this open see the new state.
    backing_fd (open and create; passthrough): an open file whose reads and writes the kernel
    does itself, without read() or write() requests; the file system keeps it open until
    release(). Used where the mount negotiated passthrough (``Operations.enable_passthrough``,
    libfuse 3.18, Linux 6.9, CAP_SYS_ADMIN); elsewhere the open is a plain one (logged once).
    """

    def __init__(self, fh=0, direct_io=False, keep_cache=True, nonseekable=False, *,
                 noflush=False, cache_readdir=False, changed=False, backing_fd=-1):
        self.fh = fh
        self.direct_io = direct_io
        self.keep_cache = keep_cache
        self.nonseekable = nonseekable
        self.noflush = noflush
        self.cache_readdir = cache_readdir
        self.changed = changed
        self.backing_fd = backing_fd
        if self.backing_fd < -1:
            raise ValueError(f"backing_fd must be an open file descriptor (or -1), not {backing_fd}")

    cdef void fill(self, fuse_file_info* out) noexcept:
        out.fh = self.fh
        out.direct_io = self.direct_io
        out.keep_cache = self.keep_cache
        out.nonseekable = self.nonseekable
        out.noflush = self.noflush
        out.cache_readdir = self.cache_readdir

    def __reduce__(self):
        return (_file_info, (self.fh, self.direct_io, self.keep_cache, self.nonseekable,
                             self.noflush, self.cache_readdir, self.changed, self.backing_fd))

    def __repr__(self):
        return (f"FileInfo(fh={self.fh}, direct_io={self.direct_io}, "
                f"keep_cache={self.keep_cache}, nonseekable={self.nonseekable}, "
                f"noflush={self.noflush}, cache_readdir={self.cache_readdir}, "
                f"changed={self.changed}, backing_fd={self.backing_fd})")


def _file_info(fh, direct_io, keep_cache, nonseekable, noflush=False, cache_readdir=False,
               changed=False, backing_fd=-1):
    return FileInfo(fh, direct_io, keep_cache, nonseekable, noflush=noflush,
                    cache_readdir=cache_readdir, changed=changed, backing_fd=backing_fd)


@cython.freelist(8)
@cython.final
cdef class FileRange:
    """A read() result naming bytes of an open file instead of holding them.

    The kernel receives ``size`` bytes of file descriptor ``fd`` from ``offset`` on (fewer at
    the file's end) by splice, without the data passing through Python. Keep ``fd`` open until
    read() has returned; errors reading it are answered to the reader with their errno.
    """

    def __init__(self, int fd, long long offset, size_t size):
        if fd < 0:
            raise ValueError(f"fd must be an open file descriptor, got {fd}")
        if offset < 0:
            raise ValueError(f"offset must not be negative, got {offset}")
        self.fd = fd
        self.offset = offset
        self.size = size

    def __reduce__(self):
        return (FileRange, (self.fd, self.offset, self.size))

    def __repr__(self):
        return f"FileRange(fd={self.fd}, offset={self.offset}, size={self.size})"


@cython.final
cdef class StatvfsData:
    """File system statistics returned by the statfs handler."""

    def __cinit__(self):
        memset(&self.stat, 0, sizeof(self.stat))

    @property
    def f_bsize(self):
        """File system block size."""
        return self.stat.f_bsize

    @f_bsize.setter
    def f_bsize(self, val):
        self.stat.f_bsize = val

    @property
    def f_frsize(self):
        """Fragment size: the unit of f_blocks, f_bfree and f_bavail."""
        return self.stat.f_frsize

    @f_frsize.setter
    def f_frsize(self, val):
        self.stat.f_frsize = val

    @property
    def f_blocks(self):
        """Size of the file system in f_frsize units."""
        return self.stat.f_blocks

    @f_blocks.setter
    def f_blocks(self, val):
        self.stat.f_blocks = val

    @property
    def f_bfree(self):
        """Free blocks."""
        return self.stat.f_bfree

    @f_bfree.setter
    def f_bfree(self, val):
        self.stat.f_bfree = val

    @property
    def f_bavail(self):
        """Free blocks available to unprivileged users."""
        return self.stat.f_bavail

    @f_bavail.setter
    def f_bavail(self, val):
        self.stat.f_bavail = val

    @property
    def f_files(self):
        """Number of inodes."""
        return self.stat.f_files

    @f_files.setter
    def f_files(self, val):
        self.stat.f_files = val

    @property
    def f_ffree(self):
        """Free inodes."""
        return self.stat.f_ffree

    @f_ffree.setter
    def f_ffree(self, val):
        self.stat.f_ffree = val

    @property
    def f_favail(self):
        """Free inodes available to unprivileged users."""
        return self.stat.f_favail

    @f_favail.setter
    def f_favail(self, val):
        self.stat.f_favail = val

    @property
    def f_namemax(self):
        """Maximum file name length."""
        return self.stat.f_namemax

    @f_namemax.setter
    def f_namemax(self, val):
        self.stat.f_namemax = val

    def __getstate__(self):
        return {name: getattr(self, name) for name in _STATVFS_FIELDS}

    def __setstate__(self, state):
        for name in _STATVFS_FIELDS:
            if name in state:
                setattr(self, name, state[name])

    def __reduce__(self):
        return (StatvfsData, (), self.__getstate__())


@cython.freelist(64)
@cython.final
cdef class RequestContext:
    """Who made a request: read-only ``uid``, ``gid`` and ``pid`` of the calling process as
    the kernel saw them, and ``umask``, the caller's umask (sent with create, mkdir and mknod;
    0 for other requests). Cannot be pickled.
    """

    def __getstate__(self):
        raise pickle.PicklingError("RequestContext instances can't be pickled or copied")

    def __reduce__(self):
        self.__getstate__()

    def __repr__(self):
        return (f"<RequestContext uid={self.uid} gid={self.gid} pid={self.pid} "
                f"umask={self.umask:#o}>")


cdef RequestContext context_of(fuse_req_t req):
    cdef const fuse_ctx* c = fuse_req_ctx(req)
    cdef RequestContext ctx = RequestContext.__new__(RequestContext)
    ctx.uid = c.uid
    ctx.gid = c.gid
    ctx.pid = c.pid
    ctx.umask = c.umask
    return ctx


@cython.final
cdef class SetattrFields:
    """Which attributes a setattr request changes: read-only booleans ``update_mode``,
    ``update_uid``, ``update_gid``, ``update_size``, ``update_atime``, ``update_mtime`` and
    ``update_ctime``; each True when that field of the request's ``attr`` is to be applied.
    """

    def __getstate__(self):
        raise pickle.PicklingError("SetattrFields instances can't be pickled or copied")

    def __reduce__(self):
        self.__getstate__()

    def __repr__(self):
        names = [n for n in ("atime", "mtime", "ctime", "mode", "uid", "gid", "size")
                 if getattr(self, "update_" + n)]
        return f"<SetattrFields {' '.join(names) or 'none'}>"


cdef SetattrFields setattr_fields(int to_set):
    cdef SetattrFields f = SetattrFields.__new__(SetattrFields)
    f.update_atime = to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW) != 0
    f.update_mtime = to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW) != 0
    f.update_ctime = to_set & FUSE_SET_ATTR_CTIME != 0
    f.update_mode = to_set & FUSE_SET_ATTR_MODE != 0
    f.update_uid = to_set & FUSE_SET_ATTR_UID != 0
    f.update_gid = to_set & FUSE_SET_ATTR_GID != 0
    f.update_size = to_set & FUSE_SET_ATTR_SIZE != 0
    return f


cdef class FUSEError(Exception):
    """Raise from a handler to answer the request with an errno, e.g. FUSEError(errno.ENOENT)."""

    def __init__(self, errno):
        self.errno_ = errno
        Exception.__init__(self, errno)

    @property
    def errno(self):
        """The error number sent to the kernel."""
        return self.errno_

    def __str__(self):
        try:
            return os.strerror(self.errno_)
        except ValueError:
            return f"errno: {self.errno_}"


# -- the kernel data that needs no C struct -----------------------------------------------

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
    cannot be changed here. ``request_timeout`` (seconds, 0: none; from the mount option of that
    name) makes the kernel abort the connection when a request stays unanswered that long
    (libfuse 3.18, Linux 6.14: else main() raises ValueError saying which is missing).
    ``max_backing_stack_depth`` (passthrough only): 0, libfuse's default, refuses backing files
    that lie on a stacking file system (overlayfs, another FUSE passthrough mount) and lets
    such a file system stack over this one; 1 allows them, and nothing can stack over this one.
    Capability names are libfuse's ``FUSE_CAP_*`` in lower case
    (``"writeback_cache"``, ``"posix_acl"``, ``"readdirplus"``, ``"readdirplus_auto"``,
    ``"flock_locks"``, ``"posix_locks"``, ``"parallel_dirops"``, ``"cache_symlinks"``,
    ``"auto_inval_data"``, ``"explicit_inval_data"``, ...: see ``pyfuse3.CAPABILITIES``).
    ``"parallel_dirops"`` (off by default; ``Operations.enable_parallel_dirops`` asks for it)
    lets lookups and readdirs of one directory run at once; libfuse before 3.17 never passes it
    on, so there it is neither offered nor accepted.
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
    request_timeout: int = 0
    max_backing_stack_depth: int = 0


# -- conversions from the C arguments of the trampolines ------------------------------------

cdef EntryAttributes attr_from_stat(fuse_ino_t ino, struct_stat* stat, int to_set):
    cdef EntryAttributes attr = EntryAttributes.__new__(EntryAttributes)
    cdef timespec now
    attr.fuse_param.attr = stat[0]
    attr.fuse_param.ino = ino
    attr.fuse_param.attr.st_ino = ino
    if to_set & (FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW):
        clock_gettime(CLOCK_REALTIME, &now)
        if to_set & FUSE_SET_ATTR_ATIME_NOW:
            (<stat_times*>&attr.fuse_param.attr).st_atim = now
        if to_set & FUSE_SET_ATTR_MTIME_NOW:
            (<stat_times*>&attr.fuse_param.attr).st_mtim = now
    return attr


cdef void statx_of(EntryAttributes attr, struct_statx* out) noexcept:
    # every basic field (an EntryAttributes always holds them all), the birth time if set
    cdef const struct_stat* st = &attr.fuse_param.attr
    cdef const stat_times* t = <const stat_times*>st
    memset(out, 0, sizeof(out[0]))
    out.stx_mask = STATX_BASIC_STATS | (STATX_BTIME if attr.has_birthtime else 0)
    out.stx_blksize = st.st_blksize
    out.stx_nlink = st.st_nlink
    out.stx_uid = st.st_uid
    out.stx_gid = st.st_gid
    out.stx_mode = st.st_mode
    out.stx_ino = attr.fuse_param.ino
    out.stx_size = st.st_size
    out.stx_blocks = st.st_blocks
    out.stx_atime.tv_sec, out.stx_atime.tv_nsec = t.st_atim.tv_sec, t.st_atim.tv_nsec
    out.stx_mtime.tv_sec, out.stx_mtime.tv_nsec = t.st_mtim.tv_sec, t.st_mtim.tv_nsec
    out.stx_ctime.tv_sec, out.stx_ctime.tv_nsec = t.st_ctim.tv_sec, t.st_ctim.tv_nsec
    out.stx_btime.tv_sec, out.stx_btime.tv_nsec = attr.birthtime.tv_sec, attr.birthtime.tv_nsec
    out.stx_rdev_major = major(st.st_rdev)
    out.stx_rdev_minor = minor(st.st_rdev)


cdef object lock_of(const c_flock* lock):
    # libfuse gives the range as start and length (0: to the end of the file)
    return FileLock(lock.l_type, lock.l_start, lock.l_len, lock.l_pid)
