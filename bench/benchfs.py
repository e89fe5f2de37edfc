#!/usr/bin/env python3
"""The benchmark file system, written against the public pyfuse3 API only.

``python bench/benchfs.py MOUNTPOINT trio|asyncio|uvloop`` runs unchanged on this project and on
upstream pyfuse3. A flat root holds 10,000 files of 4 KiB (``f00000`` ...), one 512 MiB file
``large`` whose bytes are computed from the offset, and a writable directory ``rw``. Nothing may
be cached by the kernel (timeouts 0, no keep_cache), so every client call reaches the server.
SIGTERM ends it (upstream's asyncio mode ignores that; the runner then unmounts).
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import stat
import sys

import sniffio
import trio

import pyfuse3
import pyfuse3.asyncio

ROOT, LARGE, RW, FIRST_SMALL, FIRST_RW = 1, 2, 3, 100, 1_000_000
N_SMALL, SMALL_SIZE, LARGE_SIZE = 10_000, 4096, 512 << 20
PERIOD = 1 << 20  # the large file repeats this pattern; slices of up to 1 MiB never wrap
PATTERN = memoryview(bytes((i % PERIOD) * 7 % 251 for i in range(2 * PERIOD)))
SMALL = bytes(range(256)) * (SMALL_SIZE // 256)
# BENCHFS_SUSPEND=1: getattr and lookup yield to the event loop once (as a handler that awaits
# I/O does), so the cost of suspending a handler can be measured against answering inline.
SUSPEND = os.environ.get("BENCHFS_SUSPEND") == "1"
# BENCHFS_REUSE_ATTRS=1: readdir reuses EntryAttributes built once instead of one per entry.
REUSE_ATTRS = os.environ.get("BENCHFS_REUSE_ATTRS") == "1"
# BENCHFS_BACKING=PATH: ``large`` serves that file's bytes, read into memory per request, or
# with BENCHFS_SPLICE=1 returned as a pyfuse3.FileRange (this project only) and spliced.
BACKING = os.environ.get("BENCHFS_BACKING")
SPLICE = os.environ.get("BENCHFS_SPLICE") == "1"


def attr(inode: int, mode: int, size: int) -> pyfuse3.EntryAttributes:
    a = pyfuse3.EntryAttributes()
    a.st_ino = inode
    a.st_mode = mode
    a.st_size = size
    a.st_nlink = 2 if stat.S_ISDIR(mode) else 1
    a.attr_timeout = a.entry_timeout = 0
    return a


async def yield_once() -> None:
    # not pyfuse3._backends: bench/ab.py runs this file against older trees too
    if sniffio.current_async_library() == "trio":
        await trio.sleep(0)
    else:
        await asyncio.sleep(0)


class BenchFS(pyfuse3.Operations):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        # The root listing, built once: rebuilding it per READDIRPLUS request (~300 of them
        # per listing) would make listing quadratic.
        self.listing = [(b"large", LARGE), (b"rw", RW)] + [
            (f"f{i:05d}".encode(), FIRST_SMALL + i) for i in range(N_SMALL)]
        self.listing_attrs: list[pyfuse3.EntryAttributes] = []
        self.rw: dict[bytes, int] = {}
        self.sizes: dict[int, int] = {}
        self.next_rw = FIRST_RW
        self.backing = os.open(BACKING, os.O_RDONLY) if BACKING else -1

    async def getattr(self, inode: int, ctx: object = None) -> pyfuse3.EntryAttributes:
        if SUSPEND and ctx is not None:
            await yield_once()
        if inode == ROOT or inode == RW:
            return attr(inode, stat.S_IFDIR | 0o777, 0)
        if inode == LARGE:
            return attr(inode, stat.S_IFREG | 0o644, LARGE_SIZE)
        if FIRST_SMALL <= inode < FIRST_SMALL + N_SMALL:
            return attr(inode, stat.S_IFREG | 0o644, SMALL_SIZE)
        if inode in self.sizes:
            return attr(inode, stat.S_IFREG | 0o644, self.sizes[inode])
        raise pyfuse3.FUSEError(errno.ENOENT)

    async def lookup(self, parent: int, name: bytes, ctx: object) -> pyfuse3.EntryAttributes:
        if SUSPEND:
            await yield_once()
        if parent == ROOT:
            if name == b"large":
                return await self.getattr(LARGE)
            if name == b"rw":
                return await self.getattr(RW)
            if len(name) == 6 and name[:1] == b"f" and name[1:].isdigit():
                i = int(name[1:])
                if i < N_SMALL:
                    return await self.getattr(FIRST_SMALL + i)
        elif parent == RW and name in self.rw:
            return await self.getattr(self.rw[name])
        raise pyfuse3.FUSEError(errno.ENOENT)

    async def opendir(self, inode: int, ctx: object) -> int:
        return inode

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        if fh != ROOT:
            return
        if REUSE_ATTRS:
            if not self.listing_attrs:
                self.listing_attrs = [await self.getattr(ino) for _, ino in self.listing]
            listing, attrs = self.listing, self.listing_attrs
            for i in range(start_id, len(listing)):
                if not pyfuse3.readdir_reply(token, listing[i][0], attrs[i], i + 1):
                    return
            return
        for i in range(start_id, len(self.listing)):
            name, inode = self.listing[i]
            if not pyfuse3.readdir_reply(token, name, await self.getattr(inode), i + 1):
                return

    async def releasedir(self, fh: int) -> None:
        pass

    async def open(self, inode: int, flags: int, ctx: object) -> pyfuse3.FileInfo:
        return pyfuse3.FileInfo(fh=inode, keep_cache=False)

    async def read(self, fh: int, off: int, size: int) -> object:
        if fh == LARGE:
            size = max(0, min(size, LARGE_SIZE - off))
            if self.backing >= 0:
                if SPLICE:
                    return pyfuse3.FileRange(self.backing, off, size)  # type: ignore[attr-defined]
                return os.pread(self.backing, size, off)
            start = off % PERIOD
            return PATTERN[start:start + size]
        return SMALL[off:off + size]

    async def create(self, parent: int, name: bytes, mode: int, flags: int,
                     ctx: object) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        if parent != RW:
            raise pyfuse3.FUSEError(errno.EACCES)
        inode, self.next_rw = self.next_rw, self.next_rw + 1
        self.rw[name] = inode
        self.sizes[inode] = 0
        return pyfuse3.FileInfo(fh=inode, keep_cache=False), await self.getattr(inode)

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        self.sizes[fh] = max(self.sizes.get(fh, 0), off + len(buf))
        return len(buf)

    async def unlink(self, parent: int, name: bytes, ctx: object) -> None:
        inode = self.rw.pop(name, None)
        if inode is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        self.sizes.pop(inode, None)

    async def flush(self, fh: int) -> None:
        pass

    async def release(self, fh: int) -> None:
        pass


def main() -> None:
    mountpoint, backend = sys.argv[1], sys.argv[2]
    if backend in ("asyncio", "uvloop"):
        pyfuse3.asyncio.enable()  # required by upstream; accepted by this project
    # a third argument "io_uring": serve through pyfuse3's own io_uring (this tree only)
    pyfuse3.init(BenchFS(), mountpoint, ["fsname=benchfs", *sys.argv[3:4]])
    signal.signal(signal.SIGTERM, lambda *_: pyfuse3.terminate())
    try:
        if backend == "trio":
            trio.run(pyfuse3.main)
        elif backend == "uvloop":
            import uvloop

            uvloop.run(pyfuse3.main())
        else:
            asyncio.run(pyfuse3.main())
    finally:
        pyfuse3.close()


if __name__ == "__main__":
    main()
