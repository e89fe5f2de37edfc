from pyfuse3._libfuse.fuse_lowlevel cimport fuse_ino_t, fuse_req_t
from pyfuse3._fills cimport Fills

cdef class Pending:
    cdef fuse_req_t req
    cdef int op
    cdef size_t size
    cdef object extra
    cdef object coro
    cdef object first
    cdef bint replied
    cdef bint started
    cdef readonly bint interrupted
    cdef public bint cancel_expected     # pyfuse3 itself is cancelling this handler
    cdef public object on_interrupt
    cdef set live                        # the session's set of unanswered Pendings
    cdef object loop_shutting_down       # the serving backend's shutting_down(), or None
    cdef Fills fills                     # the session's fill guard
    cdef unsigned long long since        # fills.seq when the handler started
    cdef fuse_ino_t node                 # the request's inode (directory for new entries)

    cdef bint _settle(self, fuse_req_t* req)
    cdef _done(self, object result)
    cdef _fail(self, BaseException exc)
    cpdef abandon(self)
    cpdef unwind(self, BaseException exc)


cdef object start(Fills fills, fuse_req_t req, int op, size_t size, object extra, object coro,
                  fuse_ino_t node, bint interruptible)
cdef object reply_failure(fuse_req_t req, int op, object exc, object extra,
                          bint cancel_expected=*)
