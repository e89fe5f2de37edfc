"""invalidate_entry_async(): entry invalidations performed in order by a per-mount thread.

What can be checked at call time (argument types, a closed session, a kernel without support)
raises at once. What only the kernel can tell (ENOENT, ...) completes the returned
``InvalidationHandle``; an error nobody retrieved is logged when the handle is discarded, unless
it is an ENOENT the caller chose to ignore.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

from ._notify import check_inode, check_name, invalidate_entry

log = logging.getLogger("pyfuse3")


class InvalidationHandle(Future[None]):
    """Completion of one invalidate_entry_async() call: result() raises the kernel's error."""

    _observed = False
    _describe = ""

    def result(self, timeout: float | None = None) -> None:
        """Wait up to timeout seconds (None: for ever) for the invalidation; raise its error.

        Errors: the kernel's error as OSError (FileNotFoundError unless ignore_enoent),
        RuntimeError if the mount closed first; concurrent.futures.TimeoutError (the builtin
        TimeoutError from Python 3.11) when the wait times out.
        """
        self._observed = True
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Like result(), but return the error (None on success) instead of raising it."""
        self._observed = True
        return super().exception(timeout)

    def __del__(self) -> None:
        if self.done() and not self._observed and not self.cancelled():
            exc = super().exception()
            if exc is not None:
                log.error("invalidate_entry_async(%s) failed and nobody checked: %s",
                          self._describe, exc)


class EntryWorker:
    """One thread per session that performs queued entry invalidations in order.

    It is bound to its session (never to whichever session is current later). stop() makes
    the items still queued fail with RuntimeError and ends the thread after the current one.
    """

    def __init__(self, session: Any) -> None:
        self._session = session
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="pyfuse3-invalidate", daemon=True)
        self._thread.start()

    def submit(self, inode_p: int, name: bytes, deleted: int,
               ignore_enoent: bool) -> InvalidationHandle:
        """Queue one invalidation and return its handle."""
        handle = InvalidationHandle()
        handle._describe = f"{inode_p}, {name!r}"
        self._queue.put((handle, inode_p, name, deleted, ignore_enoent))
        return handle

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            handle, inode_p, name, deleted, ignore_enoent = item
            try:
                if self._stopped:
                    raise RuntimeError("the file system was closed before this entry "
                                       "invalidation ran")
                invalidate_entry(self._session, inode_p, name, deleted)
            except OSError as e:
                if ignore_enoent and e.errno == errno.ENOENT:
                    handle.set_result(None)
                else:
                    handle.set_exception(e)
            except BaseException as e:  # the session closed under us, ...
                handle.set_exception(e)
            else:
                handle.set_result(None)
            del handle, item
        self._session = None

    def stop(self) -> None:
        """Fail what is still queued and end the thread; does not wait (see join())."""
        self._stopped = True
        self._queue.put(None)

    def alive(self) -> bool:
        """Whether the thread still runs (it may be inside a kernel call)."""
        return self._thread.is_alive()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the thread to end."""
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)


def check_entry_args(session: Any, inode_p: int, name: bytes, deleted: int) -> None:
    """Raise now what is known now about an entry invalidation: TypeError/OverflowError for
    bad arguments, OSError(ENOSYS) before the kernel's INIT."""
    check_inode(inode_p, "inode_p")
    check_inode(deleted, "deleted")
    check_name(name)
    if not session.initialized:
        raise OSError(errno.ENOSYS, "the kernel connection is not initialised yet "
                      "(main() has not answered the kernel's INIT request)")
