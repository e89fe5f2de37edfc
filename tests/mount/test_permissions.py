"""Who may use a mount, and what RequestContext reports about callers."""

from __future__ import annotations

import os

import pytest

from pyfuse3.testing import mounted

from ..memfs import MemFS
from ..util import ALICE, as_user

pytestmark = pytest.mark.fuse


def test_without_allow_other_other_users_cannot_enter() -> None:
    with mounted(MemFS(), options=["default_permissions"]) as fs:
        os.chmod(fs.mountpoint, 0o777)
        assert os.listdir(fs.mountpoint) == []  # the mounting user (root) may
        assert as_user(ALICE, lambda: os.listdir(fs.mountpoint)) == "EACCES"
        assert as_user(ALICE, lambda: os.stat(fs.mountpoint)) == "EACCES"


def test_with_allow_other_and_default_permissions() -> None:
    ops = MemFS()
    with mounted(ops, options=["default_permissions", "allow_other"]) as fs:
        os.chmod(fs.mountpoint, 0o755)
        assert as_user(ALICE, lambda: os.listdir(fs.mountpoint)) == []
        assert as_user(ALICE, lambda: os.mkdir(os.path.join(fs.mountpoint, "x"))) == "EACCES"
        os.chmod(fs.mountpoint, 0o777)

        def mkdir_with_umask() -> int:
            os.umask(0o077)
            os.mkdir(os.path.join(fs.mountpoint, "alice"))
            return os.getpid()

        pid = as_user(ALICE, mkdir_with_umask)
        ctx = ops.contexts[-1]
        assert (ctx.uid, ctx.gid, ctx.pid, ctx.umask) == (ALICE, ALICE, pid, 0o077)
        st = os.stat(os.path.join(fs.mountpoint, "alice"))
        assert (st.st_uid, st.st_gid) == (ALICE, ALICE)
