"""Property tests across the kernel boundary: what handlers return is what clients see."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyfuse3
from pyfuse3.testing import MountedFS, mounted

pytestmark = pytest.mark.fuse
FILE = 2


class ScriptedFS(pyfuse3.Operations):
    """Returns whatever the test put in ``attrs`` / ``names``; records readdir_reply errors."""

    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, Any] = {}
        self.names: list[bytes] = []
        self.errors: list[BaseException] = []

    async def getattr(self, inode: Any, ctx: Any = None) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.attr_timeout = a.entry_timeout = 0
        if inode == pyfuse3.ROOT_INODE:
            a.st_mode = stat.S_IFDIR | 0o755
            return a
        for name, value in self.attrs.items():
            setattr(a, name, value)
        return a

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name != b"file":
            raise pyfuse3.FUSEError(2)
        return await self.getattr(FILE)

    async def opendir(self, inode: Any, ctx: Any) -> int:
        return 0

    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        accepted = [n for n in self.names if self._valid(n)]
        for i, name in enumerate(accepted[start_id:], start_id):
            if not pyfuse3.readdir_reply(token, name, await self.getattr(FILE), i + 1):
                return
        if start_id == 0:
            for name in self.names:
                if not self._valid(name):
                    try:
                        pyfuse3.readdir_reply(token, name, await self.getattr(FILE), 10**6)
                    except ValueError as e:
                        self.errors.append(e)

    @staticmethod
    def _valid(name: bytes) -> bool:
        return 0 < len(name) <= 255 and b"\0" not in name and b"/" not in name

    async def releasedir(self, fh: Any) -> None:
        pass


@pytest.fixture(scope="module")
def scripted() -> Iterator[MountedFS]:
    with mounted(ScriptedFS()) as fs:
        yield fs


TIMES = st.integers(min_value=-(2**62), max_value=2**62)  # int64 nanoseconds, with margin


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(mode=st.integers(0, 0o7777), uid=st.integers(0, 2**32 - 2), gid=st.integers(0, 2**32 - 2),
       size=st.integers(0, 2**62), nlink=st.integers(1, 2**31), atime=TIMES, mtime=TIMES,
       ctime=TIMES, blocks=st.integers(0, 2**40))
def test_attributes_arrive_exactly(scripted: MountedFS, mode: int, uid: int, gid: int,
                                   size: int, nlink: int, atime: int, mtime: int, ctime: int,
                                   blocks: int) -> None:
    scripted.ops.attrs = dict(st_mode=stat.S_IFREG | mode, st_uid=uid, st_gid=gid,
                              st_size=size, st_nlink=nlink, st_atime_ns=atime,
                              st_mtime_ns=mtime, st_ctime_ns=ctime, st_blocks=blocks)
    s = os.stat(scripted.path("file"))
    assert (s.st_mode, s.st_uid, s.st_gid, s.st_size, s.st_nlink, s.st_blocks) == (
        stat.S_IFREG | mode, uid, gid, size, nlink, blocks)
    assert (s.st_atime_ns, s.st_mtime_ns, s.st_ctime_ns) == (atime, mtime, ctime)


NAMES = st.one_of(st.binary(min_size=0, max_size=300), st.sampled_from([b".", b"..", b"a/b"]))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(NAMES, max_size=40, unique=True))
def test_readdir_names_listed_exactly_or_refused(scripted: MountedFS, names: list[bytes]) -> None:
    ops: ScriptedFS = scripted.ops
    ops.names, ops.errors = names, []
    valid = [n for n in names if ops._valid(n)]
    shown = [n for n in valid if n not in (b".", b"..")]  # listdir() hides these two
    assert sorted(os.listdir(os.fsencode(scripted.mountpoint))) == sorted(shown)
    assert len(ops.errors) == len(names) - len(valid)  # each bad name: a ValueError
