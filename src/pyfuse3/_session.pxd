from pyfuse3._libfuse.fuse_lowlevel cimport fuse_buf, fuse_session
from cpython.tuple cimport PyTuple_GET_ITEM


cdef class Session:
    cdef fuse_session* se
    cdef fuse_buf buf
    cdef readonly int fd
    cdef readonly object ops
    cdef readonly str mountpoint
    cdef tuple handlers
    cdef public object pending
    cdef readonly unsigned int capable
    cdef readonly unsigned int want
    cdef readonly bint initialized
    cdef readonly bint mounted
    cdef bint backlog
    cdef unsigned int wakeups
    cdef public object entry_worker
    cdef public dict retrievals
    cdef public unsigned long long next_cookie

    cdef fuse_session* c_session(self) except NULL
    cpdef int drain(self, int limit) except? -1

    cdef inline object handler(self, int op):
        return <object>PyTuple_GET_ITEM(self.handlers, op)
