#!/usr/bin/env python3
"""An in-memory POSIX file system: ``python examples/tmpfs.py MOUNTPOINT [-o OPT,...]``.

Regular files, directories, symlinks, hard links, device nodes, FIFOs and sockets; rename with
RENAME_NOREPLACE and RENAME_EXCHANGE; extended attributes; sparse files (memory is taken only
by the pages written: truncating to a petabyte is free) with fallocate (punch hole, zero
range), SEEK_DATA/SEEK_HOLE and server-side copy_file_range; BSD (flock) and POSIX record
locks (fcntl, lockf) with waiting; poll. Mounted with ``default_permissions``, so the kernel
enforces permissions (including sticky directories) from the attributes returned here. An
unlinked file stays usable while it is open or known to the kernel, and is freed once both the
last link, the last open handle and the kernel's last lookup reference are gone. Names longer
than 255 bytes get ENAMETOOLONG. O_TMPFILE (libfuse 3.18) makes an open file without a name.
Ctrl-C or SIGTERM unmounts.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio

import pyfuse3
from pyfuse3 import FUSEError

ROOT = pyfuse3.ROOT_INODE
SETID = stat.S_ISUID | stat.S_ISGID
PAGE = 4096
COPY_STEP = 256  # pages copied between two yields to the event loop (about 1 MiB)
NAME_MAX = 255
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE = 0x01, 0x02, 0x10


def check_name(name: bytes) -> bytes:
    if len(name) > NAME_MAX:
        raise FUSEError(errno.ENAMETOOLONG)
    return name


class SparseData:
    """A file's bytes as the pages written so far; everything else is a hole (reads zeros).

    SEEK_DATA finds pages, SEEK_HOLE the gaps between them. Memory follows what was written,
    not ``size``.
    """

    def __init__(self) -> None:
        self.size = 0
        self.pages: dict[int, bytearray] = {}

    def _indexes(self, start: int, end: int) -> list[int]:
        """The indexes of the present pages that overlap [start, end), in order."""
        first, last = start // PAGE, (end - 1) // PAGE
        if last - first < len(self.pages):
            return [i for i in range(first, last + 1) if i in self.pages]
        return sorted(i for i in self.pages if first <= i <= last)

    def read(self, off: int, size: int) -> bytes:
        end = min(off + size, self.size)
        if off >= end:
            return b""
        out = bytearray(end - off)
        for i in self._indexes(off, end):
            base = i * PAGE
            lo, hi = max(off, base), min(end, base + PAGE)
            out[lo - off:hi - off] = self.pages[i][lo - base:hi - base]
        return bytes(out)

    def write(self, off: int, buf: bytes) -> None:
        pos = 0
        while pos < len(buf):
            i, at = divmod(off + pos, PAGE)
            n = min(PAGE - at, len(buf) - pos)
            page = self.pages.get(i)
            if page is None:
                page = self.pages[i] = bytearray(PAGE)
            page[at:at + n] = buf[pos:pos + n]
            pos += n
        self.size = max(self.size, off + len(buf))

    def zero(self, start: int, end: int) -> None:
        """Make [start, end) a hole: pages it covers are freed (a page reaching past the end
        of the file counts as covered), partly covered pages are zeroed."""
        for i in self._indexes(start, end) if start < end else ():
            base = i * PAGE
            if start <= base and (base + PAGE <= end or end >= self.size):
                del self.pages[i]
            else:
                lo, hi = max(start, base), min(end, base + PAGE)
                self.pages[i][lo - base:hi - base] = bytes(hi - lo)

    def truncate(self, size: int) -> None:
        if size < self.size:
            self.zero(size, self.size)
        self.size = size

    def fallocate(self, mode: int, off: int, length: int) -> None:
        """Mode 0 only sets the size (memory is taken on write); PUNCH_HOLE and ZERO_RANGE
        make holes."""
        if mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            self.zero(off, min(off + length, self.size))
        if not mode & FALLOC_FL_KEEP_SIZE and off + length > self.size:
            self.truncate(off + length)

    def copy_from(self, src: SparseData, off_in: int, off_out: int, length: int) -> int:
        """Copy up to ``length`` bytes of ``src`` (holes stay holes); return how many."""
        copied = max(0, min(length, src.size - off_in))
        for _ in self.copy_steps(src, off_in, off_out, length):
            pass
        return copied

    def copy_steps(self, src: SparseData, off_in: int, off_out: int,
                   length: int) -> Iterator[int]:
        """copy_from() in steps of at most COPY_STEP pages of work, yielding the bytes copied
        so far after each, so that a handler can let others run in between. A hole costs
        one step whatever its size: it is walked as a range, never page by page."""
        length = max(0, min(length, src.size - off_in))
        end = off_in + length
        pos = off_in  # everything before it is copied
        for n, i in enumerate(src._indexes(off_in, end) if length else (), 1):
            base = max(i * PAGE, off_in)
            if pos < base:  # the hole before page i
                self.zero(off_out + pos - off_in, off_out + base - off_in)
            top = min(i * PAGE + PAGE, end)
            self.write(off_out + base - off_in, src.read(base, top - base))
            pos = top
            if n % COPY_STEP == 0:
                yield pos - off_in
        if pos < end:  # the hole after the last page
            self.zero(off_out + pos - off_in, off_out + length)
        if length:
            self.size = max(self.size, off_out + length)
        yield length

    def seek(self, off: int, whence: int) -> int:
        if off >= self.size:
            raise FUSEError(errno.ENXIO)
        i = off // PAGE
        if whence == os.SEEK_DATA:
            later = [j for j in self.pages if j >= i and j * PAGE < self.size]
            if not later:
                raise FUSEError(errno.ENXIO)
            return max(min(later) * PAGE, off)
        while i in self.pages and i * PAGE < self.size:
            i += 1
        return min(max(i * PAGE, off), self.size)  # the end of the file counts as a hole

    @property
    def allocated(self) -> int:
        return len(self.pages) * PAGE


@dataclass(eq=False)
class Inode:
    """One file, directory, link or special file."""

    mode: int
    uid: int
    gid: int
    rdev: int = 0
    nlink: int = 0
    data: SparseData = field(default_factory=SparseData)
    target: bytes = b""
    entries: dict[bytes, int] = field(default_factory=dict)  # directories only
    parent: int = ROOT  # directories only
    xattrs: dict[bytes, bytes] = field(default_factory=dict)
    atime: int = field(default_factory=time.time_ns)
    mtime: int = 0
    ctime: int = 0
    btime: int = 0  # birth time, reported by statx()
    lookups: int = 0
    opens: int = 0
    flocks: dict[int, int] = field(default_factory=dict)  # owner -> LOCK_SH or LOCK_EX
    record_locks: list[RecordLock] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.mtime = self.ctime = self.btime = self.atime

    def touch(self, *, modified: bool = True) -> None:
        """Update ctime, and mtime unless only the attributes changed."""
        now = time.time_ns()
        self.ctime = now
        if modified:
            self.mtime = now

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


@dataclass
class RecordLock:
    """A POSIX lock held by ``owner`` on bytes [start, end) (end None: to the end of file)."""

    owner: int
    type: int
    start: int
    end: int | None
    pid: int

    def overlaps(self, start: int, end: int | None) -> bool:
        return (end is None or self.start < end) and (self.end is None or start < self.end)


def lock_range(lock: pyfuse3.FileLock) -> tuple[int, int | None]:
    return lock.start, None if lock.length == 0 else lock.start + lock.length


class TmpFS(pyfuse3.Operations):
    """Everything in Python dictionaries; nothing survives the unmount."""

    def __init__(self) -> None:
        super().__init__()
        root = Inode(stat.S_IFDIR | 0o755, os.getuid(), os.getgid(), nlink=2)
        root.lookups = 1  # the kernel always knows the root
        self.inodes: dict[int, Inode] = {ROOT: root}
        self.next_ino = ROOT + 1

    # ---- helpers
    def get(self, ino: int) -> Inode:
        try:
            return self.inodes[ino]
        except KeyError:
            raise FUSEError(errno.ENOENT) from None

    def directory(self, ino: int) -> Inode:
        node = self.get(ino)
        if not node.is_dir:
            raise FUSEError(errno.ENOTDIR)
        return node

    def child(self, parent: int, name: bytes) -> int:
        try:
            return self.directory(parent).entries[name]
        except KeyError:
            raise FUSEError(errno.ENOENT) from None

    def attr(self, ino: int) -> pyfuse3.EntryAttributes:
        node = self.get(ino)
        a = pyfuse3.EntryAttributes()
        a.st_ino = ino
        a.st_mode, a.st_nlink, a.st_uid, a.st_gid = node.mode, node.nlink, node.uid, node.gid
        a.st_rdev = node.rdev
        if stat.S_ISLNK(node.mode):
            a.st_size, a.st_blocks = len(node.target), (len(node.target) + 511) // 512
        else:
            a.st_size, a.st_blocks = node.data.size, node.data.allocated // 512
        a.st_atime_ns, a.st_mtime_ns, a.st_ctime_ns = node.atime, node.mtime, node.ctime
        a.st_birthtime_ns = node.btime  # only statx() replies carry it
        return a

    def entry(self, ino: int) -> pyfuse3.EntryAttributes:
        """Attributes for a reply that adds one to the kernel's lookup count."""
        self.get(ino).lookups += 1
        return self.attr(ino)

    def maybe_free(self, ino: int) -> None:
        node = self.inodes.get(ino)
        if node and ino != ROOT and node.nlink == 0 and node.lookups <= 0 and node.opens <= 0:
            del self.inodes[ino]

    def create_node(self, parent: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext,
                    **kw: Any) -> pyfuse3.EntryAttributes:
        d = self.directory(parent)
        if check_name(name) in d.entries:
            raise FUSEError(errno.EEXIST)
        ino = self.new_inode(d, mode, ctx, **kw)
        node = self.inodes[ino]
        self.link_into(d, name, ino)
        if node.is_dir:
            node.parent = parent
        return self.entry(ino)

    def new_inode(self, d: Inode, mode: int, ctx: pyfuse3.RequestContext, **kw: Any) -> int:
        """A new inode, not linked anywhere yet, created by ctx in directory d."""
        gid = ctx.gid
        if d.mode & stat.S_ISGID:  # BSD group semantics in setgid directories
            gid = d.gid
            if stat.S_ISDIR(mode):
                mode |= stat.S_ISGID
        ino, self.next_ino = self.next_ino, self.next_ino + 1
        self.inodes[ino] = Inode(mode, ctx.uid, gid, **kw)
        return ino

    def link_into(self, d: Inode, name: bytes, ino: int) -> None:
        node = self.inodes[ino]
        d.entries[name] = ino
        node.nlink += 2 if node.is_dir else 1
        if node.is_dir:
            d.nlink += 1
        d.touch()

    def unlink_from(self, parent: int, name: bytes) -> int:
        d = self.inodes[parent]
        ino = d.entries.pop(name)
        node = self.inodes[ino]
        node.nlink -= 2 if node.is_dir else 1
        if node.is_dir:
            d.nlink -= 1
        node.touch(modified=False)
        d.touch()
        self.maybe_free(ino)
        return ino

    def ancestors(self, ino: int) -> Iterator[int]:
        while ino != ROOT:
            yield ino
            ino = self.inodes[ino].parent
        yield ROOT

    # ---- entries
    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        d = self.directory(parent_inode)
        check_name(name)
        if name == b".":
            return self.entry(parent_inode)
        if name == b"..":
            return self.entry(d.parent)
        return self.entry(self.child(parent_inode, name))

    async def forget(self, inode_list: Any) -> None:
        for ino, n in inode_list:
            if ino in self.inodes:
                self.inodes[ino].lookups -= n
                self.maybe_free(ino)

    async def getattr(self, inode: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        return self.attr(inode)

    async def statx(self, inode: Any, mask: int, flags: int, fh: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        return self.attr(inode)  # with the birth time

    async def setattr(self, inode: Any, attr: Any, fields: Any, fh: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        node = self.get(inode)
        if fields.update_size:
            if node.is_dir:
                raise FUSEError(errno.EISDIR)
            node.data.truncate(attr.st_size)  # growing adds a hole, which reads as zeros
            node.touch()
        if fields.update_mode:
            node.mode = stat.S_IFMT(node.mode) | stat.S_IMODE(attr.st_mode)
        if (fields.update_uid and attr.st_uid != node.uid) or \
                (fields.update_gid and attr.st_gid != node.gid):
            if not node.is_dir:  # Linux drops set-id bits when a file changes owner
                node.mode &= ~(stat.S_ISUID | (stat.S_ISGID if node.mode & stat.S_IXGRP else 0))
        if fields.update_uid:
            node.uid = attr.st_uid
        if fields.update_gid:
            node.gid = attr.st_gid
        if fields.update_atime:
            node.atime = attr.st_atime_ns
        if fields.update_mtime:
            node.mtime = attr.st_mtime_ns
        node.touch(modified=False)
        return self.attr(inode)

    async def readlink(self, inode: Any, ctx: Any) -> bytes:
        return self.get(inode).target

    async def mknod(self, parent_inode: Any, name: Any, mode: Any, rdev: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        return self.create_node(parent_inode, name, mode, ctx, rdev=rdev)

    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        return self.create_node(parent_inode, name, mode, ctx)

    async def symlink(self, parent_inode: Any, name: Any, target: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        return self.create_node(parent_inode, name, stat.S_IFLNK | 0o777, ctx, target=target)

    async def link(self, inode: Any, new_parent_inode: Any, new_name: Any,
                   ctx: Any) -> pyfuse3.EntryAttributes:
        d = self.directory(new_parent_inode)
        if check_name(new_name) in d.entries:
            raise FUSEError(errno.EEXIST)
        self.link_into(d, new_name, inode)
        self.get(inode).touch(modified=False)
        return self.entry(inode)

    async def unlink(self, parent_inode: Any, name: Any, ctx: Any) -> None:
        if self.get(self.child(parent_inode, name)).is_dir:
            raise FUSEError(errno.EISDIR)
        self.unlink_from(parent_inode, name)

    async def rmdir(self, parent_inode: Any, name: Any, ctx: Any) -> None:
        node = self.get(self.child(parent_inode, name))
        if not node.is_dir:
            raise FUSEError(errno.ENOTDIR)
        if node.entries:
            raise FUSEError(errno.ENOTEMPTY)
        self.unlink_from(parent_inode, name)

    async def rename(self, parent_inode_old: Any, name_old: Any, parent_inode_new: Any,
                     name_new: Any, flags: Any, ctx: Any) -> None:
        check_name(name_new)
        src = self.child(parent_inode_old, check_name(name_old))
        new_dir = self.directory(parent_inode_new)
        if self.get(src).is_dir and src in self.ancestors(parent_inode_new):
            raise FUSEError(errno.EINVAL)  # a directory cannot move below itself
        dst = new_dir.entries.get(name_new)
        if flags & pyfuse3.RENAME_EXCHANGE:
            if dst is None:
                raise FUSEError(errno.ENOENT)
            self.exchange(parent_inode_old, name_old, parent_inode_new, name_new)
            return
        if dst is not None:
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise FUSEError(errno.EEXIST)
            if dst == src:
                return
            self.check_replace(self.get(src), self.get(dst))
            self.unlink_from(parent_inode_new, name_new)
        self.move(parent_inode_old, name_old, parent_inode_new, name_new)

    def move(self, p_old: int, name_old: bytes, p_new: int, name_new: bytes) -> None:
        old_dir, new_dir = self.inodes[p_old], self.inodes[p_new]
        ino = old_dir.entries.pop(name_old)
        new_dir.entries[name_new] = ino
        node = self.inodes[ino]
        if node.is_dir and p_old != p_new:  # ".." moves: the link counts of both parents change
            old_dir.nlink -= 1
            new_dir.nlink += 1
            node.parent = p_new
        node.touch(modified=False)
        old_dir.touch()
        new_dir.touch()

    def check_replace(self, src: Inode, dst: Inode) -> None:
        if dst.is_dir and not src.is_dir:
            raise FUSEError(errno.EISDIR)
        if src.is_dir and not dst.is_dir:
            raise FUSEError(errno.ENOTDIR)
        if dst.is_dir and dst.entries:
            raise FUSEError(errno.ENOTEMPTY)

    def exchange(self, p1: int, n1: bytes, p2: int, n2: bytes) -> None:
        d1, d2 = self.inodes[p1], self.inodes[p2]
        a, b = d1.entries[n1], d2.entries[n2]
        d1.entries[n1], d2.entries[n2] = b, a
        for ino, parent in ((a, p2), (b, p1)):
            node = self.inodes[ino]
            if node.is_dir and p1 != p2:
                self.inodes[node.parent].nlink -= 1
                node.parent = parent
                self.inodes[parent].nlink += 1
            node.touch(modified=False)
        d1.touch()
        d2.touch()

    # ---- files
    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        node = self.get(inode)
        if flags & os.O_TRUNC and node.data.size:
            node.data.truncate(0)
            node.touch()
        node.opens += 1
        return pyfuse3.FileInfo(fh=inode)

    async def create(self, parent_inode: Any, name: Any, mode: Any, flags: Any,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        attr = self.create_node(parent_inode, name, mode, ctx)
        self.get(attr.st_ino).opens += 1
        return pyfuse3.FileInfo(fh=attr.st_ino), attr

    async def tmpfile(self, parent_inode: Any, mode: Any, flags: Any,
                      ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        """O_TMPFILE: an open file with no name (freed on its last close unless linkat()
        gives it one)."""
        ino = self.new_inode(self.directory(parent_inode), mode, ctx)
        self.get(ino).opens += 1
        return pyfuse3.FileInfo(fh=ino), self.entry(ino)

    async def read(self, fh: Any, off: int, size: int) -> bytes:
        node = self.get(fh)
        node.atime = time.time_ns()
        return node.data.read(off, size)

    async def write(self, fh: Any, off: int, buf: bytes) -> int:
        node = self.get(fh)
        node.data.write(off, buf)
        node.touch()
        return len(buf)

    async def flush(self, fh: Any) -> None:
        pass

    async def release(self, fh: Any) -> None:
        self.get(fh).opens -= 1
        self.maybe_free(fh)

    async def fallocate(self, fh: Any, mode: int, offset: int, length: int) -> None:
        node = self.get(fh)
        if mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE):
            raise FUSEError(errno.EOPNOTSUPP)
        node.data.fallocate(mode, offset, length)
        node.touch()

    async def lseek(self, fh: Any, offset: int, whence: int) -> int:
        if whence not in (os.SEEK_DATA, os.SEEK_HOLE):
            raise FUSEError(errno.EINVAL)
        return self.get(fh).data.seek(offset, whence)

    async def copy_file_range(self, fh_in: Any, off_in: int, fh_out: Any, off_out: int,
                              length: int, flags: int) -> int:
        dst = self.get(fh_out)
        done = 0
        for so_far in dst.data.copy_steps(self.get(fh_in).data, off_in, off_out, length):
            done = so_far
            await anyio.sleep(0)  # a long copy never holds up the other requests
        if done:
            dst.touch()
        return done

    async def poll(self, inode: Any, fh: Any, poll_handle: Any, ctx: Any) -> int:
        return select.POLLIN | select.POLLOUT  # memory never makes a reader or writer wait

    # ---- locks (waiters poll; a signal to the waiting process cancels the handler)
    async def flock(self, fh: Any, owner: int, operation: int) -> None:
        held = self.get(fh).flocks
        kind = operation & ~fcntl.LOCK_NB
        if kind == fcntl.LOCK_UN:
            held.pop(owner, None)
            return
        while any(o != owner and fcntl.LOCK_EX in (k, kind) for o, k in held.items()):
            if operation & fcntl.LOCK_NB:
                raise FUSEError(errno.EWOULDBLOCK)
            await anyio.sleep(0.01)
        held[owner] = kind

    def conflict(self, node: Inode, owner: int, lock: pyfuse3.FileLock) -> RecordLock | None:
        start, end = lock_range(lock)
        for held in node.record_locks:
            if held.owner != owner and held.overlaps(start, end) and \
                    fcntl.F_WRLCK in (held.type, lock.type):
                return held
        return None

    async def getlk(self, fh: Any, owner: int, lock: pyfuse3.FileLock) -> pyfuse3.FileLock:
        held = self.conflict(self.get(fh), owner, lock)
        if held is None:
            return pyfuse3.FileLock(fcntl.F_UNLCK, lock.start, lock.length, lock.pid)
        length = 0 if held.end is None else held.end - held.start
        return pyfuse3.FileLock(held.type, held.start, length, held.pid)

    async def setlk(self, fh: Any, owner: int, lock: pyfuse3.FileLock, wait: bool) -> None:
        node = self.get(fh)
        if lock.type != fcntl.F_UNLCK:
            while self.conflict(node, owner, lock) is not None:
                if not wait:
                    raise FUSEError(errno.EAGAIN)
                await anyio.sleep(0.01)
        start, end = lock_range(lock)
        kept = []
        for held in node.record_locks:  # the owner's locks lose the range, others stay
            if held.owner != owner or not held.overlaps(start, end):
                kept.append(held)
                continue
            if held.start < start:
                kept.append(RecordLock(owner, held.type, held.start, start, held.pid))
            if end is not None and (held.end is None or held.end > end):
                kept.append(RecordLock(owner, held.type, end, held.end, held.pid))
        if lock.type != fcntl.F_UNLCK:
            kept.append(RecordLock(owner, lock.type, start, end, lock.pid))
        node.record_locks = kept

    async def fsync(self, fh: Any, datasync: bool) -> None:
        pass  # memory is as stable as it gets here

    # ---- directories
    async def opendir(self, inode: Any, ctx: Any) -> int:
        self.directory(inode).opens += 1
        return inode

    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        d = self.directory(fh)
        # Sorted names: the position is a next_id that stays valid between calls.
        listing = [(b".", fh), (b"..", d.parent), *sorted(d.entries.items())]
        for i, (name, ino) in enumerate(listing[start_id:], start_id):
            if not pyfuse3.readdir_reply(token, name, self.attr(ino), i + 1):
                break
            if token.plus and name not in (b".", b".."):
                self.get(ino).lookups += 1  # only READDIRPLUS entries count as a lookup
        d.atime = time.time_ns()

    async def releasedir(self, fh: Any) -> None:
        self.get(fh).opens -= 1
        self.maybe_free(fh)

    async def fsyncdir(self, fh: Any, datasync: bool) -> None:
        pass

    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        s = pyfuse3.StatvfsData()
        used = sum(n.data.allocated for n in self.inodes.values())
        s.f_bsize = s.f_frsize = 4096
        s.f_blocks = (1 << 30) // 4096 + (used + 4095) // 4096
        s.f_bfree = s.f_bavail = (1 << 30) // 4096
        s.f_files = 1_000_000 + len(self.inodes)
        s.f_ffree = s.f_favail = 1_000_000
        s.f_namemax = NAME_MAX
        return s

    # ---- extended attributes
    async def setxattr(self, inode: Any, name: Any, value: Any, ctx: Any) -> None:
        node = self.get(inode)
        node.xattrs[name] = value
        node.touch(modified=False)

    async def getxattr(self, inode: Any, name: Any, ctx: Any) -> bytes:
        try:
            return self.get(inode).xattrs[name]
        except KeyError:
            raise FUSEError(pyfuse3.ENOATTR) from None

    async def listxattr(self, inode: Any, ctx: Any) -> list[bytes]:
        return list(self.get(inode).xattrs)

    async def removexattr(self, inode: Any, name: Any, ctx: Any) -> None:
        node = self.get(inode)
        if node.xattrs.pop(name, None) is None:
            raise FUSEError(pyfuse3.ENOATTR)
        node.touch(modified=False)

    def forget_all(self) -> int:
        """After unmount (Linux sends no FORGETs then): drop every lookup reference.

        Returns how many unlinked inodes stayed behind, which must be 0.
        """
        for ino in list(self.inodes):
            node = self.inodes[ino]
            node.lookups = node.opens = 0
            self.maybe_free(ino)
        return sum(1 for ino, n in self.inodes.items() if n.nlink == 0 and ino != ROOT)


def main() -> None:
    import logging

    from _cli import parse_args, serve

    ops = TmpFS()
    serve(ops, parse_args(__doc__ or ""), "tmpfs")
    leaked = ops.forget_all()
    logging.getLogger("tmpfs").info("unmounted: %d inodes, %d unlinked inodes leaked",
                                    len(ops.inodes), leaked)


if __name__ == "__main__":
    main()
