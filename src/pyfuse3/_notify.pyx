# cython: language_level=3, binding=True
"""Kernel cache control: the libfuse notify_* calls on a given session, with the GIL released.

Nothing here decides whether a call is safe where it is made (``_cache_control`` refuses the
calls that would deadlock: see docs/cache-control.md) or which session it acts on (the Mount's).
Each call counts itself on the session's lifecycle while it is inside libfuse, so close() does
not free the session under it.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memset
from libc.errno cimport ENOENT, ENOSYS
from posix.unistd cimport usleep
from posix.types cimport off_t
from pyfuse3._libfuse.fuse_lowlevel cimport (
    FUSE_BUF_NO_SPLICE, FUSE_CAP_WRITEBACK_CACHE, fuse_bufvec, fuse_ino_t,
    fuse_lowlevel_notify_delete, fuse_lowlevel_notify_inval_entry, fuse_lowlevel_notify_poll,
    fuse_pollhandle, fuse_pollhandle_destroy,
    fuse_lowlevel_notify_inval_inode, fuse_lowlevel_notify_retrieve, fuse_lowlevel_notify_store,
    FUSE_VERSION, PYFUSE3_HAVE_EPOCH, pyfuse3_expire_entry, pyfuse3_increment_epoch,
)
from pyfuse3._session cimport Session

import operator
import os

#: The capability bit of the writeback cache (Session.want).
WRITEBACK_CACHE = FUSE_CAP_WRITEBACK_CACHE


cdef object _error(int rc, str call, str what, Session session=None):
    if rc == -ENOSYS and session is not None and not session.initialized:
        return OSError(ENOSYS, f"{call}({what}): the kernel connection is not initialised yet "
                       "(main() has not answered the kernel's INIT request)")
    return OSError(-rc, f"{call}({what}) failed: {os.strerror(-rc)}")


cdef inline const char* _name(bytes name) except NULL:
    if name is None:
        raise TypeError("name must be bytes, not None")
    return PyBytes_AS_STRING(name)


def check_name(name):
    """TypeError unless ``name`` is bytes (an entry name)."""
    if not isinstance(name, bytes):
        raise TypeError(f"name must be bytes, not {type(name).__name__}")


cdef object _int(object value, str what):
    # any integer (numpy's too, through __index__), but not a bool
    if isinstance(value, bool) or not hasattr(type(value), "__index__"):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return operator.index(value)


cdef fuse_ino_t _inode(object value, str what) except? 0:
    value = _int(value, what)
    if not 0 <= value <= 0xFFFFFFFFFFFFFFFF:
        raise OverflowError(f"{what} must be between 0 and 2**64-1, got {value}")
    return value


cdef off_t _offset(object value, str what) except? -1:
    value = _int(value, what)
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}")
    if value > 0x7FFFFFFFFFFFFFFF:
        raise OverflowError(f"{what} must be at most 2**63-1, got {value}")
    return value


def as_int(value, what):
    """``value`` as an int (any integer type: __index__), or TypeError naming ``what``; a bool
    is refused."""
    return _int(value, what)


def check_inode(value, what):
    """``value`` if it is an inode number (an int from 0 to 2**64-1); else TypeError or
    OverflowError naming ``what``."""
    _inode(value, what)
    return value


def invalidate_inode(Session session not None, object inode, attr_only=False, *,
                     object offset=0, object length=0):
    """Drop the kernel's cached attributes and, unless ``attr_only``, cached data of an inode.

    ``offset``/``length`` limit the data invalidation to a byte range (length 0: to the end).
    Blocks the calling thread. OSError carries the kernel's errno (ENOENT: nothing cached);
    TypeError, ValueError (negative) or OverflowError for an argument the kernel cannot take.
    """
    cdef int rc
    cdef fuse_ino_t c_inode = _inode(inode, "inode")
    cdef off_t c_offset = _offset(offset, "offset")
    cdef off_t c_length = _offset(length, "length")
    if attr_only:
        c_offset = -1
    session.fills.inode_changed(c_inode)  # before the kernel: a reply computed earlier sees it
    session.life.enter_call("invalidate_inode")
    try:
        with nogil:
            rc = fuse_lowlevel_notify_inval_inode(session.se, c_inode, c_offset, c_length)
        if rc == -ENOENT and session.fills.may_be_landing(c_inode):
            rc = _repeat_while_landing(session, c_inode, c_offset, c_length)
    finally:
        session.life.leave_call()
    if rc != 0:
        raise _error(rc, "invalidate_inode", f"{c_inode}", session)


cdef int _repeat_while_landing(Session session, fuse_ino_t inode, off_t offset, off_t length):
    # An entry reply naming this inode was just sent, and the kernel had no such inode: the
    # client's thread may still be installing it (after our reply's write returned). Ask again
    # briefly, so a fill computed before the change cannot stay; at most 15.5 ms, rarely.
    cdef int rc = -ENOENT
    cdef unsigned int wait = 500
    with nogil:
        while rc == -ENOENT and wait <= 8000:
            usleep(wait)
            rc = fuse_lowlevel_notify_inval_inode(session.se, inode, offset, length)
            wait *= 2
    return rc


def invalidate_entry(Session session not None, object inode_p, bytes name,
                     object deleted=0):
    """Drop the kernel's cached entry ``name`` in directory ``inode_p``; blocks the caller.

    A non-zero ``deleted`` sends a delete notification for that child inode instead, which
    also tells inotify watchers that the file is gone. The kernel first waits for requests in
    flight on that directory. OSError carries the kernel's errno (ENOENT: not cached).
    """
    cdef fuse_ino_t c_inode_p = _inode(inode_p, "inode_p")
    cdef fuse_ino_t c_deleted = _inode(deleted, "deleted")
    cdef const char* c_name = _name(name)
    cdef size_t n = PyBytes_GET_SIZE(name)
    cdef int rc
    session.fills.entry_changed(c_inode_p, hash(name))
    if c_deleted:
        session.fills.inode_changed(c_deleted)  # its link count
    session.life.enter_call("invalidate_entry")
    try:
        with nogil:
            if c_deleted:
                rc = fuse_lowlevel_notify_delete(session.se, c_inode_p, c_deleted, c_name, n)
            else:
                rc = fuse_lowlevel_notify_inval_entry(session.se, c_inode_p, c_name, n)
    finally:
        session.life.leave_call()
    if rc != 0:
        raise _error(rc, "invalidate_entry", f"{c_inode_p}, {name!r}", session)


def expire_entry(Session session not None, object inode_p, bytes name):
    """Mark a cached entry expired (kept for open files, revalidated on next use); waits like
    invalidate_entry()."""
    cdef fuse_ino_t c_inode_p = _inode(inode_p, "inode_p")
    cdef const char* c_name = _name(name)
    cdef size_t n = PyBytes_GET_SIZE(name)
    cdef int rc
    session.fills.entry_changed(c_inode_p, hash(name))
    session.life.enter_call("expire_entry")
    try:
        with nogil:
            rc = pyfuse3_expire_entry(session.se, c_inode_p, c_name, n)
    finally:
        session.life.leave_call()
    if rc != 0:
        raise _error(rc, "expire_entry", f"{c_inode_p}, {name!r}", session)


#: Whether the libfuse compiled against has epoch invalidation (3.18+).
HAVE_EPOCH = bool(PYFUSE3_HAVE_EPOCH)


def invalidate_all(Session session not None):
    """Drop every name (dentry) the kernel caches for this mount at once: the kernel's epoch
    goes up, and a cached name from a lookup begun before is looked up again on its next use.

    Returns at once (the kernel waits for nothing). OSError(ENOSYS) where libfuse (before
    3.18) or the kernel (before Linux 6.16, FUSE 7.44) lacks it.
    """
    cdef int rc
    if not PYFUSE3_HAVE_EPOCH:
        raise OSError(ENOSYS, "invalidate_all() needs libfuse 3.18 or newer: this pyfuse3 was "
                      f"built against libfuse 3.{FUSE_VERSION % 100} (make build builds 3.18; "
                      "the wheels bundle it)")
    session.life.enter_call("invalidate_all")
    try:
        with nogil:
            rc = pyfuse3_increment_epoch(session.se)
    finally:
        session.life.leave_call()
    if rc == -ENOSYS and session.initialized:
        raise OSError(ENOSYS, "invalidate_all(): the kernel lacks epoch invalidation (FUSE "
                      "protocol 7.44, Linux 6.16): invalidate names one by one with "
                      "invalidate_entry()")
    if rc != 0:
        raise _error(rc, "invalidate_all", "", session)


def notify_store(Session session not None, object inode, object offset, data):
    """Put ``data`` (any bytes-like object, not copied) into the kernel page cache at offset.

    Written with one write (no splice: a splice pipe per calling thread would outlive the
    session). OSError carries the kernel's errno; RuntimeError if the session is closed.
    """
    cdef fuse_bufvec bufv
    cdef Py_buffer view
    cdef int rc
    cdef fuse_ino_t c_inode = _inode(inode, "inode")
    cdef off_t c_offset = _offset(offset, "offset")
    if isinstance(data, str):
        raise TypeError("data must be a bytes-like object, not str")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        memset(&bufv, 0, sizeof(bufv))
        bufv.count = 1
        bufv.buf[0].mem = view.buf
        bufv.buf[0].size = view.len
        bufv.buf[0].fd = -1
        session.fills.inode_changed(c_inode)
        session.life.enter_call("notify_store")
        try:
            with nogil:
                rc = fuse_lowlevel_notify_store(session.se, c_inode, c_offset, &bufv,
                                                FUSE_BUF_NO_SPLICE)
        finally:
            session.life.leave_call()
    finally:
        PyBuffer_Release(&view)
    if rc != 0:
        raise _error(rc, "notify_store", f"{c_inode}, {c_offset}, <{view.len} bytes>", session)


def request_retrieve(Session session not None, object inode, object offset,
                     object size, on_reply):
    """Ask the kernel for its cached bytes of a range; ``on_reply(data)`` runs on the loop.

    The kernel answers with the cached pages from ``offset`` up to the first one it does not
    hold (possibly none); ``data`` is an OSError if they could not be copied. Use the
    awaitable pyfuse3.cache.notify_retrieve().
    """
    cdef unsigned long long cookie
    cdef int rc
    cdef fuse_ino_t c_inode = _inode(inode, "inode")
    cdef off_t c_offset = _offset(offset, "offset")
    cdef size_t c_size = _offset(size, "size")
    session.life.enter_call("notify_retrieve")
    try:
        cookie = session.add_retrieval(on_reply)
        with nogil:
            rc = fuse_lowlevel_notify_retrieve(session.se, c_inode, c_size, c_offset,
                                               <void*><size_t>cookie)
    finally:
        session.life.leave_call()
    if rc != 0:
        session.pop_retrieval(cookie)
        raise _error(rc, "notify_retrieve", f"{c_inode}, {c_offset}, {c_size}", session)


cdef class PollHandle:
    """Wakes the processes polling a file: given to ``Operations.poll()``; keep it, then
    call ``notify()`` once the file's readiness changed.

    A handle wakes its pollers once (the kernel polls again and gets a new one); dropping it
    unused releases it. ``notify()`` is safe from any thread and releases the GIL.
    """

    def __init__(self):
        raise TypeError("PollHandle objects are created by pyfuse3 only")

    def notify(self):
        """Wake every process waiting in poll/select/epoll on the file.

        RuntimeError if this handle was already notified or its file system is closed;
        OSError with the kernel's errno if the notification fails.
        """
        # Take the handle before anything else: no Python code runs between the read and
        # the clear, so of two threads notifying at once exactly one gets it (under the GIL
        # an atomic exchange); the other is refused and nothing is freed twice.
        cdef fuse_pollhandle* ph = self.ph
        cdef int rc
        self.ph = NULL
        if ph == NULL:
            raise RuntimeError("this PollHandle was already notified (a handle wakes its "
                               "pollers once; poll() receives a new one)")
        try:
            self.session.life.enter_call("PollHandle.notify")
        except BaseException:
            fuse_pollhandle_destroy(ph)  # the session takes no calls: release it unused
            raise
        try:
            with nogil:
                rc = fuse_lowlevel_notify_poll(ph)
        finally:
            self.session.life.leave_call()
            fuse_pollhandle_destroy(ph)
        if rc != 0:
            raise OSError(-rc, f"PollHandle.notify() failed: {os.strerror(-rc)}")

    def __dealloc__(self):
        cdef fuse_pollhandle* ph = self.ph
        self.ph = NULL
        if ph != NULL:
            fuse_pollhandle_destroy(ph)  # frees only the handle, never the session


cdef PollHandle new_poll_handle(Session session, fuse_pollhandle* ph):
    cdef PollHandle handle = PollHandle.__new__(PollHandle)
    handle.ph = ph
    handle.session = session
    return handle
