"""init() / main() / terminate() / close() and the module-level cache control: upstream's API,
a thin facade over one default ``Mount`` (see ``_mount`` for what each call does)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

from ._entry_worker import InvalidationHandle
from ._mount import Mount, default_options, open_mounts
from ._session import Session
from ._state import State

__all__ = [
    "close",
    "current_mount",
    "current_session",
    "default_options",
    "expire_entry",
    "init",
    "invalidate_entry",
    "invalidate_entry_async",
    "invalidate_inode",
    "main",
    "notify_store",
    "terminate",
]

_default: Mount | None = None
_init_lock = threading.Lock()


def current_mount() -> Mount:
    """The Mount of init(); RuntimeError before init() or after close()."""
    mount = _default
    closed = mount is not None and mount.state in (State.CLOSING.value, State.CLOSED.value)
    if (mount is None or closed) and open_mounts():
        raise RuntimeError(
            "the module-level calls act on the file system of pyfuse3.init(), and there is "
            "none: for a pyfuse3.Mount call its methods (mount.invalidate_inode(...), "
            "'await mount.cache.invalidate_entry(...)') or use "
            "pyfuse3.cache.Invalidator(mount=mount)")
    if mount is None:
        raise RuntimeError("no pyfuse3 file system is mounted: call pyfuse3.init() first")
    if closed:
        raise RuntimeError("the pyfuse3 file system was closed: call pyfuse3.init() again")
    return mount


def current_session() -> Session:
    """The session of init(); RuntimeError before init() or after close()."""
    return current_mount().session


def init(ops: Any, mountpoint: str | os.PathLike[str],
         options: Iterable[str] = default_options) -> None:
    """Mount ``ops`` at ``mountpoint`` with the given mount options; serve it with main().

    ``mountpoint`` (str or os.PathLike) must be a directory that is not a mount point already
    (unless the option ``allow_stacked_mount`` is given); ``options`` is a collection of str.
    RuntimeError if a file system is already initialised or mounting fails; TypeError for
    arguments of the wrong type. For several file systems in one process, use
    ``pyfuse3.Mount``.
    """
    if init_if_free(ops, mountpoint, options) is None:
        raise RuntimeError("pyfuse3.init() was already called: call pyfuse3.close() first, "
                           "or use pyfuse3.Mount for another file system")


def init_if_free(ops: Any, mountpoint: str | os.PathLike[str],
                 options: Iterable[str]) -> Mount | None:
    """init() and its Mount, or None (nothing mounted) if an init() file system is in use;
    for pyfuse3.testing, which mounts several."""
    global _default
    with _init_lock:
        if _default is not None and _default.state != State.CLOSED.value:
            return None
        _default = Mount(ops, mountpoint, options)
        return _default


async def main(min_tasks: int = 1, max_tasks: int = 99) -> None:
    """Serve requests until terminate() or an unmount; runs under trio or asyncio.

    Returns only when every handler it started has finished. Raises what ended serving
    abnormally: an error reading /dev/fuse, libfuse refusing the kernel's INIT, or a
    KeyboardInterrupt/SystemExit/cancellation (as itself, never in an exception group).
    Under asyncio without a SIGINT handler of its own (Python 3.10's asyncio.run,
    ``loop.run_until_complete``), a Ctrl-C while it is the only one serving cancels it, and it
    raises KeyboardInterrupt once unwound. RuntimeError if called before init(), after
    close(), or while already running.
    """
    if not isinstance(min_tasks, int):  # upstream's; unused (a task per suspended handler)
        raise TypeError(f"min_tasks must be int, not {type(min_tasks).__name__}")
    await current_mount().serve(max_tasks=max_tasks)


def trio_token() -> Any:
    """``pyfuse3.trio_token``: while main() serves, its loop's token (trio's TrioToken, or the
    string 'asyncio'); None otherwise."""
    mount = _default
    return None if mount is None else mount.token


def terminate() -> None:
    """End main() once in-flight requests are answered; safe from any thread or signal handler.

    A second call also cancels the handlers still running (their requests are answered with
    EINTR). Before main() it makes the next main() return at once; after main() has returned,
    also during and after close(), it does nothing (a Ctrl-C handler may call it at any
    time). Does not unmount: call close() after main() has returned. RuntimeError before
    init().
    """
    mount = _default
    if mount is None or mount.state not in (State.CLOSING.value, State.CLOSED.value):
        mount = current_mount()  # RuntimeError before init()
    mount.terminate()


def close(unmount: bool = True) -> None:
    """Unmount (unless ``unmount`` is False) and free the session; a second call does nothing.

    RuntimeError while main() is running. If main() can no longer run because its event loop
    stopped under it (Ctrl-C out of ``loop.run_until_complete(main())``), close() ends serving
    itself: requests still open are answered with EINTR. A Ctrl-C meanwhile takes effect
    once close() is done.
    """
    mount = _default
    if mount is not None:
        mount.close(unmount)


def invalidate_inode(inode: int, attr_only: bool = False, *, offset: int = 0,
                     length: int = 0) -> None:
    """``Mount.invalidate_inode()`` on the file system of init()."""
    current_mount().invalidate_inode(inode, attr_only, offset=offset, length=length)


def invalidate_entry(inode_p: int, name: bytes, deleted: int = 0) -> None:
    """``Mount.invalidate_entry()`` on the file system of init()."""
    current_mount().invalidate_entry(inode_p, name, deleted)


def invalidate_entry_async(inode_p: int, name: bytes, deleted: int = 0,
                           ignore_enoent: bool = False) -> InvalidationHandle:
    """Queue invalidate_entry(inode_p, name, deleted) and return at once; safe anywhere.

    Performed in call order by a thread of the session, so it never blocks the caller, also
    inside handlers. Raises now what is known now (TypeError/OverflowError for bad arguments,
    RuntimeError without a session, OSError(ENOSYS) before the kernel's INIT); the returned
    handle completes with the kernel's answer (ENOENT counts as success if ``ignore_enoent``)
    or RuntimeError if the file system is closed first.
    """
    return current_mount().invalidate_entry_async(inode_p, name, deleted, ignore_enoent)


def expire_entry(inode_p: int, name: bytes) -> None:
    """``Mount.expire_entry()`` on the file system of init()."""
    current_mount().expire_entry(inode_p, name)


def invalidate_all() -> None:
    """``Mount.invalidate_all()`` on the file system of init()."""
    current_mount().invalidate_all()


def notify_store(inode: int, offset: int, data: Any) -> None:
    """``Mount.notify_store()`` on the file system of init()."""
    current_mount().notify_store(inode, offset, data)
