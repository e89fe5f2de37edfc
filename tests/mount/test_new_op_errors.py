"""Error paths of the operations added after pyfuse3 3.4, table-driven, under every backend:
a FUSEError's errno reaches the caller, an unexpected exception or a wrong result answers EIO
(logged once), and the default (ENOSYS) lets the kernel fall back where it can."""

from __future__ import annotations

import errno
import fcntl
import os
import select
import stat
import struct
from collections.abc import Callable
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import FUSEError
from pyfuse3.testing import mounted

from ..memfs import MemFS, Node
from .test_connection import DOUBLE
from .test_file_ops import libc_fallocate

pytestmark = pytest.mark.fuse


async def _never_awaited() -> None:
    pass


def _coroutine() -> Any:
    return _never_awaited()  # returned instead of awaited: "is an 'await' missing?"


#: operation -> (the call that reaches it, what the handler returns when it is "wrong")
CALLS: dict[str, tuple[Callable[[int, int], object], Callable[[], object]]] = {
    "fallocate": (lambda fd, fd2: libc_fallocate(fd, 0, 0, 4096), _coroutine),
    "lseek": (lambda fd, fd2: os.lseek(fd, 0, os.SEEK_DATA), lambda: "x"),
    "copy_file_range": (lambda fd, fd2: os.copy_file_range(fd, fd2, 10, 0, 0), lambda: "x"),
    "flock": (lambda fd, fd2: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB), _coroutine),
    "getlk": (lambda fd, fd2: fcntl.fcntl(fd, fcntl.F_GETLK,
                                          struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)),
              lambda: 5),
    "setlk": (lambda fd, fd2: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB), _coroutine),
    "ioctl": (lambda fd, fd2: fcntl.ioctl(fd, DOUBLE, 1), lambda: "text"),
}


class MisbehavingFS(MemFS):
    """Every newer operation fails as ``self.how`` says: errno, raise or wrong."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.reached: set[str] = set()

    def misbehave(self, op: str) -> Any:
        self.reached.add(op)
        if self.how == "errno":
            raise FUSEError(errno.EPERM)
        if self.how == "raise":
            raise RuntimeError(f"{op} broke")
        return (CALLS[op][1] if op in CALLS else lambda: "x")()

    async def fallocate(self, fh: Any, mode: int, offset: int, length: int) -> None:
        return self.misbehave("fallocate")  # type: ignore[no-any-return]

    async def lseek(self, fh: Any, offset: int, whence: int) -> int:
        return self.misbehave("lseek")  # type: ignore[no-any-return]

    async def copy_file_range(self, fh_in: Any, off_in: int, fh_out: Any, off_out: int,
                              length: int, flags: int) -> int:
        return self.misbehave("copy_file_range")  # type: ignore[no-any-return]

    async def flock(self, fh: Any, owner: int, operation: int) -> None:
        if operation != fcntl.LOCK_UN:  # the unlock at close must work
            return self.misbehave("flock")  # type: ignore[no-any-return]
        return None

    async def getlk(self, fh: Any, owner: int, lock: pyfuse3.FileLock) -> pyfuse3.FileLock:
        return self.misbehave("getlk")  # type: ignore[no-any-return]

    async def setlk(self, fh: Any, owner: int, lock: pyfuse3.FileLock, wait: bool) -> None:
        if lock.type != fcntl.F_UNLCK:
            return self.misbehave("setlk")  # type: ignore[no-any-return]
        return None

    async def ioctl(self, fh: Any, cmd: int, arg: int, in_data: bytes, out_size: int,
                    flags: int) -> Any:
        return self.misbehave("ioctl")

    async def poll(self, inode: Any, fh: Any, poll_handle: Any, ctx: Any) -> int:
        return self.misbehave("poll")  # type: ignore[no-any-return]


def _files(ops: MemFS) -> None:
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644, data=b"x" * 4096))
    ops.add(pyfuse3.ROOT_INODE, b"g", Node(stat.S_IFREG | 0o644))


@pytest.mark.fuse_errors_expected
@pytest.mark.parametrize("how, expected", [("errno", errno.EPERM), ("raise", errno.EIO),
                                           ("wrong", errno.EIO)])
def test_errors_reach_the_caller(backend: str, how: str, expected: int,
                                 caplog: pytest.LogCaptureFixture) -> None:
    ops = MisbehavingFS(how)
    _files(ops)
    with mounted(ops, backend=backend) as m:
        fd, fd2 = os.open(m.path("f"), os.O_RDWR), os.open(m.path("g"), os.O_RDWR)
        try:
            got = {}
            for op, (call, _) in CALLS.items():
                try:
                    call(fd, fd2)
                    got[op] = 0
                except OSError as e:
                    got[op] = e.errno
            p = select.poll()
            p.register(fd, select.POLLIN)
            revents = p.poll(5000)  # a poll() error: the kernel reports POLLERR
        finally:
            os.close(fd)
            os.close(fd2)
        assert os.listdir(m.mountpoint)  # still serving
    assert got == dict.fromkeys(CALLS, expected)
    assert revents == [(fd, select.POLLERR)]
    assert ops.reached == set(CALLS) | {"poll"}
    if how != "errno":
        for op in ops.reached:  # each failure is logged once, by name
            records = [r for r in caplog.records if r.getMessage().startswith(f"{op}() ")]
            assert len(records) == 1, op


def test_defaults_let_the_kernel_fall_back(backend: str) -> None:
    ops = MemFS()
    _files(ops)
    with mounted(ops, backend=backend) as m:
        fd, fd2 = os.open(m.path("f"), os.O_RDWR), os.open(m.path("g"), os.O_RDWR)
        try:
            with pytest.raises(OSError) as info:
                libc_fallocate(fd, 0, 0, 8192)
            assert info.value.errno == errno.EOPNOTSUPP
            assert os.lseek(fd, 0, os.SEEK_DATA) == 0  # the whole file counts as data
            assert os.lseek(fd, 0, os.SEEK_HOLE) == 4096
            assert os.copy_file_range(fd, fd2, 100, 0, 0) == 100  # copied by read + write
            assert os.pread(fd2, 200, 0) == b"x" * 100
            p = select.poll()
            p.register(fd, select.POLLIN | select.POLLOUT)
            assert p.poll(5000) == [(fd, select.POLLIN | select.POLLOUT)]  # always ready
            with pytest.raises(OSError) as info:
                fcntl.ioctl(fd, DOUBLE, 1)
            assert info.value.errno == errno.ENOTTY
        finally:
            os.close(fd)
            os.close(fd2)
