"""fallocate, lseek (SEEK_DATA/SEEK_HOLE), copy_file_range and flock through a real mount."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import subprocess
import sys
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import FUSEError
from pyfuse3._backends import current
from pyfuse3.testing import mounted

from ..memfs import MemFS, Node
from ..util import eventually, run_with_timeout

pytestmark = pytest.mark.fuse
PAGE = 4096
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 0x01, 0x02


class FileOpsFS(MemFS):
    """MemFS with the newer file operations; a page of zeros counts as a hole."""

    def __init__(self) -> None:
        super().__init__()
        self.calls_seen: list[str] = []
        self.locks: dict[int, tuple[int, int]] = {}  # inode -> (owner, LOCK_SH/LOCK_EX)
        self.waiting = 0  # flock() calls that began to wait for a lock
        self.lseek_answer: int | None = None  # what lseek() returns instead of searching

    async def fallocate(self, fh: Any, mode: int, offset: int, length: int) -> None:
        self.calls_seen.append("fallocate")
        n = self.node(fh)
        if mode == 0:
            n.data = n.data.ljust(offset + length, b"\0")
        elif mode == FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE:
            end = min(offset + length, len(n.data))
            n.data = n.data[:offset] + b"\0" * max(end - offset, 0) + n.data[end:]
        else:
            raise FUSEError(errno.EOPNOTSUPP)

    async def lseek(self, fh: Any, offset: int, whence: int) -> int:
        self.calls_seen.append("lseek")
        if self.lseek_answer is not None:
            return self.lseek_answer
        data = self.node(fh).data
        if offset >= len(data):
            raise FUSEError(errno.ENXIO)
        want_data = whence == os.SEEK_DATA
        pos = offset - offset % PAGE
        while pos < len(data):
            is_data = any(data[pos:pos + PAGE])
            if is_data == want_data:
                return max(pos, offset)
            pos += PAGE
        if want_data:
            raise FUSEError(errno.ENXIO)
        return len(data)  # the implicit hole at the end

    async def copy_file_range(self, fh_in: Any, off_in: int, fh_out: Any, off_out: int,
                              length: int, flags: int) -> int:
        self.calls_seen.append("copy_file_range")
        chunk = self.node(fh_in).data[off_in:off_in + length]
        out = self.node(fh_out)
        head = out.data[:off_out].ljust(off_out, b"\0")
        out.data = head + chunk + out.data[off_out + len(chunk):]
        return len(chunk)

    async def flock(self, fh: Any, owner: int, operation: int) -> None:
        self.calls_seen.append("flock")
        kind, waited = operation & ~fcntl.LOCK_NB, False
        if kind == fcntl.LOCK_UN:
            if self.locks.get(fh, (None,))[0] == owner:
                del self.locks[fh]
            return
        while fh in self.locks and self.locks[fh][0] != owner and (
                kind == fcntl.LOCK_EX or self.locks[fh][1] == fcntl.LOCK_EX):
            if operation & fcntl.LOCK_NB:
                raise FUSEError(errno.EWOULDBLOCK)
            if not waited:
                waited, self.waiting = True, self.waiting + 1
            await current().sleep(0.01)  # a signal to the caller cancels this wait
        self.locks[fh] = (owner, kind)


@pytest.fixture
def fs(backend: str) -> Any:
    ops = FileOpsFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644, data=b"a" * PAGE * 3))
    with mounted(ops, backend=backend) as m:
        yield m


def test_fallocate_extends_and_punches(fs: Any) -> None:
    fd = os.open(fs.path("f"), os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, PAGE * 5)
        assert os.fstat(fd).st_size == PAGE * 5
        libc_fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, PAGE, PAGE)
        assert os.pread(fd, PAGE * 3, 0) == b"a" * PAGE + b"\0" * PAGE + b"a" * PAGE
        with pytest.raises(OSError) as info:
            libc_fallocate(fd, 0x10, 0, PAGE)  # ZERO_RANGE: this file system refuses it
        assert info.value.errno == errno.EOPNOTSUPP
    finally:
        os.close(fd)
    assert "fallocate" in fs.ops.calls_seen


def libc_fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    if libc.fallocate(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def test_lseek_finds_data_and_holes(fs: Any) -> None:
    with open(fs.path("g"), "wb") as fh:
        fh.write(b"\0" * PAGE * 2 + b"x" * PAGE + b"\0" * PAGE)
    fd = os.open(fs.path("g"), os.O_RDONLY)
    try:
        assert os.lseek(fd, 0, os.SEEK_DATA) == PAGE * 2
        assert os.lseek(fd, PAGE * 2, os.SEEK_HOLE) == PAGE * 3
        with pytest.raises(OSError) as info:
            os.lseek(fd, PAGE * 4, os.SEEK_DATA)
        assert info.value.errno == errno.ENXIO
    finally:
        os.close(fd)
    assert "lseek" in fs.ops.calls_seen


@pytest.mark.fuse_errors_expected
def test_a_negative_offset_from_lseek_is_a_handler_failure(
        fs: Any, caplog: pytest.LogCaptureFixture) -> None:
    """It went to the kernel, whose caller got EINVAL as if the call had been wrong."""
    fd = os.open(fs.path("f"), os.O_RDONLY)
    try:
        fs.ops.lseek_answer = -1
        with pytest.raises(OSError) as info:
            os.lseek(fd, 0, os.SEEK_DATA)
        assert info.value.errno == errno.EIO
        fs.ops.lseek_answer = PAGE
        assert os.lseek(fd, 0, os.SEEK_DATA) == PAGE  # still serving
    finally:
        os.close(fd)
    assert [str(r.exc_info[1]) for r in caplog.records if r.exc_info] == [
        "lseek() handler returned -1, expected an offset from 0 to 9223372036854775807"]


def test_copy_file_range_is_done_by_the_file_system(fs: Any) -> None:
    src = os.open(fs.path("f"), os.O_RDONLY)
    dst = os.open(fs.path("copy"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        assert os.copy_file_range(src, dst, PAGE * 2, PAGE, 0) == PAGE * 2
    finally:
        os.close(src)
        os.close(dst)
    assert "copy_file_range" in fs.ops.calls_seen
    with open(fs.path("copy"), "rb") as fh:
        assert fh.read() == b"a" * PAGE * 2


LOCKER = """
import errno, fcntl, os, struct, sys, time
path, kind, mode, hold = sys.argv[1:]
fd = os.open(path, os.O_RDWR)
if mode == "getlk":
    res = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
    typ, _, _, _, pid = struct.unpack("hhqqi", res)
    print(typ, pid, flush=True)
    sys.exit(0)
lock = fcntl.flock if kind == "flock" else fcntl.lockf
try:
    lock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if mode == "nb" else 0))
    print("locked", flush=True)
except OSError as e:
    print(errno.errorcode[e.errno], flush=True)
    sys.exit(0)
time.sleep(float(hold))
"""


def _locker(path: str, kind: str, mode: str, hold: float = 0) -> subprocess.Popen[str]:
    """A process taking an exclusive ``flock`` or ``lockf`` lock (``mode``: nb, wait or
    getlk) and holding it ``hold`` seconds; it prints "locked" or the errno name."""
    return subprocess.Popen([sys.executable, "-c", LOCKER, path, kind, mode, str(hold)],
                            stdout=subprocess.PIPE, text=True)


def test_flock_conflicts_release_on_close_and_interrupt(fs: Any) -> None:
    holder = _locker(fs.path("f"), "flock", "nb", 30)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        other = _locker(fs.path("f"), "flock", "nb")
        assert other.communicate(timeout=10)[0].strip() == errno.errorcode[errno.EWOULDBLOCK]
        waiter = _locker(fs.path("f"), "flock", "wait")
        assert eventually(lambda: fs.ops.waiting == 1, timeout=10)
        assert waiter.poll() is None  # blocked in the file system's flock()
        waiter.terminate()  # the signal interrupts the request: the handler is cancelled
        waiter.wait(10)
    finally:
        holder.kill()  # its close releases the lock
        holder.wait(10)
    again = _locker(fs.path("f"), "flock", "nb")
    assert again.communicate(timeout=10)[0].strip() == "locked"
    assert "flock" in fs.ops.calls_seen


class RecordLockFS(MemFS):
    """Whole-file POSIX locks per inode, keyed by owner (ranges ignored: enough for fcntl)."""

    def __init__(self) -> None:
        super().__init__()
        self.locks: dict[int, dict[int, pyfuse3.FileLock]] = {}
        self.unlocks = 0
        self.waiting = 0  # setlk() calls that began to wait for a lock

    def _conflict(self, fh: int, owner: int, lock: pyfuse3.FileLock) -> pyfuse3.FileLock | None:
        for other, held in self.locks.get(fh, {}).items():
            if other != owner and fcntl.F_WRLCK in (held.type, lock.type):
                return held
        return None

    async def getlk(self, fh: Any, owner: int, lock: pyfuse3.FileLock) -> pyfuse3.FileLock:
        held = self._conflict(fh, owner, lock)
        return held if held is not None else pyfuse3.FileLock(fcntl.F_UNLCK, 0, 0, 0)

    async def setlk(self, fh: Any, owner: int, lock: pyfuse3.FileLock, wait: bool) -> None:
        if lock.type == fcntl.F_UNLCK:
            self.unlocks += 1
            self.locks.get(fh, {}).pop(owner, None)
            return
        waited = False
        while self._conflict(fh, owner, lock) is not None:
            if not wait:
                raise FUSEError(errno.EAGAIN)
            if not waited:
                waited, self.waiting = True, self.waiting + 1
            await current().sleep(0.01)
        self.locks.setdefault(fh, {})[owner] = lock


def test_posix_locks_conflict_report_and_release(backend: str) -> None:
    ops = RecordLockFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))
    with mounted(ops, backend=backend) as fs:
        holder = _locker(fs.path("f"), "lockf", "nb", 30)
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            other = _locker(fs.path("f"), "lockf", "nb")
            assert other.communicate(timeout=10)[0].strip() in ("EAGAIN", "EACCES")
            query = _locker(fs.path("f"), "lockf", "getlk")
            assert query.communicate(timeout=10)[0].split() == [str(fcntl.F_WRLCK),
                                                                str(holder.pid)]
            waiter = _locker(fs.path("f"), "lockf", "wait")
            assert eventually(lambda: ops.waiting == 1, timeout=10)
            assert waiter.poll() is None  # F_SETLKW waits in the file system's setlk()
            waiter.terminate()  # its signal interrupts the request
            assert waiter.wait(10) != 0
        finally:
            holder.kill()  # its close releases the lock: setlk(F_UNLCK) before flush()
            holder.wait(10)
        again = _locker(fs.path("f"), "lockf", "nb")
        assert again.communicate(timeout=10)[0].strip() == "locked"
        assert ops.unlocks >= 1


@pytest.mark.parametrize("lock", [fcntl.flock, fcntl.lockf], ids=["flock", "lockf"])
def test_without_lock_handlers_the_kernel_keeps_locks_locally(backend: str, lock: Any) -> None:
    """MemFS overrides neither flock() nor getlk/setlk: locking works, without ENOSYS."""
    ops = MemFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))
    with mounted(ops, backend=backend) as m:
        fd = os.open(m.path("f"), os.O_RDWR)
        try:
            run_with_timeout(lambda: lock(fd, fcntl.LOCK_EX), timeout=10)
        finally:
            os.close(fd)
