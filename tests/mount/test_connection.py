"""ioctl, bmap, destroy, plain and automatic readdir, and connection tuning at INIT, through
real mounts."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import FUSEError
from pyfuse3.testing import mounted

from ..memfs import MemFS, Node

pytestmark = pytest.mark.fuse
MiB = 1 << 20


def _ioc(direction: int, nr: int, size: int) -> int:
    return direction << 30 | size << 16 | ord("P") << 8 | nr


ADD_ONE = _ioc(3, 1, 8)      # _IOWR: a u64 in, the u64 plus one out
DOUBLE = _ioc(0, 2, 0)       # _IO: the integer argument doubled, as ioctl's return value
TOO_LONG = _ioc(2, 3, 4)     # _IOR of 4 bytes; the handler returns 8
FAILING = _ioc(0, 4, 0)      # the handler raises FUSEError(EPERM)
BROKEN = _ioc(0, 5, 0)       # the handler raises RuntimeError
WRONG_TYPE = _ioc(0, 6, 0)   # the handler returns a str


class IoctlFS(MemFS):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int, bytes, int]] = []

    async def ioctl(self, fh: Any, cmd: int, arg: int, in_data: bytes, out_size: int,
                    flags: int) -> bytes | int | tuple[int, bytes]:
        self.seen.append((cmd, arg, in_data, out_size))
        if cmd == ADD_ONE:
            return struct.pack("Q", struct.unpack("Q", in_data)[0] + 1)
        if cmd == DOUBLE:
            return arg * 2
        if cmd == TOO_LONG:
            return b"12345678"
        if cmd == FAILING:
            raise FUSEError(errno.EPERM)
        if cmd == BROKEN:
            raise RuntimeError("ioctl broke")
        if cmd == WRONG_TYPE:
            return "text"  # type: ignore[return-value]
        raise FUSEError(errno.ENOTTY)


@pytest.fixture
def ioctl_fs(backend: str) -> Iterator[Any]:
    ops = IoctlFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))
    with mounted(ops, backend=backend) as m:
        yield m


def test_ioctl_in_and_out_data(ioctl_fs: Any) -> None:
    fd = os.open(ioctl_fs.path("f"), os.O_RDWR)
    try:
        out = fcntl.ioctl(fd, ADD_ONE, struct.pack("Q", 41))
        assert struct.unpack("Q", out)[0] == 42
        assert fcntl.ioctl(fd, DOUBLE, 21) == 42
    finally:
        os.close(fd)
    seen = ioctl_fs.ops.seen
    assert seen[0][0] == ADD_ONE and seen[0][2] == struct.pack("Q", 41) and seen[0][3] == 8
    assert seen[1][:2] == (DOUBLE, 21)


@pytest.mark.fuse_errors_expected
def test_ioctl_errors(ioctl_fs: Any, caplog: pytest.LogCaptureFixture) -> None:
    fd = os.open(ioctl_fs.path("f"), os.O_RDWR)
    try:
        for cmd, arg, err in ((TOO_LONG, b"\0" * 4, errno.EIO), (FAILING, 0, errno.EPERM),
                              (BROKEN, 0, errno.EIO), (WRONG_TYPE, 0, errno.EIO)):
            with pytest.raises(OSError) as info:
                fcntl.ioctl(fd, cmd, arg)
            assert info.value.errno == err, hex(cmd)
        assert fcntl.ioctl(fd, DOUBLE, 4) == 8  # still serving
    finally:
        os.close(fd)
    text = caplog.text
    assert "ioctl() handler returned 8 bytes, more than the 4" in text
    assert "ioctl broke" in text
    assert "ioctl() handler returned str, expected bytes (output, result 0)" in text


class DestroyFS(MemFS):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.destroyed = 0

    def destroy(self) -> None:
        self.destroyed += 1
        if self.fail:
            raise RuntimeError("destroy broke")


def test_destroy_is_called_once_when_the_session_ends(backend: str) -> None:
    ops = DestroyFS()
    with mounted(ops, backend=backend) as m:
        os.listdir(m.mountpoint)
        assert ops.destroyed == 0
    assert ops.destroyed == 1


@pytest.mark.fuse_errors_expected
def test_a_failing_destroy_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    ops = DestroyFS(fail=True)
    with mounted(ops):
        pass
    assert ops.destroyed == 1
    assert "destroy() handler failed" in caplog.text and "destroy broke" in caplog.text


class BmapFS(MemFS):
    async def bmap(self, inode: Any, blocksize: int, idx: int) -> int:
        self.calls["bmap"] += 1
        if idx == 99:
            raise FUSEError(errno.EINVAL)
        return 1000 + idx


@pytest.fixture
def loop_device() -> Iterator[str]:
    with tempfile.NamedTemporaryFile(prefix="pyfuse3-blk-") as img:
        img.truncate(MiB)
        try:
            dev = subprocess.run(["losetup", "-f", "--show", img.name], capture_output=True,
                                 text=True, check=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError) as e:
            pytest.skip(f"no loop device for a blkdev mount: {e}")
        try:
            yield dev
        finally:
            subprocess.run(["losetup", "-d", dev], check=False, timeout=30)


def test_bmap_on_a_blkdev_mount(loop_device: str, backend: str) -> None:
    ops = BmapFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644, data=b"x" * 8192))
    FIBMAP = 1
    with mounted(ops, backend=backend,
                 options={"blkdev", f"fsname={loop_device}", "blksize=4096"}) as m:
        fd = os.open(m.path("f"), os.O_RDONLY)
        try:
            out = fcntl.ioctl(fd, FIBMAP, struct.pack("i", 1))
            assert struct.unpack("i", out)[0] == 1001
            # an error answer: the kernel's FIBMAP reports block 0 ("no mapping")
            assert struct.unpack("i", fcntl.ioctl(fd, FIBMAP, struct.pack("i", 99)))[0] == 0
        finally:
            os.close(fd)
    assert ops.calls["bmap"] == 2


# -- readdir: plain, plus and the kernel's choice --------------------------------------------

class ListFS(MemFS):
    N = 300  # more than one reply holds

    def __init__(self) -> None:
        super().__init__()
        self.plus: list[bool] = []
        for i in range(self.N):
            mode = stat.S_IFDIR | 0o755 if i % 2 else stat.S_IFREG | 0o644
            self.add(pyfuse3.ROOT_INODE, f"e{i:03}".encode(), Node(mode))

    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        self.plus.append(token.plus)
        await super().readdir(fh, start_id, token)


def _listing(m: Any) -> dict[str, bool]:
    with os.scandir(m.mountpoint) as it:
        return {e.name: e.is_dir(follow_symlinks=False) for e in it}


@pytest.mark.parametrize("how", ["default", "option", "hook"])
def test_readdir_plus_or_plain(backend: str, how: str) -> None:
    ops = ListFS()
    before = sum(ops.lookups.values())
    options = set(pyfuse3.default_options)
    if how == "option":
        options.add("readdirplus=no")
    elif how == "hook":
        ops.init_connection = lambda conn: conn.want.discard("readdirplus")  # type: ignore
    with mounted(ops, backend=backend, options=options) as m:
        listing = _listing(m)
    assert listing == {f"e{i:03}": bool(i % 2) for i in range(ListFS.N)}
    assert len(ops.plus) > 1
    assert set(ops.plus) == {how == "default"}
    assert sum(ops.lookups.values()) - before == (ListFS.N if how == "default" else 0)


def test_readdirplus_auto_lets_the_kernel_choose() -> None:
    ops = ListFS()
    with mounted(ops, options=set(pyfuse3.default_options) | {"readdirplus=auto"}) as m:
        assert len(_listing(m)) == ListFS.N
    # the kernel asks for attributes at the start of a listing, then only names
    assert ops.plus[0] is True and False in ops.plus


# -- connection tuning ---------------------------------------------------------------------

class SizesFS(MemFS):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[int] = []
        self.reads: list[int] = []
        self.conn: pyfuse3.ConnectionInfo | None = None
        self.add(pyfuse3.ROOT_INODE, b"big", Node(stat.S_IFREG | 0o644, data=b"r" * MiB))
        self.add(pyfuse3.ROOT_INODE, b"link", Node(stat.S_IFLNK | 0o777, target=b"big"))

    def init_connection(self, conn: pyfuse3.ConnectionInfo) -> None:
        self.conn = conn

    async def write(self, fh: Any, off: int, buf: bytes) -> int:
        self.writes.append(len(buf))
        return await super().write(fh, off, buf)

    async def read(self, fh: Any, off: int, size: int) -> bytes:
        self.reads.append(size)
        return await super().read(fh, off, size)


def _write_and_read(m: Any) -> None:
    with open(m.path("w"), "wb", buffering=0) as fh:
        fh.write(b"w" * MiB)
    with open(m.path("big"), "rb", buffering=0) as fh:
        while fh.read(4096):  # small reads: the kernel's readahead decides the READ sizes
            pass


def test_default_limits_are_large() -> None:
    ops = SizesFS()
    with mounted(ops) as m:
        _write_and_read(m)
    assert max(ops.writes) > 65536 and max(ops.reads) > 16384
    assert ops.conn is not None and "readdirplus" in ops.conn.want
    assert ops.conn.capable >= ops.conn.want and ops.conn.proto_major == 7


def test_max_write_and_max_readahead_options() -> None:
    ops = SizesFS()
    with mounted(ops, options=set(pyfuse3.default_options) | {
            "max_write=65536", "max_readahead=16384"}) as m:
        _write_and_read(m)
    assert max(ops.writes) == 65536 and sum(ops.writes) == MiB
    assert max(ops.reads) <= 16384
    assert ops.conn is not None and ops.conn.max_write == 65536


def test_init_connection_sets_limits() -> None:
    ops = SizesFS()

    def tune(conn: pyfuse3.ConnectionInfo) -> None:
        conn.max_write = 32768
        conn.max_background = 7
        conn.congestion_threshold = 5

    ops.init_connection = tune  # type: ignore[method-assign]
    with mounted(ops) as m:
        _write_and_read(m)
        conn_dir = f"/sys/fs/fuse/connections/{os.minor(os.stat(m.mountpoint).st_dev)}"
        if os.path.isdir(conn_dir):
            with open(f"{conn_dir}/max_background") as fh:
                assert fh.read().strip() == "7"
            with open(f"{conn_dir}/congestion_threshold") as fh:
                assert fh.read().strip() == "5"
    assert max(ops.writes) == 32768


class TimesFS(MemFS):
    def __init__(self) -> None:
        super().__init__()
        self.mtimes: list[int] = []

    async def setattr(self, inode: Any, attr: Any, fields: Any, fh: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        if fields.update_mtime:
            self.mtimes.append(attr.st_mtime_ns)
        return await super().setattr(inode, attr, fields, fh, ctx)


@pytest.mark.parametrize("gran", [None, 1_000_000_000])
def test_time_gran_option(gran: int | None) -> None:
    ops = TimesFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))
    extra = {f"time_gran={gran}"} if gran else set()
    with mounted(ops, options=set(pyfuse3.default_options) | extra) as m:
        os.utime(m.path("f"), ns=(1_500_000_000_123_456_789, 1_600_000_000_987_654_321))
    # the kernel rounds times it is given down to the granularity the file system declared
    assert ops.mtimes == [1_600_000_000_000_000_000 if gran else 1_600_000_000_987_654_321]


@pytest.mark.parametrize("cache", [False, True])
def test_cache_symlinks_capability(cache: bool) -> None:
    ops = SizesFS()
    if cache:
        ops.init_connection = lambda conn: conn.want.add("cache_symlinks")  # type: ignore
    with mounted(ops) as m:
        for _ in range(3):
            assert os.readlink(m.path("link")) == "big"
    assert ops.calls["readlink"] == (1 if cache else 3)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.want.add("bogus"), "unknown capabilities ['bogus']"),
    (lambda c: setattr(c, "max_write", -1), "ConnectionInfo.max_write must be an int"),
    (lambda c: setattr(c, "max_read", 4096), "max_read is set with the max_read= mount option"),
])
def test_a_bad_init_connection_fails_main(edit: Any, message: str) -> None:
    ops = MemFS()
    ops.init_connection = edit  # type: ignore[method-assign]
    with pytest.raises((RuntimeError, ValueError)) as info:
        with mounted(ops) as m:
            os.listdir(m.mountpoint)
    chain = [info.value, info.value.__cause__]
    assert any(message in str(e) for e in chain if e is not None), chain


def test_a_capability_the_kernel_lacks_fails_main() -> None:
    ops = MemFS()
    lacking: list[str] = []

    def ask(conn: pyfuse3.ConnectionInfo) -> None:
        missing = set(pyfuse3.CAPABILITIES) - conn.capable
        if missing:
            lacking.append(sorted(missing)[0])
            conn.want.add(lacking[0])

    ops.init_connection = ask  # type: ignore[method-assign]
    try:
        with mounted(ops) as m:
            os.listdir(m.mountpoint)
    except (RuntimeError, ValueError) as e:
        assert lacking and "the kernel does not offer" in str(e) + str(e.__cause__)
    else:
        assert not lacking


@pytest.mark.parametrize("option, message", [
    ("max_readahead=lots", "libfuse refused a connection option"),
    ("max_write=lots", "max_write must be an int from 4096"),
    ("readdirplus=sometimes", "readdirplus must be yes, no or auto"),
])
def test_a_malformed_connection_option_is_refused(option: str, message: str) -> None:
    mountpoint = tempfile.mkdtemp(prefix="pyfuse3-test-")
    try:
        with pytest.raises(ValueError, match=message):
            pyfuse3.init(MemFS(), mountpoint, {option})
        assert not os.path.ismount(mountpoint)
    finally:
        os.rmdir(mountpoint)
