# cython: language_level=3, binding=True
"""Running one request's handler and sending its one reply.

Rules of this file:
- ``start`` runs a handler's coroutine inline until it first suspends. Most handlers never
  suspend and are answered right there, with no task and no extra object.
- A handler that suspends becomes a ``Pending``: an awaitable the dispatcher's task awaits, so
  the handler keeps running in the task that started it (its cancel scopes stay valid).
- Every request is answered exactly once. A result of the wrong type, an exception other than
  FUSEError, or a coroutine returned instead of awaited is answered with EIO and logged once;
  a Pending dropped unanswered sends EIO from ``__dealloc__``.
"""
cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport (
    PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE,
)
from cpython.ref cimport PyObject, Py_XDECREF
from libc.errno cimport EACCES, EINTR, EIO, ERANGE, errno
from libc.string cimport memchr, memset
from posix.fcntl cimport flock as c_flock
from posix.stat cimport S_IFDIR, S_IFMT, S_IFREG
from posix.types cimport off_t
from libc.stdint cimport uint64_t
from libc.stdio cimport SEEK_SET
from posix.unistd cimport _SC_PAGESIZE, pread, sysconf
from pyfuse3._libfuse.cpython cimport PyCoro_CheckExact, PyIter_Send
from pyfuse3._libfuse.fuse_lowlevel cimport (
    FUSE_BUF_FD_SEEK, FUSE_BUF_IS_FD, FUSE_ROOT_ID, fuse_buf_copy_flags, fuse_buf_flags,
    fuse_bufvec, fuse_entry_param, fuse_file_info, fuse_ino_t, fuse_reply_attr, fuse_reply_buf,
    fuse_reply_create, fuse_reply_data, fuse_reply_entry, fuse_reply_err, fuse_reply_open,
    fuse_reply_bmap, fuse_reply_ioctl, fuse_reply_lock, fuse_reply_lseek, fuse_reply_poll,
    fuse_reply_readlink, fuse_reply_statfs, fuse_reply_write, fuse_reply_xattr,
    fuse_req_ctx, fuse_req_interrupt_func, pyfuse3_reply_statx, pyfuse3_set_backing_id,
)
from pyfuse3._libfuse.stat cimport struct_statx
from pyfuse3._opcodes cimport (
    INTERRUPT_ANY, INTERRUPT_FATAL, OP_COUNT, R_ACCESS, R_ATTR, R_BMAP, R_CREATE, R_ENTRY,
    R_IOCTL, R_LISTXATTR, R_LOCK, R_LSEEK, R_NONE, R_NOREPLY, R_OPEN, R_OPENDIR, R_POLL, R_READ,
    R_READDIR, R_READLINK, R_STATFS, R_STATX, R_WRITE, R_XATTR, Reply,
)
from pyfuse3._types cimport (
    EntryAttributes, FileInfo, FileRange, FUSEError, StatvfsData, has_file_type, no_file_type,
    statx_of,
)
from pyfuse3._fills cimport Fills
from pyfuse3._readdir cimport ReaddirToken, finish_token

import errno as errno_module
import stat as stat_module
import logging
from asyncio import CancelledError

from pyfuse3._opcodes import ANY_TYPE, OP_NAMES, OPERATIONS, RESULT_OF_REPLY
from pyfuse3._pyfuse3 import INTERRUPT_MARK, FileLock

log = logging.getLogger("pyfuse3")

#: The reply kind of each Op, from the operation table (a C array: read per request).
cdef Reply REPLY_OF[<int>OP_COUNT]
for _o in OPERATIONS:
    REPLY_OF[<int>_o.op] = <Reply>_o.reply
del _o

#: The errnos a handler may answer with: those the C library names (libfuse 3.18 answers ERANGE
#: for any other, the kernel rejects any above 511, and the caller of a rejected reply hangs).
cdef unsigned char KNOWN_ERRNO[512]
for _e in errno_module.errorcode:
    if 0 < _e < 512:
        KNOWN_ERRNO[_e] = 1
LARGEST_ERRNO = max(e for e in errno_module.errorcode if e < 512)
del _e

#: The file type a new entry of each Op must have (Operation.makes; 0: not a new entry), which
#: the kernel refuses (EIO) otherwise, and with inode 0 or 1 (a C array: read per request).
cdef unsigned int NEW_ENTRY[<int>OP_COUNT]
for _o in OPERATIONS:
    NEW_ENTRY[<int>_o.op] = _o.makes
del _o
cdef unsigned int ANY = ANY_TYPE


class HandlerResultError(TypeError):
    """A handler returned something the kernel cannot be answered with."""


cdef object start(Fills fills, fuse_req_t req, int op, size_t size, object extra, object coro,
                  fuse_ino_t node, Interrupts interrupts):
    """Run a handler's coroutine inline: answer it, or return a Pending if it suspended.

    ``node`` is the request's inode (the directory for requests that create an entry); with
    ``fills`` it tells which kernel caches the reply fills (see ``_fills``). ``size`` is the
    most the reply may carry (read, xattrs, ioctl), for mknod the file type asked for, for
    lookup 1 if the name is ``.`` or ``..``. ``interrupts``: the session's, telling whether a
    kernel INTERRUPT may cancel the handler if it suspends.

    A BaseException that is not an Exception (KeyboardInterrupt, ...) is answered with EINTR and
    returned, for the caller to raise once libfuse has returned.
    """
    cdef PyObject* res = NULL
    cdef int status
    cdef unsigned long long since = fills.seq  # the handler reads its state after this
    if not PyCoro_CheckExact(coro):
        try:
            coro = _as_iterator(op, coro)
        except BaseException as e:
            return reply_failure(req, op, e, extra)
    try:
        status = PyIter_Send(coro, None, &res)
    except BaseException as e:
        return reply_failure(req, op, e, extra)
    result = <object>res
    Py_XDECREF(res)
    if status == 0:
        reply_result(req, op, size, extra, result, fills, since, node)
        return None
    cdef Pending p = Pending.__new__(Pending)
    p.req = req
    p.op = op
    p.size = size
    p.extra = extra
    p.coro = coro
    p.first = result
    p.fills = fills
    p.since = since
    p.node = node
    if interrupts.mode[op] and REPLY_OF[op] != R_NOREPLY:  # a forget's request is gone
        p.interrupts = interrupts
        # libfuse forgets this registration when the request is answered, and the Pending
        # answers before it dies, so the pointer stays valid for as long as libfuse uses it.
        fuse_req_interrupt_func(req, _on_interrupt, <void*>p)
    return p


cdef void _on_interrupt(fuse_req_t req, void* data) noexcept with gil:
    # The kernel interrupted the request: its caller got a signal, any signal. Runs on the
    # loop thread inside fuse_session_process_buf (or inside start(), for an INTERRUPT that
    # came first). Only asks for cancellation: the handler's task answers EINTR when it
    # reaches it. The kernel sends one INTERRUPT per request: a held one is watched.
    cdef Pending p = <Pending>data
    cdef Interrupts interrupts = p.interrupts
    if interrupts.mode[p.op] == INTERRUPT_FATAL:
        p.caller = fuse_req_ctx(req).pid
        if not interrupts.dying(p.caller):
            p.held = True
            interrupts.hold(p)
            return
    p.interrupt()


@cython.final
cdef class Interrupts:
    """Which of its caller's signals cancel each operation's waiting handler (an Interrupt:
    the operation table's column, or the handler's mark), and how a caller is seen dying.

    ``caller_dying(pid)``: whether that thread is being killed (``_sysutil.caller_dying``; the
    harness plays the kernel with its own).
    """

    def __init__(self, tuple handlers, caller_dying):
        any_opcodes = set()
        for o in OPERATIONS:
            mode = getattr(handlers[o.op], INTERRUPT_MARK, o.interrupt)
            self.mode[<int>o.op] = mode
            if mode == INTERRUPT_ANY:
                any_opcodes.update(o.opcodes)
        self.any_opcodes = frozenset(any_opcodes)
        self.caller_dying = caller_dying
        self.on_held = None

    def watched_by(self, on_held):
        """Call ``on_held(pending)`` for each handler whose INTERRUPT was held (its caller was
        not dying then), to call ``pending.interrupt()`` once it is; ``on_held(None)`` for a
        parked request's (see ``Session.end_parked_of_dying``)."""
        self.on_held = on_held

    cdef void hold(self, Pending p) noexcept:
        if self.on_held is not None:
            try:
                self.on_held(p)
            except BaseException:
                log.exception("watching the caller of an interrupted request failed")

    def of(self, int op):
        """The Interrupt of operation ``op``."""
        if not 0 <= op < OP_COUNT:
            raise ValueError(f"no operation {op}")
        return self.mode[op]

    cdef bint ends_parked(self, unsigned int opcode, int pid) noexcept:
        # An INTERRUPT of a parked request (its handler not started): answer EINTR now?
        if opcode in self.any_opcodes:
            return True
        return self.dying(pid)

    cpdef bint dying(self, int pid) noexcept:
        """Whether ``caller_dying(pid)``; True, logged, if it fails (the interrupt is then
        honoured)."""
        try:
            return bool(self.caller_dying(pid))
        except BaseException:
            log.exception("telling whether the caller %d of an interrupted request is being "
                          "killed failed: honouring the interrupt", pid)
            return True


cdef object _as_iterator(int op, object aw):
    # Awaitables other than native coroutines (e.g. Cython-compiled ones) are driven by their
    # __await__ iterator; anything else means the handler is not an async function.
    try:
        await_ = type(aw).__await__
    except AttributeError:
        _close(aw)
        raise HandlerResultError(
            f"{OP_NAMES[op]}() handler must be a coroutine function (async def), "
            f"it returned {type(aw).__name__}") from None
    return await_(aw)


cdef inline void _close(object obj) noexcept:
    if PyCoro_CheckExact(obj):
        obj.close()  # silences "coroutine was never awaited"


cdef object reply_failure(fuse_req_t req, int op, object exc, object extra,
                          bint cancel_expected=False):
    """Answer a request whose handler raised; return exc if it must propagate further.

    An asyncio CancelledError that pyfuse3 did not cause (the handler awaited a future someone
    else cancelled) is a handler failure like any other: EIO, logged, and it stops here.
    """
    cdef int err = EIO
    cdef bint failure = isinstance(exc, Exception)
    # a forget has no reply to send: its log must not claim one
    answer = "answering EIO" if REPLY_OF[op] != R_NOREPLY else "nothing to answer"
    if isinstance(exc, FUSEError):
        err = (<FUSEError>exc).errno_
        if not (0 < err < 512 and KNOWN_ERRNO[err]):
            log.error("%s() handler raised FUSEError(%d): not an errno the C library names "
                      "(see the errno module: 1 to %d), %s", OP_NAMES[op], err, LARGEST_ERRNO,
                      answer)
            err = EIO
    elif failure:
        log.error("%s() handler failed, %s", OP_NAMES[op], answer, exc_info=exc)
    elif isinstance(exc, CancelledError) and not cancel_expected:
        failure = True
        log.error("%s() handler raised CancelledError although pyfuse3 did not cancel it "
                  "(did it await a future that was cancelled?), %s", OP_NAMES[op], answer,
                  exc_info=exc)
    else:
        err = EINTR
    finish_token(extra)
    if REPLY_OF[op] != R_NOREPLY:
        fuse_reply_err(req, err)
    return None if failure else exc


cdef void reply_result(fuse_req_t req, int op, size_t size, object extra, object result,
                       Fills fills, unsigned long long since, fuse_ino_t node) noexcept:
    try:
        _reply(req, op, size, extra, result, fills, since, node)
    except Exception as e:
        if PyCoro_CheckExact(result):
            _close(result)
            e = HandlerResultError(f"{OP_NAMES[op]}() handler returned a coroutine: "
                                   "is an 'await' missing?")
        elif isinstance(e, ValueError):  # its message names what was returned, and why not
            e = HandlerResultError(f"{OP_NAMES[op]}() handler returned {e}")
        elif isinstance(e, OverflowError):  # a number a C field cannot hold
            e = HandlerResultError(f"{OP_NAMES[op]}() handler returned a number out of range "
                                   f"for {RESULT_OF_REPLY[REPLY_OF[op]]} ({e})")
        elif isinstance(e, TypeError) and not isinstance(e, HandlerResultError):
            detail = str(e)  # our own "expected X, got Y" would only repeat the sentence
            e = HandlerResultError(f"{OP_NAMES[op]}() handler returned "
                                   f"{type(result).__name__}, expected "
                                   f"{RESULT_OF_REPLY[REPLY_OF[op]]}"
                                   + ("" if detail.startswith("expected ") else f" ({detail})"))
        reply_failure(req, op, e, extra)


cdef int _reply(fuse_req_t req, int op, size_t size, object extra, object result,
                Fills fills, unsigned long long since, fuse_ino_t node) except -1:
    cdef fuse_file_info fi
    cdef fuse_entry_param copy
    cdef struct_statx stx
    cdef Reply kind = REPLY_OF[op]
    if kind == R_ATTR:
        _check_type(<EntryAttributes?>result, True)
        if node == FUSE_ROOT_ID:
            _check_root(<EntryAttributes>result)
        fuse_reply_attr(req, &(<EntryAttributes>result).fuse_param.attr, fills.attr_timeout(
            since, node, (<EntryAttributes>result).fuse_param.attr_timeout))
    elif kind == R_ENTRY:
        _check_type(<EntryAttributes?>result, False)
        if NEW_ENTRY[op]:
            _check_new_entry(<EntryAttributes>result, op, size, node)
        elif (<EntryAttributes>result).fuse_param.ino < 2 or \
                (<EntryAttributes>result).fuse_param.ino == node:  # (a lookup)
            _check_lookup(<EntryAttributes>result, node, size)
        fuse_reply_entry(req, fills.entry(since, node, None,
                                          &(<EntryAttributes>result).fuse_param, &copy))
    elif kind == R_NONE:
        if PyCoro_CheckExact(result):
            raise TypeError("coroutine")
        fuse_reply_err(req, 0)
    elif kind == R_READ:
        _reply_read(req, size, result)
    elif kind == R_WRITE:
        _reply_write(req, size, result)
    elif kind == R_OPEN:
        memset(&fi, 0, sizeof(fi))
        (<FileInfo?>result).fill(&fi)
        if (<FileInfo>result).changed:  # close-to-open: nothing cached before may be used
            fills.drop_attrs(node)
            fi.keep_cache = False
        if (<FileInfo>result).backing_fd >= 0:
            _passthrough(req, &fi, fills, node, (<FileInfo>result).backing_fd)
        fuse_reply_open(req, &fi)
    elif kind == R_OPENDIR:
        memset(&fi, 0, sizeof(fi))
        if type(result) is FileInfo:
            (<FileInfo>result).fill(&fi)
        else:
            fi.fh = _ranged(result, R_OPENDIR)
        fills.listing_opened(fi.fh, since)
        fuse_reply_open(req, &fi)
    elif kind == R_CREATE:
        _reply_create(req, op, result, fills, since, node)
    elif kind == R_READDIR:
        _reply_readdir(req, <ReaddirToken>extra, result)
    elif kind == R_READLINK:
        _reply_readlink(req, result)
    elif kind == R_STATFS:
        fuse_reply_statfs(req, &(<StatvfsData?>result).stat)
    elif kind == R_XATTR:
        _reply_sized(req, size, _as_bytes(result))
    elif kind == R_LISTXATTR:
        _reply_sized(req, size, _join_names(result))
    elif kind == R_ACCESS:
        if PyCoro_CheckExact(result):
            raise TypeError("coroutine")
        fuse_reply_err(req, 0 if result else EACCES)
    elif kind == R_POLL:
        fuse_reply_poll(req, <unsigned>_ranged(result, R_POLL))
    elif kind == R_LSEEK:
        fuse_reply_lseek(req, <off_t>_ranged(result, R_LSEEK))
    elif kind == R_LOCK:
        _reply_lock(req, result)
    elif kind == R_BMAP:
        fuse_reply_bmap(req, <uint64_t>_ranged(result, R_BMAP))
    elif kind == R_STATX:
        _check_type(<EntryAttributes?>result, True)
        if node == FUSE_ROOT_ID:
            _check_root(<EntryAttributes>result)
        statx_of(<EntryAttributes>result, &stx)
        pyfuse3_reply_statx(req, &stx, fills.attr_timeout(
            since, node, (<EntryAttributes>result).fuse_param.attr_timeout))
    elif kind == R_IOCTL:
        _reply_ioctl(req, size, result)
    return 0


cdef inline int _check_type(EntryAttributes attr, bint always) except -1:
    # (an entry with inode 0 is a negative one: the kernel ignores its attributes)
    if not has_file_type(attr.fuse_param.attr.st_mode) and (always or attr.fuse_param.ino):
        no_file_type(attr.fuse_param.attr.st_mode, None)
    return 0


cdef int _check_root(EntryAttributes attr) except -1:
    cdef unsigned int mode = attr.fuse_param.attr.st_mode
    if (mode & S_IFMT) != S_IFDIR:
        raise ValueError(f"st_mode {mode:#o} for the root, which must be a directory "
                         "(stat.S_IFDIR): the kernel would mark the root bad and answer every "
                         "later call on the mount with EIO")
    return 0


cdef int _check_lookup(EntryAttributes attr, fuse_ino_t parent, bint dot) except -1:
    # an answer with inode 0, 1 or the parent's; dot: the name is . or .. (export lookups)
    cdef fuse_ino_t ino = attr.fuse_param.ino
    if ino == 0:
        if attr.fuse_param.attr.st_mode & ~S_IFREG:
            _forgot_inode(attr.fuse_param.attr.st_mode)
    elif dot:
        pass
    elif ino == FUSE_ROOT_ID:
        raise ValueError("st_ino 1 (the root) for a name in a directory, which the kernel "
                         "refuses (EIO), and would mark the root bad if the type is not a "
                         "directory")
    else:
        raise ValueError(f"st_ino {ino}, the directory the name was looked up in (its "
                         f"attributes instead of the entry's?), {OWN_DIRECTORY}")
    return 0


#: What the kernel does with an entry answering the inode of its own directory.
OWN_DIRECTORY = ("which the kernel refuses (ELOOP), or takes as a new type of that directory "
                 "and marks it bad")


cdef void _forgot_inode(unsigned int mode) noexcept:
    # Deliberate negative entries keep EntryAttributes()' mode (S_IFREG, no permissions);
    # this one has another, so st_ino was most likely forgotten. The answer stays a negative
    # entry (upstream's contract), hence a warning and not EIO.
    log.warning("lookup() handler returned st_ino 0 with st_mode %#o: inode 0 makes it a "
                "negative entry (the kernel takes the name as absent, and caches that for "
                "entry_timeout); set st_ino, or leave st_mode as EntryAttributes() has it in a "
                "negative entry", mode)


cdef int _check_new_entry(EntryAttributes attr, int op, size_t asked,
                          fuse_ino_t parent) except -1:
    # asked: the file type the request asked for where it names one (mknod), else 0
    cdef unsigned int required = NEW_ENTRY[op]
    cdef unsigned int mode = attr.fuse_param.attr.st_mode
    if attr.fuse_param.ino < 2:
        raise ValueError(f"st_ino {attr.fuse_param.ino} for the new entry, which the kernel "
                         "refuses (EIO): 0 names no inode and 1 is the root")
    if attr.fuse_param.ino == parent:
        raise ValueError(f"st_ino {parent} for the new entry, the directory it is made in, "
                         f"{OWN_DIRECTORY}")
    if required == ANY:
        required = asked  # (0 for a link: pyfuse3 does not know the linked inode's type)
        if required and (mode & S_IFMT) != required:
            raise ValueError(f"st_mode {mode:#o} for the new entry, which the kernel refuses "
                             f"(EIO): the {OP_NAMES[op]}() request asked for "
                             f"stat.{TYPE_NAMES[required]}")
    elif (mode & S_IFMT) != required:
        raise ValueError(f"st_mode {mode:#o} for the new entry, which the kernel refuses "
                         f"(EIO): a {OP_NAMES[op]}() entry is stat.{TYPE_NAMES[required]}")
    return 0


TYPE_NAMES = {getattr(stat_module, n): n for n in (
    "S_IFBLK", "S_IFCHR", "S_IFDIR", "S_IFIFO", "S_IFLNK", "S_IFREG", "S_IFSOCK")}


cdef int _reply_ioctl(fuse_req_t req, size_t size, object result) except -1:
    # size: how many bytes the caller's buffer takes (the command's _IOC_SIZE if it reads)
    cdef Py_buffer view
    cdef int rc = 0
    if isinstance(result, tuple):
        if len(result) != 2:
            raise TypeError("expected a 2-tuple")
        rc = _ranged(result[0], R_IOCTL)
        result = result[1]
    elif isinstance(result, int) and not isinstance(result, bool):
        fuse_reply_ioctl(req, <int>_ranged(result, R_IOCTL), NULL, 0)
        return 0
    PyObject_GetBuffer(result, &view, PyBUF_SIMPLE)
    try:
        if <size_t>view.len > size:
            raise HandlerResultError(
                f"ioctl() handler returned {view.len} bytes, more than the {size} the "
                "command's output holds")
        fuse_reply_ioctl(req, rc, view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    return 0


cdef int _reply_lock(fuse_req_t req, object result) except -1:
    cdef c_flock lk
    if not isinstance(result, FileLock):
        raise TypeError(f"expected FileLock, got {type(result).__name__}")
    memset(&lk, 0, sizeof(lk))
    lk.l_type = result.type
    lk.l_whence = SEEK_SET
    lk.l_start = result.start
    lk.l_len = result.length
    lk.l_pid = result.pid
    fuse_reply_lock(req, &lk)
    return 0


cdef inline object _as_int(object val):
    if not isinstance(val, int) or isinstance(val, bool):
        raise TypeError(f"expected int, got {type(val).__name__}")
    return val


#: Replies that carry one C integer of the handler's: what it is, and the range it must be in.
INT_RESULT = {R_POLL: ("ready events", 0, 2**32 - 1), R_LSEEK: ("an offset", 0, 2**63 - 1),
              R_BMAP: ("a block number", 0, 2**64 - 1),
              R_OPENDIR: ("a file handle", 0, 2**64 - 1),
              R_IOCTL: ("a result", -2**31, 2**31 - 1)}


cdef object _ranged(object val, Reply kind):
    _as_int(val)
    what, lo, hi = INT_RESULT[kind]
    if not lo <= val <= hi:
        raise ValueError(f"{val}, expected {what} from {lo} to {hi}")
    return val


cdef inline bytes _as_bytes(object val):
    if not isinstance(val, bytes):
        raise TypeError(f"expected bytes, got {type(val).__name__}")
    return <bytes>val


cdef const char* _c_name(object val, str what) except NULL:
    cdef bytes b = _as_bytes(val)
    if memchr(PyBytes_AS_STRING(b), 0, PyBytes_GET_SIZE(b)) != NULL:
        raise HandlerResultError(f"{what} {b!r} contains a NUL byte")
    return PyBytes_AS_STRING(b)


cdef int _reply_readlink(fuse_req_t req, object result) except -1:
    cdef const char* target = _c_name(result, "symlink target")  # (bytes, then)
    cdef size_t n = PyBytes_GET_SIZE(result)
    if n >= PAGE_SIZE:  # the kernel's buffer is a page with room for the NUL
        raise ValueError(f"a symlink target of {n} bytes, more than the kernel takes "
                         f"({PAGE_SIZE - 1})")
    fuse_reply_readlink(req, target)
    return 0


cdef int _reply_read(fuse_req_t req, size_t size, object data) except -1:
    cdef Py_buffer view
    if PyBytes_CheckExact(data):
        _check_read_size(size, PyBytes_GET_SIZE(data))
        fuse_reply_buf(req, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))
        return 0
    if type(data) is FileRange:
        return _reply_file_range(req, size, <FileRange>data)
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        _check_read_size(size, view.len)
        fuse_reply_buf(req, <const char*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    return 0


def _pipe_pages():
    # libfuse grows its splice pipe to pipe-max-size (default 1 MiB = 256 page slots).
    try:
        with open("/proc/sys/fs/pipe-max-size") as fh:
            return int(fh.read()) // PAGE_SIZE
    except (OSError, ValueError):
        return 16  # the size every pipe starts with: 64 KiB


cdef size_t PAGE_SIZE = sysconf(_SC_PAGESIZE)
cdef size_t PIPE_PAGES = _pipe_pages()


cdef int _reply_file_range(fuse_req_t req, size_t size, FileRange data) except -1:
    # libfuse splices the range (file -> pipe -> /dev/fuse) when it is at least two pages
    # long and the kernel allows SPLICE_WRITE, else reads it into a buffer; either way the
    # request is answered, with the fd's errno if reading it fails. Disk reads may block.
    # A reply the pipe cannot hold whole (one slot for the header, one per page touched)
    # would take libfuse's slowest path; reading it into a buffer is cheaper.
    cdef fuse_bufvec bufv
    cdef size_t first = <size_t>data.offset % PAGE_SIZE
    if data.size > size:
        raise HandlerResultError(
            f"read() handler returned a FileRange of {data.size} bytes, more than the {size} "
            "requested")
    if 1 + (first + data.size + PAGE_SIZE - 1) // PAGE_SIZE > PIPE_PAGES:
        return _reply_file_range_copied(req, data)
    memset(&bufv, 0, sizeof(bufv))
    bufv.count = 1
    bufv.buf[0].size = data.size
    bufv.buf[0].flags = <fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK)
    bufv.buf[0].fd = data.fd
    bufv.buf[0].pos = data.offset
    with nogil:
        fuse_reply_data(req, &bufv, <fuse_buf_copy_flags>0)
    return 0


cdef int _reply_file_range_copied(fuse_req_t req, FileRange data) except -1:
    cdef bytes buf = PyBytes_FromStringAndSize(NULL, data.size)
    cdef char* mem = PyBytes_AS_STRING(buf)
    cdef size_t got = 0
    cdef ssize_t n
    cdef int err = 0
    with nogil:
        while got < data.size:
            n = pread(data.fd, mem + got, data.size - got, data.offset + got)
            if n > 0:
                got += n
            elif n == 0:
                break  # end of file
            elif errno != EINTR:
                err = errno
                break
        if err:
            fuse_reply_err(req, err)
        else:
            fuse_reply_buf(req, mem, got)
    return 0


cdef inline int _check_read_size(size_t size, Py_ssize_t got) except -1:
    if <size_t>got > size:
        raise HandlerResultError(
            f"read() handler returned {got} bytes, more than the {size} requested")
    return 0


cdef int _reply_write(fuse_req_t req, size_t size, object count) except -1:
    cdef long long n = -1
    _as_int(count)
    try:
        n = count  # (no Python int made for the comparison below)
    except OverflowError:
        pass
    if n < 0 or <unsigned long long>n > size:
        raise HandlerResultError(f"write() handler reported {count} bytes written, but "
                                 f"{size} were given (expected 0 to {size})")
    fuse_reply_write(req, <size_t>n)
    return 0


cdef int _passthrough(fuse_req_t req, fuse_file_info* fi, Fills fills, fuse_ino_t ino,
                      int fd) except -1:
    """An open naming a backing file: registered where passthrough is in use (else a plain
    open). The kernel refuses passthrough with cached pages of its own or without a position:
    keep_cache is dropped, nonseekable is an error."""
    cdef int backing_id
    if fi.nonseekable:
        raise HandlerResultError("FileInfo(nonseekable=True) cannot name a backing_fd: the "
                                 "kernel refuses passthrough for a file without a position")
    backing_id = fills.backing.open(req, ino, fi.fh, fd)
    if backing_id:
        fi.keep_cache = False
        fi.cache_readdir = False
        pyfuse3_set_backing_id(fi, backing_id)
    return 0


cdef int _reply_create(fuse_req_t req, int op, object result, Fills fills,
                       unsigned long long since, fuse_ino_t parent) except -1:
    cdef fuse_file_info fi
    cdef fuse_entry_param copy
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError("expected a 2-tuple")
    _check_type(<EntryAttributes?>result[1], True)
    _check_new_entry(<EntryAttributes>result[1], op, 0, parent)
    memset(&fi, 0, sizeof(fi))
    (<FileInfo?>result[0]).fill(&fi)
    if (<FileInfo>result[0]).backing_fd >= 0:
        _passthrough(req, &fi, fills, (<EntryAttributes?>result[1]).fuse_param.ino,
                     (<FileInfo>result[0]).backing_fd)
    fuse_reply_create(req, fills.entry(since, parent, None,
                                       &(<EntryAttributes?>result[1]).fuse_param, &copy), &fi)
    return 0


cdef int _reply_sized(fuse_req_t req, size_t size, bytes value) except -1:
    # The xattr protocol: size 0 asks for the length only; a too-small buffer gets ERANGE.
    cdef size_t n = PyBytes_GET_SIZE(value)
    if size == 0:
        fuse_reply_xattr(req, n)
    elif n > size:
        fuse_reply_err(req, ERANGE)
    else:
        fuse_reply_buf(req, PyBytes_AS_STRING(value), n)
    return 0


cdef bytes _join_names(object names):
    if isinstance(names, (bytes, str)):
        raise TypeError("expected a sequence of names, got a single name")
    parts = []
    for name in names:
        _c_name(name, "xattr name")
        parts.append(name)
        parts.append(b"\0")
    return b"".join(parts)


cdef int _reply_readdir(fuse_req_t req, ReaddirToken token, object result) except -1:
    try:
        if PyCoro_CheckExact(result):
            raise TypeError("coroutine")
        fuse_reply_buf(req, token.buf, token.used)
    finally:
        finish_token(token)
    return 0


@cython.final
cdef class Pending:
    """A handler that suspended: awaiting this object runs it to completion and answers it."""

    def __init__(self):
        raise TypeError("Pending objects are created by pyfuse3 only")

    def __await__(self):
        return self

    def __next__(self):
        return self.send(None)

    def send(self, value):
        cdef PyObject* res = NULL
        cdef int status = 0
        if not self.started:  # hand over what the handler yielded while it ran inline
            self.started = True
            first, self.first = self.first, None
            return first
        try:
            status = PyIter_Send(self.coro, value, &res)
        except BaseException as e:
            self._fail(e)
        result = <object>res
        Py_XDECREF(res)
        if status == 1:
            return result
        self._done(result)

    def throw(self, typ, val=None, tb=None):
        self.started = True
        try:
            result = self.coro.throw(typ, val, tb) if val is not None else self.coro.throw(typ)
        except StopIteration as e:
            self._done(e.value)
        except BaseException as e:
            self._fail(e)
        return result

    def close(self):
        cdef fuse_req_t req
        self.coro.close()
        if self._settle(&req):
            reply_failure(req, self.op, GeneratorExit(), self.extra)

    cpdef unwind(self, BaseException exc):
        """Raise ``exc`` in a handler that suspended but was never awaited (an exception left
        the task it ran in first), in that task, so the cancel scopes it entered there close in
        order; its request is answered (EINTR for KeyboardInterrupt and the like). A handler
        that goes on waiting is closed: nothing would resume it."""
        try:
            self.throw(type(exc), exc)
        except BaseException:
            return
        self.close()

    cdef bint _settle(self, fuse_req_t* req):
        # Takes the request: True the first time, with the request in *req, which the caller
        # answers. False once taken (answered, or abandoned by close()): it may be gone,
        # nothing may be sent. No Python code runs between the test and the swap, so under
        # the GIL this is an atomic exchange even when two threads race.
        req[0] = self.req
        if self.replied:
            return False
        self.replied = True
        self.req = NULL
        if self.live is not None:
            self.live.discard(self)
            self.live = None
        return True

    cdef _done(self, object result):
        cdef fuse_req_t req
        if self._settle(&req):
            reply_result(req, self.op, self.size, self.extra, result, self.fills, self.since,
                         self.node)
        raise StopIteration

    cdef _fail(self, BaseException exc):
        cdef fuse_req_t req
        if not self._settle(&req):
            if isinstance(exc, Exception):
                raise StopIteration
            raise exc
        cdef bint expected = self.interrupted or self.cancel_expected
        if not expected and isinstance(exc, CancelledError) and self.loop_shutting_down is not None:
            # a cancellation of the whole loop (asyncio.run's shutdown on 3.10 cancels every
            # task at once, handlers before pyfuse3 could mark them) is not a handler failure
            expected = self.loop_shutting_down()
        if reply_failure(req, self.op, exc, self.extra, expected) is not None:
            raise exc  # cancellation and other BaseExceptions keep propagating
        raise StopIteration

    cpdef interrupt(self):
        """Cancel the handler for its kernel INTERRUPT (it answers EINTR); once only, and
        not once answered."""
        if self.interrupted or self.replied:
            return
        self.interrupted = True
        if self.on_interrupt is not None:
            try:
                self.on_interrupt()
            except BaseException:
                log.exception("cancelling an interrupted %s() handler failed",
                              OP_NAMES[self.op])

    cpdef abandon(self):
        """Answer EINTR now (the session is closing); whatever the handler does later is dropped."""
        cdef fuse_req_t req
        if self._settle(&req):
            finish_token(self.extra)
            if REPLY_OF[self.op] != R_NOREPLY:
                fuse_reply_err(req, EINTR)

    def __dealloc__(self):
        cdef fuse_req_t req
        if self.coro is not None and self._settle(&req):
            reply_failure(req, self.op, RuntimeError("handler was never completed"),
                          self.extra)
