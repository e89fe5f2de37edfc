"""A kernel-free harness: a file system served over a socket pair, driven by a test that
plays the kernel.

No /dev/fuse, no mount, no root. libfuse runs the file system's session over one end of an
``AF_UNIX``/``SOCK_SEQPACKET`` socket pair (``fuse_session_custom_io``); the test speaks the
FUSE wire protocol on the other end, with message layouts taken from ``<linux/fuse.h>`` by the
C compiler (``pyfuse3._wire``). Everything runs in the test's own event loop (trio or asyncio).

    async with Harness(MyFS()) as h:
        entry = await h.lookup(pyfuse3.ROOT_INODE, b"name")     # OSError(ENOENT) if missing
        fh = (await h.open(entry.nodeid, os.O_RDONLY)).fh
        assert await h.read(entry.nodeid, fh, 0, 4096) == b"..."
"""

from __future__ import annotations

import collections
import contextlib
import errno
import itertools
import os
import queue
import select
import socket
import threading
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

from pyfuse3 import _backends
from pyfuse3._mount import Mount

from ._calls import Calls
from ._messages import (
    CONSTANTS,
    IN_HEADER,
    OUT_HEADER,
    STRUCTS,
    Layout,
    Notification,
    Request,
    layout,
)
from ._tasks import TaskGroup

__all__ = ["DEFAULT_CAPABILITIES", "Harness", "Layout", "Notification", "Request", "layout"]

K = CONSTANTS
#: INIT flags a recent kernel offers (names without the FUSE_ prefix).
DEFAULT_CAPABILITIES = frozenset({
    "ASYNC_READ", "POSIX_LOCKS", "ATOMIC_O_TRUNC", "EXPORT_SUPPORT", "BIG_WRITES", "DONT_MASK",
    "FLOCK_LOCKS", "HAS_IOCTL_DIR", "AUTO_INVAL_DATA", "DO_READDIRPLUS", "READDIRPLUS_AUTO",
    "ASYNC_DIO", "WRITEBACK_CACHE", "PARALLEL_DIROPS", "HANDLE_KILLPRIV", "POSIX_ACL",
    "ABORT_ERROR", "MAX_PAGES", "CACHE_SYMLINKS", "EXPLICIT_INVAL_DATA",
})
NOTIFICATIONS = {K[f"FUSE_NOTIFY_{n.upper()}"]: n for n in (
    "poll", "inval_inode", "inval_entry", "store", "retrieve", "delete")}
NOTIFY_LAYOUT = {kind: f"fuse_notify_{kind}_out" for kind in NOTIFICATIONS.values()}
NOTIFY_LAYOUT["poll"] = "fuse_notify_poll_wakeup_out"
BUFSIZE = 1 << 21


class Harness(Calls):
    """Serve ``ops`` kernel-free for an ``async with`` block and talk to it as the kernel.

    ``capabilities``: the INIT flags offered (names of <linux/fuse.h>'s ``FUSE_*`` INIT flags
    without the prefix; default ``DEFAULT_CAPABILITIES``). ``options``: as for ``init()``
    (conn-info options, ``readdirplus=``...). Requests carry ``uid``/``gid``/``pid``. Handler
    errors come back as ``OSError`` with the errno the file system answered.
    ``socket_buffer``: the socket pair's SO_SNDBUF (the kernel caps it at
    ``net.core.wmem_max``); like /dev/fuse, no reply is ever dropped, whatever its size.
    ``max_tasks``: as for ``Mount.serve()``. ``protocol_minor``: the FUSE protocol minor
    offered in INIT (default: the header's ``FUSE_KERNEL_MINOR_VERSION``); a lower one plays
    an older kernel (7.38: Linux 6.1), to test what a file system does where a feature lacks.
    """

    def __init__(self, ops: Any, *, capabilities: Iterable[str] = DEFAULT_CAPABILITIES,
                 options: Iterable[str] = (), uid: int = 0, gid: int = 0,
                 pid: int | None = None, max_readahead: int = 131072,
                 socket_buffer: int = BUFSIZE, max_tasks: int = 99,
                 protocol_minor: int | None = None) -> None:
        self.ops = ops
        newest = K["FUSE_KERNEL_MINOR_VERSION"]
        if protocol_minor is None:
            protocol_minor = newest
        elif not 0 < protocol_minor <= newest:
            raise ValueError(f"protocol_minor must be 1 to {newest} (this build's header), "
                             f"got {protocol_minor}")
        self.protocol_minor = protocol_minor
        self.max_tasks = max_tasks
        self.capabilities = frozenset(capabilities)
        unknown = {c for c in self.capabilities if f"FUSE_{c}" not in K}
        if unknown:
            raise ValueError(f"unknown INIT flags {sorted(unknown)}")
        self.options = frozenset(options)
        self.uid, self.gid, self.pid = uid, gid, os.getpid() if pid is None else pid
        self.max_readahead = max_readahead
        self.socket_buffer = socket_buffer
        self.notifications: list[Notification] = []
        self.init_reply: SimpleNamespace | None = None
        self.mount: Mount | None = None
        self._uniques = itertools.count(2)
        self._pending: dict[int, Request] = {}
        self._notified: Callable[[None], None] | None = None
        self._sock: socket.socket | None = None
        self._group: TaskGroup | None = None
        self._served: BaseException | None = None
        self._pump: threading.Thread | None = None
        self._inbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._outbox: collections.deque[bytes] = collections.deque()
        self._out_lock = threading.Lock()
        self._stopping = False
        self._wake_r, self._wake_w = -1, -1
        self._killed: set[int] = set()  # callers (pids) kill() played as being killed
        self._interrupted: set[int] = set()  # requests (uniques) INTERRUPTed

    # -- the session ------------------------------------------------------------------------

    async def __aenter__(self) -> Harness:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for s in (ours, theirs):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_buffer)
        try:
            self.mount = Mount._over_fd(self.ops, theirs.detach(), self.options,
                                        self._killed.__contains__)
        except BaseException:
            ours.close()
            theirs.close()
            raise
        ours.setblocking(False)
        self._sock = ours
        # The file system's replies are read by a thread of their own: a reply that finds the
        # socket full waits for room (as the kernel never refuses one), and room must come
        # even while the event loop is the one writing.
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poke_r, self._poke_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._pump = threading.Thread(target=self._pump_replies, name="pyfuse3-harness-reader",
                                      daemon=True)
        self._pump.start()
        self._group = TaskGroup()
        await self._group.__aenter__()
        self._group.start_soon(self._serve)
        self._group.start_soon(self._read_replies)
        try:
            self.init_reply = await self._init()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._close()

    async def _serve(self) -> None:
        assert self.mount is not None
        try:
            await self.mount.serve(max_tasks=self.max_tasks)
        except Exception as e:  # surfaced by the requests that find no answer
            self._served = e
            for req in list(self._pending.values()):
                req._deliver((-errno.ENOTCONN, b""))
            self._pending.clear()

    async def _close(self) -> None:
        mount, group = self.mount, self._group
        if mount is not None:
            if mount.state in ("serving", "stopping", "attached"):
                mount.terminate()
        if group is not None:
            # serve() ends after terminate() once its handlers finish; a handler that does not
            # finish within a second is cancelled by the group, like the reader
            for _ in range(1000):
                if mount is None or mount.state not in ("serving", "stopping"):
                    break
                await _backends.current().sleep(0.001)
            group.cancel()
            await group.__aexit__(None, None, None)
        if mount is not None:
            mount.close()  # may still write replies (EINTR): the reader thread takes them
        if self._pump is not None:
            self._stopping = True
            self._poke()
            self._pump.join()
            for fd in (self._poke_r, self._poke_w, self._wake_r, self._wake_w):
                os.close(fd)
            self._pump = None
        if self._sock is not None:
            self._sock.close()
        if self._served is not None:
            raise RuntimeError(f"the file system stopped serving: {self._served!r}") \
                from self._served

    def _pump_replies(self) -> None:
        """The socket's thread: every message of the file system into the inbox (then a
        wake-up for the loop), and the requests that found the socket full, once it has room."""
        sock = self._sock
        assert sock is not None
        poller = select.poll()
        poller.register(self._poke_r, select.POLLIN)
        while not self._stopping:
            with self._out_lock:
                waiting = bool(self._outbox)
            poller.register(sock.fileno(), select.POLLIN | (select.POLLOUT if waiting else 0))
            ready = dict(poller.poll())
            if self._poke_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._poke_r, 4096)
            if ready.get(sock.fileno(), 0) & select.POLLOUT:
                self._send_queued()
            got = False
            while True:
                try:
                    msg = sock.recv(BUFSIZE)
                except BlockingIOError:
                    break
                except OSError:
                    msg = b""
                if not msg:
                    self._inbox.put(b"")
                    self._wake()
                    return
                self._inbox.put(msg)
                got = True
            if got:
                self._wake()

    def _send_queued(self) -> None:
        sock = self._sock
        assert sock is not None
        with self._out_lock:
            while self._outbox:
                try:
                    sock.send(self._outbox[0])
                except BlockingIOError:
                    return
                self._outbox.popleft()

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._poke_w, b"x")

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up is already pending
            os.write(self._wake_w, b"x")

    async def _read_replies(self) -> None:
        while True:
            await _backends.current().wait_readable(self._wake_r)
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)
            while True:
                try:
                    msg = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if not msg:
                    return
                self._dispatch(msg)

    def _dispatch(self, msg: bytes) -> None:
        head = OUT_HEADER.unpack(msg)
        body = msg[OUT_HEADER.size:head.len]
        if head.unique == 0:
            kind = NOTIFICATIONS.get(head.error, f"unknown-{head.error}")
            lay = layout(NOTIFY_LAYOUT[kind]) if kind in NOTIFY_LAYOUT else None
            fields = lay.unpack(body) if lay else SimpleNamespace()
            self.notifications.append(Notification(kind, fields, body[lay.size if lay else 0:]))
            waiter, self._notified = self._notified, None
            if waiter is not None:
                waiter(None)
            return
        req = self._pending.pop(head.unique, None)
        if req is not None:
            req._deliver((head.error, body))

    # -- sending ----------------------------------------------------------------------------

    def send(self, opcode: str | int, nodeid: int = 0, body: bytes = b"", *,
             expect_reply: bool = True, unique: int | None = None) -> Request:
        """Send one request (``opcode``: e.g. ``"LOOKUP"`` or ``FUSE_LOOKUP``'s number) and
        return it; ``await req.reply()`` for the answer."""
        if self._sock is None:
            raise RuntimeError("the harness is not running: use 'async with Harness(ops)'")
        op = K[f"FUSE_{opcode}"] if isinstance(opcode, str) else opcode
        req = Request(next(self._uniques) if unique is None else unique, op, self.pid)
        header = IN_HEADER.pack(len=IN_HEADER.size + len(body), opcode=op, unique=req.unique,
                                nodeid=nodeid, uid=self.uid, gid=self.gid, pid=self.pid)
        if expect_reply:
            self._pending[req.unique] = req
        with self._out_lock:  # in order: behind what waits for room, or now
            if self._outbox:
                self._outbox.append(header + body)
            else:
                try:
                    self._sock.send(header + body)
                except BlockingIOError:  # the socket is full: its thread sends it later
                    self._outbox.append(header + body)
                    self._poke()
        return req

    def interrupt(self, req: Request) -> None:
        """INTERRUPT ``req``, as the kernel does when its caller gets a signal that it
        handles: pyfuse3 cancels the handler only for a lock wait or one marked
        ``interruptible``, and keeps watching the caller (see ``kill()``)."""
        self._interrupted.add(req.unique)
        self.send("INTERRUPT", 0, layout("fuse_interrupt_in").pack(unique=req.unique),
                  expect_reply=False)

    def kill(self, req: Request) -> None:
        """Play ``req``'s caller killed: its pid counts as being killed from now on, and
        ``req`` is INTERRUPTed unless it already was (the kernel sends one INTERRUPT per
        request). pyfuse3 cancels every handler of that caller not marked
        ``uninterruptible``, one whose INTERRUPT it held within a fraction of a second."""
        self._killed.add(req.pid)
        if req.unique not in self._interrupted:
            self.interrupt(req)

    async def call(self, opcode: str | int, nodeid: int = 0, body: bytes = b"") -> bytes:
        """Send a request and return the body of its answer (OSError for an error answer)."""
        return await self.send(opcode, nodeid, body).reply()

    async def next_notification(self) -> Notification:
        """Wait for the file system's next notification (returned and removed from
        ``notifications``)."""
        if not self.notifications:
            await _backends.current().wait_for_callback(lambda deliver: setattr(
                self, "_notified", deliver))
        return self.notifications.pop(0)

    def _negotiated(self, flag: str) -> bool:
        reply = self.init_reply
        if reply is None:
            return False
        bits = reply.flags | reply.flags2 << 32
        return bool(bits & K[f"FUSE_{flag}"])

    async def _init(self) -> SimpleNamespace:
        flags = 0
        for name in self.capabilities:
            flags |= K[f"FUSE_{name}"]
        body = layout("fuse_init_in").pack(
            major=K["FUSE_KERNEL_VERSION"], minor=self.protocol_minor,
            max_readahead=self.max_readahead, flags=(flags & 0xFFFFFFFF) | K["FUSE_INIT_EXT"],
            flags2=flags >> 32)
        return layout("fuse_init_out").unpack(
            (await self.call("INIT", 0, body)).ljust(STRUCTS["fuse_init_out"], b"\0"))
