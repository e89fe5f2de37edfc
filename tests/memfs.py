"""A small but complete in-memory file system for the tests, counting every handler call."""

from __future__ import annotations

import collections
import errno
import os
import stat
import time
from dataclasses import dataclass, field
from typing import Any

import pyfuse3
from pyfuse3 import FUSEError
from pyfuse3._backends import current


@dataclass
class Node:
    """One inode."""

    mode: int
    data: bytes = b""
    target: bytes = b""
    rdev: int = 0
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    times: list[int] = field(default_factory=lambda: [time.time_ns()] * 3)  # a, m, c
    entries: dict[bytes, int] = field(default_factory=dict)
    xattrs: dict[bytes, bytes] = field(default_factory=dict)


class MemFS(pyfuse3.Operations):
    """Files, directories, symlinks, device nodes, hard links, xattrs; no lookup-count GC."""

    def __init__(self, timeout: float = 0.0) -> None:
        super().__init__()
        self.timeout = timeout
        self.calls: collections.Counter[str] = collections.Counter()
        self.nodes: dict[int, Node] = {pyfuse3.ROOT_INODE: Node(stat.S_IFDIR | 0o777, nlink=2)}
        self.next_inode = pyfuse3.ROOT_INODE + 1
        self.lookups: collections.Counter[int] = collections.Counter()
        self.contexts: list[pyfuse3.RequestContext] = []
        self.rename_flags: list[int] = []

    # helpers
    def node(self, inode: int) -> Node:
        try:
            return self.nodes[inode]
        except KeyError:
            raise FUSEError(errno.ENOENT) from None

    def attr(self, inode: int) -> pyfuse3.EntryAttributes:
        n = self.node(inode)
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.st_mode, a.st_nlink, a.st_uid, a.st_gid = n.mode, n.nlink, n.uid, n.gid
        a.st_rdev = n.rdev
        a.st_size = len(n.target) if stat.S_ISLNK(n.mode) else len(n.data)
        a.st_blocks = (a.st_size + 511) // 512
        a.st_atime_ns, a.st_mtime_ns, a.st_ctime_ns = n.times
        a.entry_timeout = a.attr_timeout = self.timeout
        return a

    def entry(self, inode: int) -> pyfuse3.EntryAttributes:
        self.lookups[inode] += 1
        return self.attr(inode)

    def add(self, parent: int, name: bytes, node: Node) -> pyfuse3.EntryAttributes:
        d = self.node(parent)
        if name in d.entries:
            raise FUSEError(errno.EEXIST)
        inode, self.next_inode = self.next_inode, self.next_inode + 1
        self.nodes[inode] = node
        d.entries[name] = inode
        if stat.S_ISDIR(node.mode):
            d.nlink += 1
        return self.entry(inode)

    def child(self, parent: int, name: bytes) -> int:
        try:
            return self.node(parent).entries[name]
        except KeyError:
            raise FUSEError(errno.ENOENT) from None

    # handlers
    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        self.calls["lookup"] += 1
        self.contexts.append(ctx)
        if name == b".":
            return self.entry(parent_inode)
        return self.entry(self.child(parent_inode, name))

    async def forget(self, inode_list: Any) -> None:
        self.calls["forget"] += 1
        for inode, n in inode_list:
            self.lookups[inode] -= n

    async def getattr(self, inode: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        self.calls["getattr"] += 1
        return self.attr(inode)

    async def setattr(self, inode: Any, attr: Any, fields: Any, fh: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        self.calls["setattr"] += 1
        n = self.node(inode)
        if fields.update_size:
            n.data = n.data[:attr.st_size].ljust(attr.st_size, b"\0")
        if fields.update_mode:
            n.mode = stat.S_IFMT(n.mode) | stat.S_IMODE(attr.st_mode)
        if fields.update_uid:
            n.uid = attr.st_uid
        if fields.update_gid:
            n.gid = attr.st_gid
        if fields.update_atime:
            n.times[0] = attr.st_atime_ns
        if fields.update_mtime:
            n.times[1] = attr.st_mtime_ns
        n.times[2] = time.time_ns()
        return self.attr(inode)

    async def readlink(self, inode: Any, ctx: Any) -> bytes:
        self.calls["readlink"] += 1
        return self.node(inode).target

    async def mknod(self, parent_inode: Any, name: Any, mode: Any, rdev: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        self.calls["mknod"] += 1
        return self.add(parent_inode, name, Node(mode, rdev=rdev, uid=ctx.uid, gid=ctx.gid))

    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        self.calls["mkdir"] += 1
        self.contexts.append(ctx)
        return self.add(parent_inode, name, Node(mode, nlink=2, uid=ctx.uid, gid=ctx.gid))

    async def symlink(self, parent_inode: Any, name: Any, target: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        self.calls["symlink"] += 1
        return self.add(parent_inode, name, Node(stat.S_IFLNK | 0o777, target=target))

    async def link(self, inode: Any, new_parent_inode: Any, new_name: Any,
                   ctx: Any) -> pyfuse3.EntryAttributes:
        self.calls["link"] += 1
        d = self.node(new_parent_inode)
        if new_name in d.entries:
            raise FUSEError(errno.EEXIST)
        d.entries[new_name] = inode
        self.node(inode).nlink += 1
        return self.entry(inode)

    def _remove(self, parent: int, name: bytes, want_dir: bool) -> None:
        inode = self.child(parent, name)
        n = self.node(inode)
        if want_dir != stat.S_ISDIR(n.mode):
            raise FUSEError(errno.ENOTDIR if want_dir else errno.EISDIR)
        if want_dir and n.entries:
            raise FUSEError(errno.ENOTEMPTY)
        del self.node(parent).entries[name]
        n.nlink -= 2 if want_dir else 1
        if want_dir:
            self.node(parent).nlink -= 1

    async def unlink(self, parent_inode: Any, name: Any, ctx: Any) -> None:
        self.calls["unlink"] += 1
        self._remove(parent_inode, name, want_dir=False)

    async def rmdir(self, parent_inode: Any, name: Any, ctx: Any) -> None:
        self.calls["rmdir"] += 1
        self._remove(parent_inode, name, want_dir=True)

    async def rename(self, parent_inode_old: Any, name_old: Any, parent_inode_new: Any,
                     name_new: Any, flags: Any, ctx: Any) -> None:
        self.calls["rename"] += 1
        self.rename_flags.append(flags)
        old, new = self.node(parent_inode_old), self.node(parent_inode_new)
        inode = self.child(parent_inode_old, name_old)
        if flags & pyfuse3.RENAME_EXCHANGE:
            other = self.child(parent_inode_new, name_new)
            old.entries[name_old], new.entries[name_new] = other, inode
            return
        if name_new in new.entries:
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise FUSEError(errno.EEXIST)
            self._remove(parent_inode_new, name_new,
                         stat.S_ISDIR(self.node(new.entries[name_new]).mode))
        del old.entries[name_old]
        new.entries[name_new] = inode

    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        self.calls["open"] += 1
        if flags & os.O_TRUNC:
            self.node(inode).data = b""
        return pyfuse3.FileInfo(fh=inode)

    async def create(self, parent_inode: Any, name: Any, mode: Any, flags: Any,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        self.calls["create"] += 1
        attr = self.add(parent_inode, name, Node(mode, uid=ctx.uid, gid=ctx.gid))
        return pyfuse3.FileInfo(fh=attr.st_ino), attr

    async def read(self, fh: Any, off: int, size: int) -> bytes:
        self.calls["read"] += 1
        return self.node(fh).data[off:off + size]

    async def write(self, fh: Any, off: int, buf: bytes) -> int:
        self.calls["write"] += 1
        n = self.node(fh)
        n.data = n.data[:off].ljust(off, b"\0") + buf + n.data[off + len(buf):]
        return len(buf)

    async def flush(self, fh: Any) -> None:
        self.calls["flush"] += 1

    async def release(self, fh: Any) -> None:
        self.calls["release"] += 1

    async def fsync(self, fh: Any, datasync: bool) -> None:
        self.calls["fsync"] += 1

    async def opendir(self, inode: Any, ctx: Any) -> int:
        self.calls["opendir"] += 1
        if not stat.S_ISDIR(self.node(inode).mode):
            raise FUSEError(errno.ENOTDIR)
        return inode

    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        self.calls["readdir"] += 1
        # next_id is the position in a sorted listing: stable while nothing changes.
        names = sorted(self.node(fh).entries.items())
        for i, (name, inode) in enumerate(names[start_id:], start_id):
            if not pyfuse3.readdir_reply(token, name, self.attr(inode), i + 1):
                break
            if token.plus:  # a plain READDIR entry is not a lookup
                self.lookups[inode] += 1

    async def releasedir(self, fh: Any) -> None:
        self.calls["releasedir"] += 1

    async def fsyncdir(self, fh: Any, datasync: bool) -> None:
        self.calls["fsyncdir"] += 1

    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        self.calls["statfs"] += 1
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = 4096
        s.f_blocks, s.f_bfree, s.f_bavail = 1000, 600, 500
        s.f_files, s.f_ffree, s.f_favail = 100, 90, 80
        s.f_namemax = 255
        return s

    async def setxattr(self, inode: Any, name: Any, value: Any, ctx: Any) -> None:
        self.calls["setxattr"] += 1
        self.node(inode).xattrs[name] = value

    async def getxattr(self, inode: Any, name: Any, ctx: Any) -> bytes:
        self.calls["getxattr"] += 1
        try:
            return self.node(inode).xattrs[name]
        except KeyError:
            raise FUSEError(pyfuse3.ENOATTR) from None

    async def listxattr(self, inode: Any, ctx: Any) -> list[bytes]:
        self.calls["listxattr"] += 1
        return list(self.node(inode).xattrs)

    async def removexattr(self, inode: Any, name: Any, ctx: Any) -> None:
        self.calls["removexattr"] += 1
        try:
            del self.node(inode).xattrs[name]
        except KeyError:
            raise FUSEError(pyfuse3.ENOATTR) from None

    async def access(self, inode: Any, mode: Any, ctx: Any) -> bool:
        self.calls["access"] += 1
        return not (mode & os.W_OK and self.node(inode).mode & 0o222 == 0)


class GatedMemFS(MemFS):
    """MemFS whose handlers may wait in ``gate()`` until the test sets ``go`` (a remote store
    taking its time): ``waiting`` once one waits; ``cancelled`` counts the waits cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.go = self.waiting = False
        self.cancelled = 0

    async def gate(self) -> None:
        self.waiting = True
        try:
            while not self.go:
                await current().sleep(0.005)
        except BaseException:
            self.cancelled += 1
            raise


class GatedLookupFS(GatedMemFS):
    """Looking up ``gated`` waits for ``go``."""

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name == b"gated":
            await self.gate()
        return await super().lookup(parent_inode, name, ctx)


class ChangeFS(GatedMemFS):
    """mkdir waits for ``go`` before it makes the directory (a change under way, perhaps begun
    remotely)."""

    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        await self.gate()
        return await super().mkdir(parent_inode, name, mode, ctx)
