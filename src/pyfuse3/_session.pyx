# cython: language_level=3, binding=False
"""Session: owns one libfuse session (the mount, the /dev/fuse fd, the receive buffer).

The state of one connection lives here (its cache control is the Mount's); nothing about a
mount is kept in module globals. libfuse holds a raw pointer to the Session as its userdata, so
whoever creates a Session keeps it alive until ``destroy()`` has freed the libfuse session. The
order of the end of a session is ``Mount.close()``'s (``_mount._teardown``): stop serving,
answer what is live, wait until no thread is inside libfuse, then ``destroy()``.
"""
cimport cython
from pyfuse3._fills cimport Fills
from pyfuse3._ring cimport (
    NEXT_NONE, NEXT_REQUEST, Ring, RingState, ring_flush, ring_next, ring_reply,
)
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.pycapsule cimport PyCapsule_GetPointer
from pyfuse3._libfuse.gil cimport (
    PyEval_RestoreThread, PyEval_SaveThread, PyGILState_Check, PyThreadState,
)
from libc.errno cimport EAGAIN, ECONNABORTED, EINTR, EIO, ENOSYS, EPROTO, errno
from libc.stdlib cimport free
from libc.string cimport memset
from posix.fcntl cimport F_UNLCK
from posix.uio cimport iovec, writev
from pyfuse3._libfuse.poll cimport POLLOUT, poll, pollfd
from posix.unistd cimport read
from pyfuse3._libfuse.fuse_lowlevel cimport (
    FUSE_VERSION, PYFUSE3_HAVE_REQUEST_TIMEOUT, fuse_args, fuse_buf, fuse_custom_io,
    fuse_lowlevel_ops, fuse_opt_free_args, fuse_parse_conn_info_opts,
    fuse_session_custom_io, fuse_session_destroy, fuse_session_exit, fuse_session_exited,
    fuse_session_fd, fuse_session_mount, fuse_session_new, fuse_session_process_buf,
    fuse_session_receive_buf, fuse_session_reset, fuse_session_unmount,
)
from pyfuse3._libfuse.fuse_kernel cimport (
    FUSE_BATCH_FORGET, FUSE_DESTROY, FUSE_FLUSH, FUSE_FORGET, FUSE_INIT, FUSE_INTERRUPT,
    FUSE_NOTIFY_REPLY, FUSE_RELEASE, FUSE_RELEASEDIR, FUSE_SETLK, FUSE_SETLKW, fuse_in_header,
    fuse_interrupt_in, fuse_lk_in,
)
from pyfuse3._request cimport Interrupts, Pending
from pyfuse3._opcodes import OP_NAMES
from pyfuse3._sysutil import caller_dying as _caller_dying

import logging
import os
from collections import deque

from pyfuse3._ring import HAVE_URING, kernel_refuses, possible_cpus

from pyfuse3._state import Lifecycle
from pyfuse3._types import FUSEError

# drain() results
DRAIN_EMPTY = 0    # no request queued: wait for the fd to become readable
DRAIN_PENDING = 1  # a handler suspended: take_pending() and await it
DRAIN_BUSY = 2     # the batch limit was reached: let other tasks run, then drain again
DRAIN_EXIT = 3     # the session ended (terminate() or unmount)

log = logging.getLogger("pyfuse3")


@cython.final
cdef class Session:
    """One mounted file system: libfuse session, fd, receive buffer and handler table."""

    def __cinit__(self):
        self.se = NULL
        self.fd = -1
        self.retrievals = {}
        self.live = set()
        self.life = Lifecycle()
        self.readdirplus = "yes"
        self.parked = deque()
        self.held_parked = {}
        self.fills = Fills()
        memset(&self.buf, 0, sizeof(self.buf))

    def __init__(self, ops, str mountpoint, options, lowlevel_ops,
                 caller_dying=_caller_dying):
        """A libfuse session for ``ops`` with ``options`` (a _mount.MountOptions, checked);
        ``caller_dying(pid)``: whether a request's caller is being killed (see Interrupts)."""
        cdef const fuse_lowlevel_ops* table = <const fuse_lowlevel_ops*>PyCapsule_GetPointer(
            lowlevel_ops, "pyfuse3.lowlevel_ops")
        self.ops = ops
        self.mountpoint = mountpoint
        self.handlers = tuple([getattr(ops, name) for name in OP_NAMES])
        self.interrupts = Interrupts(self.handlers, caller_dying)
        self.readdirplus = options.readdirplus
        self.max_read = options.max_read
        self.request_timeout = options.request_timeout
        self.ring_depth = options.io_uring
        if self.ring_depth and not HAVE_URING:
            if options.io_uring_from_env:
                log.warning("FUSE_URING_ENABLE is set, but this pyfuse3 was built without "
                            "FUSE over io_uring: requests come through /dev/fuse")
                self.ring_depth = 0
            else:
                raise OSError(ENOSYS, "mount option io_uring: FUSE over io_uring needs pyfuse3 "
                              "built with liburing against libfuse 3.18's protocol header "
                              "(make build builds it; the wheels have it)")
        if self.request_timeout and not PYFUSE3_HAVE_REQUEST_TIMEOUT:
            raise OSError(ENOSYS, f"mount option request_timeout={self.request_timeout}: needs "
                          f"libfuse 3.18 or newer; this pyfuse3 was built against libfuse "
                          f"3.{FUSE_VERSION % 100} (make build builds 3.18; the wheels bundle it)")
        libfuse_options = options.libfuse
        argv = [b"pyfuse3"]
        for opt in libfuse_options:
            argv += [b"-o", opt.encode("ascii")]
        self.se = _new_session(argv, table, self)
        self.fills.se = self.se
        if self.se == NULL:
            raise RuntimeError(f"libfuse refused the mount options {list(libfuse_options)} "
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
        if self.ring_depth:
            self._open_ring()
        self.life.fire("mount")

    def _open_ring(self):
        """Serve through an io_uring (mount option io_uring) where the kernel allows it."""
        reason = kernel_refuses()
        if reason is not None:
            log.warning("%s: mount option io_uring: %s; requests come through /dev/fuse",
                        self.mountpoint, reason)
            return
        try:
            ring = Ring(self.fd, self.ring_depth, possible_cpus())
        except OSError as e:  # e.g. io_uring disabled by the kernel.io_uring_disabled sysctl
            log.warning("%s: mount option io_uring: %s; requests come through /dev/fuse",
                        self.mountpoint, e.strerror)
            return
        cdef int rc = fuse_session_custom_io(self.se, &_RING_IO, self.fd)
        if rc != 0:
            ring.close()
            raise OSError(-rc, f"fuse_session_custom_io failed: {os.strerror(-rc)}")
        self.ring = ring
        self.rs = ring.st

    @property
    def wait_fd(self):
        """The fd the event loop waits on: the ring's when serving through io_uring."""
        return self.fd if self.ring is None else self.ring.fd

    def attach(self, int fd):
        """Serve the FUSE protocol over ``fd`` (one message per read, e.g. a SOCK_SEQPACKET
        socket) instead of a mount: the kernel-free harness. The session owns ``fd`` from now
        on (libfuse closes it when the session is destroyed)."""
        cdef int rc = fuse_session_custom_io(self.se, &_SOCKET_IO, fd)
        if rc != 0:
            raise OSError(-rc, f"fuse_session_custom_io failed: {os.strerror(-rc)}")
        self.fd = fd
        os.set_blocking(self.fd, False)
        self.life.fire("mount")

    def note_init(self, unsigned int capable, unsigned int want):
        """INIT is being answered with these capabilities (drain() sees whether libfuse
        accepted it and only then sets ``initialized``)."""
        self.capable = capable
        self.want = want
        self.init_pending = True

    def restart(self):
        """Before main() serves a session again: clear the exit flag of the last run."""
        if self.se != NULL and fuse_session_exited(self.se):
            self.exit_requested = False
            fuse_session_reset(self.se)

    cpdef int drain(self, int limit) except? -1:
        """Receive and process queued requests without blocking; return a DRAIN_* code.

        After a request, reading again finds the next one at once under load, but costs a
        wasted read (EAGAIN) when clients wait for each answer. So keep reading only while the
        last wake-up found a backlog, and look for one on every 8th wake-up otherwise.
        """
        cdef int n = 0, res
        cdef fuse_session* se = self.se
        if se == NULL:
            return DRAIN_EXIT
        if self.rs != NULL:
            return self._drain_ring(limit)
        self.wakeups += 1
        cdef bint speculate = self.backlog or self.wakeups % 8 == 0
        while n < limit:
            if self._ended(n):
                return DRAIN_EXIT
            if n == 1 and not speculate:
                return DRAIN_EMPTY
            res = fuse_session_receive_buf(se, &self.buf)
            if res == -EAGAIN:
                self.backlog = n > 1
                return DRAIN_EMPTY
            if res == -EINTR:
                continue
            if res <= 0:
                return self._read_ended(res)
            n += 1
            if n == 2:
                self.backlog = True
            if self.parking and self._parked_instead(<const char*>self.buf.mem, res):
                continue
            fuse_session_process_buf(se, &self.buf)
            if self._suspended():
                return DRAIN_PENDING
        return DRAIN_BUSY

    cdef bint _suspended(self) except -1:
        """After a request was processed: whether its handler suspended (DRAIN_PENDING is due);
        raises what an inline handler let out (e.g. KeyboardInterrupt)."""
        if self.pending is not None:
            return True
        if self.raised is not None:
            exc, self.raised = self.raised, None
            raise exc
        return False

    cdef bint _ended(self, int n) except -1:
        """Whether the session ended (DRAIN_EXIT is due) after ``n`` requests of this drain;
        marks the connection initialized once INIT was answered."""
        if fuse_session_exited(self.se):
            if n and not self.exit_requested:
                # Only INIT's checks end a session inside process_buf (EPROTO).
                raise OSError(EPROTO, "libfuse refused the kernel's INIT request (its "
                              "reason was printed on stderr): the mount cannot be used")
            return True
        if self.init_pending:
            self.init_pending = False
            self.initialized = True
        return False

    cdef int _read_ended(self, int res) except -1:
        """DRAIN_EXIT for what reading /dev/fuse returned at its end (0, or an errno)."""
        if res == -ECONNABORTED:  # the connection was aborted: nothing more to serve
            fuse_session_exit(self.se)
        elif res < 0:
            raise OSError(-res, f"reading /dev/fuse failed: {os.strerror(-res)}")
        return DRAIN_EXIT

    cdef int _drain_ring(self, int limit) except? -1:
        """drain() for a session served through io_uring: requests from ring entries first,
        /dev/fuse (INIT, FORGETs, INTERRUPTs) when its poll fired; commits go out together."""
        cdef int n = 0, res, kind
        cdef fuse_session* se = self.se
        cdef RingState* rs = self.rs
        cdef fuse_buf rbuf
        rs.batching = True
        try:
            while n < limit:
                if self._ended(n):
                    return DRAIN_EXIT
                if rs.init_answered and not self.ring.started:
                    self.ring.start()
                kind = ring_next(rs, &rbuf)
                if kind == NEXT_REQUEST:
                    n += 1
                    if rs.grow_wanted:  # before its handler runs (and may wait)
                        self.ring.grow()
                    if self.parking and self._parked_instead(<const char*>rbuf.mem, rbuf.size):
                        continue
                    fuse_session_process_buf(se, &rbuf)
                elif rs.dev_readable:
                    res = fuse_session_receive_buf(se, &self.buf)
                    if res == -EAGAIN:
                        rs.dev_readable = False
                        continue
                    if res == -EINTR:
                        continue
                    if res <= 0:
                        return self._read_ended(res)
                    n += 1
                    if not self.initialized and \
                            (<const fuse_in_header*>self.buf.mem).opcode == FUSE_INIT:
                        self.ring.expect_init((<const fuse_in_header*>self.buf.mem).unique)
                    if self.parking and self._parked_instead(<const char*>self.buf.mem, res):
                        continue
                    fuse_session_process_buf(se, &self.buf)
                elif rs.unsubmitted:
                    # Send the answers; the kernel hands over what arrived meanwhile in the
                    # same call (COOP_TASKRUN), so a busy ring keeps this loop going.
                    ring_flush(rs)
                else:
                    if rs.error:
                        self.ring.report_error(self.mountpoint)
                    return DRAIN_EMPTY
                if self._suspended():
                    return DRAIN_PENDING
            return DRAIN_BUSY
        finally:
            rs.batching = False
            ring_flush(rs)

    def park(self, bint on):
        """At the max_tasks limit (``on``), drain() parks the requests that can wait instead of
        running their handlers; while any is parked, later ones queue behind it."""
        self.at_limit = on
        self._park_while_any()

    cdef void _park_while_any(self) noexcept:
        self.parking = self.at_limit or len(self.parked) > 0

    @property
    def parked_count(self):
        """How many requests are parked (see ``park()``)."""
        return len(self.parked)

    @property
    def parked_held(self):
        """Whether a parked request's INTERRUPT was held, its caller to be watched (once
        the session ended, parked requests are refused: nothing to watch)."""
        return bool(self.held_parked) and not self.exited

    def end_parked_of_dying(self):
        """Answer EINTR to each parked request whose INTERRUPT was held and whose caller is
        being killed now (``interrupts.dying``); forget those that ran meanwhile."""
        cdef const fuse_in_header* head
        if not self.held_parked or self.se == NULL:
            return
        waiting = {}
        for request in self.parked:
            head = <const fuse_in_header*><const char*>(<bytes>request)
            if head.unique in self.held_parked:
                waiting[head.unique] = request
        for unique, pid in list(self.held_parked.items()):
            request = waiting.get(unique)
            if request is not None and self.interrupts.dying(pid):
                self.parked.remove(request)
                self._park_while_any()
                self._process_copy(request, _INTERRUPTED)
            elif request is not None:
                continue
            del self.held_parked[unique]

    cpdef int drain_parked(self, int limit) except? -1:
        """Run parked requests in the order they came, like drain(): DRAIN_PENDING when a
        handler suspended, DRAIN_EMPTY when none is left, DRAIN_BUSY after ``limit``."""
        cdef int n = 0
        while self.parked:
            if self.se == NULL or fuse_session_exited(self.se):
                return DRAIN_EXIT
            if n == limit:
                return DRAIN_BUSY
            request = self.parked.popleft()
            self._park_while_any()
            self._process_copy(request, self.handlers)
            n += 1
            if self._suspended():
                return DRAIN_PENDING
        return DRAIN_EMPTY

    cdef bint _parked_instead(self, const char* mem, size_t size) except -1:
        """Park the request in the receive buffer unless it must run now; True if parked (or
        answered: an INTERRUPT of a parked request answers that one with EINTR if any signal
        ends its operation or its caller is being killed).

        What handlers may be waiting for runs at once: FORGETs, closes (FLUSH, RELEASE,
        RELEASEDIR), unlocks, INTERRUPTs, and the protocol's own requests.
        """
        cdef const fuse_in_header* hdr = <const fuse_in_header*>mem
        cdef const fuse_in_header* head
        cdef unsigned int op = hdr.opcode
        cdef unsigned long long target
        if size < sizeof(fuse_in_header) or op in (
                FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_FLUSH, FUSE_RELEASE, FUSE_RELEASEDIR,
                FUSE_INIT, FUSE_DESTROY, FUSE_NOTIFY_REPLY):
            return False
        if op == FUSE_SETLK or op == FUSE_SETLKW:
            if size >= sizeof(fuse_in_header) + sizeof(fuse_lk_in) and \
                    (<const fuse_lk_in*>(mem + sizeof(fuse_in_header))
                     ).lk.type == F_UNLCK:
                return False
        elif op == FUSE_INTERRUPT:
            if size < sizeof(fuse_in_header) + sizeof(fuse_interrupt_in):
                return False
            target = (<const fuse_interrupt_in*>(mem + sizeof(fuse_in_header))).unique
            for request in self.parked:
                head = <const fuse_in_header*><const char*>(<bytes>request)
                if head.unique == target:
                    if not self.interrupts.ends_parked(head.opcode, head.pid):
                        # libfuse keeps it and delivers it once the request runs; until
                        # then the dispatcher watches its caller (end_parked_of_dying)
                        self.held_parked[target] = head.pid
                        self.interrupts.hold(None)
                        return False
                    self.parked.remove(request)
                    self._park_while_any()
                    self._process_copy(request, _INTERRUPTED)
                    return True
            return False  # libfuse knows the request (or will): it delivers the interrupt
        self.parked.append(mem[:size])
        return True

    cdef int _process_copy(self, bytes request, tuple handlers) except -1:
        """Process a copied request with ``handlers`` (a parked one, or its refusal)."""
        cdef fuse_buf copy
        memset(&copy, 0, sizeof(copy))
        copy.mem = <char*>request
        copy.size = len(request)
        copy.fd = -1
        saved, self.handlers = self.handlers, handlers
        try:
            fuse_session_process_buf(self.se, &copy)
        finally:
            self.handlers = saved
        if handlers is not saved:
            self.pending = None
            self.raised = None
        return 0

    def take_pending(self):
        """The handler that suspended during the last drain(); tracked until it is answered."""
        cdef Pending p = self.pending
        self.pending = None
        self.live.add(p)
        p.live = self.live
        p.loop_shutting_down = self.loop_shutting_down
        return p

    def served_by(self, loop_shutting_down, on_held):
        """A dispatcher serves this session; ``loop_shutting_down()`` says whether its event
        loop is cancelling everything (a handler's CancelledError then is no failure);
        ``on_held(pending)``: a handler's INTERRUPT was held, its caller is to be watched."""
        self.loop_shutting_down = loop_shutting_down
        self.interrupts.watched_by(on_held)

    def expect_cancellation(self):
        """The live handlers are about to be cancelled by pyfuse3 (their EINTR is expected)."""
        cdef Pending p
        for p in self.live:
            p.cancel_expected = True

    def unwind(self, BaseException exc):
        """``exc`` is leaving the task that drained (e.g. KeyboardInterrupt between a drain and
        the await of its Pending): end the handlers that suspended in this task and were never
        awaited, here, before the task's cancel scope exits (Pending.unwind)."""
        cdef Pending p
        if self.pending is not None:
            self.take_pending()
        for p in list(self.live):
            if not p.started:  # only this task's: no other runs between a take and its await
                p.unwind(exc)

    def abandon_pending(self):
        """Answer every live handler's request with EINTR; their later results are dropped.

        Also the one that suspended in the last drain and was never taken (an exception, e.g.
        KeyboardInterrupt, left the caller in between): once the session is freed, no Pending
        may answer its request, not even when it is garbage-collected."""
        cdef Pending p
        if self.pending is not None:
            p, self.pending = self.pending, None
            p.abandon()
        for p in list(self.live):
            p.abandon()
        self.live.clear()

    def exit(self):
        """Make drain() report DRAIN_EXIT from now on."""
        self.exit_requested = True
        if self.se != NULL:
            fuse_session_exit(self.se)

    @property
    def exited(self):
        """True once terminate(), an unmount or close() ended the session."""
        return self.se == NULL or fuse_session_exited(self.se)

    # -- retrievals belong to the session ------------------------------------------------

    def add_retrieval(self, on_reply):
        """Register a callback for a notify_retrieve answer; return its cookie."""
        self.next_cookie += 1
        self.retrievals[self.next_cookie] = on_reply
        return self.next_cookie

    def pop_retrieval(self, cookie):
        """The callback registered for ``cookie`` (None if already taken)."""
        return self.retrievals.pop(cookie, None)

    def fail_retrievals(self):
        """Nobody reads the kernel's answers any more: every retrieval still waiting gets a
        RuntimeError (call on the loop thread the callbacks belong to)."""
        waiting, self.retrievals = self.retrievals, {}
        for on_reply in waiting.values():
            on_reply(RuntimeError("notify_retrieve(): serving ended before the kernel's "
                                  "answer was read"))

    # -- the end ---------------------------------------------------------------------------

    def refuse_queued(self):
        """Answer the requests queued in /dev/fuse with EIO, without running any handler.

        For close() once nobody serves: a client request that nobody reads may hold a lock the
        kernel needs before a notify call in another thread can return. Returns how many.
        """
        cdef int res, n = 0
        cdef fuse_buf rbuf
        if self.se == NULL or self.fd < 0:
            return 0
        handlers, self.handlers = self.handlers, _REFUSERS
        fuse_session_reset(self.se)  # libfuse drops what it reads for an exited session
        try:
            while True:
                res = fuse_session_receive_buf(self.se, &self.buf)
                if res == -EINTR:
                    continue
                if res <= 0:
                    break
                fuse_session_process_buf(self.se, &self.buf)
                n += 1
                self.pending = None
                self.raised = None
            while self.rs != NULL and self.ring.started:
                res = ring_next(self.rs, &rbuf)
                if res == NEXT_NONE:
                    break
                if res == NEXT_REQUEST:
                    fuse_session_process_buf(self.se, &rbuf)
                    n += 1
                    self.pending = None
                    self.raised = None
            if self.rs != NULL:
                ring_flush(self.rs)
            while self.parked:
                self._process_copy(self.parked.popleft(), _REFUSERS)
                n += 1
            self._park_while_any()
        finally:
            fuse_session_exit(self.se)
            self.handlers = handlers
        return n

    def destroy(self, bint unmount=True):
        """Unmount (if asked) and free the libfuse session; harmless to call twice.

        The caller guarantees that no thread is inside libfuse with this session.
        """
        cdef fuse_session* se = self.se
        if se == NULL:
            return
        self.se = NULL
        self.fills.se = NULL
        if unmount and self.mounted:
            with nogil:
                fuse_session_unmount(se)
        self.mounted = False
        if self.ring is not None:  # after the unmount, which made the kernel let the entries go
            self.rs = NULL
            self.ring.close()
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
        free(self.conn_opts)


@cython.final
cdef ssize_t _io_read(int fd, void* buf, size_t size, void* userdata) noexcept nogil:
    return read(fd, buf, size)


cdef ssize_t _io_writev(int fd, iovec* iov, int count, void* userdata) noexcept nogil:
    # /dev/fuse never refuses a reply, and libfuse drops one that fails: so wait until the
    # socket has room rather than answer EAGAIN (the peer reads from its own thread). A
    # SOCK_SEQPACKET message is written whole or not at all.
    cdef ssize_t n
    cdef pollfd pfd
    cdef PyThreadState* state
    while True:
        n = writev(fd, iov, count)
        if n >= 0 or (errno != EAGAIN and errno != EINTR):
            return n
        if errno == EAGAIN:
            pfd.fd = fd
            pfd.events = POLLOUT
            pfd.revents = 0
            # Replies are sent from drain() with the GIL held: let the peer's reader run.
            state = PyEval_SaveThread() if PyGILState_Check() else NULL
            poll(&pfd, 1, -1)
            if state != NULL:
                PyEval_RestoreThread(state)


cdef ssize_t _ring_writev(int fd, iovec* iov, int count, void* userdata) noexcept nogil:
    # Answers of requests that came through a ring entry are committed there; the rest
    # (INIT's, those read from /dev/fuse, notifications) are written to /dev/fuse.
    cdef RingState* rs = (<Session>userdata).rs
    cdef ssize_t n
    if rs != NULL:
        n = ring_reply(rs, fd, iov, count)
        if n != -2:
            return n
    return writev(fd, iov, count)


cdef fuse_custom_io _RING_IO
memset(&_RING_IO, 0, sizeof(_RING_IO))
_RING_IO.read = _io_read
_RING_IO.writev = _ring_writev


cdef fuse_custom_io _SOCKET_IO
memset(&_SOCKET_IO, 0, sizeof(_SOCKET_IO))
_SOCKET_IO.read = _io_read
_SOCKET_IO.writev = _io_writev


async def _refuse(*args):
    raise FUSEError(EIO)

_REFUSERS = (_refuse,) * len(OP_NAMES)


async def _interrupted(*args):
    raise FUSEError(EINTR)

_INTERRUPTED = (_interrupted,) * len(OP_NAMES)  # for a parked request the caller gave up on


cdef fuse_session* _new_session(list argv, const fuse_lowlevel_ops* table, Session owner):
    cdef fuse_args args
    cdef fuse_session* se
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
        # libfuse takes the conn-info options (max_write=, readdirplus= ...) out of args
        owner.conn_opts = fuse_parse_conn_info_opts(&args)
        if owner.conn_opts == NULL:
            fuse_opt_free_args(&args)
            raise ValueError("libfuse refused a connection option such as max_write= "
                             "(its reason was printed on stderr)")
        se = fuse_session_new(&args, table, sizeof(fuse_lowlevel_ops), <void*>owner)
        fuse_opt_free_args(&args)  # frees what libfuse allocated while parsing, not c_argv
        return se
    finally:
        PyMem_Free(c_argv)
