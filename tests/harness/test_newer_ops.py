"""The operations beyond pyfuse3 3.4, kernel-free: each reply kind byte for byte, including
bmap and ioctl, which a mount reaches only with a block device or a custom command."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import _opcodes
from pyfuse3._wire import STRUCTS
from pyfuse3.testing import Harness

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

    async def setlk(self, fh: Any, owner: int, lock: pyfuse3.FileLock, wait: bool) -> None:
        self.seen.append(("setlk", owner, lock, wait))

    async def flock(self, fh: Any, owner: int, operation: int) -> None:
        self.seen.append(("flock", owner, operation))

    async def fsyncdir(self, fh: Any, datasync: bool) -> None:
        self.seen.append(("fsyncdir", datasync))

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
        assert await h.lseek(f.nodeid, fh, 100, os.SEEK_DATA) == 4196
        lk = await h.getlk(f.nodeid, fh, 99, fcntl.F_RDLCK, 0, 49, pid=1)
        assert (lk.type, lk.start, lk.end, lk.pid) == (fcntl.F_WRLCK, 10, 29, 4242)
        assert await h.bmap(f.nodeid, 21, 4096) == 42
        assert await h.ioctl(f.nodeid, fh, 0xC0085001, 5, b"abcdefgh", 8) == (7, b"ABCDEFGH")
        assert await h.copy_file_range(f.nodeid, fh, 1, f.nodeid, fh, 50, 10) == 9
        await h.fallocate(f.nodeid, fh, 0, 4096)
        try:
            await h.fallocate(f.nodeid, fh, 0, 1, mode=0x10)
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


def test_typed_lock_and_fsyncdir_calls(fuse_harness: Any) -> None:
    """setlk/setlkw, flock (a BSD lock on the wire) and fsyncdir reach their handlers with the
    arguments the kernel would send."""
    ops = NewerFS()
    ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o644, data=b""))

    async def check(h: Harness) -> None:
        f = await h.lookup(ROOT, b"f")
        fh = (await h.open(f.nodeid, os.O_RDWR)).fh
        await h.setlk(f.nodeid, fh, 7, fcntl.F_WRLCK, 5, 14, pid=3)
        await h.setlk(f.nodeid, fh, 7, fcntl.F_UNLCK, 5, 14, pid=3, wait=True)
        await h.setlk(f.nodeid, fh, 8, fcntl.F_RDLCK, flock=True)
        dfh = (await h.opendir(ROOT)).fh
        await h.fsyncdir(ROOT, dfh, datasync=True)

    fuse_harness(ops, check)
    assert ops.seen == [
        ("setlk", 7, pyfuse3.FileLock(fcntl.F_WRLCK, 5, 10, 3), False),
        ("setlk", 7, pyfuse3.FileLock(fcntl.F_UNLCK, 5, 10, 3), True),
        ("flock", 8, fcntl.LOCK_SH | fcntl.LOCK_NB),  # SETLK, not SETLKW: no waiting
        ("fsyncdir", True),
    ]


def test_tmpfile_is_answered_like_create(fuse_harness: Any) -> None:
    """TMPFILE reaches tmpfile() with a libfuse that has it (3.18); an older one answers
    ENOSYS itself, which the kernel turns into EOPNOTSUPP for the caller."""
    seen: list[tuple[int, int]] = []

    class Tmp(MemFS):
        async def tmpfile(self, parent_inode: Any, mode: Any, flags: Any,
                          ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
            seen.append((parent_inode, mode))
            attr = self.add(parent_inode, b"#hidden", Node(mode))
            return pyfuse3.FileInfo(fh=attr.st_ino), attr

    in_libfuse = any(o.name == "tmpfile" and o.lowlevel for o in _opcodes.OPERATIONS)

    async def check(h: Harness) -> None:
        if not in_libfuse:
            try:
                await h.tmpfile(ROOT)
            except OSError as e:
                assert e.errno == errno.ENOSYS
            else:  # pragma: no cover
                raise AssertionError("TMPFILE answered without libfuse 3.18")
            return
        entry, opened = await h.tmpfile(ROOT, mode=stat.S_IFREG | 0o600)
        assert entry.attr.mode == stat.S_IFREG | 0o600 and opened.fh == entry.nodeid

    fuse_harness(Tmp(), check)
    assert seen == ([(ROOT, stat.S_IFREG | 0o600)] if in_libfuse else [])


STATX_IN_LIBFUSE = any(o.name == "statx" and o.lowlevel for o in _opcodes.OPERATIONS)
needs_statx = pytest.mark.skipif(
    not STATX_IN_LIBFUSE or "fuse_statx_in" not in STRUCTS,
    reason=f"built against libfuse {pyfuse3.LIBFUSE_VERSION} (statx: 3.18)")


class BirthFS(MemFS):
    """statx() answers getattr's attributes, with a birth time for inodes in ``births``."""

    def __init__(self) -> None:
        super().__init__()
        self.births: dict[int, int] = {}
        self.seen: list[tuple[Any, ...]] = []

    async def statx(self, inode: Any, mask: int, flags: int, fh: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        self.seen.append((inode, mask, flags, fh))
        attr = await self.getattr(inode, ctx)
        if inode in self.births:
            attr.st_birthtime_ns = self.births[inode]
        return attr


@needs_statx
def test_statx_replies_carry_the_birth_time_and_every_basic_field(fuse_harness: Any) -> None:
    ops = BirthFS()
    birth = 1_234_567_890_123_456_789

    async def check(h: Harness) -> None:
        attr = ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o640, b"12345"))
        ops.births[attr.st_ino] = birth
        out = await h.statx(attr.st_ino, pyfuse3.STATX_BTIME, flags=0x2000, fh=77)
        sx = out.stat
        assert sx.mask == pyfuse3.STATX_BASIC_STATS | pyfuse3.STATX_BTIME
        assert (sx.btime.tv_sec, sx.btime.tv_nsec) == divmod(birth, 10**9)
        assert (sx.mode, sx.size, sx.ino, sx.nlink) == (stat.S_IFREG | 0o640, 5,
                                                        attr.st_ino, 1)
        assert (sx.mtime.tv_sec, sx.mtime.tv_nsec) == divmod(attr.st_mtime_ns, 10**9)
        assert out.attr_valid == int(attr.attr_timeout)
        # no birth time known: the mask says so (the caller sees no stx_btime)
        root = await h.statx(ROOT, pyfuse3.STATX_BTIME)
        assert root.stat.mask == pyfuse3.STATX_BASIC_STATS and root.stat.btime.tv_sec == 0

    fuse_harness(ops, check)
    assert ops.seen[0] == (ops.seen[0][0], pyfuse3.STATX_BTIME, 0x2000, 77)
    assert ops.seen[1] == (ROOT, pyfuse3.STATX_BTIME, 0, None)


@pytest.mark.fuse_errors_expected
@pytest.mark.parametrize("call", ["getattr", pytest.param("statx", marks=needs_statx)])
def test_a_root_that_is_not_a_directory_is_refused(fuse_harness: Any, caplog: Any,
                                                   call: str) -> None:
    """Sent on, the kernel marks the root bad and fails every later call on the mount (the
    mount test shows it); pyfuse3 answers EIO instead, and other inodes' are unaffected."""
    class RootFile(BirthFS):
        async def getattr(self, inode: Any, ctx: Any) -> pyfuse3.EntryAttributes:
            attr = await super().getattr(inode, ctx)
            attr.st_mode = stat.S_IFREG | (attr.st_mode & 0o7777)
            return attr

    ops = RootFile()

    async def check(h: Harness) -> None:
        f = ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o640)).st_ino
        ask = (lambda ino: h.getattr(ino)) if call == "getattr" else \
            (lambda ino: h.statx(ino, pyfuse3.STATX_BTIME))
        with pytest.raises(OSError) as info:
            await ask(ROOT)
        assert info.value.errno == errno.EIO
        await ask(f)  # a regular file may be one

    fuse_harness(ops, check)
    assert f"{call}() handler returned st_mode 0o100777 for the root, which must be a " \
        "directory (stat.S_IFDIR)" in caplog.text


@needs_statx
@pytest.mark.fuse_errors_expected
def test_statx_default_and_wrong_results(fuse_harness: Any, caplog: Any) -> None:
    """The default answers ENOSYS (the kernel then falls back to GETATTR); a result that is
    not EntryAttributes answers EIO with one logged error naming what was expected."""
    class Wrong(MemFS):
        async def statx(self, inode: Any, mask: int, flags: int, fh: Any, ctx: Any) -> Any:
            return "not attributes"

    async def default(h: Harness) -> None:
        with pytest.raises(OSError) as info:
            await h.statx(ROOT, pyfuse3.STATX_BTIME)
        assert info.value.errno == errno.ENOSYS

    async def wrong(h: Harness) -> None:
        with pytest.raises(OSError) as info:
            await h.statx(ROOT, pyfuse3.STATX_BTIME)
        assert info.value.errno == errno.EIO
        assert (await h.getattr(ROOT)).attr.ino == ROOT  # still serving

    fuse_harness(MemFS(), default)
    fuse_harness(Wrong(), wrong)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "statx() handler returned str, expected EntryAttributes" in str(errors[0].exc_info[1])


def test_statx_without_libfuse_support_is_refused_by_libfuse(fuse_harness: Any) -> None:
    """A libfuse older than 3.18 never calls statx(): it answers ENOSYS itself."""
    if STATX_IN_LIBFUSE or "fuse_statx_in" not in STRUCTS:
        pytest.skip("libfuse calls statx() here" if STATX_IN_LIBFUSE
                    else "this build's header has no fuse_statx_in")
    ops = BirthFS()

    async def check(h: Harness) -> None:
        with pytest.raises(OSError) as info:
            await h.statx(ROOT, pyfuse3.STATX_BTIME)
        assert info.value.errno == errno.ENOSYS

    fuse_harness(ops, check)
    assert ops.seen == []
