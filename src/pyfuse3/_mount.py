"""Mount: one file system mounted at one mountpoint, served inside the running event loop.

Several Mounts may serve at once, in one loop or in several threads. The module-level API of
upstream (``init``/``main``/``terminate``/``close`` and the notify functions) is a facade over
one default Mount (``_module_api``). Which call is allowed when is the session's lifecycle table
(``_state``); this module performs what each transition means.
"""

from __future__ import annotations

import atexit
import errno
import inspect
import logging
import os
import stat
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import _sysutil
from ._backends import EventLoop, current, ended_by_ctrl_c, finished_before_interrupt
from ._cache_control import CacheControl
from ._callbacks import lowlevel_ops
from ._dispatch import Dispatcher, handler_owner, served_by_this_thread
from ._entry_worker import EntryWorker, InvalidationHandle
from ._opcodes import OP_NAMES
from ._pyfuse3 import Operations
from ._session import Session
from ._state import State

log = logging.getLogger("pyfuse3")

default_options = frozenset({"default_permissions"})

#: Mount option (handled here, not passed to libfuse) to mount over an existing mount point.
STACK_OPTION = "allow_stacked_mount"
#: io_uring entries per CPU queue unless io_uring_q_depth= says (libfuse's default too), and
#: the most allowed (each entry holds a buffer of max_write bytes).
RING_DEPTH, MAX_RING_DEPTH = 8, 1024

#: close() waits this long for threads inside libfuse before aborting the connection, and
#: gives up (keeping the session's memory rather than freeing it under them) after the second.
ABORT_AFTER, GIVE_UP_AFTER = 1.0, 10.0

_kept: list[Session] = []  # sessions close() could not free safely (see _teardown)
_open: weakref.WeakSet[Mount] = weakref.WeakSet()  # mounted and not closed yet


@dataclass(frozen=True)
class MountOptions:
    """Mount options sorted by who takes them."""

    libfuse: tuple[str, ...]  #: passed to libfuse (``-o``), sorted
    readdirplus: str = "yes"  #: readdirplus=: yes, no or auto (pyfuse3 asks for it at INIT)
    max_read: int = 0  #: max_read= (also passed on: libfuse wants it repeated at INIT)
    stacked: bool = False  #: allow_stacked_mount
    request_timeout: int = 0  #: request_timeout= (seconds; pyfuse3 sets it at INIT)
    io_uring: int = 0  #: io_uring: ring entries per CPU queue (io_uring_q_depth=), 0 for none
    io_uring_from_env: bool = False  #: turned on by FUSE_URING_ENABLE, not by the option


def parse_options(options: Iterable[str],
                  environ: Mapping[str, str] | None = None) -> MountOptions:
    """Check the mount options and sort them by who takes them. TypeError for a non-str
    option, ValueError for a malformed ``max_write=``, ``max_read=``, ``readdirplus=``,
    ``request_timeout=`` or ``io_uring_q_depth=`` (or that one without ``io_uring``).
    ``FUSE_URING_ENABLE=1`` in ``environ`` (default: the process's) turns ``io_uring`` on
    and ``FUSE_URING_QUEUE_DEPTH`` sets its depth, as for libfuse's own examples."""
    if isinstance(options, (str, bytes)) or not isinstance(options, Iterable):
        # (a str would be taken letter by letter, and libfuse would refuse "options" d, e, f...)
        raise TypeError(f"mount options must be a collection of str such as "
                        f"{{'fsname=myfs', 'ro'}}, not {type(options).__name__} {options!r}")
    given = list(options)
    for opt in given:
        if not isinstance(opt, str):
            raise TypeError(f"mount options must be str, got {opt!r}")
    libfuse = []
    readdirplus, max_read, stacked, request_timeout = "yes", 0, False, 0
    io_uring, depth = False, 0
    for opt in sorted(frozenset(given)):
        key, _, value = opt.partition("=")
        if opt == STACK_OPTION:
            stacked = True
            continue
        if opt == "io_uring":
            io_uring = True
            continue
        if key == "io_uring_q_depth":
            depth = _ring_depth(value, f"mount option {opt!r}")
            continue
        if key == "readdirplus":
            # libfuse's readdirplus=auto only keeps its own default, which pyfuse3 changes
            if value not in ("yes", "no", "auto"):
                raise ValueError(f"mount option {opt!r}: readdirplus must be yes, no or auto")
            readdirplus = value
            continue
        if key == "request_timeout":
            if not value.isdigit() or not 0 < int(value) < 2**16:
                raise ValueError(f"mount option {opt!r}: request_timeout must be a number of "
                                 "seconds from 1 to 65535")
            request_timeout = int(value)
            continue
        if key == "max_write":
            number: object = int(value) if value.isdigit() else value
            _sysutil.check_max_write(number, f"mount option {opt!r}")
        elif key == "max_read":
            if not value.isdigit() or int(value) >= 2**32:
                raise ValueError(f"mount option {opt!r}: max_read must be a number of bytes")
            max_read = int(value)
        libfuse.append(opt)
    if environ is None:
        environ = os.environ
    from_env = not io_uring and environ.get("FUSE_URING_ENABLE", "").strip() not in ("", "0")
    io_uring = io_uring or from_env  # libfuse's switch for running a test suite through rings
    if io_uring and not depth and environ.get("FUSE_URING_QUEUE_DEPTH", "").strip():
        depth = _ring_depth(environ["FUSE_URING_QUEUE_DEPTH"].strip(), "FUSE_URING_QUEUE_DEPTH")
    if depth and not io_uring:
        raise ValueError("mount option io_uring_q_depth= needs the option io_uring")
    return MountOptions(tuple(libfuse), readdirplus, max_read, stacked, request_timeout,
                        (depth or RING_DEPTH) if io_uring else 0, from_env)


def _ring_depth(value: str, what: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_RING_DEPTH:
        raise ValueError(f"{what}: the io_uring queue depth must be a number from 1 to "
                         f"{MAX_RING_DEPTH}")
    return int(value)


def _check_operations(ops: Any) -> None:
    """TypeError unless ``ops`` can serve: an Operations instance, or an object with all its
    handlers (a class passed instead of an instance would fail every request); a warning for
    each handler that cannot take its arguments."""
    if not isinstance(ops, Operations):
        if isinstance(ops, type):
            raise TypeError(f"ops must be an instance: pass {ops.__name__}(), not the class "
                            f"itself")
        missing = [name for name in OP_NAMES if not hasattr(ops, name)]
        if missing:
            raise TypeError(f"ops must be a pyfuse3.Operations instance, not "
                            f"{type(ops).__name__} (it has no {missing[0]}() handler)")
    for name in OP_NAMES:
        _check_signature(ops, name)


def _check_signature(ops: Any, name: str) -> None:
    """Warn when the ``name`` handler cannot take the arguments pyfuse3 passes (those of
    Operations' own): every such request would fail. A warning, not an error: a file system
    that never gets that request works as before."""
    handler = getattr(ops, name)
    base = getattr(Operations, name)
    if getattr(handler, "__func__", None) is base:
        return
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):  # nothing to read (e.g. a C function)
        return
    params = list(inspect.signature(base).parameters)[1:]
    try:
        signature.bind(*params)
    except TypeError as e:
        log.warning("%s.%s%s cannot be called as %s(%s) (%s): every %s request will be "
                    "answered with EIO", type(ops).__name__, name, signature, name,
                    ", ".join(params), e, name)


class Mount:
    """One ``Operations`` mounted at one mountpoint; serve it with ``await serve()``.

    Creating a Mount mounts (RuntimeError if the mountpoint is already a mount point, unless
    the option ``allow_stacked_mount`` is given, or if mounting fails; ValueError for a
    malformed option; TypeError for arguments of the wrong type). A Ctrl-C while mounting
    takes effect once mounting is done: raised after the Mount is closed again (under
    asyncio.run, whose first Ctrl-C cancels the main task, the Mount is returned). Several
    Mounts can serve concurrently in one event loop. The cache-control methods act on this
    mount only; their awaitable forms are ``mount.cache`` (a ``pyfuse3.cache.CacheControl``).
    ``with Mount(...)`` closes it at the end of the block; ``async with Mount(...)`` first
    ends a serve() still running in this loop (see ``__aexit__``).
    """

    _device: str | None  # this connection's "major:minor" once mounted

    def __init__(self, ops: Any, mountpoint: str | os.PathLike[str],
                 options: Iterable[str] = default_options) -> None:
        _check_operations(ops)
        if isinstance(mountpoint, os.PathLike):
            mountpoint = os.fspath(mountpoint)
        if not isinstance(mountpoint, str):
            raise TypeError(f"mountpoint must be str or os.PathLike (a pathlib.Path), not "
                            f"{type(mountpoint).__name__}")
        opts = parse_options(options)
        _refuse_inside_own_mount(os.path.abspath(mountpoint), "creating a Mount")
        # Resolved once: the mount table, the refusals and the clean-up after an abort all
        # see the directory really mounted on, never a symlink to it.
        mountpoint = os.path.realpath(mountpoint)
        _check_mountpoint(mountpoint, opts.stacked)
        session = Session(ops, mountpoint, opts, lowlevel_ops)
        try:
            self._mount(session)
        except KeyboardInterrupt:
            # raised once this Mount was complete: closed first, no dead mount left behind
            if getattr(self, "_session", None) is not None:
                self.close()
            raise

    @finished_before_interrupt
    def _mount(self, session: Session) -> None:
        try:
            session.mount()
        except BaseException:
            session.destroy()  # unmounts only what mount() had mounted
            raise
        self._adopt(session)
        # This connection, whatever is mounted over it later: unmounting and aborting act on
        # it, never on whatever is topmost at the path (another process's mount, say).
        found = _sysutil.mount_of(session.mountpoint)
        if found is not None:
            self._device = found[0]
        _open.add(self)

    def _adopt(self, session: Session) -> None:
        self._session = session
        self._device = None
        self._loop: EventLoop | None = None
        self._dispatcher: Dispatcher | None = None
        self._cache = CacheControl(self)
        self._attached = False  # served over a socket (the harness), not mounted
        self._when_served: list[Callable[[None], None]] = []  # called as serve() returns

    @classmethod
    def current(cls) -> Mount:
        """The Mount whose request the caller is answering: inside a handler, a task it
        started, or a thread started with ``trio.to_thread``/``asyncio.to_thread`` (which copy
        its context; ``loop.run_in_executor`` does not). RuntimeError elsewhere."""
        mount = handler_owner()
        if not isinstance(mount, Mount):
            raise RuntimeError("Mount.current() called outside a request handler (and outside "
                               "the tasks and threads one started): keep the Mount where the "
                               "code that needs it can reach it instead")
        return mount

    @classmethod
    def _over_fd(cls, ops: Any, fd: int, options: Iterable[str] = (),
                 caller_dying: Callable[[int], bool] = _sysutil.caller_dying) -> Mount:
        """A Mount that speaks the FUSE protocol over ``fd`` (a SOCK_SEQPACKET socket)
        instead of /dev/fuse: nothing is mounted (pyfuse3.testing.Harness, which tells
        which callers it plays as killed with ``caller_dying(pid)``)."""
        _check_operations(ops)
        opts = parse_options(options)
        session = Session(ops, "<harness>", opts, lowlevel_ops, caller_dying)
        try:
            session.attach(fd)
        except BaseException:
            session.destroy(unmount=False)
            raise
        mount = cls.__new__(cls)
        mount._adopt(session)
        mount._attached = True
        return mount

    def __repr__(self) -> str:
        return f"<pyfuse3.Mount {self.mountpoint!r} {self.state}>"

    @property
    def mountpoint(self) -> str:
        """The absolute path mounted (symlinks resolved)."""
        return self._session.mountpoint

    @property
    def ops(self) -> Any:
        """The Operations instance served."""
        return self._session.ops

    @property
    def state(self) -> str:
        """Where the mount is in its life: mounted, serving, stopping, stopped, closing, closed
        (a harness's Mount, served over a socket, is "attached" where another is "mounted")."""
        state = self._session.life.state
        return "attached" if self._attached and state is State.MOUNTED else str(state.value)

    @property
    def io_uring(self) -> bool:
        """Whether requests come through pyfuse3's io_uring (mount option ``io_uring``): True
        once INIT announced it and the ring's entries were registered; False when the mount
        is served through /dev/fuse (the option not given, or a warning said why not)."""
        ring = self._session.ring
        return ring is not None and ring.started

    @property
    def session(self) -> Session:
        """The libfuse session (internal); RuntimeError once closed."""
        if self._session.life.state in (State.CLOSING, State.CLOSED):
            raise RuntimeError(f"the file system mounted at {self.mountpoint} was closed")
        return self._session

    # -- serving ----------------------------------------------------------------------------

    @ended_by_ctrl_c  # never between the state change and its finally
    async def serve(self, *, max_tasks: int = 99) -> None:
        """Serve requests until terminate() or an unmount; runs under trio or asyncio.

        Returns only when every handler it started has finished. Raises what ended serving
        abnormally: an error reading /dev/fuse, libfuse refusing the kernel's INIT, a
        ValueError from ``Operations.init_connection()``, or a KeyboardInterrupt/SystemExit/
        cancellation (as itself, never in an exception group). Under asyncio without a SIGINT
        handler of its own (Python 3.10's asyncio.run, ``loop.run_until_complete``), a Ctrl-C
        while it is the only serve() cancels it, and it raises KeyboardInterrupt once unwound.
        RuntimeError if closed or already serving. ``max_tasks`` bounds the handlers suspended
        at once (plus the task reading /dev/fuse); upstream's ``min_tasks`` exists on
        ``main()`` only.
        """
        if not isinstance(max_tasks, int) or isinstance(max_tasks, bool):
            raise TypeError(f"max_tasks must be int, not {type(max_tasks).__name__}")
        session = self.session
        loop = current().event_loop()
        dispatcher = Dispatcher(session, loop, max_tasks, owner=self)
        with session.life.lock:
            if session.life.fire("serve") is State.STOPPED:
                session.restart()
            self._loop, self._dispatcher = loop, dispatcher
        try:
            await dispatcher.run()
        finally:
            try:
                session.fail_retrievals()
                with session.life.lock:
                    if session.life.state in (State.SERVING, State.STOPPING):
                        session.life.fire("served")
                    if self._dispatcher is dispatcher:
                        self._loop = self._dispatcher = None
                if session.life.calls:
                    # close() aborts if this gives up
                    _release_threads(session, self._device, None, ABORT_AFTER)
            finally:  # (an __aexit__ waiting for this must never wait for ever)
                waiters, self._when_served = self._when_served, []
                for deliver in waiters:
                    deliver(None)
        if session.request_timeout and not dispatcher.stops and self._device is not None and \
                _sysutil.is_mounted(self._device):
            # Serving ended by itself, and not by an unmount: the kernel aborted the connection.
            self._timed_out()

    def _timed_out(self) -> None:
        """The kernel aborted the connection of a mount with a request timeout: detach the dead
        mount (nothing can be served on it again) and raise ConnectionAbortedError."""
        session = self.session
        try:
            _sysutil.lazy_unmount(session.mountpoint)
        except OSError as e:
            log.warning("detaching the dead mount %s failed: %s", session.mountpoint, e)
        raise ConnectionAbortedError(
            errno.ECONNABORTED,
            f"the kernel aborted the FUSE connection of {session.mountpoint}: a request was not "
            f"answered within request_timeout={session.request_timeout} s (or the connection "
            "was aborted by hand); the mount was detached. Callers waiting on it got ECONNABORTED "
            "or ENOTCONN")

    @property
    def token(self) -> Any:
        """While serving: trio's TrioToken, or the string 'asyncio'; None otherwise."""
        loop = self._loop
        return None if loop is None else loop.token

    def terminate(self) -> None:
        """End serve() once in-flight requests are answered; safe from any thread or signal
        handler.

        A second call also cancels the handlers still running (their requests are answered
        with EINTR). Before serve() it makes the next serve() return at once; after serve()
        has returned, also during and after close(), it does nothing (a signal handler may
        call it at any time). Does not unmount: call close() after serve() returned.
        """
        session = self._session
        with session.life.lock:
            state = session.life.state
            if state in (State.CLOSING, State.CLOSED):
                return
            loop, dispatcher = self._loop, self._dispatcher
            if state in (State.SERVING, State.STOPPING) and loop is not None and \
                    dispatcher is not None:
                if state is State.SERVING:
                    session.life.fire("stop")
                # The dispatcher ends the session itself, on its loop: ended here first, its
                # reader could see the end before stop() and take it for an unmount
                # (cancelling the handlers a first terminate() must wait for).
                loop.run_sync_soon(dispatcher.stop)
            else:
                session.exit()

    @finished_before_interrupt
    def close(self, unmount: bool = True) -> None:
        """Unmount (unless ``unmount`` is False) and free the session; a second call does
        nothing.

        RuntimeError while serve() is running. If serve() can no longer run because its event
        loop stopped under it (Ctrl-C out of ``loop.run_until_complete(...)``), close() ends
        serving itself: requests still open are answered with EINTR. A Ctrl-C meanwhile takes
        effect once close() is done (raised, or under asyncio.run cancelling, then raised at
        the second): interrupted halfway, it left the mount behind.
        """
        session = self._session
        life = session.life
        if life.state not in (State.CLOSING, State.CLOSED) and session.mounted:
            _refuse_inside_own_mount(session.mountpoint, "close()", session)
        with life.lock:
            if life.state in (State.CLOSING, State.CLOSED):
                return
            if life.state in (State.SERVING, State.STOPPING):
                loop = self._loop
                if loop is None or not loop.running():
                    life.fire("abandon")
                    self._loop = self._dispatcher = None
            life.fire("close")
        try:
            freed = _teardown(session, unmount, self._device, self._cache.stop_worker)
        finally:
            life.fire("closed")
        if not freed:
            _kept.append(session)

    def __del__(self) -> None:
        if getattr(self, "_session", None) is not None and self._session.mounted and \
                self._session.life.state not in (State.CLOSING, State.CLOSED):
            _close_unclosed(self)

    def __enter__(self) -> Mount:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Mount:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Leave ``async with``: if serve() is running in this event loop, terminate() it and
        wait until it returned; then close().

        So a program that serves several Mounts in one ``asyncio.gather`` and leaves the block
        because one serve() raised ends the others first instead of having close() refuse.
        Requests in flight are answered first; if the wait itself is cancelled, the handlers
        still running are cancelled too (terminate() again) and the Mount is left open (close
        it once serve() returned). RuntimeError inside a handler of this Mount (the wait would
        never end), and as close()'s while serve() runs in another thread.
        """
        dispatcher = self._dispatcher
        loop = self._loop
        if dispatcher is not None and loop is not None and loop.running() and \
                dispatcher.loop_thread == threading.get_ident():
            if handler_owner() is self:
                raise RuntimeError(
                    "leaving 'async with' of a Mount inside one of its own handlers: it waits "
                    "for serve() to return, which waits for this handler. Call terminate() "
                    "here and close the Mount where serve() was awaited")
            if self._session.life.state is State.SERVING:
                self.terminate()  # (STOPPING: a terminate() came already; a second cancels)
            try:
                await current().wait_for_callback(self._when_served.append)
            except BaseException:
                self.terminate()  # the second: handlers still running are cancelled
                raise
        self.close()

    # -- cache control of this mount --------------------------------------------------------

    def invalidate_inode(self, inode: int, attr_only: bool = False, *, offset: int = 0,
                         length: int = 0) -> None:
        """Drop the kernel's cached attributes and, unless ``attr_only``, data of an inode.

        ``offset``/``length`` limit the data invalidation to a byte range (length 0: to the
        end). Blocks the calling thread; on the event-loop thread inside a handler with the
        writeback cache it is refused (RuntimeError): use ``await mount.cache.
        invalidate_inode()``. OSError carries the kernel's errno (ENOENT: nothing cached).
        """
        self._cache.invalidate_inode_blocking(inode, attr_only, offset=offset, length=length)

    def invalidate_entry(self, inode_p: int, name: bytes, deleted: int = 0) -> None:
        """Drop the kernel's cached entry ``name`` in directory ``inode_p``; blocks the caller.

        A non-zero ``deleted`` sends a delete notification for that child instead (inotify
        watchers see the file go). Refused inside handlers on the loop thread (RuntimeError):
        use ``invalidate_entry_async()`` or ``await mount.cache.invalidate_entry()``.
        """
        self._cache.invalidate_entry_blocking(inode_p, name, deleted)

    def invalidate_entry_async(self, inode_p: int, name: bytes, deleted: int = 0,
                               ignore_enoent: bool = False) -> InvalidationHandle:
        """Queue invalidate_entry() on this mount's worker thread and return at once; safe
        anywhere. The handle completes with the kernel's answer (see
        ``pyfuse3.invalidate_entry_async``)."""
        return self._cache.submit_entry(inode_p, name, deleted, ignore_enoent)

    def expire_entry(self, inode_p: int, name: bytes) -> None:
        """Mark a cached entry expired (kept for open files, revalidated on next use); waits
        like invalidate_entry() and is refused inside handlers likewise."""
        self._cache.expire_entry_blocking(inode_p, name)

    def invalidate_all(self) -> None:
        """Drop every name (dentry) the kernel caches for this mount, at once: each is looked
        up again on its next use, also one whose lookup was under way (the kernel's epoch).
        Attributes and data stay cached (``invalidate_inode()``). Safe anywhere, also in
        handlers: it returns at once. OSError(ENOSYS) where libfuse (before 3.18) or the
        kernel (before Linux 6.16) lacks it, saying which."""
        self._cache.invalidate_all_blocking()

    def notify_store(self, inode: int, offset: int, data: Any) -> None:
        """Put ``data`` (any bytes-like object, not copied) into the kernel's page cache of
        ``inode`` at ``offset``. OSError carries the kernel's errno."""
        self._cache.notify_store_blocking(inode, offset, data)

    @property
    def cache(self) -> CacheControl:
        """The awaitable cache control of this mount (safe inside handlers), incl.
        ``notify_retrieve``."""
        return self._cache


def open_mounts() -> list[Mount]:
    """The Mounts created and not closed yet, in this process."""
    return [m for m in list(_open) if m.state not in (State.CLOSING.value, State.CLOSED.value)]


def _close_unclosed(mount: Mount) -> None:
    """Close a Mount its program forgot (dropped, or still open at exit) rather than leave a
    dead mount behind and run ``ops.destroy()`` while the interpreter is being torn down."""
    warnings.warn(f"unclosed {mount!r}: call close() (or use 'with Mount(...)'); closing it "
                  f"now", ResourceWarning, source=mount, stacklevel=2)
    try:
        mount.close()
    except Exception:  # still serving in a thread of its own, or inside its own file system
        log.exception("closing the unclosed %r failed", mount)
        device = mount._device
        if device is not None:
            _sysutil.abort_device(device)
            top = _sysutil.mount_of(mount.mountpoint)
            if top is not None and top[0] == device:
                _sysutil.lazy_unmount(mount.mountpoint)


@atexit.register
def _close_all_unclosed() -> None:
    for mount in open_mounts():
        _close_unclosed(mount)


def _refuse_inside_own_mount(path: str, what: str, own: Session | None = None) -> None:
    """RuntimeError if ``path`` lies in a file system this very thread serves: looking it up
    (mounting, unmounting) would wait for a request only this thread can answer."""
    top = served_by_this_thread(path, own)
    if top is not None:
        raise RuntimeError(
            f"{what} at {path}: that path is inside {top}, which this event loop serves, and "
            "looking it up would wait for this loop forever. Do it in a worker thread, e.g. "
            "'await trio.to_thread.run_sync(...)' or 'await asyncio.to_thread(...)'")


def _check_mountpoint(path: str, stacked: bool) -> None:
    try:
        st = os.stat(path)
        os.statvfs(path)  # always asks the file system: a dead one with cached attributes too
    except OSError as e:
        if e.errno == errno.ENOTCONN:
            raise RuntimeError(
                f"{path} is a stale FUSE mount (its file system process died): "
                f"unmount it with 'fusermount3 -u {path}' first") from None
        raise RuntimeError(f"cannot mount at {path}: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeError(f"cannot mount at {path}: not a directory (a pyfuse3 file system's "
                           "root is a directory)")
    if not stacked and _sysutil.mount_of(path) is not None:
        raise RuntimeError(
            f"{path} is already a mount point: mounting there would hide that file system. "
            f"Unmount it first, or pass the mount option '{STACK_OPTION}' to stack on purpose")


def _release_threads(session: Session, device: str | None, worker: EntryWorker | None,
                     give_up_after: float, abort_after: float | None = None) -> bool:
    """Answer queued requests (EIO) until no thread is inside libfuse; False if one still is
    after ``give_up_after`` seconds.

    Once nobody reads /dev/fuse, a notify call (or the entry worker) may wait in the kernel for
    a lock that an unread client request holds; answering the request releases it. After
    ``abort_after`` seconds the connection is aborted as the last resort.
    """
    start = time.monotonic()
    while (worker is not None and worker.alive()) or session.life.calls:
        session.refuse_queued()
        if worker is not None and worker.alive():
            worker.join(0.02)
        else:
            session.life.wait_calls(0.02)
        waited = time.monotonic() - start
        if abort_after is not None and waited > abort_after:
            abort_after = None
            log.warning("a thread is still inside a kernel call after %.0f s; aborting the "
                        "FUSE connection of %s", waited, session.mountpoint)
            if device is not None:
                _sysutil.abort_device(device)
        if waited > give_up_after:
            return False
    return True


def _teardown(session: Session, unmount: bool, device: str | None,
              stop_worker: Callable[[], EntryWorker | None]) -> bool:
    """Free the session once no thread can be inside libfuse with it; False if it gave up.

    Threads may be blocked in a kernel call that waits for a client request nobody reads any
    more: answering the queued requests (EIO) releases them, aborting the connection is the
    last resort. Unmounting removes this connection's mount only: libfuse's unmount acts on
    whatever is topmost at the path, so it runs only while that is this connection.
    """
    session.exit()
    session.abandon_pending()
    worker = stop_worker()
    if not _release_threads(session, device, worker, GIVE_UP_AFTER, abort_after=ABORT_AFTER):
        log.error("close(): a thread is still inside libfuse after %.0f s; the session's "
                  "memory is kept (not freed under it) and %s stays mounted",
                  GIVE_UP_AFTER, session.mountpoint)
        return False
    if device is None or not session.mounted:
        session.destroy(unmount)
        return True
    top = _sysutil.mount_of(session.mountpoint)
    ours_on_top = top is not None and top[0] == device
    if unmount and ours_on_top and top is not None and top[1] == "fuseblk" and \
            session.ring is not None:
        # A block-device mount's unmount sends DESTROY and waits for its answer. libfuse
        # closes /dev/fuse first so that the kernel ends the connection instead, but ring
        # entries still hold /dev/fuse: the request would wait for a ring nobody serves any
        # more (unmount hung in CI). Nothing is served now: end the connection first.
        _sysutil.abort_device(device)
    session.destroy(unmount and ours_on_top)
    if unmount and _sysutil.is_mounted(device):
        if ours_on_top:
            _sysutil.lazy_unmount(session.mountpoint)  # libfuse skips unmounting an aborted one
        else:
            # Covered by another mount, which sits on ours: detaching ours would take that
            # one along. Abort ours (nothing can wait on it) and leave that one serving.
            _sysutil.abort_device(device)
            log.warning("close(): another file system is mounted over %s, so this one cannot "
                        "be unmounted under it; its connection is aborted. Once that one is "
                        "unmounted, remove this one with 'fusermount3 -u %s'",
                        session.mountpoint, session.mountpoint)
    return True
