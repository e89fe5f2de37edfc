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
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import FUSEError
from pyfuse3._module_api import current_mount
from pyfuse3._sysutil import FUSECTL, abort_device, lazy_unmount, mount_of
from pyfuse3.testing import mounted

from ..memfs import MemFS, Node
from ..util import RINGS, run_with_timeout

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
    """FUSEError(512 and more) hung the caller forever: the kernel rejected the reply. An errno
    the C library does not name (134 to 511) is answered EIO too: libfuse 3.18 would replace
    it with ERANGE, 3.14 pass it on; pyfuse3 answers the same whichever it runs on."""
    largest = max(errno.errorcode)
    bad = [512, 600, 999, 1000, 4095, 0, -5, largest + 1, 511]
    with mounted(BadErrnoFS(), backend=backend) as m:
        for err in bad:
            with pytest.raises(OSError) as info:
                run_with_timeout(lambda err=err: os.stat(m.path(f"e{err}")), 10)
            assert info.value.errno == errno.EIO, err
        with pytest.raises(OSError) as info:
            run_with_timeout(lambda: os.stat(m.path(f"e{largest}")), 10)
        assert info.value.errno == largest  # the largest errno named goes through
        assert os.listdir(m.mountpoint) == []  # still serving
    lines = [r.getMessage() for r in caplog.records
             if "not an errno the C library names" in r.getMessage()]
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


class WatchedCopyFS(TmpFS):
    """TmpFS whose copy_file_range starts only once a STATFS request waits in the queue, and
    that counts the STATFS requests answered while a copy ran."""

    def __init__(self) -> None:
        super().__init__()
        self.copying = False
        self.served_during_copy = 0
        self.copy_began = threading.Event()
        self.device: str | None = None  # the connection's "major:minor"

    async def copy_file_range(self, *args: Any) -> int:
        if self.copy_began.is_set():  # only the first copy waits for a STATFS
            return await super().copy_file_range(*args)
        self.copy_began.set()
        assert self.device is not None
        waiting = os.path.join(FUSECTL, self.device.split(":")[1], "waiting")
        # Blocks the loop on purpose (10 s at most): the copy itself and the STATFS.
        deadline = time.monotonic() + 10
        while int(open(waiting).read()) < 2 and time.monotonic() < deadline:
            time.sleep(0.001)
        self.copying = True
        try:
            return await super().copy_file_range(*args)
        finally:
            self.copying = False

    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        self.served_during_copy += self.copying
        return await super().statfs(ctx)


def _copy_all(m: Any, src: str, dst: str, length: int) -> None:
    with open(m.path(src), "rb") as fin, open(m.path(dst), "wb") as fout:
        done = 0
        while done < length:
            n = os.copy_file_range(fin.fileno(), fout.fileno(), length - done, done, done)
            assert n > 0
            done += n


def test_tmpfs_copy_lets_other_requests_through(backend: str) -> None:
    """tmpfs copy_file_range never yielded: copying a 4 GiB hole froze the whole mount for
    seconds. Now holes cost nothing and a long copy lets other requests through."""
    ops = WatchedCopyFS()
    with mounted(ops, backend=backend) as m:
        ops.device = m.device
        size = 32 << 20  # 8192 pages: 32 steps
        data = os.urandom(size)
        with open(m.path("data"), "wb") as fh:
            fh.write(data)

        def one_statfs() -> None:
            if ops.copy_began.wait(10):
                os.statvfs(m.mountpoint)  # never cached: a request

        t = threading.Thread(target=one_statfs, daemon=True)
        t.start()
        try:
            run_with_timeout(lambda: _copy_all(m, "data", "copy", size), 60)
        finally:
            ops.copy_began.set()
            t.join(10)
        assert ops.served_during_copy == 1  # answered while the copy went on
        with open(m.path("copy"), "rb") as fh:
            assert fh.read() == data

        hole = 4 << 30
        with open(m.path("sparse"), "wb") as fh:
            fh.truncate(hole)
            fh.seek(hole)
            fh.write(b"end")
        run_with_timeout(lambda: _copy_all(m, "sparse", "sparse-copy", hole + 3), 60)
        with open(m.path("sparse-copy"), "rb") as fh:
            assert os.fstat(fh.fileno()).st_size == hole + 3
            assert os.lseek(fh.fileno(), 0, os.SEEK_DATA) == hole  # the hole stayed one
            fh.seek(hole - 1)
            assert fh.read() == b"\0end"


def test_fuse_mount_mounts_several_file_systems(fuse_mount: Any) -> None:
    """The fixture mounted one file system per test ("pyfuse3.init() was already called")."""
    first, second = fuse_mount(_file_fs(b"one")), fuse_mount(_file_fs(b"two"))
    assert first.mount is not second.mount and first.mountpoint != second.mountpoint
    assert os.listdir(first.mountpoint) == ["one"]
    assert os.listdir(second.mountpoint) == ["two"]
    third = fuse_mount(_file_fs(b"three"))
    assert os.listdir(third.mountpoint) == ["three"]
    # the first is the file system of the module-level calls, the others answer through .mount
    assert current_mount() is first.mount
    second.mount.invalidate_inode(ROOT)
    assert os.listdir(second.mountpoint) == ["two"]


UNCLOSED = r"""
import gc, os, sys
import anyio
sys.path.insert(0, {tests!r})
import pyfuse3
from pyfuse3.testing import run
from tests.memfs import MemFS

class Ops(MemFS):
    def destroy(self):
        print("destroy ran", flush=True)

def serve_once(m):
    async def main():
        async with anyio.create_task_group() as tg:
            tg.start_soon(m.serve)
            assert await anyio.to_thread.run_sync(os.listdir, m.mountpoint) == []
            m.terminate()  # served, then left open
    run({backend!r}, main)

kept = pyfuse3.Mount(Ops(), {kept!r}, ["fsname=pyfuse3-test"])
serve_once(kept)
dropped = pyfuse3.Mount(Ops(), {dropped!r}, ["fsname=pyfuse3-test"])
serve_once(dropped)
del dropped  # garbage: closed when collected, with a warning
gc.collect()  # (asyncio's loop may have left it in a reference cycle)
print("dropped", flush=True)
"""


def test_an_unclosed_mount_warns_and_unmounts(backend: str, tmp_path: Any) -> None:
    """A Mount never closed ran ops.destroy() during interpreter finalization ("destroy()
    handler failed: AttributeError") and left a stale mount behind."""
    import subprocess

    kept, dropped = str(tmp_path / "kept"), str(tmp_path / "dropped")
    os.mkdir(kept)
    os.mkdir(dropped)
    script = UNCLOSED.format(tests=str(Path(__file__).resolve().parents[2]), backend=backend,
                             kept=kept, dropped=dropped)
    try:
        proc = subprocess.run([sys.executable, "-W", "always::ResourceWarning", "-c", script],
                              capture_output=True, text=True, timeout=60)
    finally:
        leftovers = [d for d in (kept, dropped) if mount_of(d) is not None]
        for d in leftovers:
            lazy_unmount(d)
    assert leftovers == [], proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["destroy ran", "dropped", "destroy ran"], proc.stderr
    assert proc.stderr.count("ResourceWarning: unclosed <pyfuse3.Mount") == 2, proc.stderr
    assert "failed" not in proc.stderr, proc.stderr


LATE_WAITER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
print("open", flush=True)
sys.stdin.readline()
fcntl.flock(fd, fcntl.LOCK_EX)  # waits; SIGINT (KeyboardInterrupt) gives up
"""


@pytest.mark.skipif(RINGS, reason="through io_uring, 121 requests at once can leave one "
                    "waiting in the kernel for a ring entry, where its INTERRUPT does not end "
                    "it (docs/operations.md, FUSE over io_uring): this test's late waiter then "
                    "never returns (seen in some runs of make test-io-uring)")
def test_lock_waiters_at_max_tasks_never_stop_the_reading(backend: str) -> None:
    """120 blocked flock waiters took every task (max_tasks): pyfuse3 stopped reading
    /dev/fuse, so it never saw the holder's unlock or a waiter's INTERRUPT, and the mount hung
    for good. Now what cannot run is parked, and what handlers wait for runs at once."""
    import fcntl
    import signal
    import subprocess

    from ..util import eventually

    ops = TmpFS()
    with mounted(ops, backend=backend) as m:
        path = m.path("lock")
        open(path, "wb").close()
        assert m.device is not None
        waiting = os.path.join(FUSECTL, m.device.split(":")[1], "waiting")

        def in_flight() -> int:
            with open(waiting) as fh:
                return int(fh.read())

        late = subprocess.Popen([sys.executable, "-c", LATE_WAITER, path], text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            assert late.stdout is not None and late.stdin is not None
            assert late.stdout.readline() == "open\n"
            holder = os.open(path, os.O_RDWR)
            fcntl.flock(holder, fcntl.LOCK_EX)
            fds = [os.open(path, os.O_RDWR) for _ in range(120)]  # opened while there is room
            granted: list[int] = []

            def waiter(i: int) -> None:
                fcntl.flock(fds[i], fcntl.LOCK_EX)
                granted.append(i)
                fcntl.flock(fds[i], fcntl.LOCK_UN)

            threads = [threading.Thread(target=waiter, args=(i,), daemon=True)
                       for i in range(120)]
            for t in threads:
                t.start()
            assert eventually(lambda: in_flight() >= 120, 30), in_flight()
            late.stdin.write("go\n")
            late.stdin.flush()
            assert eventually(lambda: in_flight() >= 121, 30), in_flight()
            late.send_signal(signal.SIGINT)  # its INTERRUPT is read and answered
            assert late.wait(timeout=10) != 0
            # The holder's unlock reaches the file system; every waiter gets the lock in turn.
            run_with_timeout(lambda: fcntl.flock(holder, fcntl.LOCK_UN), 10)
            deadline = time.monotonic() + 60
            for t in threads:
                t.join(max(0.0, deadline - time.monotonic()))
            assert sorted(granted) == list(range(120))
            for fd in [holder, *fds]:
                os.close(fd)
        finally:
            if late.poll() is None:
                late.kill()
                try:
                    late.wait(5)
                except subprocess.TimeoutExpired:  # its request was read, never answered
                    abort_device(m.device)
                    late.wait(10)


def test_module_level_calls_without_init_point_at_the_mount(tmp_path: Any) -> None:
    """With only a pyfuse3.Mount open, pyfuse3.invalidate_inode() said "call pyfuse3.init()
    first", not how to reach the Mount."""
    d = str(tmp_path / "mnt")
    os.mkdir(d)
    with pyfuse3.Mount(MemFS(), d, ["fsname=pyfuse3-test"]):
        with pytest.raises(RuntimeError, match=r"mount.invalidate_inode\(.*Invalidator\(mount="):
            pyfuse3.invalidate_inode(ROOT)
    with pytest.raises(RuntimeError, match=r"call pyfuse3.init\(\) (first|again)"):
        pyfuse3.invalidate_inode(ROOT)


def test_terminate_after_close_does_nothing(tmp_path: Any) -> None:
    """The README's Ctrl-C handler calls pyfuse3.terminate(); after close() (a Ctrl-C once
    main() ended) it raised RuntimeError out of the signal handler. Before init() it still
    says what is missing."""
    d = str(tmp_path / "mnt")
    os.mkdir(d)
    pyfuse3.init(MemFS(), d, ["fsname=pyfuse3-test"])
    pyfuse3.close()
    pyfuse3.terminate()
    with pyfuse3.Mount(MemFS(), d, ["fsname=pyfuse3-test"]):  # another file system, open
        pyfuse3.terminate()  # still init()'s, closed: nothing (the Mount is left alone)
        with pytest.raises(RuntimeError, match=r"mount.invalidate_inode"):
            pyfuse3.invalidate_inode(ROOT)
