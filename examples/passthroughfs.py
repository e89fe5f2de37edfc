#!/usr/bin/env python3
"""Mirror a source directory: ``python examples/passthroughfs.py SOURCE MOUNTPOINT``.

Every operation is forwarded with the ``os`` module and answers with the same errno. Calls that
can block on the disk (read, write, fsync, open, create, readdir) run on worker threads, so
the event loop keeps serving other requests. Inode numbers are the source's own; the kernel's
cache timeouts are 0 by default (``--timeout`` to change), so changes made directly in the
source are always seen. Ctrl-C or SIGTERM unmounts.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import trio

import pyfuse3
from pyfuse3 import FUSEError

T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old: str, new: str, flags: int) -> None:
    """rename(2) with RENAME_NOREPLACE / RENAME_EXCHANGE (not in the os module)."""
    if _libc.renameat2(-100, os.fsencode(old), -100, os.fsencode(new), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), old)


async def blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run a call that may block on the disk in a worker thread."""
    return await trio.to_thread.run_sync(functools.partial(fn, *args))


class PassthroughFS(pyfuse3.Operations):
    """Forwards every operation to the same path below ``source``."""

    def __init__(self, source: str, timeout: float = 0.0) -> None:
        super().__init__()
        self.source = os.path.abspath(source)
        self.timeout = timeout
        self.root_ino = os.lstat(self.source).st_ino
        self.paths: dict[int, set[str]] = {pyfuse3.ROOT_INODE: {self.source}}
        self.lookups: Counter[int] = Counter()
        self.calls: Counter[str] = Counter()

    # ---- ownership
    def _give(self, target: str | int, ctx: Any) -> None:
        """Make the caller own what it created (a path, not followed, or an fd), as a local
        file system would; in a setgid directory the group stays the directory's. Only a
        server running as root can (else everything belongs to the server's user)."""
        if os.geteuid() != 0 or (ctx.uid == 0 and ctx.gid == 0):
            return
        st = os.fstat(target) if isinstance(target, int) else os.lstat(target)
        gid = -1 if st.st_gid != os.getegid() else ctx.gid  # inherited from a setgid parent
        if isinstance(target, int):
            os.fchown(target, ctx.uid, gid)
        else:
            os.chown(target, ctx.uid, gid, follow_symlinks=False)

    # ---- inodes and paths
    def inode_of(self, st: os.stat_result) -> int:
        return pyfuse3.ROOT_INODE if st.st_ino == self.root_ino else st.st_ino

    def path(self, inode: int) -> str:
        try:
            return next(iter(self.paths[inode]))
        except (KeyError, StopIteration):
            raise FUSEError(errno.ENOENT) from None

    def child(self, parent: int, name: bytes) -> str:
        return os.path.join(self.path(parent), os.fsdecode(name))

    def remember(self, path: str, st: os.stat_result) -> pyfuse3.EntryAttributes:
        """Record that the kernel now knows path's inode (one more lookup)."""
        inode = self.inode_of(st)
        self.paths.setdefault(inode, set()).add(path)
        self.lookups[inode] += 1
        return self.attr(st)

    def forget_path(self, path: str) -> None:
        for paths in self.paths.values():
            paths.discard(path)

    def attr(self, st: os.stat_result) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = self.inode_of(st)
        for name in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_rdev", "st_size",
                     "st_blksize", "st_blocks", "st_atime_ns", "st_mtime_ns", "st_ctime_ns"):
            setattr(a, name, getattr(st, name))
        a.entry_timeout = a.attr_timeout = self.timeout
        return a

    # ---- entries
    @pyfuse3.errors_as_fuse
    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        self.calls["lookup"] += 1
        path = self.child(parent_inode, name) if name != b"." else self.path(parent_inode)
        if name == b"..":
            path = os.path.dirname(self.path(parent_inode))
        return self.remember(path, os.lstat(path))

    async def forget(self, inode_list: Any) -> None:
        for inode, n in inode_list:
            self.lookups[inode] -= n
            if self.lookups[inode] <= 0 and inode != pyfuse3.ROOT_INODE:
                del self.lookups[inode]
                self.paths.pop(inode, None)

    @pyfuse3.errors_as_fuse
    async def getattr(self, inode: Any, ctx: Any = None) -> pyfuse3.EntryAttributes:
        self.calls["getattr"] += 1
        return self.attr(os.lstat(self.path(inode)))

    @pyfuse3.errors_as_fuse
    async def setattr(self, inode: Any, attr: Any, fields: Any, fh: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        path = self.path(inode)
        target: int | str = fh if fh is not None else path
        if fields.update_size:
            os.truncate(target, attr.st_size)
        if fields.update_mode:
            os.chmod(path, stat.S_IMODE(attr.st_mode), follow_symlinks=False) \
                if not stat.S_ISLNK(os.lstat(path).st_mode) else None
        if fields.update_uid or fields.update_gid:
            os.chown(path, attr.st_uid if fields.update_uid else -1,
                     attr.st_gid if fields.update_gid else -1, follow_symlinks=False)
        if fields.update_atime or fields.update_mtime:
            st = os.lstat(path)
            os.utime(path, ns=(attr.st_atime_ns if fields.update_atime else st.st_atime_ns,
                               attr.st_mtime_ns if fields.update_mtime else st.st_mtime_ns),
                     follow_symlinks=False)
        return await self.getattr(inode)

    @pyfuse3.errors_as_fuse
    async def readlink(self, inode: Any, ctx: Any) -> bytes:
        return os.fsencode(os.readlink(self.path(inode)))

    async def _made(self, path: str) -> pyfuse3.EntryAttributes:
        return self.remember(path, os.lstat(path))

    @pyfuse3.errors_as_fuse
    async def mknod(self, parent_inode: Any, name: Any, mode: Any, rdev: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        path = self.child(parent_inode, name)
        os.mknod(path, mode, rdev)
        self._give(path, ctx)
        return await self._made(path)

    @pyfuse3.errors_as_fuse
    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        path = self.child(parent_inode, name)
        os.mkdir(path, stat.S_IMODE(mode))
        self._give(path, ctx)
        return await self._made(path)

    @pyfuse3.errors_as_fuse
    async def symlink(self, parent_inode: Any, name: Any, target: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        path = self.child(parent_inode, name)
        os.symlink(os.fsdecode(target), path)
        self._give(path, ctx)
        return await self._made(path)

    @pyfuse3.errors_as_fuse
    async def link(self, inode: Any, new_parent_inode: Any, new_name: Any,
                   ctx: Any) -> pyfuse3.EntryAttributes:
        path = self.child(new_parent_inode, new_name)
        os.link(self.path(inode), path, follow_symlinks=False)
        return await self._made(path)

    @pyfuse3.errors_as_fuse
    async def unlink(self, parent_inode: Any, name: Any, ctx: Any) -> None:
        path = self.child(parent_inode, name)
        os.unlink(path)
        self.forget_path(path)

    @pyfuse3.errors_as_fuse
    async def rmdir(self, parent_inode: Any, name: Any, ctx: Any) -> None:
        path = self.child(parent_inode, name)
        os.rmdir(path)
        self.forget_path(path)

    @pyfuse3.errors_as_fuse
    async def rename(self, parent_inode_old: Any, name_old: Any, parent_inode_new: Any,
                     name_new: Any, flags: Any, ctx: Any) -> None:
        old, new = self.child(parent_inode_old, name_old), self.child(parent_inode_new, name_new)
        renameat2(old, new, flags)
        for paths in self.paths.values():
            if flags & pyfuse3.RENAME_EXCHANGE and (old in paths) != (new in paths):
                paths.symmetric_difference_update({old, new})
            elif old in paths:
                paths.discard(old)
                paths.add(new)
            elif new in paths:
                paths.discard(new)

    # ---- files
    @pyfuse3.errors_as_fuse
    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        fd = await blocking(os.open, self.path(inode), flags & ~os.O_CREAT)
        return pyfuse3.FileInfo(fh=fd, keep_cache=self.timeout > 0)

    @pyfuse3.errors_as_fuse
    async def create(self, parent_inode: Any, name: Any, mode: Any, flags: Any,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        path = self.child(parent_inode, name)
        fd = await blocking(os.open, path, flags | os.O_CREAT, stat.S_IMODE(mode))
        try:
            self._give(fd, ctx)
        except BaseException:
            os.close(fd)
            raise
        return (pyfuse3.FileInfo(fh=fd, keep_cache=self.timeout > 0),
                self.remember(path, os.fstat(fd)))

    @pyfuse3.errors_as_fuse
    async def read(self, fh: Any, off: int, size: int) -> bytes:
        self.calls["read"] += 1
        return await blocking(os.pread, fh, size, off)

    @pyfuse3.errors_as_fuse
    async def write(self, fh: Any, off: int, buf: bytes) -> int:
        return await blocking(os.pwrite, fh, buf, off)

    async def flush(self, fh: Any) -> None:
        pass  # writes went straight to the source file

    @pyfuse3.errors_as_fuse
    async def release(self, fh: Any) -> None:
        os.close(fh)

    @pyfuse3.errors_as_fuse
    async def fsync(self, fh: Any, datasync: bool) -> None:
        await blocking(os.fdatasync if datasync else os.fsync, fh)

    # ---- directories
    @pyfuse3.errors_as_fuse
    async def opendir(self, inode: Any, ctx: Any) -> int:
        path = self.path(inode)
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise FUSEError(errno.ENOTDIR)
        return inode

    @pyfuse3.errors_as_fuse
    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        self.calls["readdir"] += 1
        path = self.path(fh)
        # Sorted names give next_id values that stay valid between the kernel's calls.
        names = sorted(await blocking(os.listdir, path))
        for i, name in enumerate(names[start_id:], start_id):
            entry = os.path.join(path, name)
            try:
                st = os.lstat(entry)
            except FileNotFoundError:
                continue
            if not pyfuse3.readdir_reply(token, os.fsencode(name), self.attr(st), i + 1):
                break
            self.remember(entry, st)

    async def releasedir(self, fh: Any) -> None:
        pass

    @pyfuse3.errors_as_fuse
    async def fsyncdir(self, fh: Any, datasync: bool) -> None:
        fd = os.open(self.path(fh), os.O_RDONLY | os.O_DIRECTORY)
        try:
            await blocking(os.fsync, fd)
        finally:
            os.close(fd)

    @pyfuse3.errors_as_fuse
    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        st = os.statvfs(self.source)
        out = pyfuse3.StatvfsData()
        for name in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                     "f_ffree", "f_favail", "f_namemax"):
            setattr(out, name, getattr(st, name))
        return out

    # ---- extended attributes
    @pyfuse3.errors_as_fuse
    async def setxattr(self, inode: Any, name: Any, value: Any, ctx: Any) -> None:
        os.setxattr(self.path(inode), name, value, follow_symlinks=False)

    @pyfuse3.errors_as_fuse
    async def getxattr(self, inode: Any, name: Any, ctx: Any) -> bytes:
        return os.getxattr(self.path(inode), name, follow_symlinks=False)

    @pyfuse3.errors_as_fuse
    async def listxattr(self, inode: Any, ctx: Any) -> list[bytes]:
        return [os.fsencode(n) for n in os.listxattr(self.path(inode), follow_symlinks=False)]

    @pyfuse3.errors_as_fuse
    async def removexattr(self, inode: Any, name: Any, ctx: Any) -> None:
        os.removexattr(self.path(inode), name, follow_symlinks=False)


def main() -> None:
    from _cli import parse_args, serve

    args = parse_args(__doc__ or "", with_source=True)
    serve(PassthroughFS(args.source, timeout=args.timeout), args, "passthroughfs")


if __name__ == "__main__":
    main()
