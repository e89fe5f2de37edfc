"""init() / main() / terminate() / close(): the life of the one mount a process serves.

The upstream API is module-level, so this module keeps a single reference to the current
Session (and, while main() runs, its backend). Which call is allowed when is the session's
lifecycle table (``_state``); this module performs what each transition means.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from . import _sysutil
from ._backends import AsyncioBackend, TrioBackend, current_backend
from ._callbacks import ops_table
from ._dispatch import Dispatcher
from ._entry_worker import EntryWorker
from ._session import Session
from ._state import State

log = logging.getLogger("pyfuse3")

default_options = frozenset({"default_permissions"})

#: Mount option (handled here, not passed to libfuse) to mount over an existing mount point.
STACK_OPTION = "allow_stacked_mount"

#: close() waits this long for threads inside libfuse before aborting the connection, and
#: gives up (keeping the session's memory rather than freeing it under them) after the second.
ABORT_AFTER, GIVE_UP_AFTER = 1.0, 10.0


class _Runtime:
    """The current session and, while main() runs, how to reach its event loop."""

    session: Session | None = None
    backend: TrioBackend | AsyncioBackend | None = None
    dispatcher: Dispatcher | None = None


_rt = _Runtime()
_init_lock = threading.Lock()
_kept: list[Session] = []  # sessions close() could not free safely (see _teardown)


def current_session() -> Session:
    """The session set up by init(); RuntimeError before init() or after close()."""
    session = _rt.session
    if session is None:
        raise RuntimeError("no pyfuse3 file system is mounted: call pyfuse3.init() first")
    if session.life.state in (State.CLOSING, State.CLOSED):
        raise RuntimeError("the pyfuse3 file system was closed: call pyfuse3.init() again")
    return session


def init(ops: Any, mountpoint: str, options: Iterable[str] = default_options) -> None:
    """Mount ``ops`` at ``mountpoint`` with the given mount options; serve it with main().

    ``mountpoint`` must be a directory that is not a mount point already (unless the option
    ``allow_stacked_mount`` is given). RuntimeError if a file system is already initialised
    or mounting fails; TypeError for arguments of the wrong type.
    """
    if not isinstance(mountpoint, str):
        raise TypeError(f"mountpoint must be str, not {type(mountpoint).__name__}")
    options = frozenset(options)
    for opt in options:
        if not isinstance(opt, str):
            raise TypeError(f"mount options must be str, got {opt!r}")
    stacked = STACK_OPTION in options
    options = options - {STACK_OPTION}
    with _init_lock:
        if _rt.session is not None and _rt.session.life.state is not State.CLOSED:
            raise RuntimeError("pyfuse3.init() was already called: call pyfuse3.close() first")
        mountpoint = os.path.abspath(mountpoint)
        _check_mountpoint(mountpoint, stacked)
        session = Session(ops, mountpoint, options, ops_table)
        try:
            session.mount()
        except BaseException:
            session.destroy(unmount=False)
            raise
        _rt.session = session


def _check_mountpoint(path: str, stacked: bool) -> None:
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ENOTCONN:
            raise RuntimeError(
                f"{path} is a stale FUSE mount (its file system process died): "
                f"unmount it with 'fusermount3 -u {path}' first") from e
        raise RuntimeError(f"cannot mount at {path}: {e.strerror}") from e
    if not stat.S_ISDIR(st.st_mode):
        raise RuntimeError(f"cannot mount at {path}: not a directory (a pyfuse3 file system's "
                           "root is a directory)")
    if not stacked and _sysutil.mount_of(path) is not None:
        raise RuntimeError(
            f"{path} is already a mount point: mounting there would hide that file system. "
            f"Unmount it first, or pass the mount option '{STACK_OPTION}' to stack on purpose")


async def main(min_tasks: int = 1, max_tasks: int = 99) -> None:
    """Serve requests until terminate() or an unmount; runs under trio or asyncio.

    Returns only when every handler it started has finished. Raises what ended serving
    abnormally: an error reading /dev/fuse, libfuse refusing the kernel's INIT, or a
    KeyboardInterrupt/SystemExit/cancellation (as itself, never in an exception group).
    RuntimeError if called before init(), after close(), or while already running.
    """
    if not isinstance(min_tasks, int) or not isinstance(max_tasks, int):
        raise TypeError("min_tasks and max_tasks must be int")
    session = current_session()
    backend = current_backend()
    dispatcher = Dispatcher(session, backend, max_tasks)
    with session.life.lock:
        if session.life.fire("serve") is State.STOPPED:
            session.restart()
        _rt.backend, _rt.dispatcher = backend, dispatcher
    _set_token(backend.token)
    try:
        await dispatcher.run()
    finally:
        with session.life.lock:
            if session.life.state in (State.SERVING, State.STOPPING):
                session.life.fire("served")
            if _rt.dispatcher is dispatcher:
                _rt.backend = _rt.dispatcher = None
                _set_token(None)
        if session.life.calls:
            _release_threads(session, None, ABORT_AFTER)  # close() aborts if this gives up


def _release_threads(session: Session, worker: EntryWorker | None, give_up_after: float,
                     abort_after: float | None = None) -> bool:
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
            _sysutil.abort_connection(session.mountpoint)
        if waited > give_up_after:
            return False
    return True


def _set_token(token: Any) -> None:
    pkg = sys.modules.get("pyfuse3")
    if pkg is not None:
        pkg.trio_token = token  # type: ignore[attr-defined]


def terminate() -> None:
    """End main() once in-flight requests are answered; safe from any thread or signal handler.

    A second call also cancels the handlers still running (their requests are answered with
    EINTR). Before main() it makes the next main() return at once; after main() has returned
    it does nothing. Does not unmount: call close() after main() has returned.
    RuntimeError before init() or after close().
    """
    session = current_session()
    with session.life.lock:
        session.exit()
        state = session.life.state
        if state in (State.SERVING, State.STOPPING):
            if state is State.SERVING:
                session.life.fire("stop")
            backend, dispatcher = _rt.backend, _rt.dispatcher
            if backend is not None and dispatcher is not None:
                backend.run_sync_soon(dispatcher.stop)


def close(unmount: bool = True) -> None:
    """Unmount (unless ``unmount`` is False) and free the session; a second call does nothing.

    RuntimeError while main() is running. If main() can no longer run because its event loop
    stopped under it (Ctrl-C out of ``loop.run_until_complete(main())``), close() ends serving
    itself: requests still open are answered with EINTR.
    """
    session = _rt.session
    if session is None:
        return
    life = session.life
    with life.lock:
        if life.state in (State.CLOSING, State.CLOSED):
            return
        if life.state in (State.SERVING, State.STOPPING):
            backend = _rt.backend
            if backend is None or not backend.running():
                life.fire("abandon")
                _rt.backend = _rt.dispatcher = None
                _set_token(None)
        life.fire("close")
    try:
        freed = _teardown(session, unmount)
    finally:
        life.fire("closed")
    if not freed:
        _kept.append(session)


def _teardown(session: Session, unmount: bool) -> bool:
    """Free the session once no thread can be inside libfuse with it; False if it gave up.

    Threads may be blocked in a kernel call that waits for a client request nobody reads any
    more: answering the queued requests (EIO) releases them, aborting the connection is the
    last resort.
    """
    session.exit()
    session.abandon_pending()
    worker = session.stop_entry_worker()
    if not _release_threads(session, worker, GIVE_UP_AFTER, abort_after=ABORT_AFTER):
        log.error("close(): a thread is still inside libfuse after %.0f s; the session's "
                  "memory is kept (not freed under it) and %s stays mounted",
                  GIVE_UP_AFTER, session.mountpoint)
        return False
    ours = _sysutil.mount_of(session.mountpoint) if session.mounted else None
    session.destroy(unmount)
    if unmount and ours is not None and _sysutil.mount_of(session.mountpoint) == ours:
        _sysutil.lazy_unmount(session.mountpoint)  # libfuse skips unmounting an aborted one
    return True
