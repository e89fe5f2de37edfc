#!/usr/bin/env python3
"""sharedfs: a POSIX file system kept in Redis, mounted by several machines at once.

    python examples/sharedfs/sharedfs.py MOUNTPOINT --redis URL [--prefix NAME]
        [--timeout SECONDS] [--no-invalidation] [--wait-replicas N]
        [--backend trio|asyncio|uvloop] [-o OPT,...] [--debug]

Every change is one atomic Redis script that also appends a record to a change log (a Redis
stream). Each mount follows the log and turns every change made by another mount into the
kernel cache invalidations it needs, so the kernel may cache names, attributes and data for
an hour and still show other mounts' changes within milliseconds. See README.md here.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import importlib.util
import logging
import os
import signal
import ssl
import stat
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import anyio
import coredis
import coredis.exceptions
from coredis.connection import TCPLocation
from coredis.retry import NoRetryPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lane import Lane
from store import (
    NAME_MAX,
    XATTR_NAME_MAX,
    XATTR_SIZE_MAX,
    Attributes,
    StaleNames,
    Store,
    StoreError,
)

import pyfuse3
from pyfuse3 import FUSEError

log = logging.getLogger("sharedfs")
HOLD_IDLE = 1.0  # seconds a closed file stays held (a reopen needs no round trip)
REDIS_TIMEOUT = 5.0  # seconds a store call may take before it answers EIO
FALLOC_KNOWN = 0x01 | 0x02 | 0x10  # KEEP_SIZE, PUNCH_HOLE, ZERO_RANGE
LOG_BATCH = 1000  # change-log records read at most per round trip
BELL_WAIT = 1.0  # seconds a follower waits for its bell before reading the log anyway
# unreachable, or (Sentinel) no primary known now: EIO until it is back
REDIS_DOWN = (coredis.exceptions.ConnectionError, coredis.exceptions.SentinelError,
              TimeoutError, OSError)
APPENDING = 1 << 63  # set in the file handle of an O_APPEND open; the other bits: the inode


NOT_KEPT = (b"system.", b"security.")  # extended attribute namespaces (see unsupported())


def unsupported(name: bytes) -> None:
    """EOPNOTSUPP for the extended attributes sharedfs does not keep: POSIX ACLs
    (``system.posix_acl_*``: the kernel would not enforce them, so storing them would
    pretend a protection that is not there) and security labels (``security.*``: the
    policy of one machine's security module, meaningless on the others). As on a local file
    system without ACLs or labels, ``ls -l`` then stops asking for them after the first
    file (it remembers the answer per device)."""
    if name.startswith(NOT_KEPT):
        raise FUSEError(errno.EOPNOTSUPP)


def check_name(name: bytes) -> bytes:
    if len(name) > NAME_MAX:
        raise FUSEError(errno.ENAMETOOLONG)
    return name


#: the fields of an inode's record that _entry() reads
ENTRY_FIELDS = ("ino", "mode", "nlink", "uid", "gid", "rdev", "size", "blocks", "atime", "mtime",
                "ctime")


@dataclasses.dataclass
class Known:
    """What this mount's kernel may hold of one inode."""

    #: lookups it counts (forget() takes them back)
    lookups: int = 0
    #: the (parent, name) pairs it may cache
    names: set[tuple[int, bytes]] = dataclasses.field(default_factory=set)
    #: the version of the attributes it was given last
    served: int | None = None


class _Errors:
    """What SharedFS.errors() returns: one object that every handler enters (a generator-based
    context manager cost a create ~2% of the mount's CPU)."""

    __slots__ = ("fs",)

    def __init__(self, fs: SharedFS) -> None:
        self.fs = fs

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, e: BaseException | None, tb: Any) -> Literal[False]:
        if e is None:
            if self.fs.outage or self.fs.empty:
                self.fs.store_answered()
            return False
        self.fs.store_failed(e)
        return False


class SharedFS(pyfuse3.Operations):
    """The FUSE side: each handler is one store call; the follower keeps the kernel coherent.

    Handlers that change the store are ``pyfuse3.uninterruptible``: once begun, the store's
    script may have run, so they run to their end even for a caller being killed (the only
    ones pyfuse3 cancels by default) and answer what happened. The store's own timeouts
    still bound them."""

    # A lookup waits for Redis: the kernel may send those of one directory at once (without
    # this, one at a time). readdir() hands out a listing read at opendir without suspending,
    # so no lookup runs in the middle of one.
    enable_parallel_dirops = True

    def __init__(self, store: Store, *, timeout: float = 3600.0,
                 close_to_open: bool = True) -> None:
        super().__init__()
        self.store = store
        self.timeout = timeout
        # Close-to-open: every open() compares the inode's version in the store with the one
        # of the attributes this mount last gave its kernel (``Known.served``), and a
        # difference drops what the kernel cached (FileInfo.changed), even if no notification
        # came yet.
        self.close_to_open = close_to_open
        # What the kernel may hold of each inode: lookups, names (for a full invalidation after
        # a gap in the log) and the version of the attributes served; gone at forget.
        self.known: dict[int, Known] = {}
        # Inodes whose last attributes said "no extended attributes": getxattr and listxattr
        # answer from here (ls -l asks two per file, every write one). Forgotten with the
        # inode, on any attribute change another mount logs, and on a local setxattr.
        self.bare: set[int] = set()
        # The creation time ('crtime') of each held inode as seen at open: reads and writes
        # check it, so a number a restored store gave to a new file answers ESTALE.
        self.crtimes: dict[int, bytes] = {}
        self.stale_store_said = False
        self.opens: dict[int, int] = defaultdict(int)  # inode -> open files of this mount
        # Inodes this mount holds in Redis (so no other mount frees them while open here):
        # inode -> 0.0 while open, else when it was last closed. A hold outlives the last
        # close by HOLD_IDLE seconds, so reopening a file needs no round trip.
        self.held: dict[int, float] = {}
        self.releasing: dict[int, anyio.Event] = {}
        self.listings: dict[int, list[tuple[bytes, Attributes]]] = {}
        # A directory's attributes as a create or unlink through this mount left them: the
        # kernel drops a directory's attributes at each such change and asks again (its
        # permission check needs the mode), which would be a Redis round trip per create.
        # Kept only while no other change of this mount ran since (ticket: the store's
        # changes_started), and while the follower, which drops them at any change another
        # mount logs to the directory, has not passed the change they come from: as coherent
        # as the kernel's own cache. Off without a follower or with timeout 0.
        self.dir_attrs: dict[int, tuple[int, Attributes]] = {}
        self.follower: Follower | None = None
        self.next_dir_fh = 1
        self.outage = False  # Redis unreachable
        self.empty = False  # Redis reachable, but holding no file system under our prefix
        self.other_store_said = False  # another file system under our prefix: logged once
        self.mount: pyfuse3.Mount | None = None  # for invalidations of this mount's own cache
        self._errors = _Errors(self)

    # ---- errors
    def errors(self) -> _Errors:
        """Store errors become errnos; an unreachable Redis (or one failing over, or short of
        replicas) is EIO, logged once per outage (a context manager)."""
        return self._errors

    def store_answered(self) -> None:
        """A handler's store calls succeeded: an outage (or an empty store) is over."""
        if self.outage:
            self.outage = False
            log.warning("Redis answers again")
        if self.empty:
            self.empty = False
            log.warning("the store holds the file system again")

    def store_failed(self, e: BaseException) -> None:
        """A handler raised ``e``: a store error or an unreachable Redis raises the FUSEError
        to answer (logged as errors() says); anything else returns, to propagate as it is."""
        if isinstance(e, StoreError):
            if e.passing:
                self.went_down(e.args[1])
                raise FUSEError(errno.EIO) from None
            if e.errno == errno.EIO:
                log.error("store: %s", e)
            elif e.errno == errno.ENOMEDIUM:
                if not self.empty:
                    self.empty = True
                    log.error("the store holds no file system under prefix %s: Redis "
                              "restarted empty, or the keys were deleted; answering EIO "
                              "(restore the data, or unmount)", self.store.prefix)
                raise FUSEError(errno.EIO) from None
            elif e.errno == errno.EXDEV and "another store" in str(e):
                if not self.other_store_said:
                    self.other_store_said = True
                    log.error("another file system answers under prefix %s (its store id is "
                              "not %s, the one this mount started with): its inode numbers "
                              "name other files, so every call answers EIO (unmount, and "
                              "mount again to use it)", self.store.prefix, self.store.store_id)
                raise FUSEError(errno.EIO) from None
            elif e.errno == errno.ESTALE and not self.stale_store_said:
                self.stale_store_said = True
                log.error("the store went back (restored from a backup, or replaced): a file "
                          "open here now has another file's inode number; its reads and "
                          "writes answer ESTALE")
            raise FUSEError(e.errno) from None
        if isinstance(e, REDIS_DOWN):
            self.went_down(f"Redis unreachable ({e})")
            raise FUSEError(errno.EIO) from None

    def went_down(self, why: str) -> None:
        if not self.outage:
            self.outage = True
            log.warning("%s: answering EIO until it is back", why)

    def _known(self, ino: int) -> Known:
        k = self.known.get(ino)
        if k is None:
            k = self.known[ino] = Known()
        return k

    def unname(self, ino: int, parent: int, name: bytes) -> None:
        """``name`` in ``parent`` no longer names ``ino`` (and the kernel is told, or knows)."""
        k = self.known.get(ino)
        if k is not None:
            k.names.discard((parent, name))

    def renamed(self, ino: int, parent: int, name: bytes, new_parent: int,
                new_name: bytes) -> None:
        """This kernel moved its entry for ``ino`` (a rename through this mount)."""
        k = self.known.get(ino)
        if k is not None and (parent, name) in k.names:
            k.names.discard((parent, name))
            k.names.add((new_parent, new_name))

    def learned(self, alone: bool, ticket: int, after: Attributes) -> None:
        """A change made through this mount returned its directory's attributes ``after``:
        keep them for getattr() if nothing can have changed the directory since. ``alone``:
        no other change of this mount was in flight when it started; ``ticket``: the store's
        changes_started once it had."""
        if self.follower is None or self.timeout <= 0 or not alone:
            return
        if self.store.changes_started == ticket and self.follower.seq <= after.seq:
            self.dir_attrs[int(after["ino"])] = (ticket, after)

    def changed_elsewhere(self, *inos: int) -> None:
        """Another mount changed these inodes (the follower saw its record); none: anything
        may have changed (a gap in the log)."""
        if not inos:
            self.dir_attrs.clear()
        for ino in inos:
            self.dir_attrs.pop(ino, None)

    def followed_by(self, follower: Follower) -> None:
        """``follower`` runs for this mount: what it learns from its own changes may be kept."""
        self.follower = follower

    def track(self, ino: int, parent: int, name: bytes) -> None:
        """Remember a lookup the kernel counts (and the name it may cache)."""
        k = self._known(ino)
        k.lookups += 1
        if name not in (b".", b".."):
            k.names.add((parent, name))

    def entry(self, a: Attributes, parent: int | None = None,
              name: bytes | None = None) -> pyfuse3.EntryAttributes:
        """Attributes for the kernel; with a name: a lookup the kernel will count.

        With a name (a lookup, a listing), a corrupt record still gives an entry, so its
        directory stays listable and the file removable: the fields that parse, zero for the
        others, nothing cached (timeouts 0), and one logged line. getattr() answers EIO."""
        try:
            e = self._entry(a)
        except StoreError as err:
            if name is None or "ino" not in a or not a["ino"].isdigit():
                raise
            log.error("store: %s (listed with placeholder attributes)", err.args[1])
            e = self._placeholder(a)
        if name is not None and parent is not None:
            self.track(e.st_ino, parent, name)
        return e

    def _placeholder(self, a: Attributes) -> pyfuse3.EntryAttributes:
        e = pyfuse3.EntryAttributes()
        e.st_ino = int(a["ino"])
        for field in ("mode", "nlink", "uid", "gid", "size", "mtime", "ctime"):
            value = a.get(field, b"")
            if value.isdigit():
                setattr(e, f"st_{field}_ns" if field.endswith("time") else f"st_{field}",
                        int(value))
        if not stat.S_IFMT(e.st_mode):
            e.st_mode = stat.S_IFREG  # the type is unknown: no permissions, a file
        e.st_nlink = e.st_nlink or 1
        e.attr_timeout = e.entry_timeout = 0
        if e.st_ino in self.known:
            self.known[e.st_ino].served = None
        self.bare.discard(e.st_ino)
        return e

    def _entry(self, a: Attributes) -> pyfuse3.EntryAttributes:
        e = pyfuse3.EntryAttributes()
        try:
            e.st_ino = ino = int(a["ino"])
            e.st_mode = int(a["mode"])
            e.st_nlink = int(a["nlink"])
            e.st_uid = int(a["uid"])
            e.st_gid = int(a["gid"])
            e.st_rdev = int(a["rdev"])
            e.st_size = int(a["size"])
            e.st_blocks = int(a["blocks"])
            e.st_atime_ns = int(a["atime"])
            e.st_mtime_ns = int(a["mtime"])
            e.st_ctime_ns = int(a["ctime"])
        except (KeyError, ValueError):
            for field in ENTRY_FIELDS:
                a.int(field)  # raises StoreError naming the field
            raise
        e.st_blksize = 4096
        e.attr_timeout = e.entry_timeout = self.timeout
        crtime = a.get("crtime", b"0")
        e.generation = int(crtime) if crtime.isdigit() else 0  # a reused number: a new file
        self._known(ino).served = a.version()
        if a.get("x") == b"0":
            self.bare.add(ino)
        else:
            self.bare.discard(ino)
        return e

    # ---- names
    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        with self.errors():
            a = await self.store.lookup(parent_inode, check_name(name))
            if a is not None:
                return self.entry(a, parent_inode, name)
        raise FUSEError(errno.ENOENT)

    async def forget(self, inode_list: Any) -> None:
        for ino, n in inode_list:
            k = self.known.get(ino)
            if k is not None:
                k.lookups -= n
                if k.lookups > 0:
                    continue
                del self.known[ino]
            self.bare.discard(ino)
            self.dir_attrs.pop(ino, None)

    async def getattr(self, inode: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        with self.errors():
            known = self.dir_attrs.get(inode)
            if known is not None and known[0] == self.store.changes_started:
                return self.entry(known[1])
            return self.entry(await self.store.getattr(inode))

    @pyfuse3.uninterruptible
    async def setattr(self, inode: Any, attr: Any, fields: Any, fh: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        change: dict[str, int] = {}
        if fields.update_size:
            change["size"] = attr.st_size
        if fields.update_mode:
            change["mode"] = stat.S_IMODE(attr.st_mode)
        if fields.update_uid:
            change["uid"] = attr.st_uid
        if fields.update_gid:
            change["gid"] = attr.st_gid
        if fields.update_atime:
            change["atime"] = attr.st_atime_ns
        if fields.update_mtime:
            change["mtime"] = attr.st_mtime_ns
        with self.errors():
            return self.entry(await self.store.setattr(inode, **change))

    async def readlink(self, inode: Any, ctx: Any) -> bytes:
        with self.errors():
            return await self.store.readlink(inode)

    async def _make(self, parent: int, name: bytes, mode: int, ctx: Any, rdev: int = 0,
                    target: bytes = b"", hold: bool = False) -> pyfuse3.EntryAttributes:
        alone, ticket = not self.store.changing, self.store.changes_started + 1
        with self.errors():
            a, after = await self.store.mknod(parent, check_name(name), mode, rdev, ctx.uid,
                                              ctx.gid, target, hold)
            self.learned(alone, ticket, after)
            return self.entry(a, parent, name)

    @pyfuse3.uninterruptible
    async def mknod(self, parent_inode: Any, name: Any, mode: Any, rdev: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        return await self._make(parent_inode, name, mode, ctx, rdev)

    @pyfuse3.uninterruptible
    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        return await self._make(parent_inode, name, mode, ctx)

    @pyfuse3.uninterruptible
    async def symlink(self, parent_inode: Any, name: Any, target: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        if len(target) > 4095:
            raise FUSEError(errno.ENAMETOOLONG)
        return await self._make(parent_inode, name, stat.S_IFLNK | 0o777, ctx, target=target)

    @pyfuse3.uninterruptible
    async def link(self, inode: Any, new_parent_inode: Any, new_name: Any,
                   ctx: Any) -> pyfuse3.EntryAttributes:
        with self.errors():
            a = await self.store.link(inode, new_parent_inode, check_name(new_name))
            return self.entry(a, new_parent_inode, new_name)

    @pyfuse3.uninterruptible
    async def unlink(self, parent_inode: Any, name: Any, ctx: Any) -> None:
        alone, ticket = not self.store.changing, self.store.changes_started + 1
        with self.errors():
            ino, after = await self.store.unlink(parent_inode, check_name(name))
        self.learned(alone, ticket, after)
        self.unname(ino, parent_inode, name)
        await self.release_idle(0.0, only=ino)  # an idle hold must not keep it alive

    @pyfuse3.uninterruptible
    async def rmdir(self, parent_inode: Any, name: Any, ctx: Any) -> None:
        alone, ticket = not self.store.changing, self.store.changes_started + 1
        with self.errors():
            ino, after = await self.store.unlink(parent_inode, check_name(name),
                                                 directory=True)
        self.learned(alone, ticket, after)
        self.dir_attrs.pop(ino, None)

    @pyfuse3.uninterruptible
    async def rename(self, parent_inode_old: Any, name_old: Any, parent_inode_new: Any,
                     name_new: Any, flags: Any, ctx: Any) -> None:
        if flags & ~(pyfuse3.RENAME_NOREPLACE | pyfuse3.RENAME_EXCHANGE):
            raise FUSEError(errno.EINVAL)
        with self.errors():
            moved, replaced = await self.store.rename(
                parent_inode_old, check_name(name_old), parent_inode_new, check_name(name_new),
                flags)
        if moved == replaced:  # two names of one inode: nothing moved
            return
        self.renamed(moved, parent_inode_old, name_old, parent_inode_new, name_new)
        if flags & pyfuse3.RENAME_EXCHANGE:
            self.renamed(replaced, parent_inode_new, name_new, parent_inode_old, name_old)
        elif replaced:
            self.unname(replaced, parent_inode_new, name_new)
            await self.release_idle(0.0, only=replaced)

    # ---- files
    def _info(self, ino: int, flags: int, changed: bool = False) -> pyfuse3.FileInfo:
        # keep_cache: pages stay across opens. The follower drops what another mount changed;
        # without it, the kernel drops a file's pages when it sees a new size or mtime.
        if flags & os.O_APPEND:
            # The kernel puts an append at the size it has cached, which another mount may
            # have grown since: the store appends at its own end instead (write()), and this
            # handle bypasses the page cache (direct_io), which would hold it at the wrong place.
            return pyfuse3.FileInfo(fh=ino | APPENDING, keep_cache=True, direct_io=True,
                                    changed=changed)
        return pyfuse3.FileInfo(fh=ino, keep_cache=True, changed=changed)

    @pyfuse3.uninterruptible
    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        if inode in self.releasing:  # a release in flight: hold again only after it
            await self.releasing[inode].wait()
        # Close-to-open for names too: the kernel may have reached the inode through a name it
        # cached that another mount has since removed, renamed or replaced (its notification
        # not here yet). The store checks every name the kernel may hold for the inode: if one
        # names something else now, ESTALE makes the kernel walk the path again, asking us for
        # every name on it, and open what the name is now (the same inode, if it came by a
        # name still right).
        k = self.known.get(inode)
        names = list(k.names) if k is not None else []
        a = None
        with self.errors():
            try:
                if inode not in self.held or flags & os.O_TRUNC or self.close_to_open:
                    # held: the one round trip close-to-open costs
                    hold = inode not in self.held
                    a = await self.store.open(inode, truncate=bool(flags & os.O_TRUNC),
                                              hold=hold, names=names)
            except StaleNames as e:
                if k is not None:
                    k.names.difference_update(e.names)  # the kernel drops them on its new walk
                raise FUSEError(errno.ESTALE) from None
            except StoreError as e:
                if names and e.errno == errno.ENOENT:  # gone altogether
                    if k is not None:
                        k.names.clear()
                    raise FUSEError(errno.ESTALE) from None
                raise
        self.held[inode] = 0.0
        self.opens[inode] += 1
        if a is not None:
            self.crtimes[inode] = a.get("crtime", b"")
        changed = False
        if self.close_to_open and a is not None:
            version, k = a.version(), self._known(inode)
            changed = k.served is not None and k.served != version
            k.served = version
        return self._info(inode, flags, changed)

    @pyfuse3.uninterruptible
    async def create(self, parent_inode: Any, name: Any, mode: Any, flags: Any,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        try:
            e = await self._make(parent_inode, name, mode, ctx, hold=True)
        except FUSEError as err:
            if err.errno != errno.EEXIST or flags & os.O_EXCL:
                raise
            # Another mount created the name since this kernel looked: open that file, as
            # open(O_CREAT) without O_EXCL does.
            with self.errors():
                found = await self.store.lookup(parent_inode, name)
                if found is None:  # and removed again since
                    raise FUSEError(errno.ENOENT) from None
                if stat.S_ISDIR(found.int("mode")):
                    raise FUSEError(errno.EISDIR) from None
                ino = found.int("ino")
            info = await self.open(ino, flags, ctx)
            with self.errors():
                return info, self.entry(await self.store.getattr(ino), parent_inode, name)
        self.held[e.st_ino] = 0.0
        self.opens[e.st_ino] += 1
        self.crtimes[e.st_ino] = b"%d" % e.generation if e.generation else b""
        return self._info(e.st_ino, flags), e

    async def release(self, fh: Any) -> None:
        ino = fh & ~APPENDING
        self.opens[ino] -= 1
        if self.opens[ino] <= 0:
            del self.opens[ino]
            self.held[ino] = time.monotonic()

    async def release_idle(self, idle: float, only: int | None = None) -> None:
        """Give up the holds of files closed more than ``idle`` seconds ago (or of ``only``),
        in one round trip."""
        now = time.monotonic()
        batch: dict[int, float] = {}
        for ino in list(self.held) if only is None else [only]:
            since = self.held.get(ino)
            if since and now - since >= idle and ino not in self.opens \
                    and ino not in self.releasing:
                batch[ino] = since
        if not batch:
            return
        done = anyio.Event()
        for ino in batch:  # another release (an unlink, housekeeping) leaves these alone
            del self.held[ino]
            self.crtimes.pop(ino, None)
            self.releasing[ino] = done
        try:
            await self.store.unhold(*batch)
        except (*REDIS_DOWN, StoreError) as e:
            log.debug("release of %d inode(s): %s (retried later)", len(batch), e)
            for ino, since in batch.items():
                self.held.setdefault(ino, since)
        finally:
            for ino in batch:
                del self.releasing[ino]
            done.set()

    async def read(self, fh: Any, off: int, size: int) -> bytes:
        with self.errors():
            ino = fh & ~APPENDING
            return await self.store.read(ino, off, size, self.crtimes.get(ino, b""))

    @pyfuse3.uninterruptible
    async def write(self, fh: Any, off: int, buf: bytes) -> int:
        ino = fh & ~APPENDING
        with self.errors():
            crtime = self.crtimes.get(ino, b"")
            if not fh & APPENDING:
                await self.store.write(ino, off, bytes(buf), crtime)
                return len(buf)
            at = await self.store.write(ino, -1, bytes(buf), crtime) - len(buf)
        if at != off and self.mount is not None:
            # This kernel's idea of the end was stale: what it holds there is too.
            with suppress(OSError):  # ENOENT: nothing cached
                await self.mount.cache.invalidate_inode(ino, offset=at, length=len(buf))
        return len(buf)

    # No flush(), fsync() or fsyncdir(): every change is in Redis (and, with --wait-replicas,
    # on its replicas) before its call returns, so there is nothing to do at close() or
    # fsync(), as durable as Redis is configured to be (README: durability). The defaults
    # answer ENOSYS, which the kernel takes as success and remembers: no request per close
    # (creates 1,458-1,574/s -> 1,616-1,740/s, 3 interleaved rounds).

    @pyfuse3.uninterruptible
    async def fallocate(self, fh: Any, mode: int, offset: int, length: int) -> None:
        if mode & ~FALLOC_KNOWN:
            raise FUSEError(errno.EOPNOTSUPP)
        with self.errors():
            await self.store.fallocate(fh & ~APPENDING, mode, offset, length)

    async def lseek(self, fh: Any, offset: int, whence: int) -> int:
        if whence not in (os.SEEK_DATA, os.SEEK_HOLE):
            raise FUSEError(errno.EINVAL)
        with self.errors():
            return await self.store.seek(fh & ~APPENDING, offset, whence)

    @pyfuse3.uninterruptible
    async def copy_file_range(self, fh_in: Any, off_in: int, fh_out: Any, off_out: int,
                              length: int, flags: int) -> int:
        with self.errors():
            return await self.store.copy(fh_in & ~APPENDING, off_in, fh_out & ~APPENDING,
                                         off_out, length)

    # ---- directories
    async def opendir(self, inode: Any, ctx: Any) -> int:
        with self.errors():
            listing = await self.store.listdir(inode)  # read at opendir, page by page
        fh, self.next_dir_fh = self.next_dir_fh, self.next_dir_fh + 1
        self.listings[fh] = listing
        return fh

    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        with self.errors():
            self._list(self.listings[fh], start_id, token)

    def _list(self, listing: list[Any], start_id: int, token: Any) -> None:
        parent = listing[0][1].int("ino")
        for i in range(start_id, len(listing)):
            name, a = listing[i]
            e = self.entry(a, None, name)  # (a corrupt record: placeholder attributes)
            if not pyfuse3.readdir_reply(token, name, e, i + 1):
                break
            if token.plus and name not in (b".", b".."):  # READDIRPLUS: lookups
                self.track(e.st_ino, parent, name)

    async def releasedir(self, fh: Any) -> None:
        self.listings.pop(fh, None)

    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        with self.errors():
            count = await self.store.count()
            used, limit, _ = await self.store.memory()
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = 4096
        s.f_blocks = limit // 4096  # Redis's memory is the file system's space
        s.f_bfree = s.f_bavail = max(0, limit - used) // 4096
        s.f_files = 1_000_000 + count
        s.f_ffree = s.f_favail = 1_000_000
        s.f_namemax = NAME_MAX
        return s

    # ---- extended attributes
    @pyfuse3.uninterruptible
    async def setxattr(self, inode: Any, name: Any, value: Any, ctx: Any) -> None:
        unsupported(name)
        if len(name) > XATTR_NAME_MAX:
            raise FUSEError(errno.ERANGE)
        if len(value) > XATTR_SIZE_MAX:
            raise FUSEError(errno.E2BIG)
        self.bare.discard(inode)
        with self.errors():
            await self.store.setxattr(inode, name, bytes(value))

    async def getxattr(self, inode: Any, name: Any, ctx: Any) -> bytes:
        unsupported(name)
        if inode in self.bare:
            raise FUSEError(errno.ENODATA)
        with self.errors():
            return await self.store.getxattr(inode, name)

    async def listxattr(self, inode: Any, ctx: Any) -> list[bytes]:
        if inode in self.bare:
            return []
        with self.errors():  # (names stored before they were refused are not shown)
            return [n for n in await self.store.listxattr(inode) if not n.startswith(NOT_KEPT)]

    @pyfuse3.uninterruptible
    async def removexattr(self, inode: Any, name: Any, ctx: Any) -> None:
        unsupported(name)
        with self.errors():
            await self.store.removexattr(inode, name)


class Follower:
    """Follows the change log and invalidates what other mounts changed in this kernel."""

    def __init__(self, fs: SharedFS, blocking: coredis.Redis[bytes],
                 mount: pyfuse3.Mount | None = None,
                 position: tuple[bytes, int] = (b"0-0", 0)) -> None:
        self.fs = fs
        self.store = fs.store
        # a connection of its own (XREAD BLOCK occupies it), without coredis's cost per call
        self.log = Lane(blocking)
        self.mount = mount
        self.inv = pyfuse3.cache.Invalidator(mount=mount)
        self.position, self.seq = position  # the last record seen
        self.applied = 0
        self.full_invalidations = 0
        self.epoch = True  # invalidate_all() works here, as far as we know
        self.epochs = 0  # full invalidations done with it
        self.delay = 0.05

    def apply(self, rec: dict[bytes, bytes]) -> None:
        inv, f = self.inv, rec.get
        kind = f(b"k")
        ino = int(f(b"i") or 0)
        self.fs.changed_elsewhere(*(int(v) for k in (b"p", b"q", b"i", b"d") if (v := f(k))))
        if kind == b"w":  # data range: attributes go too
            inv.inode(ino, offset=int(f(b"o") or 0), length=int(f(b"l") or 0) or 1)
        elif kind == b"t":  # size changed: drop from the shorter size to the end
            inv.inode(ino, offset=int(f(b"o") or 0))
        elif kind == b"a":  # attributes, extended ones too
            self.fs.bare.discard(ino)
            inv.inode(ino, attr_only=True)
        elif kind == b"c":
            inv.entry(int(f(b"p") or 0), f(b"n") or b"")
            inv.inode(int(f(b"p") or 0), attr_only=True)
            inv.inode(ino, attr_only=True)
        elif kind == b"u":
            self.fs.unname(ino, int(f(b"p") or 0), f(b"n") or b"")
            inv.entry(int(f(b"p") or 0), f(b"n") or b"", deleted=ino)
            inv.inode(int(f(b"p") or 0), attr_only=True)
            inv.inode(ino, attr_only=True)
        elif kind == b"r":
            replaced = int(f(b"d") or 0)
            exchange = f(b"x") == b"1"
            self.fs.unname(ino, int(f(b"p") or 0), f(b"n") or b"")
            self.fs.unname(replaced, int(f(b"q") or 0), f(b"o") or b"")
            inv.entry(int(f(b"p") or 0), f(b"n") or b"")
            inv.entry(int(f(b"q") or 0), f(b"o") or b"",
                      deleted=0 if exchange or not replaced else replaced)
            for i in (int(f(b"p") or 0), int(f(b"q") or 0), ino, replaced):
                if i:
                    inv.inode(i, attr_only=True)
        else:
            log.warning("unknown change record %r: invalidating everything", rec)
            self.invalidate_everything()

    def invalidate_everything(self) -> None:
        """After a gap in the log: everything the kernel may hold from this mount. Every name
        at once by the kernel's epoch (invalidate_all()) where libfuse and the kernel have it,
        else name by name; the attributes and data of every inode it knows, in both cases."""
        self.full_invalidations += 1
        self.fs.bare.clear()
        self.fs.changed_elsewhere()
        known = list(self.fs.known.items())
        if not self._all_names_at_once():
            for _, k in known:
                for parent, name in k.names:
                    self.inv.entry(parent, name)
        for ino, k in known:
            if k.lookups:
                self.inv.inode(ino)
        self.inv.inode(pyfuse3.ROOT_INODE)

    def _all_names_at_once(self) -> bool:
        if self.mount is None or not self.epoch:
            return False
        try:
            self.mount.invalidate_all()  # returns at once: fine on the event loop
        except OSError as e:
            if e.errno != errno.ENOSYS:
                raise
            log.info("%s: invalidating name by name from now on", e)
            self.epoch = False
            return False
        except RuntimeError:  # refused: the mount is not serving (ending, or not yet)
            if self.mount.state == "serving":
                raise
            return False  # queued name by name: flushed if it serves, else nothing is cached
        self.epochs += 1
        return True

    async def run(self) -> None:
        """Follow the log for ever, reconnecting after Redis was unreachable."""
        while True:
            try:
                await self.follow()
            except REDIS_DOWN as e:
                log.warning("change log unreachable (%s); retrying in %.2f s", e, self.delay)
                await anyio.sleep(self.delay)
                self.delay = min(self.delay * 2, 1.0)

    async def follow(self) -> None:
        # (Re)connected: a store that went back (restarted empty, restored) shows as a lower
        # sequence number; the records since our position, or a gap, show in the log.
        seq = await self.store.sequence()
        self.delay = 0.05
        if seq < self.seq:
            log.warning("the change log restarted (%d < %d): invalidating everything", seq,
                        self.seq)
            self.position, self.seq = b"0-0", 0
            self.invalidate_everything()
            await self.flush()
        # Another mount's change rings this mount's bell (store.lua, log_as); its own changes
        # do not, so they cost its follower nothing: their records are read with the next
        # other one's. Each round trip waits for the bell and reads the log in one write (the
        # XREAD runs once the BLPOP returned). Registering, then reading, misses nothing: a
        # change before the SADD is in the log, one after it rings. Registering again after
        # every idle BELL_WAIT mends a registration lost (the sweep forgot this mount after a
        # long pause, Redis restarted).
        followers, bell = self.store.followers_key, self.store.bell_key
        catch_up = True
        while True:
            xread = ("XREAD", "COUNT", LOG_BATCH, "STREAMS", self.store.log_key, self.position)
            if catch_up:
                rang, got = await self._replies(("SADD", followers, self.store.mount_id), xread)
            else:
                rang, got = await self._replies(("BLPOP", bell, BELL_WAIT), xread)
            entries = got[0][1] if got else []
            catch_up = rang is None or len(entries) >= LOG_BATCH
            if not entries:
                continue
            # The bell may ring in the wake-up that brings the reply to one of this mount's own
            # changes: let that handler answer first (the kernel, and the process that made
            # the change, wait for it; and what it learns from the reply is kept only while
            # the follower has not passed the change's record). Records are applied one
            # scheduler pass later.
            await anyio.sleep(0)
            self.handle(entries)
            if self.inv.pending():  # (none: only this mount's own records)
                await self.flush()

    async def _replies(self, *commands: tuple[Any, ...]) -> list[Any]:
        replies = await self.log.pipeline(*commands)
        for k, (command, reply) in enumerate(zip(commands, replies, strict=True)):
            if isinstance(reply, coredis.exceptions.ReadOnlyError):
                # a demoted primary (the lane closed that connection): find the new one
                raise coredis.exceptions.ConnectionError("Redis answered as a replica (a "
                                                         "failover is under way)")
            if command[0] != "XREAD" and isinstance(reply, coredis.exceptions.ResponseError) \
                    and str(reply).startswith("WRONGTYPE"):
                # The followers' set or this bell holds another type (written by hand?):
                # they hold nothing but who to wake, so it is replaced (no bell meanwhile:
                # the log is read every BELL_WAIT).
                log.warning("%s held another type than a %s: deleted", command[1],
                            "set" if command[0] == "SADD" else "list")
                await self.log.command("DEL", command[1])
                replies[k] = None
            elif isinstance(reply, Exception):
                raise reply
        return replies

    def handle(self, entries: Any) -> None:
        """Queue the invalidations for a batch of log entries, in order, as XREAD and
        XRANGE answer them: [identifier, [field, value, ...]] each."""
        mine = self.store.mount_id.encode()
        for identifier, flat in entries:
            rec = dict(zip(flat[::2], flat[1::2], strict=False))  # Redis sends pairs
            try:
                seq = int(rec.get(b"s") or 0)
            except ValueError:
                seq = self.seq + 1  # a corrupt record: apply() below invalidates all
            if seq != self.seq + 1 and self.seq:
                log.warning("change log gap (%d after %d): invalidating everything", seq,
                            self.seq)
                self.invalidate_everything()
            self.seq, self.position = seq, identifier
            if rec.get(b"m") != mine:
                try:
                    self.apply(rec)
                except (ValueError, TypeError):
                    log.warning("corrupt change record %r: invalidating everything", rec)
                    self.invalidate_everything()
                self.applied += 1

    async def flush(self) -> None:
        try:
            errors = await self.inv.flush()
        except RuntimeError:
            if self.mount is not None and self.mount.state != "serving":
                return  # serving ended: nothing left to keep coherent
            raise
        for what, err in errors:
            log.debug("invalidation of %s: %s", what, err)


def client_options(url: str) -> dict[str, Any]:
    """Connection options for ``url`` from the environment: the servers' password
    (SHAREDFS_REDIS_PASSWORD); TLS trusting SHAREDFS_REDIS_CA, showing the client certificate
    SHAREDFS_REDIS_CERT with its key SHAREDFS_REDIS_KEY (or in the same file) to servers
    that want one. StartupError if the certificate or key cannot be loaded."""
    options: dict[str, Any] = {"retry_policy": NoRetryPolicy(), "connect_timeout": 2.0}
    if os.environ.get("SHAREDFS_REDIS_PASSWORD"):
        options["password"] = os.environ["SHAREDFS_REDIS_PASSWORD"]
    ca = os.environ.get("SHAREDFS_REDIS_CA") or None
    cert = os.environ.get("SHAREDFS_REDIS_CERT") or None
    key = os.environ.get("SHAREDFS_REDIS_KEY") or None
    if url.startswith("rediss") and (url.startswith("rediss+") or ca or cert):
        context = ssl.create_default_context(cafile=ca)
        if cert:
            try:
                context.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError) as e:
                raise StartupError(
                    f"cannot load the client certificate SHAREDFS_REDIS_CERT={cert} with "
                    f"its key SHAREDFS_REDIS_KEY={key or '(in the same file)'}: "
                    f"{e.strerror or e}") from None
        options["ssl_context"] = context
    return options


@asynccontextmanager
async def connect(url: str, **kw: Any) -> AsyncIterator[coredis.Redis[bytes]]:
    """A client for ``url``: redis://, rediss:// (TLS), unix:// or
    redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE (the primary the sentinels
    name for SERVICE, found again after a failover; rediss+sentinel:// for TLS to the
    sentinels and the servers). The password may come from
    SHAREDFS_REDIS_PASSWORD, the sentinels' own (their requirepass) from
    SHAREDFS_SENTINEL_PASSWORD, a CA bundle for TLS from SHAREDFS_REDIS_CA."""
    options = {**client_options(url), **kw}
    if not url.startswith(SENTINEL_SCHEMES):
        async with coredis.Redis.from_url(url, decode_responses=False, **options) as client:
            yield client
        return
    sentinels, service, password = parse_sentinel_url(url)
    if password:
        options.setdefault("password", password)
    retry_policy = options.pop("retry_policy")
    async with coredis.Sentinel(sentinels, sentinel_kwargs=sentinel_options(options),
                                retry_policy=retry_policy, decode_responses=False,
                                **options) as sentinel:
        async with sentinel.primary_for(service) as client:
            yield client


SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")


def with_cause(e: BaseException) -> str:
    """``e``'s message and, if it hides one, that of the error underneath (e.g. the TLS
    certificate that failed behind 'Unable to establish a connection')."""
    inner: BaseException | None = e
    for _ in range(5):
        if inner is None or (inner.__cause__ is None and inner.__context__ is None):
            break
        inner = inner.__cause__ or inner.__context__
    if inner is None or inner is e or str(inner) in str(e):
        return str(e)
    return f"{e}: {inner}"


def sentinel_options(options: dict[str, Any]) -> dict[str, Any]:
    """How to talk to the sentinels themselves, given the servers' connection ``options``:
    short waits (an unreachable one is skipped), their own password, the same TLS."""
    out: dict[str, Any] = {"connect_timeout": options.get("connect_timeout", 2.0),
                           "stream_timeout": 2.0}
    if os.environ.get("SHAREDFS_SENTINEL_PASSWORD"):
        out["password"] = os.environ["SHAREDFS_SENTINEL_PASSWORD"]
    if "ssl_context" in options:
        out["ssl_context"] = options["ssl_context"]
    return out


async def sentinels_say(url: str) -> str:
    """Why no sentinel of ``url`` named a primary, as far as asking each one tells (the
    Sentinel client keeps their errors to itself): ' (HOST:PORT: ERROR; ...)', or ''."""
    options = sentinel_options(client_options(url))
    said = []
    for where in parse_sentinel_url(url)[0]:
        try:
            async with coredis.Redis(where.host, where.port, **options) as sentinel:
                await sentinel.ping()
        except (coredis.exceptions.RedisError, *REDIS_DOWN) as e:
            said.append(f"{where.host}:{where.port}: {with_cause(e)}")
    return f" ({'; '.join(said)})" if said else ""


def parse_sentinel_url(url: str) -> tuple[list[TCPLocation], str, str | None]:
    """The sentinels, the service name and the password of a redis+sentinel:// (or
    rediss+sentinel://) URL; ValueError saying what is wrong."""
    rest = url.partition("://")[2]
    hosts, _, service = rest.partition("/")
    password = None
    if "@" in hosts:
        auth, hosts = hosts.rsplit("@", 1)
        password = unquote(auth.partition(":")[2] if ":" in auth else auth) or None
    if not service or "/" in service:
        raise ValueError(f"{url}: name the service after the sentinels "
                         "(redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE)")
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ValueError(f"{url}: {host!r} is not HOST:PORT")
        sentinels.append(TCPLocation(name.strip("[]"), int(port)))
    return sentinels, unquote(service), password


async def serve(args: argparse.Namespace) -> None:
    # client names: `CLIENT LIST` tells which process a connection belongs to
    async with connect(args.redis, stream_timeout=REDIS_TIMEOUT,
                       client_name=f"sharedfs-{os.getpid()}") as client, \
            connect(args.redis, stream_timeout=None,
                    client_name=f"sharedfs-{os.getpid()}-follower") as blocking:
        # changes not applied within REDIS_TIMEOUT - 1 s are refused by the store itself, so
        # a call that timed out (EIO) is never applied later
        store = Store(client, args.prefix, log_length=args.log_length,
                      give_up=REDIS_TIMEOUT - 1.0, replicas=args.wait_replicas,
                      replica_timeout=args.wait_timeout)
        try:
            policy = (await store.memory())[2]
            if policy != "noeviction":
                raise StartupError(
                    f"Redis at {args.redis} evicts keys when it is full "
                    f"(maxmemory-policy {policy}), which would delete parts of files: "
                    "set 'maxmemory-policy noeviction' (a full Redis then gives ENOSPC)")
            await store.init(os.getuid(), os.getgid())
            replicas = await store.replicas_connected()
            if replicas < args.wait_replicas:
                log.warning("Redis at %s has %d replica(s) connected, fewer than "
                            "--wait-replicas %d: changes answer EIO until more connect",
                            args.redis, replicas, args.wait_replicas)
            await store.heartbeat(args.heartbeat)
            await store.sweep()
        except REDIS_DOWN as e:
            why = with_cause(e)
            if isinstance(e, coredis.exceptions.SentinelError):
                why += await sentinels_say(args.redis)
            raise StartupError(cannot_reach(args.redis, why)) from None
        fs = SharedFS(store, timeout=args.timeout, close_to_open=not args.no_close_to_open)
        position = await store.log_position()  # before mounting: no change goes unseen
        options = set(pyfuse3.default_options) | {"fsname=sharedfs"}
        options.update(o for o in args.options.split(",") if o)
        options.discard("")
        if args.debug:
            options.add("debug")
        try:
            mount = pyfuse3.Mount(fs, args.mountpoint, options)
        except (RuntimeError, ValueError) as e:
            raise StartupError(str(e)) from None
        fs.mount = mount
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: mount.terminate())
        follower = Follower(fs, blocking, mount, position)
        try:
            with mount:
                async with anyio.create_task_group() as tg:
                    if not args.no_invalidation:
                        fs.followed_by(follower)
                        tg.start_soon(follower.run)
                    tg.start_soon(housekeeping, fs, args.heartbeat)
                    tg.start_soon(store.lane.watchdog)  # REDIS_TIMEOUT for store calls
                    await mount.serve()
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                try:  # the kernel released everything at unmount
                    await store.unhold(*fs.held)
                    await store.unfollow()
                except (*REDIS_DOWN, StoreError) as e:  # the sweep frees them later
                    log.warning("release of %d inode(s) at exit: %s", len(fs.held), e)


async def housekeeping(fs: SharedFS, ttl: float) -> None:
    """Heartbeat (so other mounts know this one's open files are real), the orphan sweep
    (frees unlinked inodes that only mounts without a heartbeat held open), idle holds."""
    store = fs.store
    last_beat = 0.0
    while True:
        try:
            await fs.release_idle(HOLD_IDLE)
            if time.monotonic() - last_beat > ttl / 3:
                await store.heartbeat(ttl)
                await store.sweep()
                last_beat = time.monotonic()
        except (*REDIS_DOWN, StoreError) as e:
            log.debug("housekeeping: %s", e)
        await anyio.sleep(HOLD_IDLE / 2)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mountpoint")
    p.add_argument("--redis", default=os.environ.get("SHAREDFS_REDIS", "redis://localhost:6379"),
                   help="redis://HOST:PORT, rediss://... (TLS), unix:///PATH or "
                        "redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE (rediss+sentinel:// "
                        "for TLS)")
    p.add_argument("--wait-replicas", type=int, default=0, metavar="N",
                   help="a change is acknowledged only once N replicas have it (Redis WAIT): "
                        "a failover then loses no acknowledged change; EIO if they do not "
                        "within --wait-timeout")
    p.add_argument("--wait-timeout", type=float, default=1.0, metavar="SECONDS",
                   help="how long a change waits for its replicas (default 1)")
    p.add_argument("--prefix", default="sharedfs",
                   help="key prefix: several file systems can share one Redis")
    p.add_argument("--timeout", type=float, default=3600.0,
                   help="seconds the kernel may cache names and attributes")
    p.add_argument("--no-invalidation", action="store_true",
                   help="do not follow other mounts' changes (to measure what goes stale)")
    p.add_argument("--no-close-to-open", action="store_true",
                   help="open() trusts the kernel's cache until a notification arrives "
                        "(saves a Redis round trip per reopen)")
    p.add_argument("--log-length", type=int, default=100_000,
                   help="change-log records kept (approximately)")
    p.add_argument("--heartbeat", type=float, default=30.0,
                   help="seconds after which a silent mount's open files no longer count")
    p.add_argument("--backend", choices=("trio", "asyncio", "uvloop"), default="trio",
                   help="event loop (uvloop: asyncio on uvloop's loop, needs the uvloop "
                        "package; README.md compares them)")
    p.add_argument("-o", dest="options", default="", help="mount options, comma-separated")
    p.add_argument("--debug", action="store_true")
    args = p.parse_args(argv)
    if args.backend == "uvloop" and importlib.util.find_spec("uvloop") is None:
        p.error("--backend uvloop needs the uvloop package (pip install uvloop)")
    if args.redis.startswith(SENTINEL_SCHEMES):
        try:
            parse_sentinel_url(args.redis)
        except ValueError as e:
            p.error(f"--redis {e}")
    if args.wait_replicas < 0:
        p.error("--wait-replicas: a number of replicas, 0 or more")
    if not 0 < args.wait_timeout <= REDIS_TIMEOUT - 1:
        p.error(f"--wait-timeout: more than 0 and at most {REDIS_TIMEOUT - 1:g} seconds "
                f"(a store call answers EIO after {REDIS_TIMEOUT:g})")
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    if not args.debug:  # its reconnections and script reloads are ours to report
        logging.getLogger("coredis").setLevel(logging.WARNING)
    logging.getLogger("coredis").addFilter(not_ours_to_tell)
    try:
        uvloop = args.backend == "uvloop"
        anyio.run(serve, args, backend="asyncio" if uvloop else args.backend,
                  backend_options={"use_uvloop": True} if uvloop else {})
    except Exception as e:
        problem = startup_problem(e, args.redis)
        if problem is None:
            raise
        raise SystemExit(f"sharedfs: {problem}") from None


def not_ours_to_tell(record: logging.LogRecord) -> bool:
    """False for a coredis record that says nothing sharedfs does not say better: a failed
    connection attempt (sharedfs says why in one line at startup, and "Redis unreachable"
    later), or a cancellation (coredis logs a connection attempt cancelled at unmount as an
    error, with a traceback)."""
    if record.getMessage().startswith("Connection attempt failed"):
        return False
    exc = record.exc_info[1] if record.exc_info else None
    try:
        return not isinstance(exc, anyio.get_cancelled_exc_class())
    except RuntimeError:  # no event loop running: not ours to judge
        return True


def cannot_reach(url: str, why: str) -> str:
    """The line saying Redis at ``url`` could not be used because of ``why``, naming the
    setting that fixes it where the reason tells."""
    hint = ""
    if "certificate required" in why.lower():
        hint = (" (the server wants a client certificate: SHAREDFS_REDIS_CERT and "
                "SHAREDFS_REDIS_KEY name it and its key)")
    elif url.startswith("rediss") and not os.environ.get("SHAREDFS_REDIS_CERT") and \
            ("reset" in why or "lost" in why.lower()):
        # TLS 1.3: the server checks the client after the handshake; its refusal arrives
        # as the alert above or as a connection closed, depending on timing
        hint = (" (a TLS server that wants a client certificate closes the connection so: "
                "SHAREDFS_REDIS_CERT and SHAREDFS_REDIS_KEY name it and its key)")
    elif "auth" in why.lower():
        hint = (" (the password: SHAREDFS_REDIS_PASSWORD" + (
            "; the sentinels' own: SHAREDFS_SENTINEL_PASSWORD"
            if url.startswith(SENTINEL_SCHEMES) else "") + ")")
    return f"cannot reach Redis at {url}: {why}{hint}"


class StartupError(Exception):
    """A reason not to start, told in one line (no traceback)."""


def startup_problem(e: BaseException, url: str) -> str | None:
    """The one-line reason inside ``e`` or its exception groups: a StartupError, or a Redis
    error (refused, authentication, ...)."""
    if isinstance(e, StartupError):
        return str(e)
    if isinstance(e, (coredis.exceptions.RedisError, *REDIS_DOWN)):
        return cannot_reach(url, with_cause(e))
    for inner in getattr(e, "exceptions", ()):
        found = startup_problem(inner, url)
        if found is not None:
            return found
    return None


if __name__ == "__main__":
    main()
