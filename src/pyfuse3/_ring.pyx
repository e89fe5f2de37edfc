# cython: language_level=3, binding=False
"""FUSE over io_uring, driven by the event loop that serves the session (no ring threads).

One io_uring per mount, watched by the loop like /dev/fuse: its completions are requests the
kernel placed in ring entries (one set of entries per CPU queue, as the kernel wants), plus a
multishot poll of /dev/fuse, which still carries INIT, FORGETs and INTERRUPTs. A request is laid
out in its entry as libfuse's ``fuse_session_process_buf`` expects it (header, per-opcode
header, payload: the payload stays where the kernel put it), so every handler runs as for
/dev/fuse. Answers reach the ring through the session's custom I/O (``ring_reply``): the
answer is copied into its entry and committed with COMMIT_AND_FETCH, which also hands the entry
back for the next request. Commits made while a batch is drained go out in one submission.

The INIT answer announces the rings (FUSE_OVER_IO_URING) here rather than through libfuse,
which would start threads of its own that call the handlers off the loop. See docs/design.md.
"""
cimport cython
from libc.errno cimport EAGAIN, EINTR, EIO, ENOSYS, ENOTCONN, errno
from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy, memset
from posix.mman cimport MAP_ANONYMOUS, MAP_FAILED, MAP_PRIVATE, PROT_READ, PROT_WRITE, mmap, munmap
from posix.uio cimport iovec, writev
from cpython.pythread cimport (
    PyThread_acquire_lock, PyThread_allocate_lock, PyThread_free_lock, PyThread_release_lock,
    WAIT_LOCK,
)
from pyfuse3._libfuse.fuse_kernel cimport fuse_in_header, fuse_init_out, fuse_out_header
from pyfuse3._libfuse.fuse_lowlevel cimport fuse_buf
from pyfuse3._libfuse.poll cimport POLLIN
from pyfuse3._libfuse.uring cimport (
    ECANCELED, FUSE_IO_URING_CMD_COMMIT_AND_FETCH, FUSE_IO_URING_CMD_REGISTER, IORING_CQE_F_MORE,
    IORING_OP_URING_CMD, IORING_SETUP_COOP_TASKRUN, IORING_SETUP_CQSIZE, IORING_SETUP_SQE128,
    IORING_SETUP_TASKRUN_FLAG, PYFUSE3_HAVE_URING,
    PYFUSE3_OVER_IO_URING_FLAGS2, PYFUSE3_SQE_SIZE, fuse_uring_cmd_req, io_uring_cqe,
    io_uring_cqe_get_data64, io_uring_cqe_seen, io_uring_get_events, io_uring_get_sqe,
    io_uring_params, pyfuse3_ring_taskrun,
    io_uring_peek_cqe, io_uring_prep_poll_multishot, io_uring_queue_exit,
    io_uring_queue_init_params, io_uring_sqe, io_uring_sqe_set_data64, io_uring_submit,
    pyfuse3_sqe_cmd,
)

import logging
import os

log = logging.getLogger("pyfuse3")

#: Whether this build can serve FUSE over io_uring (liburing and a 7.42+ protocol header).
HAVE_URING = bool(PYFUSE3_HAVE_URING)

cdef enum:
    TAG_DEV = 1          # user_data of the poll on /dev/fuse (entries are pointers)
    PAGE = 4096
    HEADROOM = 4096      # in front of each payload: the request's two headers
    MIN_PAYLOAD = 8192   # the kernel's FUSE_MIN_READ_BUFFER
    DEFAULT_MAX_PAGES = 32  # the kernel's FUSE_DEFAULT_MAX_PAGES_PER_REQ

# Entry.state
cdef enum:
    ENT_NEW = 0          # not registered yet
    ENT_KERNEL = 1       # registered or committed: waiting in the kernel for a request
    ENT_USER = 2         # its request is with a handler
    ENT_DEAD = 3         # the kernel let it go (unmount, abort) or refused it

#: A queue grows by ``depth`` entries whenever fewer than ``depth`` wait in the kernel, up to
#: this many. A request that finds no free entry waits in the kernel until an entry of its
#: queue is answered (a newly registered entry does not fetch it), out of reach of the loop and
#: of INTERRUPTs: with handlers waiting for it (lock waiters, an unlock behind them) that would
#: never end. Keeping ``depth`` entries free makes that need a burst of more than ``depth``
#: requests on one CPU before the loop takes the first.
MAX_QUEUE_ENTRIES = 4096


cdef inline void _lock(RingState* rs) noexcept nogil:
    PyThread_acquire_lock(rs.lock, WAIT_LOCK)


cdef inline void _unlock(RingState* rs) noexcept nogil:
    PyThread_release_lock(rs.lock)


cdef io_uring_sqe* _sqe(RingState* rs) noexcept nogil:
    """A zeroed submission entry (the queue has room for every entry at once, plus the poll)."""
    cdef io_uring_sqe* sqe = io_uring_get_sqe(&rs.ring)
    if sqe == NULL:
        io_uring_submit(&rs.ring)
        rs.unsubmitted = 0
        sqe = io_uring_get_sqe(&rs.ring)
    if sqe != NULL:
        memset(sqe, 0, PYFUSE3_SQE_SIZE)
    return sqe


cdef void _set_state(RingState* rs, Entry* e, int state) noexcept nogil:
    if e.state == ENT_KERNEL:
        rs.free[e.qid] -= 1
    if state == ENT_KERNEL:
        rs.free[e.qid] += 1
    elif state == ENT_USER and rs.free[e.qid] < rs.depth:
        rs.grow_wanted = True
    e.state = state


cdef int _command(RingState* rs, Entry* e, unsigned int cmd) noexcept nogil:
    """Queue REGISTER or COMMIT_AND_FETCH for ``e`` (submitted by the caller)."""
    cdef io_uring_sqe* sqe = _sqe(rs)
    cdef fuse_uring_cmd_req* req
    if sqe == NULL:
        _set_state(rs, e, ENT_DEAD)
        return -EIO
    sqe.opcode = IORING_OP_URING_CMD
    sqe.fd = rs.dev_fd
    sqe.cmd_op = cmd
    if cmd == FUSE_IO_URING_CMD_REGISTER:
        sqe.addr = <uint64_t>&e.iov[0]
        sqe.len = 2
    req = pyfuse3_sqe_cmd(sqe)
    req.qid = e.qid
    req.commit_id = e.commit_id if cmd == FUSE_IO_URING_CMD_COMMIT_AND_FETCH else 0
    io_uring_sqe_set_data64(sqe, <uint64_t>e)
    e.last_cmd = cmd
    _set_state(rs, e, ENT_KERNEL)
    rs.unsubmitted += 1
    return 0


cdef void _poll_dev(RingState* rs) noexcept nogil:
    cdef io_uring_sqe* sqe = _sqe(rs)
    if sqe != NULL:
        io_uring_prep_poll_multishot(sqe, rs.dev_fd, POLLIN)
        io_uring_sqe_set_data64(sqe, TAG_DEV)
        rs.unsubmitted += 1


cdef int ring_flush(RingState* rs) noexcept nogil:
    """Submit what was queued."""
    cdef int rc = 0
    _lock(rs)
    if rs.unsubmitted:
        rc = io_uring_submit(&rs.ring)
        while rc == -EINTR or rc == -EAGAIN:
            rc = io_uring_submit(&rs.ring)
        rs.unsubmitted = 0
    _unlock(rs)
    return rc


cdef int ring_next(RingState* rs, fuse_buf* out) except -1:
    """Take the next completion: NEXT_REQUEST (``out`` names the request, laid out whole),
    NEXT_DEV (/dev/fuse is readable) or NEXT_NONE. Runs on the loop thread only."""
    cdef io_uring_cqe* cqe
    cdef uint64_t data
    cdef int res
    cdef unsigned int flags, payload_sz
    cdef size_t op_sz
    cdef Entry* e
    cdef fuse_in_header* hdr
    cdef char* start
    cdef bint fetched = False
    while True:
        if io_uring_peek_cqe(&rs.ring, &cqe) != 0 or cqe == NULL:
            if fetched or not pyfuse3_ring_taskrun(&rs.ring):
                return NEXT_NONE
            io_uring_get_events(&rs.ring)  # requests the kernel has yet to hand over
            fetched = True
            continue
        data = io_uring_cqe_get_data64(cqe)
        res = cqe.res
        flags = cqe.flags
        io_uring_cqe_seen(&rs.ring, cqe)
        if data == TAG_DEV:
            rs.dev_readable = True
            if not flags & IORING_CQE_F_MORE:  # the multishot poll ended: arm it again
                _lock(rs)
                _poll_dev(rs)
                if not rs.batching:
                    io_uring_submit(&rs.ring)
                    rs.unsubmitted = 0
                _unlock(rs)
            return NEXT_DEV
        e = <Entry*>data
        if res == -EAGAIN or res == -EINTR:  # the kernel asks for the command again
            _lock(rs)
            _command(rs, e, e.last_cmd)
            if not rs.batching:
                io_uring_submit(&rs.ring)
                rs.unsubmitted = 0
            _unlock(rs)
            continue
        if res != 0:
            _lock(rs)
            _set_state(rs, e, ENT_DEAD)
            _unlock(rs)
            if res != -ENOTCONN and res != -ECANCELED and rs.error == 0:
                rs.error = res
            continue
        hdr = <fuse_in_header*>e.header.in_out
        payload_sz = e.header.ring_ent_in_out.payload_sz
        e.commit_id = e.header.ring_ent_in_out.commit_id
        op_sz = hdr.len - sizeof(fuse_in_header) - payload_sz
        _lock(rs)
        _set_state(rs, e, ENT_USER)
        e.unique = hdr.unique
        rs.busy[rs.n_busy] = e
        rs.n_busy += 1
        _unlock(rs)
        rs.requests += 1
        if hdr.len < sizeof(fuse_in_header) + payload_sz or op_sz > 128 or \
                payload_sz > rs.payload_limit:
            # Not a layout this ring knows: answer EIO rather than guess.
            _refuse(rs, e, hdr.unique)
            continue
        start = e.payload - op_sz - sizeof(fuse_in_header)
        memcpy(start, hdr, sizeof(fuse_in_header))
        memcpy(start + sizeof(fuse_in_header), e.header.op_in, op_sz)
        memset(out, 0, sizeof(fuse_buf))
        out.mem = start
        out.size = hdr.len
        out.fd = -1
        return NEXT_REQUEST


cdef void _refuse(RingState* rs, Entry* e, uint64_t unique) noexcept nogil:
    cdef fuse_out_header oh
    cdef iovec iov
    oh.len = sizeof(fuse_out_header)
    oh.error = -EIO
    oh.unique = unique
    iov.iov_base = &oh
    iov.iov_len = sizeof(oh)
    rs.refused += 1
    ring_reply(rs, rs.dev_fd, &iov, 1)


cdef ssize_t _init_answer(RingState* rs, int fd, iovec* iov, int count) noexcept nogil:
    """The INIT answer, announcing the rings if the kernel offered them; its sizes are kept."""
    cdef fuse_init_out init
    cdef iovec out[2]
    rs.init_unique = 0
    if count != 2 or (<fuse_out_header*>iov[0].iov_base).error != 0 or \
            iov[1].iov_len != sizeof(fuse_init_out):
        return writev(fd, iov, count)  # refused, or an old protocol: no rings
    memcpy(&init, iov[1].iov_base, sizeof(init))
    if rs.offered:
        init.flags2 |= PYFUSE3_OVER_IO_URING_FLAGS2
        rs.init_answered = True
    rs.max_write = init.max_write
    rs.max_pages = init.max_pages
    out[0] = iov[0]
    out[1].iov_base = &init
    out[1].iov_len = sizeof(init)
    return writev(fd, out, 2)


cdef ssize_t ring_reply(RingState* rs, int fd, iovec* iov, int count) noexcept nogil:
    """Answer a request that came through a ring entry (commit it, with the next fetch);
    -2 if the answer is not for a ring entry (the caller writes it to /dev/fuse)."""
    cdef fuse_out_header* oh = <fuse_out_header*>iov[0].iov_base
    cdef fuse_out_header* dst
    cdef uint64_t unique = oh.unique
    cdef Entry* e = NULL
    cdef unsigned int i
    cdef size_t n = 0, total = 0
    cdef int j
    if unique == 0:
        return -2  # a notification: /dev/fuse carries those
    if unique == rs.init_unique:
        return _init_answer(rs, fd, iov, count)
    _lock(rs)
    for i in range(rs.n_busy):
        if rs.busy[i].unique == unique:
            e = rs.busy[i]
            rs.n_busy -= 1
            rs.busy[i] = rs.busy[rs.n_busy]
            break
    if e == NULL:
        _unlock(rs)
        return -2
    for j in range(count):
        total += iov[j].iov_len
    dst = <fuse_out_header*>e.header.in_out
    dst.unique = unique
    dst.error = oh.error
    for j in range(1, count):
        if n + iov[j].iov_len > rs.payload_limit:
            dst.error = -EIO
            rs.refused += 1
            n = 0
            break
        memcpy(e.payload + n, iov[j].iov_base, iov[j].iov_len)
        n += iov[j].iov_len
    dst.len = sizeof(fuse_out_header) + n
    e.header.ring_ent_in_out.payload_sz = <unsigned int>n
    e.unique = 0
    _command(rs, e, FUSE_IO_URING_CMD_COMMIT_AND_FETCH)
    if not rs.batching:
        io_uring_submit(&rs.ring)
        rs.unsubmitted = 0
    _unlock(rs)
    return <ssize_t>total


@cython.final
cdef class Ring:
    """The io_uring of one session: polls /dev/fuse from the start; ``start()`` registers the
    entries once INIT announced the rings. Owned by the Session; ``close()`` after unmount."""

    def __cinit__(self):
        self.st = <RingState*>calloc(1, sizeof(RingState))
        if self.st == NULL:
            raise MemoryError()
        self.st.ring.ring_fd = -1
        self.st.lock = PyThread_allocate_lock()
        if self.st.lock == NULL:
            raise MemoryError()

    def __init__(self, int dev_fd, unsigned int depth, unsigned int queues):
        """A ring for the /dev/fuse fd ``dev_fd``: ``depth`` entries for each of ``queues`` CPU
        queues (the kernel's possible CPUs). OSError if io_uring cannot be set up."""
        cdef io_uring_params params
        cdef int rc
        if not PYFUSE3_HAVE_URING:
            raise OSError(ENOSYS, "FUSE over io_uring needs pyfuse3 built with liburing against "
                          "libfuse 3.18's protocol header (make build builds it)")
        self.depth, self.queues = depth, queues
        memset(&params, 0, sizeof(params))
        params.flags = (IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN |
                        IORING_SETUP_TASKRUN_FLAG)
        params.cq_entries = 2 * (depth * queues + 1)
        rc = io_uring_queue_init_params(depth * queues + 1, &self.st.ring, &params)
        if rc < 0:
            self.st.ring.ring_fd = -1
            raise OSError(-rc, f"setting up an io_uring for FUSE failed: {os.strerror(-rc)}")
        self.st.dev_fd = dev_fd
        _poll_dev(self.st)
        ring_flush(self.st)

    @property
    def fd(self):
        """The ring's fd: readable when a completion waits (what the event loop watches)."""
        return self.st.ring.ring_fd

    @property
    def requests(self):
        """How many requests came through ring entries."""
        return self.st.requests

    @property
    def refused(self):
        """Requests of a layout this ring does not know, and answers that did not fit an
        entry's buffer (EIO was sent instead)."""
        return self.st.refused

    def _limit_payload(self, size_t size):
        """Tests only: refuse requests and answers whose payload exceeds ``size`` bytes, as if
        the kernel had sent a request larger than the entries hold (the buffers stay as they
        are)."""
        _lock(self.st)
        self.st.payload_limit = min(size, self.st.payload_size)
        _unlock(self.st)

    @property
    def error(self):
        """The first unexpected error a ring command ended with (an errno), or 0."""
        return -self.st.error

    @property
    def entries_in_kernel(self):
        """How many entries wait in the kernel for a request."""
        return sum(self.st.free[q] for q in range(self.queues)) if self.started else 0

    @property
    def entries(self):
        """How many entries were registered (each queue starts with ``depth`` and grows)."""
        return self.st.n_ents

    def report_error(self, mountpoint):
        """Log the first unexpected error of a ring command, once."""
        if self.st.error and not self.reported:
            self.reported = True
            log.error("%s: an io_uring entry failed (%s); it serves no more requests",
                      mountpoint, os.strerror(-self.st.error))

    def offer(self, bint offered):
        """INIT is being answered; ``offered``: the kernel offers FUSE over io_uring."""
        self.st.offered = offered

    def expect_init(self, unsigned long long unique):
        """The INIT request ``unique`` is being processed: its answer gets the ring flag."""
        self.st.init_unique = unique

    def start(self):
        """Register ``depth`` entries per CPU queue (after the INIT answer announced the rings)."""
        cdef RingState* rs = self.st
        # The kernel wants room for max(8 KiB, max_write, max_pages pages); max_pages is its
        # default (32) when INIT did not negotiate it.
        cdef size_t payload = max(<size_t>MIN_PAYLOAD, <size_t>rs.max_write,
                                  <size_t>(rs.max_pages or DEFAULT_MAX_PAGES) * PAGE)
        rs.payload_size = rs.payload_limit = (payload + PAGE - 1) // PAGE * PAGE
        rs.queues, rs.depth = self.queues, self.depth
        rs.free = <unsigned int*>calloc(self.queues, sizeof(unsigned int))
        rs.total = <unsigned int*>calloc(self.queues, sizeof(unsigned int))
        if rs.free == NULL or rs.total == NULL:
            raise MemoryError()
        self.started = True
        cdef unsigned int qid
        for qid in range(self.queues):
            self._add(qid, self.depth)
        ring_flush(rs)

    def grow(self):
        """Give ``depth`` more entries to each queue that runs out of free ones (handlers that
        wait, e.g. for a lock, keep theirs), so requests keep reaching the loop."""
        cdef RingState* rs = self.st
        cdef unsigned int qid
        rs.grow_wanted = False
        for qid in range(self.queues):
            if rs.free[qid] < self.depth:
                if rs.total[qid] + self.depth > MAX_QUEUE_ENTRIES:
                    if not self.full:
                        self.full = True
                        log.warning("io_uring queue %d has %d entries, all with handlers: "
                                    "further requests of its CPU wait in the kernel", qid,
                                    rs.total[qid])
                    continue
                self._add(qid, self.depth)
        ring_flush(rs)

    cdef int _add(self, unsigned int qid, unsigned int n) except -1:
        cdef RingState* rs = self.st
        cdef size_t block = PAGE + HEADROOM + rs.payload_size
        cdef Chunk* c = <Chunk*>calloc(1, sizeof(Chunk))
        cdef Entry** busy
        cdef Entry* e
        cdef void* region
        cdef unsigned int i
        if c == NULL:
            raise MemoryError()
        region = mmap(NULL, block * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        if region == MAP_FAILED:
            free(c)
            raise OSError(errno, "allocating io_uring buffers failed")
        c.ents = <Entry*>calloc(n, sizeof(Entry))
        busy = <Entry**>calloc(rs.n_ents + n, sizeof(Entry*))
        if c.ents == NULL or busy == NULL:
            munmap(region, block * n)
            free(c.ents)
            free(c)
            free(busy)
            raise MemoryError()
        c.region, c.region_size, c.n = <char*>region, block * n, n
        _lock(rs)
        c.next, rs.chunks = rs.chunks, c
        memcpy(busy, rs.busy, rs.n_busy * sizeof(Entry*))
        free(rs.busy)
        rs.busy = busy
        rs.n_ents += n
        rs.total[qid] += n
        for i in range(n):
            e = &c.ents[i]
            e.qid = qid
            e.header = <fuse_uring_req_header*>(c.region + i * block)
            e.payload = c.region + i * block + PAGE + HEADROOM
            e.iov[0].iov_base = e.header
            e.iov[0].iov_len = sizeof(fuse_uring_req_header)
            e.iov[1].iov_base = e.payload
            e.iov[1].iov_len = rs.payload_size
            _command(rs, e, FUSE_IO_URING_CMD_REGISTER)
        _unlock(rs)
        return 0

    def close(self):
        """Let the ring go (after unmount: the kernel released the entries). Its buffers are
        unmapped, so a copy the kernel might still attempt fails instead of landing elsewhere."""
        cdef RingState* rs = self.st
        cdef Chunk* c
        if rs.ring.ring_fd >= 0:
            io_uring_queue_exit(&rs.ring)
            rs.ring.ring_fd = -1
        while rs.chunks != NULL:
            c, rs.chunks = rs.chunks, rs.chunks.next
            munmap(c.region, c.region_size)
            free(c.ents)
            free(c)
        free(rs.busy)
        free(rs.free)
        free(rs.total)
        rs.busy, rs.free, rs.total, rs.n_ents, rs.n_busy = NULL, NULL, NULL, 0, 0
        self.started = False

    def __dealloc__(self):
        if self.st != NULL:
            self.close()
            if self.st.lock != NULL:
                PyThread_free_lock(self.st.lock)
            free(self.st)
            self.st = NULL


ENABLE_URING = "/sys/module/fuse/parameters/enable_uring"


def kernel_refuses():
    """Why this kernel will not serve FUSE over io_uring, or None if it will."""
    try:
        with open(ENABLE_URING) as f:
            enabled = f.read().strip()
    except FileNotFoundError:
        return "this kernel has no FUSE over io_uring (Linux 6.14+ built with CONFIG_FUSE_IO_URING)"
    except OSError as e:
        return f"reading {ENABLE_URING} failed: {e.strerror}"
    if enabled not in ("Y", "1"):
        return f"the kernel has it disabled ({ENABLE_URING} is {enabled}; root can set it to Y)"
    return None


def possible_cpus():
    """The kernel's number of possible CPUs: one ring queue each (all must have entries)."""
    n = 0
    with open("/sys/devices/system/cpu/possible") as f:
        for part in f.read().strip().split(","):
            first, _, last = part.partition("-")
            n = max(n, int(last or first) + 1)
    return n
