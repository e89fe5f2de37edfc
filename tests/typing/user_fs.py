"""User-style code that must pass ``mypy --strict`` against pyfuse3's types."""

from __future__ import annotations

import errno

import trio

import pyfuse3
import pyfuse3.cache


class TypedFS(pyfuse3.Operations):
    async def getattr(self, inode: pyfuse3.InodeT,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        attr = pyfuse3.EntryAttributes()
        attr.st_ino = inode
        attr.st_mtime_ns = 1_000
        if inode != pyfuse3.ROOT_INODE:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return attr

    async def readdir(self, fh: pyfuse3.FileHandleT, start_id: int,
                      token: pyfuse3.ReaddirToken) -> None:
        pyfuse3.readdir_reply(token, pyfuse3.FileNameT(b"x"), pyfuse3.EntryAttributes(), 1)

    async def open(self, inode: pyfuse3.InodeT, flags: pyfuse3.FlagT,
                   ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        await pyfuse3.cache.invalidate_inode(inode, attr_only=True)
        handle = pyfuse3.invalidate_entry_async(pyfuse3.ROOT_INODE, b"x", ignore_enoent=True)
        handle.add_done_callback(lambda h: None)
        return pyfuse3.FileInfo(fh=pyfuse3.FileHandleT(inode), keep_cache=False)

    @pyfuse3.uninterruptible
    async def unlink(self, parent_inode: pyfuse3.InodeT, name: pyfuse3.FileNameT,
                     ctx: pyfuse3.RequestContext) -> None:
        await trio.sleep(0)

    @pyfuse3.interruptible
    async def read(self, fh: pyfuse3.FileHandleT, off: int,
                   size: int) -> bytes | pyfuse3.FileRange:
        if size > 8192:
            return pyfuse3.FileRange(int(fh), off, size)
        return b"x"[off:off + size]


def run(mountpoint: str) -> None:
    pyfuse3.init(TypedFS(), mountpoint, pyfuse3.default_options | {"fsname=typed"})
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close(unmount=True)


@pyfuse3.uninterruptible
class SteadyFS(TypedFS):
    """Every handler it defines runs to its end when the kernel interrupts."""


@pyfuse3.interruptible
class StreamFS(TypedFS):
    """Any signal of its caller cancels a handler it defines."""


steady: TypedFS = SteadyFS()
stream: TypedFS = StreamFS()
