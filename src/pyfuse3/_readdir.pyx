# cython: language_level=3, binding=True
"""Readdir tokens: the buffer of one readdir reply, filled by ``readdir_reply()``.

For READDIRPLUS each entry also fills the kernel's entry and attribute caches, so the token
carries the session's fill guard and counts changes from the opendir() of its handle (see
``_fills``).
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.string cimport memchr
from pyfuse3._libfuse.fuse_lowlevel cimport (
    fuse_add_direntry, fuse_add_direntry_plus, fuse_entry_param, fuse_ino_t, fuse_req_t,
)
from pyfuse3._fills cimport Fills
from pyfuse3._types cimport EntryAttributes, has_file_type, no_file_type

import logging

log = logging.getLogger("pyfuse3")


@cython.final
cdef class ReaddirToken:
    """Handle of one readdir request, passed to readdir_reply().

    ``plus`` tells which listing the kernel asked for: True for READDIRPLUS (each entry's
    attributes are cached and the entry counts as a lookup, like lookup()), False for a plain
    READDIR (only the inode number and file type are used; no lookup is counted).
    """

    def __init__(self):
        raise TypeError("ReaddirToken objects are created by pyfuse3 only")

    def __dealloc__(self):
        PyMem_Free(self.buf)


cdef void finish_token(object extra) noexcept:
    """The request of ``extra`` (a ReaddirToken, or anything else: nothing to do) was
    answered: free the buffer, and later readdir_reply() calls fail."""
    cdef ReaddirToken token
    if type(extra) is ReaddirToken:
        token = <ReaddirToken>extra
        token.finished = True
        PyMem_Free(token.buf)
        token.buf = NULL


cdef ReaddirToken new_token(fuse_req_t req, size_t size, off_t start, bint plus, Fills fills,
                            unsigned long long fh, fuse_ino_t directory):
    cdef ReaddirToken t = ReaddirToken.__new__(ReaddirToken)
    t.req = req
    t.size = size
    t.start = start
    t.plus = plus
    if plus:  # the listing may be as old as its opendir(): count changes from there
        t.fills = fills
        t.since = fills.listing_since(fh)
        t.directory = directory
    return t


def readdir_reply(ReaddirToken token not None, name, EntryAttributes attr not None,
                  next_id) -> bool:
    """Add one entry to a readdir reply; False (and nothing added) when the buffer is full.

    After False the handler must return; further calls keep returning False. For a plain
    READDIR (``token.plus`` False) only ``attr.st_ino`` and the file type in ``attr.st_mode``
    are sent; for READDIRPLUS the kernel caches all of ``attr`` as if looked up.

    ValueError for a ``next_id`` of 0 or equal to the handler's ``start_id``: the kernel
    would ask for the same entries again, and a listing (``ls``) would never end. An entry
    with ``st_ino`` 0 other than ``.`` and ``..`` is sent, but the C library hides it from
    listings: logged as a warning, once per request.
    """
    if not isinstance(name, bytes):
        raise TypeError(f"readdir_reply(): name must be bytes (os.fsencode() turns a str into "
                        f"bytes), not {type(name).__name__}")
    cdef const char* c_name = PyBytes_AS_STRING(name)
    cdef Py_ssize_t length = PyBytes_GET_SIZE(name)
    cdef size_t n, room
    cdef off_t off = next_id
    cdef fuse_entry_param copy
    if token.finished:
        raise RuntimeError("readdir_reply() called after its readdir request was answered")
    if length == 0 or length > 255:
        raise ValueError(f"file name must be 1 to 255 bytes long, got {length}")
    if memchr(c_name, 0, length) != NULL or memchr(c_name, b"/", length) != NULL:
        # NUL would truncate the name; '/' makes the kernel fail the whole listing with EIO
        raise ValueError(f"file name {name!r} contains a NUL byte or '/'")
    if off == 0 or off == token.start:
        _loops(off, token.start)
    if attr.fuse_param.ino == 0 and not token.hid:
        _hidden(token, name)
    if token.full:
        return False
    if token.buf == NULL:
        token.buf = <char*>PyMem_Malloc(token.size)
        if token.buf == NULL:
            raise MemoryError()
    room = token.size - token.used
    if token.plus:
        if not has_file_type(attr.fuse_param.attr.st_mode) and attr.fuse_param.ino:
            no_file_type(attr.fuse_param.attr.st_mode, name)  # the kernel fails the listing
        n = fuse_add_direntry_plus(token.req, token.buf + token.used, room, c_name,
                                   token.fills.entry(token.since, token.directory, name,
                                                     &attr.fuse_param, &copy), off)
    else:
        n = fuse_add_direntry(token.req, token.buf + token.used, room, c_name,
                              &attr.fuse_param.attr, off)
    if n > room:
        token.full = True
        return False
    token.used += n
    return True


cdef int _loops(off_t off, off_t start) except -1:
    where = "its first entry" if off == 0 else f"start_id {start}, where this call began"
    raise ValueError(f"readdir_reply(): next_id {off} would make the kernel list the directory "
                     f"again from {where}, and a listing would never end: next_id is the "
                     "position after this entry (for example its index + 1)")


cdef void _hidden(ReaddirToken token, bytes name) noexcept:
    if name != b"." and name != b"..":
        token.hid = True
        log.warning("readdir_reply(): entry %r has st_ino 0, which hides it from listings "
                    "(the C library skips entries with inode 0): set attr.st_ino (logged "
                    "once per readdir request)", name)
