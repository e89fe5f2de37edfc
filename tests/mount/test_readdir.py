"""Listing: what readdir hands readdir_reply is what the kernel caches."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from typing import Any

import pytest

import pyfuse3
from pyfuse3.testing import mounted

pytestmark = pytest.mark.fuse


class ReusingFS(pyfuse3.Operations):
    """readdir hands readdir_reply one EntryAttributes object, changed between entries."""

    N = 300  # more than one READDIRPLUS reply holds

    def __init__(self) -> None:
        super().__init__()
        self.getattr_calls = 0

    async def getattr(self, inode: Any, ctx: Any = None) -> pyfuse3.EntryAttributes:
        self.getattr_calls += 1
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.st_mode = stat.S_IFDIR | 0o755 if inode == pyfuse3.ROOT_INODE else stat.S_IFREG | 0o644
        a.st_size = 999_999  # never what readdir said: shows a request the cache should spare
        return a

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        return await self.getattr(int(name[1:]) + 10)

    async def opendir(self, inode: Any, ctx: Any) -> int:
        return 0

    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        a = pyfuse3.EntryAttributes()
        a.st_mode = stat.S_IFREG | 0o644
        a.attr_timeout = a.entry_timeout = 300
        for i in range(start_id, self.N):
            a.st_ino, a.st_size = i + 10, i * 7
            if not pyfuse3.readdir_reply(token, f"f{i}".encode(), a, i + 1):
                return

    async def releasedir(self, fh: Any) -> None:
        pass


def test_readdir_reply_copies_the_attributes(backend: str) -> None:
    """Reusing one EntryAttributes object across entries is safe (docs/performance.md)."""
    with mounted(ReusingFS(), backend=backend) as fs:
        ops: ReusingFS = fs.ops
        names = os.listdir(fs.mountpoint)
        assert len(names) == ReusingFS.N
        calls = ops.getattr_calls
        for i in range(ReusingFS.N):
            s = os.stat(fs.path(f"f{i}"))  # from the attributes READDIRPLUS cached
            assert (s.st_ino, s.st_size) == (i + 10, i * 7)
        assert ops.getattr_calls == calls


class OffByOneFS(ReusingFS):
    """readdir gives each entry its own index as next_id instead of the position after it."""

    N = 3

    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        a = await self.getattr(pyfuse3.ROOT_INODE + 1)
        for i in range(start_id, self.N):
            if not pyfuse3.readdir_reply(token, f"f{i}".encode(), a, i):
                return


@pytest.mark.fuse_errors_expected
def test_a_listing_that_would_never_end_fails(backend: str) -> None:
    """With next_id pointing back where readdir began, `ls` got the same entries forever
    (66,000 READDIRs in 3 s on 6.18); now it fails with EIO. `ls` runs in a child process
    with a timeout, so the broken behaviour fails the test instead of hanging it."""
    with mounted(OffByOneFS(), backend=backend) as fs:
        ls = subprocess.run(["ls", "-f", fs.mountpoint], capture_output=True, timeout=30)
        assert ls.returncode != 0
        assert b"Input/output error" in ls.stderr
        assert os.stat(fs.mountpoint).st_ino == pyfuse3.ROOT_INODE  # still serving


class HiddenFS(ReusingFS):
    """readdir lists ``f0`` with inode 0 (its st_ino forgotten) and ``f1`` with its own."""

    N = 2

    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        for i in range(start_id, self.N):
            a = await self.getattr(i + 10)
            a.st_ino = i and i + 10
            if not pyfuse3.readdir_reply(token, f"f{i}".encode(), a, i + 1):
                return


def test_an_entry_without_an_inode_is_hidden_and_named(
        backend: str, caplog: pytest.LogCaptureFixture) -> None:
    """The C library skips directory entries with inode 0: `ls` missed the name, and nothing
    said why."""
    with caplog.at_level(logging.WARNING, logger="pyfuse3"):
        with mounted(HiddenFS(), backend=backend) as fs:
            assert os.listdir(fs.mountpoint) == ["f1"]
    assert [r.getMessage() for r in caplog.records] == [
        "readdir_reply(): entry b'f0' has st_ino 0, which hides it from listings (the C library "
        "skips entries with inode 0): set attr.st_ino (logged once per readdir request)"]
