"""The hello file system shared by hello.py (trio) and hello_asyncio.py (asyncio).

A read-only root directory holding one file, ``message``.
"""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3

MESSAGE = b"hello, world\n"


class HelloFS(pyfuse3.Operations):
    """A root directory with one read-only file."""

    FILE_INODE = pyfuse3.InodeT(pyfuse3.ROOT_INODE + 1)
    FILE_NAME = pyfuse3.FileNameT(b"message")

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def getattr(self, inode: pyfuse3.InodeT,
                      ctx: pyfuse3.RequestContext | None = None) -> pyfuse3.EntryAttributes:
        attr = pyfuse3.EntryAttributes()
        if inode == pyfuse3.ROOT_INODE:
            attr.st_mode = stat.S_IFDIR | 0o755
            attr.st_nlink = 2
        elif inode == self.FILE_INODE:
            attr.st_mode = stat.S_IFREG | 0o644
            attr.st_size = len(MESSAGE)
        else:
            raise pyfuse3.FUSEError(errno.ENOENT)
        attr.st_ino = inode
        attr.st_uid, attr.st_gid = os.getuid(), os.getgid()
        return attr

    async def lookup(self, parent_inode: pyfuse3.InodeT, name: pyfuse3.FileNameT,
                     ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if parent_inode == pyfuse3.ROOT_INODE and name == self.FILE_NAME:
            return await self.getattr(self.FILE_INODE)
        if name in (b".", b".."):
            return await self.getattr(pyfuse3.ROOT_INODE)
        raise pyfuse3.FUSEError(errno.ENOENT)

    async def opendir(self, inode: pyfuse3.InodeT,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.FileHandleT:
        if inode != pyfuse3.ROOT_INODE:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        return pyfuse3.FileHandleT(inode)

    async def readdir(self, fh: pyfuse3.FileHandleT, start_id: int,
                      token: pyfuse3.ReaddirToken) -> None:
        if start_id == 0:
            pyfuse3.readdir_reply(token, self.FILE_NAME, await self.getattr(self.FILE_INODE), 1)

    async def open(self, inode: pyfuse3.InodeT, flags: pyfuse3.FlagT,
                   ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        if inode != self.FILE_INODE:
            raise pyfuse3.FUSEError(errno.ENOENT)
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise pyfuse3.FUSEError(errno.EACCES)
        return pyfuse3.FileInfo(fh=pyfuse3.FileHandleT(inode))

    async def read(self, fh: pyfuse3.FileHandleT, off: int, size: int) -> bytes:
        self.reads += 1
        return MESSAGE[off:off + size]
