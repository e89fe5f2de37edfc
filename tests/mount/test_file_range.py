"""read() may return a FileRange: bytes of an open file spliced to the kernel."""

from __future__ import annotations

import errno
import logging
import mmap
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

import pyfuse3
from pyfuse3.testing import MountedFS, mounted

from ..util import RINGS

pytestmark = pytest.mark.fuse

MIB = 1 << 20
DATA = os.urandom(3 * MIB + 123)
NAMES = {b"big": 2, b"oversize": 3, b"closed": 4}
NOT_OPEN = 1_000_000  # above any open-file limit here: never an open descriptor


class RangeFS(pyfuse3.Operations):
    """Every file shows the same backing file; read() answers with FileRange."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    async def getattr(self, inode: Any, ctx: Any = None) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.attr_timeout = a.entry_timeout = 0
        a.st_mode = (stat.S_IFDIR | 0o755) if inode == pyfuse3.ROOT_INODE else \
            (stat.S_IFREG | 0o644)
        a.st_size = 0 if inode == pyfuse3.ROOT_INODE else len(DATA)
        return a

    async def lookup(self, parent: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name not in NAMES:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return await self.getattr(NAMES[name])

    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        return pyfuse3.FileInfo(fh=inode, keep_cache=False)

    async def read(self, fh: Any, off: int, size: int) -> pyfuse3.FileRange:
        if fh == NAMES[b"oversize"]:
            return pyfuse3.FileRange(self.fd, off, size + 1)
        if fh == NAMES[b"closed"]:
            return pyfuse3.FileRange(NOT_OPEN, off, size)
        return pyfuse3.FileRange(self.fd, off, size)


@pytest.fixture
def rangefs(backend: str) -> Iterator[MountedFS]:
    with tempfile.TemporaryFile() as backing:
        backing.write(DATA)
        backing.flush()
        with mounted(RangeFS(backing.fileno()), backend=backend, options=[]) as fs:
            yield fs


def _pipes() -> int:
    return sum(os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
               for fd in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{fd}"))


def test_buffered_read_returns_the_backing_bytes(rangefs: MountedFS) -> None:
    with open(rangefs.path("big"), "rb") as fh:
        assert fh.read() == DATA


def _read_direct(path: str, chunk: int) -> bytes:
    buf = mmap.mmap(-1, chunk)  # page-aligned, as O_DIRECT wants
    got = bytearray()
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        while n := os.preadv(fd, [buf], len(got)):
            got += buf[:n]
    finally:
        os.close(fd)
    return bytes(got)


@pytest.mark.skipif(RINGS, reason="through io_uring answers are copied into ring entries: "
                    "no splice (the other tests here check the data)")
def test_direct_reads_are_spliced(rangefs: MountedFS) -> None:
    pipes = _pipes()
    # 1 MiB replies do not fit the default 1 MiB pipe with their header: read, not spliced.
    assert _read_direct(rangefs.path("big"), MIB) == DATA
    with open("/proc/sys/fs/pipe-max-size") as fh:
        if int(fh.read()) <= MIB:
            assert _pipes() == pipes
    assert _read_direct(rangefs.path("big"), MIB // 2) == DATA
    # libfuse creates its splice pipe on the first spliced reply, and only then.
    assert _pipes() == pipes + 2


def test_small_and_unaligned_reads(rangefs: MountedFS) -> None:
    fd = os.open(rangefs.path("big"), os.O_RDONLY)
    try:
        assert os.pread(fd, 100, 5) == DATA[5:105]  # under two pages: not spliced
        assert os.pread(fd, 10_000, 3 * MIB + 100) == DATA[3 * MIB + 100:]  # short at the end
        assert os.pread(fd, 10, len(DATA) + 10) == b""
    finally:
        os.close(fd)


@pytest.mark.fuse_errors_expected
def test_range_longer_than_requested_is_eio_and_logged(
        rangefs: MountedFS, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="pyfuse3"):
        with pytest.raises(OSError) as e, open(rangefs.path("oversize"), "rb") as fh:
            fh.read(4096)
    assert e.value.errno == errno.EIO
    assert "FileRange of" in caplog.text
    with open(rangefs.path("big"), "rb") as fh:  # still serving
        assert fh.read(10) == DATA[:10]


def test_closed_descriptor_gives_the_reader_ebadf(rangefs: MountedFS) -> None:
    for size in (100, MIB // 2, MIB):  # copied by libfuse, spliced, copied by pyfuse3
        fd = os.open(rangefs.path("closed"), os.O_RDONLY | os.O_DIRECT)
        try:
            buf = mmap.mmap(-1, MIB)
            with pytest.raises(OSError) as e:
                os.preadv(fd, [memoryview(buf)[:size] if size < MIB else buf], 0)
            assert e.value.errno == errno.EBADF
        finally:
            os.close(fd)


def test_file_range_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="open file descriptor"):
        pyfuse3.FileRange(-1, 0, 10)
    with pytest.raises(ValueError, match="negative"):
        pyfuse3.FileRange(0, -1, 10)
    with pytest.raises(OverflowError):
        pyfuse3.FileRange(0, 0, -1)
    with pytest.raises(TypeError):
        pyfuse3.FileRange(0, 0, "10")  # type: ignore[arg-type]
    r = pyfuse3.FileRange(5, 6, 7)
    assert (r.fd, r.offset, r.size) == (5, 6, 7)
    assert repr(r) == "FileRange(fd=5, offset=6, size=7)"


def test_splice_pipe_is_closed_with_the_session(backend: str) -> None:
    counts = []
    with tempfile.TemporaryFile() as backing:
        backing.write(DATA)
        backing.flush()
        for _ in range(3):
            with mounted(RangeFS(backing.fileno()), backend=backend, options=[]) as fs:
                fd = os.open(fs.path("big"), os.O_RDONLY | os.O_DIRECT)
                try:
                    os.preadv(fd, [mmap.mmap(-1, MIB)], 0)
                finally:
                    os.close(fd)
            counts.append(_pipes())  # the event loop may keep pipes of its own from the first
    assert counts[1] == counts[2] == counts[0]
