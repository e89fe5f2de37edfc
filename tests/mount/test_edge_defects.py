"""Defects an audit reproduced at the edges of the library, each pinned through a real mount.

Every test here failed (crash, hang or wrong answer) before its fix; the docstring says what
it used to do.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import FUSEError
from pyfuse3.testing import mounted

from ..memfs import MemFS, Node
from ..util import run_with_timeout

pytestmark = pytest.mark.fuse
ROOT = pyfuse3.ROOT_INODE


class BadErrnoFS(MemFS):
    """lookup("e<N>") raises FUSEError(N)."""

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name.startswith(b"e"):
            raise FUSEError(int(name[1:]))
        return await super().lookup(parent_inode, name, ctx)


@pytest.mark.fuse_errors_expected
def test_errno_the_kernel_rejects_answers_eio(backend: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """FUSEError(512 and more) hung the caller forever: the kernel rejected the reply."""
    bad = [512, 600, 999, 1000, 4095, 0, -5]
    with mounted(BadErrnoFS(), backend=backend) as m:
        for err in bad:
            with pytest.raises(OSError) as info:
                run_with_timeout(lambda err=err: os.stat(m.path(f"e{err}")), 10)
            assert info.value.errno == errno.EIO, err
        with pytest.raises(OSError) as info:
            run_with_timeout(lambda: os.stat(m.path("e511")), 10)
        assert info.value.errno == 511  # the largest the kernel takes goes through
        assert os.listdir(m.mountpoint) == []  # still serving
    lines = [r.getMessage() for r in caplog.records if "errno must be 1 to 511" in r.getMessage()]
    assert len(lines) == len(bad)  # one line each, naming the handler
    assert all(line.startswith("lookup() handler raised FUSEError(") for line in lines)


def _unused() -> tuple[Any, ...]:
    return (logging, stat, Node)
