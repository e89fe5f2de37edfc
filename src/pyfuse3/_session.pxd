from pyfuse3._libfuse.fuse_lowlevel cimport (
    fuse_buf, fuse_conn_info_opts, fuse_session,
)
from pyfuse3._request cimport Interrupts, Pending
from pyfuse3._fills cimport Fills
from pyfuse3._ring cimport Ring, RingState
from cpython.tuple cimport PyTuple_GET_ITEM


cdef class Session:
    cdef fuse_session* se
    cdef fuse_buf buf
    cdef fuse_conn_info_opts* conn_opts  # the conn-info mount options, applied at INIT
    cdef readonly int fd
    cdef readonly object ops
    cdef readonly str mountpoint
    cdef readonly object life            # _state.Lifecycle
    cdef readonly Fills fills            # the cache-fill guard (_fills)
    cdef readonly Ring ring              # FUSE over io_uring (_ring), or None
    cdef RingState* rs                   # ring's state (NULL: /dev/fuse only)
    cdef readonly unsigned int ring_depth  # io_uring entries per CPU queue asked for (0: none)
    cdef tuple handlers
    cdef readonly Interrupts interrupts  # which signals cancel each operation's handler
    cdef object pending                  # the Pending of a handler that suspended in drain()
    cdef object raised                   # a BaseException an inline handler let out
    cdef set live                        # Pendings not answered yet
    cdef object loop_shutting_down       # given by the dispatcher serving this session
    cdef readonly unsigned int capable
    cdef readonly unsigned int want
    cdef readonly unsigned int max_read
    cdef readonly unsigned int request_timeout  # asked for (mount option), then as negotiated
    cdef readonly str readdirplus        # the readdirplus= mount option: yes, no or auto
    cdef readonly bint initialized
    cdef readonly bint mounted
    cdef bint exit_requested
    cdef bint init_pending
    cdef bint backlog
    cdef unsigned int wakeups
    cdef dict retrievals
    cdef unsigned long long next_cookie
    cdef bint at_limit                   # at max_tasks: requests that can wait are parked
    cdef bint parking                    # at_limit, or some are parked (later ones queue up)
    cdef object parked                   # collections.deque of parked requests (bytes)
    cdef dict held_parked                # unique -> caller pid: parked, its INTERRUPT held

    cdef fuse_session* c_session(self) except NULL
    cpdef int drain(self, int limit) except? -1
    cpdef int drain_parked(self, int limit) except? -1
    cdef bint _parked_instead(self, const char* mem, size_t size) except -1
    cdef int _drain_ring(self, int limit) except? -1
    cdef bint _ended(self, int n) except -1
    cdef bint _suspended(self) except -1
    cdef int _read_ended(self, int res) except -1
    cdef int _process_copy(self, bytes request, tuple handlers) except -1
    cdef void _park_while_any(self) noexcept

    cdef inline object handler(self, int op):
        return <object>PyTuple_GET_ITEM(self.handlers, op)

    cdef inline void took(self, object outcome) noexcept:
        # What _request.start() returned: None (answered), a Pending, or an exception to raise.
        if outcome is not None:
            if type(outcome) is Pending:
                self.pending = outcome
            else:
                self.raised = outcome
