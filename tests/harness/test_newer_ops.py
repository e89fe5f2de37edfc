"""The operations beyond pyfuse3 3.4, kernel-free: each reply kind byte for byte, including
bmap and ioctl, which a mount reaches only with a block device or a custom command."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from typing import Any

import pyfuse3
from pyfuse3.testing import Harness
from pyfuse3.testing._harness import layout

from ..memfs import MemFS, Node

ROOT = pyfuse3.ROOT_INODE


class NewerFS(MemFS):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Any, ...]] = []

    async def lseek(self, fh: Any, offset: int, whence: int) -> int:
        self.seen.append(("lseek", fh, offset, whence))
        return offset + 4096

    async def getlk(self, fh: Any, owner: int, lock: pyfuse3.FileLock) -> pyfuse3.FileLock:
        self.seen.append(("getlk", owner, lock))
        return pyfuse3.FileLock(fcntl.F_WRLCK, 10, 20, 4242)

    async def bmap(self, inode: Any, blocksize: int, idx: int) -> int:
        self.seen.append(("bmap", inode, blocksize, idx))
        return idx * 2

    async def ioctl(self, fh: Any, cmd: int, arg: int, in_data: bytes, out_size: int,
                    flags: int) -> tuple[int, bytes]:
        self.seen.append(("ioctl", cmd, arg, in_data, out_size))
        return 7, in_data.upper()

    async def copy_file_range(self, fh_in: Any, off_in: int, fh_out: Any, off_out: int,
                              length: int, flags: int) -> int:
        self.seen.append(("copy_file_range", fh_in, off_in, fh_out, off_out, length))
        return length - 1

    async def fallocate(self, fh: Any, mode: int, offset: int, length: int) -> None:
        self.seen.append(("fallocate", fh, mode, offset, length))
        if mode:
            raise pyfuse3.FUSEError(errno.EOPNOTSUPP)


def test_reply_kinds_of_the_newer_operations(fuse_harness: Any) -> None:
    ops = NewerFS()
    ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o644, data=b"x" * 100))

    async def check(h: Harness) -> None:
        f = await h.lookup(ROOT, b"f")
        fh = (await h.open(f.nodeid, os.O_RDWR)).fh
        out = await h.call("LSEEK", f.nodeid, layout("fuse_lseek_in").pack(
            fh=fh, offset=100, whence=os.SEEK_DATA))
        assert layout("fuse_lseek_out").unpack(out).offset == 4196
        out = await h.call("GETLK", f.nodeid, layout("fuse_lk_in").pack(
            fh=fh, owner=99, lk={"start": 0, "end": 49, "type": fcntl.F_RDLCK, "pid": 1}))
        lk = layout("fuse_lk_out").unpack(out).lk
        assert (lk.type, lk.start, lk.end, lk.pid) == (fcntl.F_WRLCK, 10, 29, 4242)
        out = await h.call("BMAP", f.nodeid, layout("fuse_bmap_in").pack(block=21,
                                                                         blocksize=4096))
        assert layout("fuse_bmap_out").unpack(out).block == 42
        out = await h.call("IOCTL", f.nodeid, layout("fuse_ioctl_in").pack(
            fh=fh, cmd=0xC0085001, arg=5, in_size=8, out_size=8) + b"abcdefgh")
        res = layout("fuse_ioctl_out").unpack(out)
        assert res.result == 7 and out[layout("fuse_ioctl_out").size:] == b"ABCDEFGH"
        out = await h.call("COPY_FILE_RANGE", f.nodeid, layout("fuse_copy_file_range_in").pack(
            fh_in=fh, off_in=1, nodeid_out=f.nodeid, fh_out=fh, off_out=50, len=10))
        assert layout("fuse_write_out").unpack(out).size == 9
        await h.call("FALLOCATE", f.nodeid, layout("fuse_fallocate_in").pack(
            fh=fh, offset=0, length=4096))
        try:
            await h.call("FALLOCATE", f.nodeid, layout("fuse_fallocate_in").pack(
                fh=fh, mode=0x10, length=1))
        except OSError as e:
            assert e.errno == errno.EOPNOTSUPP
        else:  # pragma: no cover
            raise AssertionError("FALLOCATE with a mode was not refused")

    fuse_harness(ops, check)
    kinds = [s[0] for s in ops.seen]
    assert kinds == ["lseek", "getlk", "bmap", "ioctl", "copy_file_range", "fallocate",
                     "fallocate"]
    assert ops.seen[1][1:] == (99, pyfuse3.FileLock(fcntl.F_RDLCK, 0, 50, 1))
    assert ops.seen[3][1:] == (0xC0085001, 5, b"abcdefgh", 8)
