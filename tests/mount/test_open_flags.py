"""The FileInfo flags of open/opendir, each shown by what the kernel then does (or does not)."""

from __future__ import annotations

import errno
import os
import stat
from typing import Any

import pytest

import pyfuse3
from pyfuse3.testing import mounted

from ..memfs import MemFS, Node

pytestmark = pytest.mark.fuse


class FlagsFS(MemFS):
    """open() and opendir() answer with the FileInfo flags named in ``self.flags``."""

    def __init__(self, **flags: bool) -> None:
        super().__init__(timeout=300)
        self.flags = flags
        self.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644, data=b"x" * 8192))
        self.dir = self.add(pyfuse3.ROOT_INODE, b"d", Node(stat.S_IFDIR | 0o755, nlink=2)).st_ino
        self.add(self.dir, b"entry", Node(stat.S_IFREG | 0o644))

    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        await super().open(inode, flags, ctx)
        return pyfuse3.FileInfo(fh=inode, **self.flags)

    async def opendir(self, inode: Any, ctx: Any) -> pyfuse3.FileInfo:  # type: ignore[override]
        fh = await super().opendir(inode, ctx)
        return pyfuse3.FileInfo(fh=fh, **self.flags)


def _read_twice(path: str) -> None:
    for _ in range(2):
        with open(path, "rb") as fh:
            assert fh.read() == b"x" * 8192


@pytest.mark.parametrize("noflush", [False, True])
def test_noflush(backend: str, noflush: bool) -> None:
    ops = FlagsFS(noflush=noflush)
    with mounted(ops, backend=backend) as fs:
        with open(fs.path("f"), "rb") as fh:
            fh.read()
        assert (ops.calls["flush"] == 0) is noflush


@pytest.mark.parametrize("keep_cache", [False, True])
def test_keep_cache(backend: str, keep_cache: bool) -> None:
    ops = FlagsFS(keep_cache=keep_cache)
    with mounted(ops, backend=backend) as fs:
        _read_twice(fs.path("f"))
        reads = ops.calls["read"]
        assert (reads == 1) is keep_cache, reads  # the second open reuses the pages


def test_direct_io(backend: str) -> None:
    ops = FlagsFS(direct_io=True)
    with mounted(ops, backend=backend) as fs:
        fd = os.open(fs.path("f"), os.O_RDONLY)
        try:
            for _ in range(3):
                assert os.pread(fd, 100, 0) == b"x" * 100
        finally:
            os.close(fd)
        assert ops.calls["read"] == 3  # no page cache: every read reaches the file system


def test_nonseekable(backend: str) -> None:
    ops = FlagsFS(nonseekable=True)
    with mounted(ops, backend=backend) as fs:
        fd = os.open(fs.path("f"), os.O_RDONLY)
        try:
            with pytest.raises(OSError) as info:
                os.lseek(fd, 10, os.SEEK_SET)
            assert info.value.errno == errno.ESPIPE
        finally:
            os.close(fd)


@pytest.mark.parametrize("cache_readdir", [False, True])
def test_cache_readdir(backend: str, cache_readdir: bool) -> None:
    ops = FlagsFS(keep_cache=True, cache_readdir=cache_readdir)
    with mounted(ops, backend=backend) as fs:
        for _ in range(3):
            assert os.listdir(fs.path("d")) == ["entry"]
        listings = ops.calls["readdir"]
        # each listing costs readdir calls unless the kernel keeps the directory's pages
        assert (listings <= 2) is cache_readdir, listings
