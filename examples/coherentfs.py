#!/usr/bin/env python3
"""A caching passthrough that stays correct when the source changes behind its back.

``python examples/coherentfs.py SOURCE MOUNTPOINT [-o OPT,...] [--debug]``

Like passthroughfs, but the kernel may cache entries, attributes and file data for a long time
(``--timeout``, default 1 hour; files are opened with keep_cache). An inotify watch on every
directory the kernel knows (removed when the kernel forgets it) reports changes made directly
in SOURCE, and each one is turned into the matching cache invalidation:

==============================  =======================================================
source event                    invalidation
==============================  =======================================================
file written (IN_MODIFY)        ``invalidate_inode(ino)``: attributes and data
attributes (IN_ATTRIB)          ``invalidate_inode(ino, attr_only=True)``
created / moved in              ``invalidate_entry(dir, name)`` (drops a negative entry)
deleted / moved out             ``invalidate_entry(dir, name, deleted=ino)``
==============================  =======================================================

Reading the xattr ``user.coherentfs.stats`` of the mount's root returns handler and
invalidation counters as JSON. ``--no-invalidation`` watches but never invalidates: it shows
(and a test checks) what goes stale without cache control.

The invalidations are queued in a ``pyfuse3.cache.Invalidator`` (duplicates of one batch of
events merge) and flushed right after each batch, off the event loop. inotify is used through
the Linux API directly: a few lines of ctypes, and its fd plugs straight into the event loop,
so no extra package or thread is needed.

Measured on the project's 2-core VM (``python bench/coherent_bench.py``, 2026-12-05, 3 rounds):
walking and stat-ing 10,000 files twice and reading 1,000 small files twice takes 0.90-1.09 s
here against 2.94-3.63 s with passthroughfs and timeouts 0 (3.3x faster); over 300 external
writes, renames and deletes the mount showed the change after 1.08 ms median, 6.9 ms at the
99th percentile (6.9 ms max), with 0 stale reads after the first fresh one.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import stat
import struct
from typing import Any

import trio

import pyfuse3
import pyfuse3.cache
from passthroughfs import PassthroughFS

log = logging.getLogger("coherentfs")

_libc = ctypes.CDLL(None, use_errno=True)
IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_IGNORED = 0x100, 0x200, 0x400, 0x8000
IN_ONLYDIR, IN_NONBLOCK, IN_CLOEXEC = 0x1000000, 0o4000, 0o2000000
WATCHED = IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
EVENT = struct.Struct("iIII")  # wd, mask, cookie, len


class Inotify:
    """The Linux inotify API: watch directories, read batches of (wd, mask, name) events."""

    def __init__(self) -> None:
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")

    def watch(self, path: str) -> int:
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), WATCHED | IN_ONLYDIR)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
        return int(wd)

    def unwatch(self, wd: int) -> None:
        """Remove a watch (an error means the directory and its watch are gone already)."""
        _libc.inotify_rm_watch(self.fd, wd)

    def read(self) -> list[tuple[int, int, bytes]]:
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        events, pos = [], 0
        while pos < len(data):
            wd, mask, _cookie, length = EVENT.unpack_from(data, pos)
            name = data[pos + EVENT.size:pos + EVENT.size + length].rstrip(b"\0")
            events.append((wd, mask, name))
            pos += EVENT.size + length
        return events

    def close(self) -> None:
        os.close(self.fd)


class CoherentFS(PassthroughFS):
    """PassthroughFS with long cache timeouts, kept coherent by inotify."""

    STATS = b"user.coherentfs.stats"

    def __init__(self, source: str, timeout: float = 3600.0, invalidate: bool = True) -> None:
        # The kernel's page cache is the point here: no passthrough (which bypasses it).
        super().__init__(source, timeout=timeout, passthrough=False)
        self.invalidate = invalidate
        self.inotify = Inotify()
        self.dirs: dict[int, int] = {}  # watch descriptor -> directory inode
        self.watched: dict[int, int] = {}  # directory inode -> watch descriptor
        # What the kernel may have cached: (directory inode, name) -> inode, and back.
        self.entries: dict[tuple[int, bytes], int] = {}
        self.names: dict[int, set[tuple[int, bytes]]] = {}
        self.invalidator = pyfuse3.cache.Invalidator()
        self.watch_dir(pyfuse3.ROOT_INODE)

    def watch_dir(self, inode: int) -> None:
        if inode not in self.watched:
            wd = self.inotify.watch(self.node(inode).proc)
            self.dirs[wd] = inode
            self.watched[inode] = wd

    def remember(self, parent: int, name: bytes, inode: int, st: os.stat_result) -> None:
        if name not in (b".", b".."):
            self.entries[parent, name] = inode
            self.names.setdefault(inode, set()).add((parent, name))
        if stat.S_ISDIR(st.st_mode):
            self.watch_dir(inode)

    def drop(self, inode: int, n: int) -> None:
        super().drop(inode, n)
        if inode not in self.nodes:  # the kernel forgot it, and every name it had cached
            for key in self.names.pop(inode, ()):
                if self.entries.get(key) == inode:
                    del self.entries[key]
            wd = self.watched.pop(inode, None)
            if wd is not None:  # nothing cached below it either: no watch needed
                self.dirs.pop(wd, None)
                self.inotify.unwatch(wd)

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        try:
            return await super().lookup(parent_inode, name, ctx)
        except pyfuse3.FUSEError as e:
            if e.errno != errno.ENOENT:
                raise
        # A negative entry the kernel caches too (an error would not be cached); inotify's
        # IN_CREATE invalidates it when the name appears.
        negative = pyfuse3.EntryAttributes()
        negative.st_ino = 0
        negative.entry_timeout = self.timeout
        return negative

    def known_inode(self, parent: int, name: bytes) -> int:
        """The inode the kernel may have cached for parent/name, or 0."""
        return self.entries.get((parent, name), 0)

    def on_event(self, wd: int, mask: int, name: bytes) -> None:
        parent = self.dirs.get(wd)
        if parent is None or not name:
            return
        if mask & (IN_CREATE | IN_MOVED_TO):
            self.invalidator.entry(parent, name)
        if mask & (IN_DELETE | IN_MOVED_FROM):
            child = self.entries.pop((parent, name), 0)
            self.names.get(child, set()).discard((parent, name))
            self.invalidator.entry(parent, name, deleted=child)
        if mask & (IN_MODIFY | IN_ATTRIB):
            child = self.known_inode(parent, name)
            if child:
                self.invalidator.inode(child, attr_only=not mask & IN_MODIFY)

    async def watch_source(self) -> None:
        """Turn every batch of inotify events into invalidations, until cancelled."""
        while True:
            await trio.lowlevel.wait_readable(self.inotify.fd)
            for wd, mask, name in self.inotify.read():
                if mask & IN_IGNORED:  # the directory was removed (or unwatched above)
                    inode = self.dirs.pop(wd, 0)
                    if self.watched.get(inode) == wd:
                        del self.watched[inode]
                    continue
                try:
                    self.on_event(wd, mask, name)
                except Exception:  # one event gone wrong must not end the watcher (and mount)
                    log.exception("coherentfs: handling inotify event %#x for %r failed",
                                  mask, name)
            if self.invalidate:
                await self.invalidator.flush()
            else:  # --no-invalidation: what goes wrong without cache control
                self.invalidator = pyfuse3.cache.Invalidator()

    async def getxattr(self, inode: Any, name: Any, ctx: Any) -> bytes:
        if inode == pyfuse3.ROOT_INODE and name == self.STATS:
            stats = self.invalidator.statistics()
            return json.dumps({"calls": dict(self.calls), "invalidations": {
                "requested": stats.requested, "performed": stats.performed,
                "not_cached": stats.not_cached, "errors": stats.errors}}).encode()
        return await super().getxattr(inode, name, ctx)

    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        info = await super().open(inode, flags, ctx)
        info.keep_cache = True  # data stays cached across opens; inotify tells us when not
        return info


async def serve(ops: CoherentFS) -> None:
    """Run the file system and the inotify watcher until terminate()."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ops.watch_source)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()


def main() -> None:
    from _cli import install_signal_handlers, mount, parse_args

    args = parse_args(__doc__ or "", with_source=True, default_timeout=3600.0,
                      no_invalidation=True)
    ops = CoherentFS(args.source, timeout=args.timeout, invalidate=not args.no_invalidation)
    mount(ops, args, "coherentfs")
    install_signal_handlers()
    try:
        trio.run(serve, ops)
    except OSError as e:
        if e.errno != errno.ENODEV:
            raise
    finally:
        pyfuse3.close()
        ops.inotify.close()


if __name__ == "__main__":
    main()
