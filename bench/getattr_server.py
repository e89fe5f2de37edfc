#!/usr/bin/env python3
"""A one-file file system with zero cache timeouts: every fstat() is one GETATTR request.

``python bench/getattr_server.py MOUNTPOINT trio|asyncio``; SIGTERM unmounts.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import stat
import sys

import trio

import pyfuse3
import pyfuse3.asyncio

FILE = pyfuse3.InodeT(2)


class ZeroCacheFS(pyfuse3.Operations):
    """Root plus one empty file; nothing may be cached by the kernel."""

    async def getattr(self, inode: pyfuse3.InodeT, ctx: object = None) -> pyfuse3.EntryAttributes:
        attr = pyfuse3.EntryAttributes()
        attr.st_ino = inode
        attr.st_mode = (stat.S_IFDIR | 0o755) if inode == pyfuse3.ROOT_INODE else \
            (stat.S_IFREG | 0o644)
        attr.attr_timeout = attr.entry_timeout = 0
        return attr

    async def lookup(self, parent_inode: pyfuse3.InodeT, name: bytes,
                     ctx: object) -> pyfuse3.EntryAttributes:
        if name != b"file":
            raise pyfuse3.FUSEError(errno.ENOENT)
        return await self.getattr(FILE)

    async def open(self, inode: pyfuse3.InodeT, flags: int, ctx: object) -> pyfuse3.FileInfo:
        return pyfuse3.FileInfo(fh=inode)

    async def release(self, fh: int) -> None:
        pass


def main() -> None:
    mountpoint, backend = sys.argv[1], sys.argv[2]
    if backend == "asyncio":
        pyfuse3.asyncio.enable()  # required by upstream pyfuse3; accepted (a no-op) by ours
    pyfuse3.init(ZeroCacheFS(), mountpoint, ["fsname=bench"])
    signal.signal(signal.SIGTERM, lambda *_: pyfuse3.terminate())
    try:
        if backend == "trio":
            trio.run(pyfuse3.main)
        else:
            asyncio.run(pyfuse3.main())
    finally:
        pyfuse3.close()


if __name__ == "__main__":
    main()
