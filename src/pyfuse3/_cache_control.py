"""The cache control of one mount (``mount.cache``): the one notifier a Mount has.

It owns what every form of a cache call shares: the deadlock rule (calls that would wait for
the event loop are refused on its thread inside a handler), the entry-invalidation worker
thread, and both forms of each call: the blocking one (``Mount.invalidate_inode`` and the
module-level functions are one-liners over it) and the awaitable one (run on a worker thread
while the loop keeps serving). ``_notify`` below it only talks to libfuse.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from . import _notify
from ._backends import current
from ._dispatch import handler_on_this_thread, in_handler
from ._entry_worker import EntryWorker, InvalidationHandle, check_entry_args

if TYPE_CHECKING:
    from ._mount import Mount
    from ._session import Session

_WAITS_FOR_OWN_REQUEST = "the kernel may wait for the very request this handler answers"


def _refuse_in_handler(call: str, why: str, any_thread: bool = False,
                       instead: str | None = None) -> None:
    """RuntimeError if ``call`` would block forever here: on the loop thread inside a handler
    (``any_thread``: also in a thread a handler awaits, since the kernel waits for the
    handler's own request)."""
    if handler_on_this_thread() or (any_thread and in_handler()):
        raise RuntimeError(
            f"pyfuse3.{call}() called inside a request handler (or a task or thread it "
            f"started): {why}, so it could block forever. Use "
            + (instead or f"'await pyfuse3.cache.{call}(...)' (for a Mount: "
               f"'await mount.cache.{call}(...)') instead"))


class CacheControl:
    """The awaitable cache control of one mount (``mount.cache``): safe in handlers and with
    the writeback cache. The kernel calls run on a worker thread while the loop keeps
    serving. ``pyfuse3.cache``'s functions are these methods on the mount of init()."""

    def __init__(self, mount: Mount) -> None:
        self._mount = mount
        self._worker: EntryWorker | None = None

    # -- the blocking forms (Mount's methods) ---------------------------------------------

    def invalidate_inode_blocking(self, inode: int, attr_only: bool = False, *,
                                  offset: int = 0, length: int = 0) -> None:
        """``Mount.invalidate_inode()``: refused where the writeback cache would deadlock."""
        session = self._mount.session
        if not attr_only and session.want & _notify.WRITEBACK_CACHE:
            _refuse_in_handler("invalidate_inode", "with the writeback cache the kernel first "
                               "waits for dirty pages to be written by this event loop")
        _notify.invalidate_inode(session, inode, attr_only, offset=offset, length=length)

    def invalidate_entry_blocking(self, inode_p: int, name: bytes, deleted: int = 0) -> None:
        """``Mount.invalidate_entry()``: refused inside handlers."""
        session = self._mount.session
        _notify.check_name(name)
        _refuse_in_handler("invalidate_entry", _WAITS_FOR_OWN_REQUEST, True,
                           "'await pyfuse3.cache.invalidate_entry(...)' or "
                           "pyfuse3.invalidate_entry_async(...) (queued until the kernel "
                           "allows)")
        _notify.invalidate_entry(session, inode_p, name, deleted)

    def expire_entry_blocking(self, inode_p: int, name: bytes) -> None:
        """``Mount.expire_entry()``: refused inside handlers."""
        session = self._mount.session
        _notify.check_name(name)
        _refuse_in_handler("expire_entry", _WAITS_FOR_OWN_REQUEST, True,
                           "'await pyfuse3.cache.invalidate_entry(...)' (queued until the "
                           "kernel allows), or expire the entry from a task outside handlers")
        _notify.expire_entry(session, inode_p, name)

    def invalidate_all_blocking(self) -> None:
        """``Mount.invalidate_all()``: allowed anywhere (the kernel waits for nothing)."""
        _notify.invalidate_all(self._mount.session)

    def notify_store_blocking(self, inode: int, offset: int, data: Any) -> None:
        """``Mount.notify_store()``."""
        _notify.notify_store(self._mount.session, inode, offset, data)

    def submit_entry(self, inode_p: int, name: bytes, deleted: int = 0,
                     ignore_enoent: bool = False) -> InvalidationHandle:
        """``Mount.invalidate_entry_async()``: queued on this mount's worker thread."""
        session = self._mount.session
        check_entry_args(session, inode_p, name, deleted)
        if self._worker is None:
            self._worker = EntryWorker(session)
        return self._worker.submit(inode_p, name, deleted, ignore_enoent)

    def stop_worker(self) -> EntryWorker | None:
        """Tell the entry worker to stop (queued items fail); return it, or None if none ran."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
        return worker

    # -- the awaitable forms -----------------------------------------------------------------

    def _session(self) -> Session:
        return self._mount.session

    async def invalidate_inode(self, inode: int, attr_only: bool = False, *, offset: int = 0,
                               length: int = 0) -> None:
        """Awaitable invalidate_inode(): safe in handlers and with the writeback cache."""
        session = self._session()
        await current().to_thread(functools.partial(
            _notify.invalidate_inode, session, inode, attr_only, offset=offset, length=length))

    async def invalidate_entry(self, inode_p: int, name: bytes,
                               deleted: int = 0) -> InvalidationHandle:
        """Awaitable invalidate_entry(), safe anywhere.

        Outside handlers it waits for the kernel and raises its error. Inside a handler, where
        the kernel may wait for this very request, it only queues the invalidation and returns
        at once; the returned handle reports the kernel's answer.
        """
        handle = self.submit_entry(inode_p, name, deleted)
        if not in_handler():
            await current().to_thread(handle.result)
        return handle

    async def expire_entry(self, inode_p: int, name: bytes) -> None:
        """Awaitable expire_entry() (run off the event-loop thread). RuntimeError inside a
        handler, where the kernel would wait for the handler's own request: use
        ``invalidate_entry()`` there, which is queued."""
        session = self._session()
        if in_handler():
            raise RuntimeError(
                "pyfuse3.cache.expire_entry() called inside a request handler: the kernel may "
                "wait for the very request this handler answers. Use 'await pyfuse3.cache."
                "invalidate_entry(...)' (queued until the kernel allows), or expire the entry "
                "from a task outside handlers")
        await current().to_thread(functools.partial(_notify.expire_entry, session, inode_p,
                                                    name))

    async def invalidate_all(self) -> None:
        """Awaitable invalidate_all() (it never waits, so this only keeps the API uniform)."""
        _notify.invalidate_all(self._session())

    async def notify_store(self, inode: int, offset: int, data: Any) -> None:
        """Awaitable notify_store() (run off the event-loop thread)."""
        session = self._session()
        await current().to_thread(functools.partial(_notify.notify_store, session, inode,
                                                    offset, data))

    async def notify_retrieve(self, inode: int, offset: int, size: int) -> bytes:
        """The bytes the kernel holds in its page cache for a range, up to the first page it
        lacks. OSError if the kernel refuses or the bytes cannot be copied; RuntimeError if
        serving ends before the kernel's answer is read."""
        session = self._session()
        data: bytes | Exception = await current().wait_for_callback(
            lambda deliver: _notify.request_retrieve(session, inode, offset, size, deliver))
        if isinstance(data, Exception):
            raise data
        return bytes(data)
