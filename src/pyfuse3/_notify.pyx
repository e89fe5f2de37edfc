# cython: language_level=3, binding=True
"""Kernel cache control: the libfuse notify_* calls, with the GIL released.

Deadlock rules (see docs/cache-control.md): these calls write to /dev/fuse and the kernel may
wait, before accepting them, for requests only the event loop can answer (dirty pages with the
writeback cache for invalidate_inode; in-flight operations on the same entry for
invalidate_entry). Calling them on the event-loop thread from inside a handler can therefore
block forever; the awaitable forms in pyfuse3.cache run them on a worker thread instead.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memset
from posix.types cimport off_t
from pyfuse3._libfuse.fuse_lowlevel cimport (
    fuse_buf_copy_flags, fuse_bufvec, fuse_ino_t, fuse_lowlevel_notify_delete,
    pyfuse3_expire_entry, fuse_lowlevel_notify_inval_entry,
    fuse_lowlevel_notify_inval_inode, fuse_lowlevel_notify_retrieve, fuse_lowlevel_notify_store,
    fuse_session,
)
from pyfuse3._session cimport Session

import os

from pyfuse3._lifecycle import current_session


cdef fuse_session* _se() except NULL:
    return (<Session>current_session()).c_session()


cdef object _error(int rc, str call, str what):
    return OSError(-rc, f"{call}({what}) failed: {os.strerror(-rc)}")


cdef inline const char* _name(bytes name) except NULL:
    if name is None:
        raise TypeError("name must be bytes, not None")
    return PyBytes_AS_STRING(name)


def invalidate_inode(fuse_ino_t inode, attr_only=False, *, off_t offset=0, off_t length=0):
    """Drop the kernel's cached attributes and, unless ``attr_only``, cached data of an inode.

    ``offset``/``length`` limit the data invalidation to a byte range (length 0: to the end).
    """
    cdef fuse_session* se = _se()
    cdef int rc
    if offset < 0 or length < 0:
        raise ValueError("offset and length must not be negative")
    if attr_only:
        offset = -1
    with nogil:
        rc = fuse_lowlevel_notify_inval_inode(se, inode, offset, length)
    if rc != 0:
        raise _error(rc, "invalidate_inode", f"{inode}")


def invalidate_entry(fuse_ino_t inode_p, bytes name, fuse_ino_t deleted=0):
    """Drop the kernel's cached entry ``name`` in directory ``inode_p``; blocks the caller.

    A non-zero ``deleted`` sends a delete notification for that child inode instead, which
    also tells inotify watchers that the file is gone.
    """
    cdef const char* c_name = _name(name)
    cdef size_t n = PyBytes_GET_SIZE(name)
    cdef fuse_session* se = _se()
    cdef int rc
    with nogil:
        if deleted:
            rc = fuse_lowlevel_notify_delete(se, inode_p, deleted, c_name, n)
        else:
            rc = fuse_lowlevel_notify_inval_entry(se, inode_p, c_name, n)
    if rc != 0:
        raise _error(rc, "invalidate_entry", f"{inode_p}, {name!r}")


def expire_entry(fuse_ino_t inode_p, bytes name):
    """Mark a cached entry expired (kept for open files, revalidated on next use)."""
    cdef const char* c_name = _name(name)
    cdef size_t n = PyBytes_GET_SIZE(name)
    cdef fuse_session* se = _se()
    cdef int rc
    with nogil:
        rc = pyfuse3_expire_entry(se, inode_p, c_name, n)
    if rc != 0:
        raise _error(rc, "expire_entry", f"{inode_p}, {name!r}")


def notify_store(fuse_ino_t inode, off_t offset, data):
    """Put ``data`` (any bytes-like object, not copied) into the kernel page cache at offset."""
    cdef fuse_session* se = _se()
    cdef fuse_bufvec bufv
    cdef Py_buffer view
    cdef int rc
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}")
    if isinstance(data, str):
        raise TypeError("data must be a bytes-like object, not str")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        memset(&bufv, 0, sizeof(bufv))
        bufv.count = 1
        bufv.buf[0].mem = view.buf
        bufv.buf[0].size = view.len
        bufv.buf[0].fd = -1
        with nogil:
            rc = fuse_lowlevel_notify_store(se, inode, offset, &bufv, <fuse_buf_copy_flags>0)
    finally:
        PyBuffer_Release(&view)
    if rc != 0:
        raise _error(rc, "notify_store", f"{inode}, {offset}, <{view.len} bytes>")


def request_retrieve(fuse_ino_t inode, off_t offset, size_t size, on_reply):
    """Ask the kernel for its cached bytes of a range; ``on_reply(data)`` runs on the loop.

    The kernel answers with the cached pages from ``offset`` up to the first one it does not
    hold (possibly none). Use the awaitable pyfuse3.cache.notify_retrieve().
    """
    cdef Session session = current_session()
    cdef fuse_session* se = session.c_session()
    cdef unsigned long long cookie
    cdef int rc
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}")
    session.next_cookie += 1
    cookie = session.next_cookie
    session.retrievals[cookie] = on_reply
    with nogil:
        rc = fuse_lowlevel_notify_retrieve(se, inode, size, offset, <void*><size_t>cookie)
    if rc != 0:
        del session.retrievals[cookie]
        raise _error(rc, "notify_retrieve", f"{inode}, {offset}, {size}")
