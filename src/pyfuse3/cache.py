"""Kernel cache control that cannot deadlock: awaitable forms, a coalescing invalidator, and a
budget for the inodes the kernel holds.

The plain functions (``pyfuse3.invalidate_inode`` ...) block the calling thread in the kernel,
which may wait for requests only the event loop can answer: dirty pages to write back
(writeback cache), or the very request whose handler made the call. The forms here run the
kernel call on a worker thread while the loop keeps serving, and never wait for an entry
invalidation from inside a handler (it is queued and performed once the kernel allows).
"""

from __future__ import annotations

import errno
import functools
import logging
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from . import _dispatch
from ._backends import current
from ._cache_control import CacheControl
from ._entry_worker import InvalidationHandle
from ._module_api import current_mount
from ._mount import Mount
from ._notify import as_int, check_name
from ._state import CALLS_ALLOWED

__all__ = [
    "CacheControl",
    "EntryBudget",
    "InvalidationStats",
    "Invalidator",
    "expire_entry",
    "in_handler",
    "invalidate_all",
    "invalidate_entry",
    "invalidate_inode",
    "notify_retrieve",
    "notify_store",
]


log = logging.getLogger("pyfuse3")

#: Mount states that take cache calls (the lifecycle table's); Invalidator.run returns when a
#: mount leaves them.
_TAKING_CALLS = frozenset(state.value for state in CALLS_ALLOWED)


def in_handler() -> bool:
    """Whether the caller runs inside a request handler, or in a task a handler started."""
    return _dispatch.in_handler()


def _mount_of(mount: Mount | None) -> Mount:
    return mount if mount is not None else current_mount()


async def invalidate_inode(inode: int, attr_only: bool = False, *, offset: int = 0,
                           length: int = 0) -> None:
    """``CacheControl.invalidate_inode()`` on the mount of init()."""
    await current_mount().cache.invalidate_inode(inode, attr_only, offset=offset, length=length)


async def invalidate_entry(inode_p: int, name: bytes, deleted: int = 0) -> InvalidationHandle:
    """``CacheControl.invalidate_entry()`` on the mount of init()."""
    return await current_mount().cache.invalidate_entry(inode_p, name, deleted)


async def expire_entry(inode_p: int, name: bytes) -> None:
    """``CacheControl.expire_entry()`` on the mount of init()."""
    await current_mount().cache.expire_entry(inode_p, name)


async def invalidate_all() -> None:
    """``CacheControl.invalidate_all()`` on the mount of init()."""
    await current_mount().cache.invalidate_all()


async def notify_store(inode: int, offset: int, data: Any) -> None:
    """``CacheControl.notify_store()`` on the mount of init()."""
    await current_mount().cache.notify_store(inode, offset, data)


async def notify_retrieve(inode: int, offset: int, size: int) -> bytes:
    """``CacheControl.notify_retrieve()`` on the mount of init()."""
    return await current_mount().cache.notify_retrieve(inode, offset, size)


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


#: The largest file offset the kernel takes (off_t); a range reaching past it means "to the end".
OFF_MAX = (1 << 63) - 1
_INO_MAX = (1 << 64) - 1


def _check_inode(inode: int, what: str) -> int:
    inode = as_int(inode, what)
    if not 0 < inode <= _INO_MAX:
        raise ValueError(f"{what} must be between 1 and 2**64-1, got {inode}")
    return inode


def _check_offset(value: int, what: str) -> int:
    value = as_int(value, what)
    if not 0 <= value <= OFF_MAX:
        raise ValueError(f"{what} must be between 0 and 2**63-1, got {value}")
    return value


def _range_end(offset: int, length: int) -> int | None:
    """The end of [offset, offset+length), None for "to the end of the file" (length 0, or a
    range reaching past the largest offset); both already checked."""
    if length == 0 or offset + length > OFF_MAX:
        return None
    return offset + length


def _merge_range(ranges: list[tuple[int, int | None]], start: int, end: int | None,
                 limit: int) -> list[tuple[int, int | None]]:
    """``ranges`` (sorted, disjoint, not adjacent) with [start, end) added; at most ``limit``."""
    merged: list[tuple[int, int | None]] = []
    for s, e in sorted([*ranges, (start, end)], key=lambda r: r[0]):
        if merged:
            ls, le = merged[-1]
            if le is None or s <= le:  # overlaps or touches the previous range
                merged[-1] = (ls, None if le is None or e is None else max(le, e))
                continue
        merged.append((s, e))
    if len(merged) > limit:
        ends = [e for _, e in merged]
        merged = [(merged[0][0], None if None in ends else max(e for e in ends if e is not None))]
    return merged


class Invalidator:
    """Collects invalidations, merges duplicates, and performs them in batches off the loop.

    Call ``inode()``/``entry()`` from anywhere on the event-loop thread (handlers included);
    run ``await flush()`` or ``await run(interval)`` from a background task, not a handler.
    ENOENT (the kernel had nothing cached) is not an error unless ``ignore_enoent=False``.
    ``mount``: the Mount to act on (default: the file system of init()).
    """

    #: Byte ranges kept apart per inode; beyond this many, they merge into one covering range.
    MAX_RANGES = 8

    def __init__(self, *, ignore_enoent: bool = True, mount: Mount | None = None) -> None:
        self.ignore_enoent = ignore_enoent
        self._mount = mount
        # inode -> None (attributes only) or data ranges [(start, end)], end None: to EOF
        self._inodes: dict[int, list[tuple[int, int | None]] | None] = {}
        self._entries: dict[tuple[int, bytes], int] = {}
        self._stats = InvalidationStats()
        self.last_errors: list[tuple[str, OSError]] = []

    def inode(self, inode: int, attr_only: bool = False, *, offset: int = 0,
              length: int = 0) -> None:
        """Queue invalidate_inode(): the attributes, and unless ``attr_only`` the cached data
        from ``offset`` for ``length`` bytes (0: to the end of the file).

        Requests for one inode merge: data ranges absorb an attributes-only request,
        overlapping or adjacent ranges join, and more than MAX_RANGES become one range
        covering them all. ValueError for an inode, offset or length the kernel cannot take
        (a range past the largest offset, 2**63-1, means to the end of the file).
        """
        inode = _check_inode(inode, "inode")
        offset, length = _check_offset(offset, "offset"), _check_offset(length, "length")
        end = _range_end(offset, length)
        queued = self._inodes.get(inode, ...)
        if queued is not ...:
            self._count(coalesced=1)
        self._count(requested=1)
        if attr_only:
            if queued is ...:
                self._inodes[inode] = None
            return
        ranges = [] if queued is ... or queued is None else queued
        self._inodes[inode] = _merge_range(ranges, offset, end, self.MAX_RANGES)

    def entry(self, inode_p: int, name: bytes, deleted: int = 0) -> None:
        """Queue invalidate_entry(); a delete notification absorbs a plain invalidation.

        TypeError/ValueError for an argument the kernel cannot take (checked here, so a flush
        never meets it)."""
        inode_p = _check_inode(inode_p, "inode_p")
        deleted = as_int(deleted, "deleted")
        if deleted:
            deleted = _check_inode(deleted, "deleted")
        check_name(name)
        if not 0 < len(name) <= 255 or b"/" in name or b"\0" in name:
            raise ValueError(f"name must be 1 to 255 bytes without '/' or NUL, got {name!r}")
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
        """Perform everything queued (inodes, then entries); return the errors, also in
        last_errors.

        RuntimeError in a handler, or when the mount does not take cache calls (closed, or
        serving ended; if serving ends during a flush, after what could still be done: the
        rest is dropped, since the kernel is no longer asked to keep anything coherent).
        """
        if in_handler():
            raise RuntimeError("Invalidator.flush() must not run inside a handler: the kernel "
                               "may wait for that handler's request; flush from a background "
                               "task (see Invalidator.run)")
        entries, self._entries = self._entries, {}
        inodes, self._inodes = self._inodes, {}
        if not entries and not inodes:
            return []
        cache = _mount_of(self._mount).cache
        errors, counts, refused = await current().to_thread(
            functools.partial(self._perform, cache, entries, inodes))
        self._count(**counts)  # on the loop thread: no lock needed
        self.last_errors = errors
        if refused is not None:
            raise refused
        return errors

    async def run(self, interval: float = 0.05) -> None:
        """Flush every ``interval`` seconds (start it in a nursery or task next to serving);
        returns once the mount has stopped serving, so shutting down needs no cancellation."""
        mount = _mount_of(self._mount)
        while True:
            await current().sleep(interval)
            try:
                await self.flush()
            except RuntimeError:
                if mount.state in _TAKING_CALLS:
                    raise
            if mount.state not in _TAKING_CALLS:
                return

    def _perform(self, cache: CacheControl, entries: dict[tuple[int, bytes], int],
                 inodes: dict[int, list[tuple[int, int | None]] | None],
                 ) -> tuple[list[tuple[str, OSError]], dict[str, int], RuntimeError | None]:
        errors: list[tuple[str, OSError]] = []
        counts = {"performed": 0, "not_cached": 0, "errors": 0}
        # Inodes before entries: a delete notification lets the kernel evict the inode, and
        # an inode call that then finds it being freed waits for that (an RCU grace period,
        # 16 ms measured here), holding up the rest of the flush.
        calls: list[tuple[str, functools.partial[None]]] = []
        for i, ranges in inodes.items():
            if ranges is None:
                calls.append((f"inode {i} (attributes)",
                              functools.partial(cache.invalidate_inode_blocking, i, True)))
            for start, end in ranges or ():
                calls.append((f"inode {i} [{start}, {'EOF' if end is None else end})",
                              functools.partial(cache.invalidate_inode_blocking, i, False,
                                                offset=start,
                                                length=0 if end is None else end - start)))
        calls += [(f"entry {p} {n!r}", functools.partial(cache.invalidate_entry_blocking, p, n, d))
                  for (p, n), d in entries.items()]
        for what, call in calls:
            try:
                call()
            except RuntimeError as e:  # the session stopped taking calls: drop the rest
                return errors, counts, e
            except OSError as e:
                if e.errno == errno.ENOENT:
                    counts["not_cached"] += 1
                    if self.ignore_enoent:
                        continue
                else:
                    counts["errors"] += 1
                errors.append((what, e))
            except Exception as e:
                counts["errors"] += 1
                errors.append((what, OSError(errno.EINVAL, f"{what}: {e!r}")))
            else:
                counts["performed"] += 1
        return errors, counts, None

    def _count(self, **deltas: int) -> None:
        s = self._stats
        self._stats = InvalidationStats(**{
            k: getattr(s, k) + deltas.get(k, 0) for k in InvalidationStats.__dataclass_fields__
        })


class EntryBudget:
    """Keeps the inodes the kernel holds near ``limit``: past it, asks the kernel to forget the
    entries looked up longest ago.

    The kernel keeps every inode it was sent until memory runs short, whatever the timeouts,
    so a file system that holds something per inode the kernel knows (a descriptor, a remote
    handle) runs out of it on a large tree. Report each lookup the kernel counts with
    ``looked_up()`` (from lookup, create, mknod, mkdir, symlink, link and readdirplus entries)
    and each inode forget() brings to zero lookups with ``forgotten()``. Past ``limit``,
    ``looked_up()`` queues ``invalidate_entry_async()`` for the names looked up longest ago
    (a tenth of the budget more than needed, so that this happens once per batch): the kernel
    drops those not in use and sends forget() for them; open files and working directories
    stay. Never waits, so it is safe in handlers. Only the newest name reported for each inode
    is kept: one renamed since is asked under a name the kernel no longer has, and stays held
    (and counted) until it is looked up again, the budget asking for others meanwhile.

    ``mount``: the Mount to act on (default: the one whose request is being answered,
    ``Mount.current()``). ValueError for a ``limit`` below 1.
    """

    def __init__(self, limit: int, *, mount: Mount | None = None) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, not {limit!r}")
        self.limit = limit
        self._mount = mount
        self._names: OrderedDict[int, tuple[int, bytes]] = OrderedDict()  # oldest first
        self._held: set[int] = set()
        self._waiting: list[InvalidationHandle] = []  # asked, not yet answered
        #: invalidations asked of the kernel so far
        self.asked = 0
        self._warned = False

    @property
    def held(self) -> int:
        """Inodes the kernel holds: reported by ``looked_up()``, not yet ``forgotten()``."""
        return len(self._held)

    def looked_up(self, parent: int, name: bytes, inode: int) -> None:
        """The kernel now knows ``inode`` as ``name`` in directory ``parent`` (one more lookup
        of it); asks the kernel to forget old entries if the budget is exceeded."""
        self._held.add(inode)
        if name not in (b".", b".."):
            self._names[inode] = (parent, name)
            self._names.move_to_end(inode)
        if len(self._held) > self.limit:
            self._trim()

    def forgotten(self, inode: int) -> None:
        """forget() brought ``inode`` to zero lookups: the kernel no longer holds it."""
        self._held.discard(inode)
        self._names.pop(inode, None)

    def _trim(self) -> None:
        self._waiting = [h for h in self._waiting if not h.done()]
        excess = len(self._held) - len(self._waiting) - self.limit
        if excess <= 0:  # enough asked already: the kernel has yet to answer
            return
        mount = self._mount if self._mount is not None else Mount.current()
        for _ in range(min(excess + self.limit // 10, len(self._names))):
            inode, (parent, name) = self._names.popitem(last=False)
            try:
                handle = mount.invalidate_entry_async(parent, name, ignore_enoent=True)
            except (OSError, RuntimeError) as e:  # closing, or before the kernel's INIT
                self._names[inode] = (parent, name)
                self._names.move_to_end(inode, last=False)
                if not self._warned:
                    self._warned = True
                    log.warning("EntryBudget: asking the kernel to forget entries failed (%s); "
                                "%d inodes held for a budget of %d (logged once)", e,
                                len(self._held), self.limit)
                return
            self.asked += 1
            handle.add_done_callback(_log_failure)
            self._waiting.append(handle)


def _log_failure(handle: Future[None]) -> None:
    # On the mount's invalidation thread. RuntimeError: the mount closed first (never ran).
    exc = handle.exception()
    if exc is not None and not isinstance(exc, RuntimeError):
        log.warning("EntryBudget: the kernel refused to forget an entry: %s", exc)
