# cython: language_level=3, binding=False
"""Session: owns one libfuse session (the mount, the /dev/fuse fd, the receive buffer).

All per-mount state lives here; nothing about a mount is kept in module globals. libfuse holds a
raw pointer to the Session as its userdata, so whoever creates a Session keeps it alive until
``close()`` has destroyed the libfuse session.
"""
cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.errno cimport EAGAIN, ECONNABORTED, EINTR
from libc.stdlib cimport free
from libc.string cimport memset
from pyfuse3._libfuse.fuse_lowlevel cimport (
    fuse_args, fuse_lowlevel_ops, fuse_session_destroy, fuse_session_exit, fuse_session_exited,
    fuse_session_fd, fuse_session_mount, fuse_session_new, fuse_session_process_buf,
    fuse_session_receive_buf, fuse_session_unmount,
)
from pyfuse3._request cimport Pending
from pyfuse3._request import OP_NAMES

import os

# drain() results
DRAIN_EMPTY = 0    # no request queued: wait for the fd to become readable
DRAIN_PENDING = 1  # a handler suspended: take_pending() and await it
DRAIN_BUSY = 2     # the batch limit was reached: let other tasks run, then drain again
DRAIN_EXIT = 3     # the session ended (terminate() or unmount)


@cython.final
cdef class Session:
    """One mounted file system: libfuse session, fd, receive buffer and handler table."""

    def __cinit__(self):
        self.se = NULL
        self.fd = -1
        self.retrievals = {}
        memset(&self.buf, 0, sizeof(self.buf))

    def __init__(self, ops, str mountpoint, options, ops_table):
        cdef const fuse_lowlevel_ops* table = <const fuse_lowlevel_ops*>PyCapsule_GetPointer(
            ops_table, "pyfuse3.ops_table")
        self.ops = ops
        self.mountpoint = mountpoint
        self.handlers = tuple([getattr(ops, name) for name in OP_NAMES])
        argv = [b"pyfuse3"]
        for opt in sorted(options):
            argv += [b"-o", opt.encode("ascii")]
        self.se = _new_session(argv, table, self)
        if self.se == NULL:
            raise RuntimeError(f"libfuse refused the mount options {sorted(options)} "
                               "(its reason was printed on stderr)")

    def mount(self):
        """Mount at self.mountpoint and make the fd non-blocking."""
        cdef bytes path = os.fsencode(self.mountpoint)
        cdef const char* c_path = path
        cdef int rc
        with nogil:
            rc = fuse_session_mount(self.se, c_path)
        if rc != 0:
            raise RuntimeError(f"mounting a FUSE file system at {self.mountpoint!r} failed "
                               "(libfuse printed the reason on stderr)")
        self.mounted = True
        self.fd = fuse_session_fd(self.se)
        os.set_blocking(self.fd, False)

    def note_init(self, unsigned int capable, unsigned int want):
        self.capable = capable
        self.want = want
        self.initialized = True

    cpdef int drain(self, int limit) except? -1:
        """Receive and process queued requests without blocking; return a DRAIN_* code.

        After a request, reading again finds the next one at once under load, but costs a
        wasted read (EAGAIN) when clients wait for each answer. So keep reading only while the
        last wake-up found a backlog, and look for one on every 8th wake-up otherwise.
        """
        cdef int n = 0, res
        self.wakeups += 1
        cdef bint speculate = self.backlog or self.wakeups % 8 == 0
        while n < limit:
            if fuse_session_exited(self.se):
                return DRAIN_EXIT
            if n == 1 and not speculate:
                return DRAIN_EMPTY
            res = fuse_session_receive_buf(self.se, &self.buf)
            if res == -EAGAIN:
                self.backlog = n > 1
                return DRAIN_EMPTY
            if res == -EINTR:
                continue
            if res <= 0:
                if res == -ECONNABORTED:  # the connection was aborted: nothing more to serve
                    fuse_session_exit(self.se)
                elif res < 0:
                    raise OSError(-res, f"reading /dev/fuse failed: {os.strerror(-res)}")
                return DRAIN_EXIT
            fuse_session_process_buf(self.se, &self.buf)
            n += 1
            if n == 2:
                self.backlog = True
            if self.pending is not None:
                if not isinstance(self.pending, Pending):
                    exc, self.pending = self.pending, None
                    raise exc  # e.g. KeyboardInterrupt raised by a handler
                return DRAIN_PENDING
        return DRAIN_BUSY

    def take_pending(self):
        """The handler that suspended during the last drain()."""
        p, self.pending = self.pending, None
        return p

    def exit(self):
        """Make drain() report DRAIN_EXIT from now on."""
        if self.se != NULL:
            fuse_session_exit(self.se)

    @property
    def exited(self):
        """True once terminate(), an unmount or close() ended the session."""
        return self.se == NULL or fuse_session_exited(self.se)

    @property
    def closed(self):
        """True after close()."""
        return self.se == NULL

    def close(self, bint unmount=True):
        """Unmount (if asked) and destroy the libfuse session; harmless to call twice."""
        cdef fuse_session* se = self.se
        if se == NULL:
            return
        self.se = NULL
        if unmount and self.mounted:
            with nogil:
                fuse_session_unmount(se)
        self.mounted = False
        with nogil:
            fuse_session_destroy(se)
        free(self.buf.mem)
        self.buf.mem = NULL
        self.fd = -1

    cdef fuse_session* c_session(self) except NULL:
        if self.se == NULL:
            raise RuntimeError("the pyfuse3 session is closed")
        return self.se

    def __dealloc__(self):
        if self.se != NULL:
            fuse_session_destroy(self.se)
        free(self.buf.mem)


cdef fuse_session* _new_session(list argv, const fuse_lowlevel_ops* table, Session owner):
    cdef fuse_args args
    cdef char** c_argv = <char**>PyMem_Malloc((len(argv) + 1) * sizeof(char*))
    if c_argv == NULL:
        raise MemoryError()
    try:
        for i, arg in enumerate(argv):
            c_argv[i] = <char*>(<bytes>arg)
        c_argv[len(argv)] = NULL
        args.argc = len(argv)
        args.argv = c_argv
        args.allocated = 0
        return fuse_session_new(&args, table, sizeof(fuse_lowlevel_ops), <void*>owner)
    finally:
        PyMem_Free(c_argv)

