"""init() / main() / terminate() / close(): the life of the one mount a process serves.

The upstream API is module-level, so this module keeps a single reference to the current
Session (and, while main() runs, its backend); everything else about the mount lives on them.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterable
from typing import Any

from ._backends import current_backend
from ._callbacks import ops_table
from ._dispatch import Dispatcher
from ._session import Session

default_options = frozenset({"default_permissions"})


class _Runtime:
    """The current session and, while main() runs, how to reach its event loop."""

    session: Session | None = None
    backend: Any = None
    dispatcher: Dispatcher | None = None


_rt = _Runtime()


def current_session() -> Session:
    """The session set up by init(); RuntimeError before init() or after close()."""
    session = _rt.session
    if session is None or session.closed:
        raise RuntimeError("no pyfuse3 file system is mounted: call pyfuse3.init() first"
                           if session is None else
                           "the pyfuse3 file system was closed: call pyfuse3.init() again")
    return session


def init(ops: Any, mountpoint: str, options: Iterable[str] = default_options) -> None:
    """Mount ``ops`` at ``mountpoint`` with the given mount options; serve it with main()."""
    if not isinstance(mountpoint, str):
        raise TypeError(f"mountpoint must be str, not {type(mountpoint).__name__}")
    options = frozenset(options)
    for opt in options:
        if not isinstance(opt, str):
            raise TypeError(f"mount options must be str, got {opt!r}")
    if _rt.session is not None and not _rt.session.closed:
        raise RuntimeError("pyfuse3.init() was already called: call pyfuse3.close() first")
    mountpoint = os.path.abspath(mountpoint)
    _check_mountpoint(mountpoint)
    session = Session(ops, mountpoint, options, ops_table)
    try:
        session.mount()
    except BaseException:
        session.close(unmount=False)
        raise
    _rt.session = session


def _check_mountpoint(path: str) -> None:
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ENOTCONN:
            raise RuntimeError(
                f"{path} is a stale FUSE mount (its file system process died): "
                f"unmount it with 'fusermount3 -u {path}' first") from e
        raise RuntimeError(f"cannot mount at {path}: {e.strerror}") from e
    if not os.path.isdir(path) and not os.path.isfile(path):
        raise RuntimeError(f"cannot mount at {path}: not a directory or regular file")


async def main(min_tasks: int = 1, max_tasks: int = 99) -> None:
    """Serve requests until terminate() or an unmount; runs under trio or asyncio."""
    if not isinstance(min_tasks, int) or not isinstance(max_tasks, int):
        raise TypeError("min_tasks and max_tasks must be int")
    session = current_session()
    if _rt.backend is not None:
        raise RuntimeError("pyfuse3.main() is already running")
    backend = current_backend()
    dispatcher = Dispatcher(session, backend, max_tasks)
    _rt.backend, _rt.dispatcher = backend, dispatcher
    _set_token(backend.token)
    try:
        await dispatcher.run()
    finally:
        _rt.backend = _rt.dispatcher = None
        _set_token(None)


def _set_token(token: Any) -> None:
    pkg = sys.modules.get("pyfuse3")
    if pkg is not None:
        pkg.trio_token = token  # type: ignore[attr-defined]


def terminate() -> None:
    """End main() once in-flight requests are answered; safe from any thread or signal handler.

    A second call also cancels the handlers still running (their requests are answered with
    EINTR). Does not unmount: call close() after main() has returned.
    """
    session = current_session()
    session.exit()
    backend, dispatcher = _rt.backend, _rt.dispatcher
    if backend is not None and dispatcher is not None:
        backend.run_sync_soon(dispatcher.stop)


def close(unmount: bool = True) -> None:
    """Unmount (unless ``unmount`` is False) and free the session; a second call does nothing."""
    session = _rt.session
    if session is None or session.closed:
        return
    if _rt.backend is not None:
        raise RuntimeError("pyfuse3.close() called while main() is running: "
                           "call pyfuse3.terminate() and let main() return first")
    worker, session.entry_worker = session.entry_worker, None
    if worker is not None:
        worker.stop()
    session.close(unmount)
