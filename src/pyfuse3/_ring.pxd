from libc.stdint cimport uint16_t, uint64_t
from posix.uio cimport iovec
from cpython.pythread cimport PyThread_type_lock
from pyfuse3._libfuse.fuse_lowlevel cimport fuse_buf
from pyfuse3._libfuse.uring cimport fuse_uring_req_header, io_uring

# ring_next() results
cdef enum:
    NEXT_NONE = 0     # nothing came (the CQ is empty)
    NEXT_REQUEST = 1  # a request from a ring entry: in the fuse_buf given
    NEXT_DEV = 2      # /dev/fuse became readable (its poll fired)

cdef struct Entry:
    fuse_uring_req_header* header   # the kernel's header page
    char* payload                   # a page of headroom in front: the request is laid out whole
    iovec iov[2]                    # header, payload: what REGISTER names
    uint64_t unique                 # the request a handler is answering (0: none)
    uint64_t commit_id
    uint16_t qid
    int state                       # ENT_* in _ring.pyx
    unsigned int last_cmd

cdef struct Chunk:                  # entries added together (start(), then grow())
    Chunk* next
    Entry* ents
    unsigned int n
    char* region                    # one mapping for these entries' buffers
    size_t region_size

cdef struct RingState:
    io_uring ring
    int dev_fd
    Chunk* chunks
    Entry** busy                    # entries whose request is with a handler
    unsigned int n_ents
    unsigned int n_busy
    unsigned int* free              # per CPU queue: entries waiting in the kernel for a request
    unsigned int* total             # per CPU queue: entries registered
    unsigned int queues
    unsigned int depth
    bint grow_wanted                # a queue is running out of free entries
    size_t payload_size
    size_t payload_limit            # payload_size; smaller only in tests (Ring._limit_payload)
    bint batching                   # inside drain(): commits go out together at ring_flush()
    unsigned int unsubmitted
    bint dev_readable               # the poll on /dev/fuse fired; read until EAGAIN
    bint offered                    # the kernel offered FUSE_OVER_IO_URING at INIT
    bint init_answered
    uint64_t init_unique            # INIT's request, whose answer announces the rings
    unsigned int max_write          # from the INIT answer: sizes the payload buffers
    unsigned int max_pages
    unsigned long long requests     # taken from ring entries
    unsigned long long refused      # requests and answers that did not fit (EIO instead)
    int error                       # first unexpected CQE error (-errno), 0 none
    PyThread_type_lock lock

cdef int ring_next(RingState* rs, fuse_buf* out) except -1
cdef ssize_t ring_reply(RingState* rs, int fd, iovec* iov, int count) noexcept nogil
cdef int ring_flush(RingState* rs) noexcept nogil


cdef class Ring:
    cdef RingState* st
    cdef readonly unsigned int queues
    cdef readonly unsigned int depth
    cdef readonly bint started
    cdef bint reported
    cdef bint full
    cdef int _add(self, unsigned int qid, unsigned int n) except -1
