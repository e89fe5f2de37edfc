"""Kernel cache control that cannot deadlock: awaitable forms and a coalescing invalidator.

The plain functions (``pyfuse3.invalidate_inode`` ...) block the calling thread in the kernel,
which may wait for requests only the event loop can answer: dirty pages to write back
(writeback cache), or the very request whose handler made the call. The forms here run the
kernel call on a worker thread while the loop keeps serving, and never wait for an entry
invalidation from inside a handler (it is queued and performed once the kernel allows).
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import sniffio

from . import _dispatch, _notify
from ._entry_worker import InvalidationHandle, invalidate_entry_async

__all__ = [
    "InvalidationStats",
    "Invalidator",
    "expire_entry",
    "in_handler",
    "invalidate_entry",
    "invalidate_inode",
    "notify_retrieve",
    "notify_store",
]

T = TypeVar("T")


async def _off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking call on a worker thread of the running async library."""
    call = functools.partial(fn, *args, **kwargs)
    if sniffio.current_async_library() == "trio":
        import trio

        return await trio.to_thread.run_sync(call)
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, call)


def in_handler() -> bool:
    """Whether the caller runs inside a request handler, or in a task a handler started."""
    return _dispatch.in_handler()


async def invalidate_inode(inode: int, attr_only: bool = False, *, offset: int = 0,
                           length: int = 0) -> None:
    """Awaitable pyfuse3.invalidate_inode(): safe in handlers and with the writeback cache."""
    await _off_loop(_notify.invalidate_inode, inode, attr_only, offset=offset, length=length)


async def invalidate_entry(inode_p: int, name: bytes, deleted: int = 0) -> InvalidationHandle:
    """Awaitable pyfuse3.invalidate_entry(), safe anywhere.

    Outside handlers it waits for the kernel and raises its error. Inside a handler, where the
    kernel may wait for this very request, it only queues the invalidation and returns at once;
    the returned handle reports the kernel's answer.
    """
    handle = invalidate_entry_async(inode_p, name, deleted)
    if not in_handler():
        await _off_loop(handle.result)
    return handle


async def expire_entry(inode_p: int, name: bytes) -> None:
    """Awaitable pyfuse3.expire_entry() (run off the event-loop thread)."""
    await _off_loop(_notify.expire_entry, inode_p, name)


async def notify_store(inode: int, offset: int, data: Any) -> None:
    """Awaitable pyfuse3.notify_store() (run off the event-loop thread)."""
    await _off_loop(_notify.notify_store, inode, offset, data)


async def notify_retrieve(inode: int, offset: int, size: int) -> bytes:
    """The bytes the kernel holds in its page cache for a range, up to the first page it lacks."""
    if sniffio.current_async_library() == "trio":
        import trio

        done, box = trio.Event(), []

        def on_reply(data: bytes | OSError) -> None:
            box.append(data)
            done.set()

        _notify.request_retrieve(inode, offset, size, on_reply)
        await done.wait()
        if isinstance(box[0], OSError):
            raise box[0]
        return bytes(box[0])
    import asyncio

    future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def resolve(data: bytes | OSError) -> None:
        if not future.done():
            if isinstance(data, OSError):
                future.set_exception(data)
            else:
                future.set_result(data)

    _notify.request_retrieve(inode, offset, size, resolve)
    return await future


@dataclass(frozen=True)
class InvalidationStats:
    """What an Invalidator did so far."""

    requested: int = 0
    """Invalidations asked for."""
    coalesced: int = 0
    """Requests merged into one already queued."""
    performed: int = 0
    """Kernel calls that succeeded."""
    not_cached: int = 0
    """Kernel calls answered ENOENT (nothing cached), counted apart from errors."""
    errors: int = 0
    """Kernel calls that failed otherwise."""


class Invalidator:
    """Collects invalidations, merges duplicates, and performs them in batches off the loop.

    Call ``inode()``/``entry()`` from anywhere on the event-loop thread (handlers included);
    run ``await flush()`` or ``await run(interval)`` from a background task, not a handler.
    ENOENT (the kernel had nothing cached) is not an error unless ``ignore_enoent=False``.
    """

    def __init__(self, *, ignore_enoent: bool = True) -> None:
        self.ignore_enoent = ignore_enoent
        self._inodes: dict[int, bool] = {}
        self._entries: dict[tuple[int, bytes], int] = {}
        self._stats = InvalidationStats()
        self.last_errors: list[tuple[str, OSError]] = []

    def inode(self, inode: int, attr_only: bool = False) -> None:
        """Queue invalidate_inode(); a full invalidation absorbs an attributes-only one."""
        if inode in self._inodes:
            self._count(coalesced=1)
            self._inodes[inode] = self._inodes[inode] and attr_only
        else:
            self._inodes[inode] = attr_only
        self._count(requested=1)

    def entry(self, inode_p: int, name: bytes, deleted: int = 0) -> None:
        """Queue invalidate_entry(); a delete notification absorbs a plain invalidation."""
        if not isinstance(name, bytes):
            raise TypeError(f"name must be bytes, not {type(name).__name__}")
        key = (inode_p, name)
        if key in self._entries:
            self._count(coalesced=1)
            deleted = deleted or self._entries[key]
        self._entries[key] = deleted
        self._count(requested=1)

    def pending(self) -> int:
        """Number of distinct invalidations waiting for the next flush."""
        return len(self._inodes) + len(self._entries)

    def statistics(self) -> InvalidationStats:
        """Counters since creation."""
        return self._stats

    async def flush(self) -> list[tuple[str, OSError]]:
        """Perform everything queued (entries first); return the errors, also in last_errors."""
        if in_handler():
            raise RuntimeError("Invalidator.flush() must not run inside a handler: the kernel "
                               "may wait for that handler's request; flush from a background "
                               "task (see Invalidator.run)")
        entries, self._entries = self._entries, {}
        inodes, self._inodes = self._inodes, {}
        if not entries and not inodes:
            return []
        errors, counts = await _off_loop(self._perform, entries, inodes)
        self._count(**counts)  # on the loop thread: no lock needed
        self.last_errors = errors
        return errors

    async def run(self, interval: float = 0.05) -> None:
        """Flush every ``interval`` seconds, forever (start it in a nursery or task)."""
        sleep = _sleeper()
        while True:
            await sleep(interval)
            await self.flush()

    def _perform(self, entries: dict[tuple[int, bytes], int], inodes: dict[int, bool]
                 ) -> tuple[list[tuple[str, OSError]], dict[str, int]]:
        errors: list[tuple[str, OSError]] = []
        counts = {"performed": 0, "not_cached": 0, "errors": 0}
        calls: list[tuple[str, functools.partial[None]]] = [
            (f"entry {p} {n!r}", functools.partial(_notify.invalidate_entry, p, n, d))
            for (p, n), d in entries.items()
        ] + [
            (f"inode {i}", functools.partial(_notify.invalidate_inode, i, a))
            for i, a in inodes.items()
        ]
        for what, call in calls:
            try:
                call()
            except OSError as e:
                if e.errno == errno.ENOENT:
                    counts["not_cached"] += 1
                    if self.ignore_enoent:
                        continue
                else:
                    counts["errors"] += 1
                errors.append((what, e))
            else:
                counts["performed"] += 1
        return errors, counts

    def _count(self, **deltas: int) -> None:
        s = self._stats
        self._stats = InvalidationStats(**{
            k: getattr(s, k) + deltas.get(k, 0) for k in InvalidationStats.__dataclass_fields__
        })


def _sleeper() -> Callable[[float], Any]:
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.sleep
    import asyncio

    return asyncio.sleep
