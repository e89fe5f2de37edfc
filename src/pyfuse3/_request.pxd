from pyfuse3._libfuse.fuse_lowlevel cimport fuse_ino_t, fuse_req_t
from pyfuse3._fills cimport Fills
from pyfuse3._opcodes cimport OP_COUNT

cdef class Pending


cdef class Interrupts:
    cdef unsigned char mode[<int>OP_COUNT]  # an Interrupt per Op
    cdef readonly object caller_dying       # pid -> whether that caller is being killed
    cdef object on_held                     # called when an INTERRUPT was held (see hold)
    cdef frozenset any_opcodes              # opcodes whose parked requests any signal ends

    cdef bint ends_parked(self, unsigned int opcode, int pid) noexcept
    cpdef bint dying(self, int pid) noexcept
    cdef void hold(self, Pending p) noexcept


cdef class Pending:
    cdef fuse_req_t req
    cdef int op
    cdef size_t size
    cdef object extra
    cdef object coro
    cdef object first
    cdef readonly bint replied
    cdef bint started
    cdef readonly bint interrupted       # cancelled for a kernel INTERRUPT
    cdef readonly bint held              # INTERRUPTed, but its caller was not dying then
    cdef readonly int caller             # the caller's thread id, read when INTERRUPTed
    cdef Interrupts interrupts           # its session's, if an INTERRUPT may cancel it
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
    cpdef interrupt(self)
    cpdef unwind(self, BaseException exc)


cdef object start(Fills fills, fuse_req_t req, int op, size_t size, object extra, object coro,
                  fuse_ino_t node, Interrupts interrupts)
cdef object reply_failure(fuse_req_t req, int op, object exc, object extra,
                          bint cancel_expected=*)
