"""POSIX behaviour of examples/tmpfs.py, through a real mount, as root and as other users:
pyfuse3.testing.posix, and what goes beyond it (statfs, freeing inodes, sparse files)."""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from pyfuse3.testing import posix

from ..util import eventually

pytestmark = pytest.mark.fuse
MIB = 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)


@pytest.fixture
def d(mnt: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh world-writable directory per test."""
    return posix.fresh_directory(mnt, request.node.name)


def inode_count(mnt: Path) -> int:
    st = os.statvfs(mnt)
    return st.f_files - st.f_ffree


@pytest.mark.parametrize("check", posix.CHECKS.values(), ids=list(posix.CHECKS))
def test_posix(check: Callable[[Path], None], d: Path) -> None:
    """pyfuse3.testing.posix, every check (also run on passthroughfs, sharedfs and a plain
    directory)."""
    check(d)


# ---------------------------------------------------------------- beyond the POSIX checks

def test_fuse_mounts_are_nodev(d: Path) -> None:
    os.mknod(d / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert posix.errno_name(lambda: open(d / "null", "wb")) == "EACCES"


def test_statfs(mnt: Path) -> None:
    st = os.statvfs(mnt)
    assert st.f_namemax == 255 and st.f_bsize == 4096 and st.f_bfree > 0


def test_an_open_unlinked_file_is_freed_after_its_release(d: Path, mnt: Path) -> None:
    """Beyond posix's open_unlinked_file_stays_usable: what the file takes is kept while it is
    open and freed after its release and the kernel's forget."""
    count = inode_count(mnt)
    fd = os.open(d / "tmp", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.unlink(d / "tmp")
        assert inode_count(mnt) == count + 1  # not freed while open
    finally:
        os.close(fd)
    assert eventually(lambda: inode_count(mnt) == count)


def test_lookup_counts_reach_zero_after_forget(d: Path, mnt: Path) -> None:
    count = inode_count(mnt)
    for i in range(50):
        (d / f"f{i}").write_bytes(b"x")
    os.listdir(d)
    for i in range(50):
        os.unlink(d / f"f{i}")
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("2")  # the kernel forgets everything unused
    assert eventually(lambda: inode_count(mnt) == count)


def _rss_kib(mnt: Path) -> int:
    """Resident memory of the file-system script serving ``mnt`` (found by its command line)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if any(a.endswith(b".py") for a in cmdline) and os.fsencode(mnt) in cmdline:
                status = Path(f"/proc/{pid}/status").read_text()
                return int(status.split("VmRSS:")[1].split()[0])
        except (OSError, IndexError):
            continue
    raise AssertionError(f"no file-system process serves {mnt}")


def test_a_petabyte_truncate_is_a_sparse_file(d: Path, mnt: Path) -> None:
    size = 999_999_999_999_999
    f = d / "huge"
    f.write_bytes(b"start")
    rss = _rss_kib(mnt)
    os.truncate(f, size)
    st = f.stat()
    assert st.st_size == size and st.st_blocks == 8  # only the page written holds memory
    fd = os.open(f, os.O_RDWR)
    try:
        assert os.pread(fd, 8, 0) == b"start\0\0\0"
        assert os.pread(fd, 65536, size // 2) == bytes(65536)
        os.pwrite(fd, b"end", size - 3)
        assert os.pread(fd, 10, size - 3) == b"end"
        assert os.lseek(fd, 4096, os.SEEK_DATA) == (size - 3) // 4096 * 4096
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 4096
    finally:
        os.close(fd)
    assert f.stat().st_blocks == 16
    assert _rss_kib(mnt) - rss < 32 * 1024
    f.unlink()


def test_fallocate_punches_real_holes_and_copy_keeps_them(d: Path) -> None:
    src, dst = d / "src", d / "dst"
    src.write_bytes(b"a" * 4096 * 4)
    fd = os.open(src, os.O_RDWR)
    out = os.open(dst, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert _libc.fallocate(fd, 0x01 | 0x02, 4096, 8192) == 0  # KEEP_SIZE | PUNCH_HOLE
        assert os.fstat(fd).st_blocks == 16 and os.fstat(fd).st_size == 4096 * 4
        assert os.pread(fd, 4096 * 4, 0) == b"a" * 4096 + bytes(8192) + b"a" * 4096
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 4096
        assert os.lseek(fd, 4096, os.SEEK_DATA) == 4096 * 3
        assert _libc.fallocate(fd, 0x10, 4096 * 4, 4096) == 0  # ZERO_RANGE extends the file
        assert os.fstat(fd).st_size == 4096 * 5
        assert os.copy_file_range(fd, out, 4096 * 5, 0, 0) == 4096 * 5
        assert os.pread(out, 4096 * 5, 0) == os.pread(fd, 4096 * 5, 0)
        assert os.fstat(out).st_blocks == 16  # the holes were copied as holes
    finally:
        os.close(fd)
        os.close(out)


