#!/usr/bin/env python3
"""An in-memory POSIX file system: ``python examples/tmpfs.py MOUNTPOINT [-o OPT,...]``.

Regular files, directories, symlinks, hard links, device nodes, FIFOs and sockets; rename with
RENAME_NOREPLACE and RENAME_EXCHANGE; extended attributes; sparse files. Mounted with
``default_permissions``, so the kernel enforces permissions (including sticky directories)
from the attributes returned here. An unlinked file stays usable while it is open or known to
the kernel, and is freed once both the last link, the last open handle and the kernel's last
lookup reference are gone. Ctrl-C or SIGTERM unmounts.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyfuse3
from pyfuse3 import FUSEError

ROOT = pyfuse3.ROOT_INODE
SETID = stat.S_ISUID | stat.S_ISGID


@dataclass(eq=False)
class Inode:
    """One file, directory, link or special file."""

    mode: int
    uid: int
    gid: int
    rdev: int = 0
    nlink: int = 0
    data: bytearray = field(default_factory=bytearray)
    target: bytes = b""
    entries: dict[bytes, int] = field(default_factory=dict)  # directories only
    parent: int = ROOT  # directories only
    xattrs: dict[bytes, bytes] = field(default_factory=dict)
    atime: int = field(default_factory=time.time_ns)
    mtime: int = 0
    ctime: int = 0
    lookups: int = 0
    opens: int = 0

    def __post_init__(self) -> None:
        self.mtime = self.ctime = self.atime

    def touch(self, *, modified: bool = True) -> None:
        """Update ctime, and mtime unless only the attributes changed."""
        now = time.time_ns()
        self.ctime = now
        if modified:
            self.mtime = now

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


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
        a.st_size = len(node.target) if stat.S_ISLNK(node.mode) else len(node.data)
        a.st_blocks = (a.st_size + 511) // 512
        a.st_atime_ns, a.st_mtime_ns, a.st_ctime_ns = node.atime, node.mtime, node.ctime
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
        if name in d.entries:
            raise FUSEError(errno.EEXIST)
        gid = ctx.gid
        if d.mode & stat.S_ISGID:  # BSD group semantics in setgid directories
            gid = d.gid
            if stat.S_ISDIR(mode):
                mode |= stat.S_ISGID
        node = Inode(mode, ctx.uid, gid, **kw)
        ino, self.next_ino = self.next_ino, self.next_ino + 1
        self.inodes[ino] = node
        self.link_into(d, name, ino)
        if node.is_dir:
            node.parent = parent
        return self.entry(ino)

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

    async def setattr(self, inode: Any, attr: Any, fields: Any, fh: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        node = self.get(inode)
        if fields.update_size:
            if node.is_dir:
                raise FUSEError(errno.EISDIR)
            del node.data[attr.st_size:]
            node.data.extend(bytes(attr.st_size - len(node.data)))  # a hole reads as zeros
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
        if new_name in d.entries:
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
        src = self.child(parent_inode_old, name_old)
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
        if flags & os.O_TRUNC and node.data:
            node.data.clear()
            node.touch()
        node.opens += 1
        return pyfuse3.FileInfo(fh=inode)

    async def create(self, parent_inode: Any, name: Any, mode: Any, flags: Any,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        attr = self.create_node(parent_inode, name, mode, ctx)
        self.get(attr.st_ino).opens += 1
        return pyfuse3.FileInfo(fh=attr.st_ino), attr

    async def read(self, fh: Any, off: int, size: int) -> bytes:
        node = self.get(fh)
        node.atime = time.time_ns()
        return bytes(node.data[off:off + size])

    async def write(self, fh: Any, off: int, buf: bytes) -> int:
        node = self.get(fh)
        if off > len(node.data):
            node.data.extend(bytes(off - len(node.data)))  # a hole reads as zeros
        node.data[off:off + len(buf)] = buf
        node.touch()
        return len(buf)

    async def flush(self, fh: Any) -> None:
        pass

    async def release(self, fh: Any) -> None:
        self.get(fh).opens -= 1
        self.maybe_free(fh)

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
            if name not in (b".", b".."):
                self.get(ino).lookups += 1
        d.atime = time.time_ns()

    async def releasedir(self, fh: Any) -> None:
        self.get(fh).opens -= 1
        self.maybe_free(fh)

    async def fsyncdir(self, fh: Any, datasync: bool) -> None:
        pass

    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        s = pyfuse3.StatvfsData()
        used = sum(len(n.data) for n in self.inodes.values())
        s.f_bsize = s.f_frsize = 4096
        s.f_blocks = (1 << 30) // 4096 + (used + 4095) // 4096
        s.f_bfree = s.f_bavail = (1 << 30) // 4096
        s.f_files = 1_000_000 + len(self.inodes)
        s.f_ffree = s.f_favail = 1_000_000
        s.f_namemax = 255
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
