from pyfuse3._libfuse.fuse_lowlevel cimport fuse_req_t

cdef class ReaddirToken:
    cdef fuse_req_t req
    cdef char* buf
    cdef size_t size
    cdef size_t used
    cdef bint full
    cdef bint finished
    cdef readonly bint plus              # READDIRPLUS: the kernel caches the attributes


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

    cdef bint _settle(self, fuse_req_t* req)
    cdef _done(self, object result)
    cdef _fail(self, BaseException exc)
    cpdef abandon(self)


cdef object start(fuse_req_t req, int op, size_t size, object extra, object coro)
cdef object reply_failure(fuse_req_t req, int op, object exc, object extra,
                          bint cancel_expected=*)
cdef ReaddirToken new_token(fuse_req_t req, size_t size, bint plus)
