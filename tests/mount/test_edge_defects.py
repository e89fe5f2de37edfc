"""Defects an audit reproduced at the edges of the library, each pinned through a real mount.

Every test here failed (crash, hang or wrong answer) before its fix; the docstring says what
it used to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import FUSEError
from pyfuse3._sysutil import abort_device, lazy_unmount, mount_of
from pyfuse3.testing import mounted

from ..memfs import MemFS, Node
from ..util import run_with_timeout

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from tmpfs import TmpFS

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


PAGE = os.sysconf("SC_PAGESIZE")


@pytest.mark.parametrize("value", ["0", "1", str(PAGE - 1), str(256 * PAGE + PAGE),
                                   str(2**32 - 1), "lots"])
def test_max_write_option_outside_the_limits_is_refused(tmp_path: Any, value: str) -> None:
    """A max_write the kernel or libfuse cannot serve with gave a dead mount: serve() ended
    with EINVAL reading /dev/fuse and clients hung."""
    try:
        m = pyfuse3.Mount(MemFS(), str(tmp_path), [f"max_write={value}"])
    except ValueError as e:
        assert re.match(r"mount option 'max_write=\w+': max_write must be an int from \d+ "
                        r"\(a page\) to", str(e)), e
    else:
        m.close()
        pytest.fail("mounted")
    assert mount_of(str(tmp_path)) is None


class MaxWriteFS(MemFS):
    def __init__(self, max_write: int) -> None:
        super().__init__()
        self.max_write = max_write

    def init_connection(self, info: Any) -> None:
        info.max_write = self.max_write


@pytest.mark.parametrize("value", [0, PAGE - 1, 256 * PAGE + 1, 2**32 - 1])
def test_max_write_from_init_connection_outside_the_limits_is_refused(value: int) -> None:
    with pytest.raises(RuntimeError) as info:
        with mounted(MaxWriteFS(value), timeout=5):
            pass
    assert isinstance(info.value.__cause__, ValueError), info.value
    assert "init_connection(): ConnectionInfo: max_write must be an int from" in str(
        info.value.__cause__)


@pytest.mark.parametrize("value", [PAGE, 256 * PAGE])
def test_max_write_at_the_limits_serves(backend: str, value: int) -> None:
    with mounted(MaxWriteFS(value), backend=backend) as m:
        with open(m.path("f"), "wb") as fh:
            fh.write(b"x" * 2 * value)
        assert os.path.getsize(m.path("f")) == 2 * value
    with mounted(MemFS(), backend=backend, options=[f"max_write={value}"]) as m:
        assert os.listdir(m.mountpoint) == []


class ServedMount:
    """A Mount served in a thread of its own until stop(); closed by stop()."""

    def __init__(self, ops: Any, mountpoint: str, options: list[str], backend: str) -> None:
        import threading

        from pyfuse3.testing import run

        self.mount = pyfuse3.Mount(ops, mountpoint, ["fsname=pyfuse3-test", *options])
        self.thread = threading.Thread(target=run, args=(backend, self.mount.serve),
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.mount.terminate()
        self.thread.join(10)
        if self.thread.is_alive():
            abort_device(self.mount._device or "0:0")
            self.thread.join(10)
        self.mount.close()


def _file_fs(name: bytes) -> MemFS:
    ops = MemFS()
    ops.add(ROOT, name, Node(stat.S_IFREG | 0o644, data=name))
    return ops


def test_closing_the_lower_of_stacked_mounts_leaves_the_upper(backend: str,
                                                              tmp_path: Any) -> None:
    """close() of the lower file system unmounted the one on top (still serving) and left its
    own mount behind, dead."""
    d = str(tmp_path / "mnt")
    os.mkdir(d)
    lower = ServedMount(_file_fs(b"lower"), d, [], backend)
    try:
        assert run_with_timeout(lambda: os.listdir(d)) == ["lower"]
        upper = ServedMount(_file_fs(b"upper"), d, ["allow_stacked_mount"], backend)
        try:
            assert run_with_timeout(lambda: os.listdir(d)) == ["upper"]
            lower_device = lower.mount._device
            assert lower_device is not None and upper.mount._device != lower_device
            lower.stop()  # its mount cannot be removed from under the other: it is aborted
            assert run_with_timeout(lambda: os.listdir(d)) == ["upper"]  # still served
        finally:
            upper.stop()
        assert mount_of(d) == (lower_device, "fuse")  # uncovered now, and answers at once:
        with pytest.raises(OSError) as info:
            run_with_timeout(lambda: os.listdir(d))
        assert info.value.errno == errno.ENOTCONN
    finally:
        lower.stop()
        if mount_of(d) is not None:
            lazy_unmount(d)
    assert mount_of(d) is None


def test_a_mountpoint_given_through_a_symlink_is_resolved(backend: str, tmp_path: Any) -> None:
    """A symlink to a mount point bypassed the "already a mount point" refusal and the clean-up
    after an abort."""
    d = tmp_path / "real"
    d.mkdir()
    link = tmp_path / "link"
    link.symlink_to(d)
    first = ServedMount(_file_fs(b"a"), str(link), [], backend)
    try:
        assert first.mount.mountpoint == str(d)
        assert mount_of(str(d)) is not None
        with pytest.raises(RuntimeError, match="already a mount point"):
            pyfuse3.Mount(MemFS(), str(link))
        with pytest.raises(RuntimeError, match="already a mount point"):
            pyfuse3.Mount(MemFS(), str(d))
    finally:
        first.stop()
    assert mount_of(str(d)) is None


def test_a_mount_inside_a_file_system_this_loop_serves(backend: str, tmp_path: Any) -> None:
    """Creating (or closing) a Mount below another Mount served by the same event loop
    deadlocked: the stat and the mount call ran blocking on the loop thread."""
    import anyio

    from pyfuse3.testing import run

    outer_ops = MemFS()
    outer_ops.add(ROOT, b"sub", Node(stat.S_IFDIR | 0o755))
    d = str(tmp_path / "outer")
    os.mkdir(d)
    seen: dict[str, Any] = {}

    async def main() -> None:
        outer = pyfuse3.Mount(outer_ops, d, ["fsname=pyfuse3-test"])
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(outer.serve)
                with anyio.fail_after(10):
                    assert await anyio.to_thread.run_sync(os.listdir, d) == ["sub"]  # served
                    with pytest.raises(RuntimeError, match="which this event loop serves"):
                        pyfuse3.Mount(_file_fs(b"inner"), os.path.join(d, "sub"))
                    inner = await anyio.to_thread.run_sync(
                        pyfuse3.Mount, _file_fs(b"inner"), os.path.join(d, "sub"),
                        ["fsname=pyfuse3-test"])
                    tg.start_soon(inner.serve)
                    seen["listed"] = await anyio.to_thread.run_sync(
                        os.listdir, os.path.join(d, "sub"))
                    inner.terminate()
                    while inner.state != "stopped":
                        await anyio.sleep(0.01)
                    with pytest.raises(RuntimeError, match="which this event loop serves"):
                        inner.close()
                    await anyio.to_thread.run_sync(inner.close)
                    seen["inner"] = inner.state
                outer.terminate()
        finally:
            outer.close()

    run_with_timeout(lambda: run(backend, main), 30)
    assert seen == {"listed": ["inner"], "inner": "closed"}
    assert mount_of(d) is None


@pytest.mark.parametrize("readdirplus", ["no", "yes"])
def test_tmpfs_frees_files_listed_then_unlinked(backend: str, readdirplus: str) -> None:
    """tmpfs counted a lookup for every plain READDIR entry too (the kernel counts none), so
    listed-then-unlinked files were never freed."""
    from ..util import eventually

    ops = TmpFS()
    with mounted(ops, backend=backend, options=[f"readdirplus={readdirplus}"]) as m:
        for i in range(20):
            with open(m.path(f"f{i}"), "wb") as fh:
                fh.write(b"x")
        files = set(ops.inodes) - {ROOT}
        assert len(files) == 20
        for _ in range(3):
            assert len(os.listdir(m.mountpoint)) == 20
        for i in range(20):
            os.unlink(m.path(f"f{i}"))
        with open("/proc/sys/vm/drop_caches", "w") as fh:  # the kernel forgets what it held
            fh.write("2")
        assert eventually(lambda: not files & set(ops.inodes), 10), \
            {i: ops.inodes[i].lookups for i in files & set(ops.inodes)}
