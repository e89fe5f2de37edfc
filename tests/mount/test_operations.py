"""Every handler reached by a real system call through a real mount, under trio and asyncio."""

from __future__ import annotations

import ctypes
import errno
import os
import stat

import pytest

import pyfuse3
from pyfuse3.testing import MountedFS

from ..util import eventually

pytestmark = pytest.mark.fuse

_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(src: str, dst: str, flags: int) -> None:
    if _libc.renameat2(-100, src.encode(), -100, dst.encode(), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


def read_file(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def test_lookup_getattr(memfs: MountedFS) -> None:
    write_file(memfs.path("f"), b"abc")
    st = os.stat(memfs.path("f"))
    assert stat.S_ISREG(st.st_mode) and st.st_size == 3
    with pytest.raises(FileNotFoundError):
        os.stat(memfs.path("missing"))
    assert memfs.ops.calls["lookup"] >= 2 and memfs.ops.calls["getattr"] >= 1


def test_create_write_read_flush_release_fsync(memfs: MountedFS) -> None:
    fd = os.open(memfs.path("f"), os.O_CREAT | os.O_RDWR, 0o640)
    try:
        assert os.write(fd, b"hello world") == 11
        os.fsync(fd)
        assert os.pread(fd, 5, 6) == b"world"
    finally:
        os.close(fd)
    calls = memfs.ops.calls
    assert calls["create"] == 1 and calls["write"] >= 1 and calls["fsync"] == 1
    assert calls["flush"] >= 1
    assert eventually(lambda: calls["release"] == 1)  # RELEASE is sent after close() returns
    assert stat.S_IMODE(os.stat(memfs.path("f")).st_mode) == 0o640
    assert read_file(memfs.path("f")) == b"hello world"
    assert memfs.ops.calls["open"] == 1 and memfs.ops.calls["read"] >= 1


def test_large_write_and_read_back(memfs: MountedFS) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    write_file(memfs.path("big"), data)
    assert read_file(memfs.path("big")) == data


def test_unlink(memfs: MountedFS) -> None:
    write_file(memfs.path("f"), b"x")
    os.unlink(memfs.path("f"))
    assert not os.path.exists(memfs.path("f"))
    assert memfs.ops.calls["unlink"] == 1


def test_mkdir_rmdir(memfs: MountedFS) -> None:
    os.mkdir(memfs.path("d"), 0o750)
    st = os.stat(memfs.path("d"))
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o750
    write_file(memfs.path("d", "f"), b"")
    with pytest.raises(OSError) as e:
        os.rmdir(memfs.path("d"))
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(memfs.path("d", "f"))
    os.rmdir(memfs.path("d"))
    assert not os.path.exists(memfs.path("d"))


def test_symlink_readlink(memfs: MountedFS) -> None:
    os.symlink("some/target", memfs.path("link"))
    assert os.readlink(memfs.path("link")) == "some/target"
    assert stat.S_ISLNK(os.lstat(memfs.path("link")).st_mode)
    assert memfs.ops.calls["symlink"] == 1 and memfs.ops.calls["readlink"] == 1


def test_link(memfs: MountedFS) -> None:
    write_file(memfs.path("a"), b"data")
    os.link(memfs.path("a"), memfs.path("b"))
    assert os.stat(memfs.path("a")).st_nlink == 2
    assert read_file(memfs.path("b")) == b"data"
    assert os.stat(memfs.path("a")).st_ino == os.stat(memfs.path("b")).st_ino


def test_mknod(memfs: MountedFS) -> None:
    os.mkfifo(memfs.path("fifo"), 0o600)
    assert stat.S_ISFIFO(os.stat(memfs.path("fifo")).st_mode)
    os.mknod(memfs.path("dev"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
    st = os.stat(memfs.path("dev"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def test_rename_plain_noreplace_exchange(memfs: MountedFS) -> None:
    write_file(memfs.path("a"), b"A")
    write_file(memfs.path("b"), b"B")
    with pytest.raises(FileExistsError):
        renameat2(memfs.path("a"), memfs.path("b"), pyfuse3.RENAME_NOREPLACE)
    renameat2(memfs.path("a"), memfs.path("b"), pyfuse3.RENAME_EXCHANGE)
    assert read_file(memfs.path("a")) == b"B" and read_file(memfs.path("b")) == b"A"
    renameat2(memfs.path("a"), memfs.path("c"), pyfuse3.RENAME_NOREPLACE)
    assert read_file(memfs.path("c")) == b"B" and not os.path.exists(memfs.path("a"))
    os.rename(memfs.path("c"), memfs.path("b"))  # replaces b
    assert read_file(memfs.path("b")) == b"B" and not os.path.exists(memfs.path("c"))
    # The kernel refuses NOREPLACE onto a cached name itself; the other three reach the handler.
    assert memfs.ops.rename_flags == [pyfuse3.RENAME_EXCHANGE, pyfuse3.RENAME_NOREPLACE, 0]


def test_setattr_chmod_chown_truncate_utime(memfs: MountedFS) -> None:
    write_file(memfs.path("f"), b"0123456789")
    os.chmod(memfs.path("f"), 0o604)
    os.chown(memfs.path("f"), 1234, 5678)
    os.truncate(memfs.path("f"), 4)
    os.utime(memfs.path("f"), ns=(-1_500_000_000, 1_234_567_890_123_456_789))
    st = os.stat(memfs.path("f"))
    assert stat.S_IMODE(st.st_mode) == 0o604
    assert (st.st_uid, st.st_gid, st.st_size) == (1234, 5678, 4)
    assert st.st_atime_ns == -1_500_000_000
    assert st.st_mtime_ns == 1_234_567_890_123_456_789
    assert read_file(memfs.path("f")) == b"0123"


def test_utime_now(memfs: MountedFS) -> None:
    write_file(memfs.path("f"), b"")
    os.utime(memfs.path("f"), ns=(0, 0))
    os.utime(memfs.path("f"))  # UTIME_NOW for both
    assert os.stat(memfs.path("f")).st_mtime_ns > 1_600_000_000 * 10**9


def test_statfs(memfs: MountedFS) -> None:
    st = os.statvfs(memfs.mountpoint)
    assert (st.f_bsize, st.f_blocks, st.f_bfree, st.f_bavail) == (4096, 1000, 600, 500)
    assert (st.f_files, st.f_ffree, st.f_namemax) == (100, 90, 255)


def test_xattrs_including_size_probe(memfs: MountedFS) -> None:
    path = memfs.path("f")
    write_file(path, b"")
    big = b"v" * 5000  # larger than os.getxattr's first guess: forces ERANGE + size probe
    os.setxattr(path, "user.small", b"1")
    os.setxattr(path, "user.big", big)
    assert os.getxattr(path, "user.small") == b"1"
    assert os.getxattr(path, "user.big") == big
    assert sorted(os.listxattr(path)) == ["user.big", "user.small"]
    with pytest.raises(FileExistsError):
        os.setxattr(path, "user.small", b"2", os.XATTR_CREATE)
    with pytest.raises(OSError) as e:
        os.setxattr(path, "user.none", b"2", os.XATTR_REPLACE)
    assert e.value.errno == pyfuse3.ENOATTR
    os.removexattr(path, "user.small")
    with pytest.raises(OSError) as e:
        os.getxattr(path, "user.small")
    assert e.value.errno == pyfuse3.ENOATTR
    assert pyfuse3.getxattr(path, "user.big") == big
    pyfuse3.setxattr(path, "user.other", b"o")
    assert os.getxattr(path, "user.other") == b"o"


def test_access(memfs: MountedFS) -> None:
    write_file(memfs.path("f"), b"")
    os.chmod(memfs.path("f"), 0o444)
    assert os.access(memfs.path("f"), os.R_OK)
    assert not os.access(memfs.path("f"), os.W_OK)
    assert memfs.ops.calls["access"] >= 2


def test_fsyncdir_releasedir(memfs: MountedFS) -> None:
    fd = os.open(memfs.mountpoint, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    assert memfs.ops.calls["fsyncdir"] == 1
    assert memfs.ops.calls["opendir"] == 1
    assert eventually(lambda: memfs.ops.calls["releasedir"] == 1)


def test_readdir_larger_than_one_buffer(memfs: MountedFS) -> None:
    names = {f"file-with-a-longish-name-{i:05d}" for i in range(3000)}
    for name in names:
        os.mknod(memfs.path(name), stat.S_IFREG | 0o644)
    listed = os.listdir(memfs.mountpoint)
    assert len(listed) == len(names) and set(listed) == names
    assert memfs.ops.calls["readdir"] > 2  # several kernel buffers were needed
    assert sorted(pyfuse3.listdir(memfs.mountpoint)) == sorted(names)


def test_request_context(memfs: MountedFS) -> None:
    old = os.umask(0o027)
    try:
        os.mkdir(memfs.path("d"))
    finally:
        os.umask(old)
    ctx = memfs.ops.contexts[-1]
    assert (ctx.uid, ctx.gid, ctx.pid) == (os.getuid(), os.getgid(), os.getpid())
    assert ctx.umask == 0o027


def test_syncfs_and_sup_groups(memfs: MountedFS) -> None:
    pyfuse3.syncfs(memfs.mountpoint)
    assert pyfuse3.get_sup_groups(os.getpid()) == set(os.getgroups())
