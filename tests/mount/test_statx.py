"""statx(2) with the birth time through a real mount (libfuse 3.18, Linux 6.6): statx()."""

from __future__ import annotations

import errno
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import pyfuse3
from pyfuse3._opcodes import OPERATIONS
from pyfuse3.testing import mounted

from ..memfs import MemFS
from ..util import AT_STATX_FORCE_SYNC, STATX_BASIC_STATS, STATX_BTIME, statx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from tmpfs import TmpFS

pytestmark = pytest.mark.fuse
IN_LIBFUSE = any(o.name == "statx" and o.lowlevel for o in OPERATIONS)
KERNEL = tuple(int(n) for n in re.findall(r"\d+", platform.release())[:2])
needs_statx = pytest.mark.skipif(
    not IN_LIBFUSE or KERNEL < (6, 6),
    reason=f"built against libfuse {pyfuse3.LIBFUSE_VERSION} (statx: 3.18), Linux "
           f"{platform.release()} (FUSE_STATX: 6.6)")


class CountingTmpFS(TmpFS):
    def __init__(self) -> None:
        super().__init__()
        self.statx_calls = 0

    async def statx(self, inode: Any, mask: int, flags: int, fh: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        self.statx_calls += 1
        return await super().statx(inode, mask, flags, fh, ctx)


@needs_statx
def test_statx_reports_the_birth_time_and_the_kernel_caches_it(backend: str) -> None:
    ops = CountingTmpFS()
    with mounted(ops, backend=backend) as fs:
        path = fs.path("f")
        with open(path, "wb") as f:
            f.write(b"abc")
        ino = os.stat(path).st_ino
        sx = statx(path)
        asked = ops.statx_calls
        assert asked >= 1 and sx.mask & STATX_BTIME
        assert (sx.btime_ns, sx.size, sx.ino) == (ops.inodes[ino].btime, 3, ino)
        # cached for attr_timeout, birth time included: no new request
        again = statx(path)
        assert ops.statx_calls == asked and again.mask & STATX_BTIME
        assert again.btime_ns == sx.btime_ns
        # only a caller that wants the birth time makes the kernel ask statx()
        statx(path, STATX_BASIC_STATS, AT_STATX_FORCE_SYNC)
        assert ops.statx_calls == asked
        # a forced sync, then an invalidation, each make it ask again
        statx(path, flags=AT_STATX_FORCE_SYNC)
        assert ops.statx_calls == asked + 1
        fs.mount.invalidate_inode(ino, attr_only=True)
        after = statx(path)
        assert ops.statx_calls == asked + 2 and after.btime_ns == sx.btime_ns


class CountingMemFS(MemFS):
    def __init__(self) -> None:
        super().__init__()
        self.statx_calls = self.getattr_calls = 0

    async def getattr(self, inode: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        self.getattr_calls += 1
        return await super().getattr(inode, ctx)

    async def statx(self, inode: Any, mask: int, flags: int, fh: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        self.statx_calls += 1
        return await super().statx(inode, mask, flags, fh, ctx)  # the default: ENOSYS


def test_without_statx_the_kernel_falls_back_to_getattr(backend: str) -> None:
    """The default (ENOSYS, or a libfuse without the operation): statx(2) still answers, from
    getattr(), without a birth time; the kernel does not ask statx() again on this mount."""
    ops = CountingMemFS()
    with mounted(ops, backend=backend) as fs:
        with open(fs.path("f"), "wb") as f:
            f.write(b"12345")
        for _ in range(3):
            before = ops.getattr_calls
            sx = statx(fs.path("f"), flags=AT_STATX_FORCE_SYNC)
            assert not sx.mask & STATX_BTIME
            assert sx.mask & STATX_BASIC_STATS == STATX_BASIC_STATS
            assert sx.size == 5 and ops.getattr_calls > before
        assert ops.statx_calls == (1 if IN_LIBFUSE and KERNEL >= (6, 6) else 0)


@needs_statx
@pytest.mark.fuse_errors_expected
def test_a_statx_result_of_the_wrong_type_answers_eio(backend: str) -> None:
    class Wrong(MemFS):
        async def statx(self, inode: Any, mask: int, flags: int, fh: Any, ctx: Any) -> Any:
            return {"st_birthtime_ns": 1}

    with mounted(Wrong(), backend=backend) as fs:
        with pytest.raises(OSError) as info:
            statx(fs.mountpoint, flags=AT_STATX_FORCE_SYNC)
        assert info.value.errno == errno.EIO
        assert os.listdir(fs.mountpoint) == []  # still serving
