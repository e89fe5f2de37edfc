"""The error policy, handlers that suspend, concurrency and the session's life, on real mounts."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sniffio
import trio

import pyfuse3
from pyfuse3._backends import current
from pyfuse3._negotiation import undelivered
from pyfuse3.testing import MountedFS, mounted, run

from ..memfs import MemFS, Node
from ..util import eventually

pytestmark = pytest.mark.fuse


SLOW_LOOKUPS = 8


class FaultyFS(MemFS):
    """Names that make getattr misbehave in each way the error policy covers."""

    in_flight = peak = 0  # "slow-*" lookups handled now, and at most at once
    scope_fired = False
    wanted: frozenset[str] = frozenset()  # capabilities asked for at INIT
    offered: frozenset[str] = frozenset()  # ConnectionInfo.want as init_connection() got it

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name == b"raises":
            raise ValueError("boom")
        if name == b"wrong-type":
            return "not attributes"  # type: ignore[return-value]
        if name == b"no-await":
            return self.lookup(parent_inode, b"ok", ctx)  # type: ignore[return-value]
        if name == b"fuse-error":
            raise pyfuse3.FUSEError(errno.EROFS)
        if name == b"untyped":  # the kernel answers EIO itself: only pyfuse3 can say why
            entry = await super().lookup(parent_inode, b"ok", ctx)
            entry.st_mode = 0o755
            return entry
        if name == b"raises-late":
            await current().sleep(0.01)
            raise KeyError("late")
        if name.startswith(b"slow-"):
            await self._wait_for_company()
            return await super().lookup(parent_inode, name, ctx)
        if name == b"timeout-scope":
            await self._scoped_sleep()
        else:
            return await super().lookup(parent_inode, name, ctx)
        return await super().lookup(parent_inode, b"ok", ctx)

    def init_connection(self, conn: pyfuse3.ConnectionInfo) -> None:
        self.offered = frozenset(conn.want)  # what pyfuse3 and the attributes chose
        conn.want |= self.wanted

    async def _wait_for_company(self) -> None:
        # Stays until SLOW_LOOKUPS run at once (or 2 s pass): run one at a time, they never meet.
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            for _ in range(200):
                if self.peak >= SLOW_LOOKUPS:
                    break
                await current().sleep(0.01)
        finally:
            self.in_flight -= 1

    async def _scoped_sleep(self) -> None:
        # Cancel scopes must belong to the task that runs the handler to completion.
        if sniffio.current_async_library() == "trio":
            with trio.move_on_after(0.02) as scope:
                await trio.sleep(10)
            self.scope_fired = scope.cancelled_caught
        else:
            try:
                if sys.version_info >= (3, 11):
                    async with asyncio.timeout(0.02):
                        await asyncio.sleep(10)
                else:  # no asyncio.timeout before 3.11: wait_for cancels the same way
                    await asyncio.wait_for(asyncio.sleep(10), 0.02)
            except (TimeoutError, asyncio.TimeoutError):
                self.scope_fired = True

    async def read(self, fh: Any, off: int, size: int) -> bytes:
        if self.node(fh).data == b"oversize":
            return b"x" * (size + 1)
        if self.node(fh).data == b"str":
            return "text"  # type: ignore[return-value]
        return await super().read(fh, off, size)

    async def write(self, fh: Any, off: int, buf: bytes) -> int:
        await super().write(fh, off, buf)
        return len(buf) + 1 if buf == b"lie" else len(buf)


@pytest.fixture
def faulty(backend: str) -> Any:
    ops = FaultyFS()
    ops.add(pyfuse3.ROOT_INODE, b"ok", Node(stat.S_IFDIR | 0o755, nlink=2))
    with mounted(ops, backend=backend, options=[]) as fs:
        yield fs


@pytest.mark.fuse_errors_expected
@pytest.mark.parametrize("name", ["raises", "wrong-type", "no-await", "raises-late",
                                  "untyped"])
def test_handler_fault_answers_eio_and_fs_keeps_serving(faulty: MountedFS, name: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="pyfuse3"):
        with pytest.raises(OSError) as e:
            os.stat(faulty.path(name))
        assert e.value.errno == errno.EIO
        assert os.path.isdir(faulty.path("ok"))  # the next request is served
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # logged once
    assert errors[0].exc_info is not None  # with its traceback
    if name == "no-await":
        assert "missing" in str(errors[0].exc_info[1])
    if name == "untyped":
        assert str(errors[0].exc_info[1]).startswith(
            "lookup() handler returned st_mode 0o755, which names no file type")


def test_fuse_error_becomes_errno_without_logging(faulty: MountedFS,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pyfuse3"):
        with pytest.raises(OSError) as e:
            os.stat(faulty.path("fuse-error"))
    assert e.value.errno == errno.EROFS
    assert not caplog.records


@pytest.mark.fuse_errors_expected
@pytest.mark.parametrize("content", [b"oversize", b"str"])
def test_bad_read_results_answer_eio(faulty: MountedFS, content: bytes,
                                     caplog: pytest.LogCaptureFixture) -> None:
    with open(faulty.path("f"), "wb") as fh:
        fh.write(content)
    with caplog.at_level(logging.ERROR, logger="pyfuse3"), pytest.raises(OSError) as e:
        with open(faulty.path("f"), "rb", buffering=0) as fh:
            fh.read(4)
    assert e.value.errno == errno.EIO
    assert len(caplog.records) == 1


@pytest.mark.fuse_errors_expected
def test_write_reporting_more_than_given_answers_eio(faulty: MountedFS) -> None:
    fd = os.open(faulty.path("f"), os.O_CREAT | os.O_WRONLY)
    try:
        with pytest.raises(OSError) as e:
            os.write(fd, b"lie")
        assert e.value.errno == errno.EIO
        assert os.write(fd, b"truth") == 5
    finally:
        os.close(fd)


PARENT = -1  # (in NewEntryFS.change: the inode of the directory the entry is made in)


class NewEntryFS(MemFS):
    """mkdir(), mknod(), create(), symlink() and link() answer with ``self.change`` applied
    to the entry they made."""

    change: dict[str, int] = {}

    def _changed(self, entry: pyfuse3.EntryAttributes) -> pyfuse3.EntryAttributes:
        for field, value in self.change.items():
            setattr(entry, field, self.child(pyfuse3.ROOT_INODE, b"d") if value == PARENT
                    else value)
        return entry

    async def mkdir(self, *args: Any) -> pyfuse3.EntryAttributes:
        return self._changed(await super().mkdir(*args))

    async def mknod(self, *args: Any) -> pyfuse3.EntryAttributes:
        return self._changed(await super().mknod(*args))

    async def create(self, *args: Any) -> Any:
        info, entry = await super().create(*args)
        return info, self._changed(entry)

    async def symlink(self, *args: Any) -> pyfuse3.EntryAttributes:
        return self._changed(await super().symlink(*args))

    async def link(self, *args: Any) -> pyfuse3.EntryAttributes:
        return self._changed(await super().link(*args))


@pytest.mark.fuse_errors_expected
@pytest.mark.parametrize(("call", "change", "problem"), [
    ("mkdir", {"st_ino": 0}, "st_ino 0 for the new entry, which the kernel refuses (EIO): 0 "
     "names no inode and 1 is the root"),
    ("link", {"st_ino": 1}, "st_ino 1 for the new entry"),
    ("create", {"st_ino": 0}, "st_ino 0 for the new entry"),
    ("mkdir", {"st_mode": stat.S_IFREG | 0o755}, "st_mode 0o100755 for the new entry, which "
     "the kernel refuses (EIO): a mkdir() entry is stat.S_IFDIR"),
    ("create", {"st_mode": stat.S_IFDIR | 0o755}, "a create() entry is stat.S_IFREG"),
    ("symlink", {"st_mode": stat.S_IFREG | 0o644}, "a symlink() entry is stat.S_IFLNK"),
    ("mkfifo", {"st_mode": stat.S_IFREG | 0o644}, "st_mode 0o100644 for the new entry, which "
     "the kernel refuses (EIO): the mknod() request asked for stat.S_IFIFO"),
    ("mkfifo", {"st_ino": 1}, "st_ino 1 for the new entry"),
    ("mkdir", {"st_ino": PARENT}, "for the new entry, the directory it is made in, which "
     "the kernel refuses (ELOOP), or takes as a new type of that directory and marks it bad"),
    ("mkfifo", {"st_ino": PARENT}, "for the new entry, the directory it is made in"),
    ("create", {"st_ino": PARENT}, "for the new entry, the directory it is made in"),
])
def test_a_new_entry_the_kernel_refuses_is_named(backend: str, call: str,
                                                 change: dict[str, int], problem: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """The kernel answered these with EIO, and nothing said why."""
    ops = NewEntryFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))
    ops.add(pyfuse3.ROOT_INODE, b"d", Node(stat.S_IFDIR | 0o755, nlink=2))
    with mounted(ops, backend=backend) as fs:
        make = {"mkdir": lambda name: os.mkdir(fs.path(name)),
                "create": lambda name: os.close(os.open(fs.path(name), os.O_CREAT)),
                "symlink": lambda name: os.symlink("f", fs.path(name)),
                "link": lambda name: os.link(fs.path("f"), fs.path(name)),
                "mkfifo": lambda name: os.mkfifo(fs.path(name))}[call]
        ops.change = change
        with pytest.raises(OSError) as info:
            make("d/bad")
        assert info.value.errno == errno.EIO
        ops.change = {}
        make("d/good")  # still serving, also in that directory
        assert "good" in os.listdir(fs.path("d"))
    errors = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    op = "mknod" if call == "mkfifo" else call
    assert len(errors) == 1 and errors[0].startswith(f"{op}() handler returned st_")
    assert problem in errors[0]


class ForgetfulFS(MemFS):
    """lookup() answers ``b"forgot"`` with attributes but st_ino 0, ``b"absent"`` with a
    deliberate negative entry; ``b"root-*"`` with the root's inode, ``b"parent-*"`` with the
    parent directory's (``*-dir`` as a directory, ``*-file`` as a regular file)."""

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name in (b"forgot", b"absent"):
            entry = pyfuse3.EntryAttributes()
            if name == b"forgot":
                entry.st_mode = stat.S_IFREG | 0o644
            return entry
        if name.startswith((b"root-", b"parent-")):
            entry = self.attr(pyfuse3.ROOT_INODE if name.startswith(b"root-") else parent_inode)
            if name.endswith(b"-file"):
                entry.st_mode = stat.S_IFREG | 0o644
            return entry
        return await super().lookup(parent_inode, name, ctx)


@pytest.mark.fuse_errors_expected
@pytest.mark.parametrize(("name", "problem"), [
    ("root-dir", "st_ino 1 (the root) for a name in a directory, which the kernel refuses"),
    ("root-file", "st_ino 1 (the root) for a name"),
    ("d/parent-dir", "the directory the name was looked up in (its attributes instead of the "
     "entry's?), which the kernel refuses (ELOOP), or takes as a new type of that directory "
     "and marks it bad"),
    ("d/parent-file", "the directory the name was looked up in"),
])
def test_a_lookup_answering_the_root_or_its_directory_is_refused(
        backend: str, name: str, problem: str, caplog: pytest.LogCaptureFixture) -> None:
    """The kernel refused these (EIO, ELOOP), or took the file as a new type of the inode and
    marked the directory bad: with the root, every later call on the mount failed."""
    ops = ForgetfulFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))
    d = ops.add(pyfuse3.ROOT_INODE, b"d", Node(stat.S_IFDIR | 0o755, nlink=2)).st_ino
    ops.add(d, b"g", Node(stat.S_IFREG | 0o644))
    with mounted(ops, backend=backend) as fs:
        with pytest.raises(OSError) as info:
            os.stat(fs.path(name))
        assert info.value.errno == errno.EIO
        assert stat.S_ISDIR(os.stat(fs.path("d")).st_mode)  # nothing marked bad
        assert os.path.isfile(fs.path("d/g")) and os.path.isfile(fs.path("f"))
        assert os.stat(fs.path("d/.")).st_ino == d  # (no lookup: the kernel's own)
    errors = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert len(errors) == 1 and errors[0].startswith("lookup() handler returned st_ino ")
    assert problem in errors[0]


class RootFileFS(MemFS):
    """getattr() of the root answers a regular file while ``self.wrong`` is set."""

    wrong = False

    async def getattr(self, inode: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        attr = await super().getattr(inode, ctx)
        attr.attr_timeout = 0  # every stat asks
        if self.wrong and inode == pyfuse3.ROOT_INODE:
            attr.st_mode = stat.S_IFREG | 0o755
        return attr


@pytest.mark.fuse_errors_expected
def test_a_root_that_is_not_a_directory_is_refused(backend: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """One getattr() answering the root as a file made the kernel mark the root bad: every
    later call on the mount failed with EIO, also once the file system answered right."""
    ops = RootFileFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))
    with mounted(ops, backend=backend) as fs:
        os.stat(fs.mountpoint)
        ops.wrong = True
        with pytest.raises(OSError) as info:
            os.stat(fs.mountpoint)
        assert info.value.errno == errno.EIO
        ops.wrong = False
        assert stat.S_ISDIR(os.stat(fs.mountpoint).st_mode)
        assert os.path.isfile(fs.path("f"))
    errors = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert errors == ["getattr() handler returned st_mode 0o100755 for the root, which must "
                      "be a directory (stat.S_IFDIR): the kernel would mark the root bad and "
                      "answer every later call on the mount with EIO"]


def test_a_lookup_that_forgot_st_ino_is_named(backend: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """Inode 0 makes a negative entry: the kernel answered ENOENT and nothing said why. The
    answer stays (a negative entry is upstream's contract); the log says what happened."""
    with caplog.at_level(logging.WARNING, logger="pyfuse3"):
        with mounted(ForgetfulFS(), backend=backend) as fs:
            for name in ("absent", "forgot"):
                with pytest.raises(FileNotFoundError):
                    os.stat(fs.path(name))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("lookup() handler returned st_ino 0 with st_mode 0o100644: "
                                  "inode 0 makes it a negative entry")


def slow_lookups_at_once(fs: MountedFS, directories: list[tuple[str, int]]) -> int:
    """Look up a new name in each (path, inode) directory from its own thread; each lookup
    waits until all are in flight (2 s at most). Returns how many were handled at once."""
    for i, (_, parent) in enumerate(directories):
        fs.ops.add(parent, b"slow-%d" % i, Node(stat.S_IFREG | 0o644))
    with ThreadPoolExecutor(len(directories)) as pool:
        found = list(pool.map(lambda i: os.path.isfile(fs.path(f"{directories[i][0]}/slow-{i}")),
                              range(len(directories))))
    assert all(found)
    return int(fs.ops.peak)


def test_suspending_handlers_run_concurrently(faulty: MountedFS) -> None:
    # (each name in a directory of its own: the kernel sends one lookup per directory at a time)
    dirs = [(f"d{i}", faulty.ops.add(pyfuse3.ROOT_INODE, b"d%d" % i,
                                     Node(stat.S_IFDIR | 0o755, nlink=2)).st_ino)
            for i in range(SLOW_LOOKUPS)]
    assert slow_lookups_at_once(faulty, dirs) == SLOW_LOOKUPS


@pytest.mark.parametrize("how", ["init_connection", "attribute"])
def test_lookups_in_one_directory_overlap_with_parallel_dirops(backend: str, how: str) -> None:
    """Off by default (libfuse 3.18's default): a file system must be ready for a lookup and
    a readdir of one directory at once. Wanted (in init_connection(), or by the Operations
    attribute), one directory's lookups run concurrently."""
    ops = FaultyFS()
    if how == "attribute":
        ops.enable_parallel_dirops = True
    else:
        ops.wanted = frozenset({"parallel_dirops"})
    if undelivered(pyfuse3.LIBFUSE_VERSION):
        if how == "attribute":  # asked for where it arrives, like the other attributes
            with mounted(ops, backend=backend, options=[]):
                assert "parallel_dirops" not in ops.offered
        else:  # the wish would be dropped on the way: refused
            with pytest.raises(RuntimeError, match=r"parallel_dirops: libfuse .* never passes"):
                with mounted(ops, backend=backend, options=[]):
                    pass
        return
    with mounted(ops, backend=backend, options=[]) as fs:
        assert ("parallel_dirops" in ops.offered) == (how == "attribute")
        assert slow_lookups_at_once(fs, [(".", pyfuse3.ROOT_INODE)] * SLOW_LOOKUPS) == SLOW_LOOKUPS


def test_cancel_scopes_inside_handlers_work(faulty: MountedFS) -> None:
    assert os.path.isdir(faulty.path("timeout-scope"))
    assert faulty.ops.scope_fired


class CountingFS(MemFS):
    """Lookups of ``dN/slow`` suspend for 0.2 s; counts how many are suspended at once.

    (One directory each: the kernel may serialise lookups within one directory.)
    """

    def __init__(self) -> None:
        super().__init__(timeout=300)
        self.ok = self.add(pyfuse3.ROOT_INODE, b"ok", Node(stat.S_IFDIR | 0o755, nlink=2))
        for i in range(8):
            self.add(pyfuse3.ROOT_INODE, f"d{i}".encode(), Node(stat.S_IFDIR | 0o755, nlink=2))
        self.active = self.most = 0

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name == b"slow":
            self.active += 1
            self.most = max(self.most, self.active)
            try:
                await current().sleep(0.2)
            finally:
                self.active -= 1
            return self.entry(self.ok.st_ino)
        return await super().lookup(parent_inode, name, ctx)


def test_max_tasks_limits_suspended_handlers(backend: str) -> None:
    """max_tasks=3: one reader and at most two suspended handlers, whatever the load."""
    ops = CountingFS()
    results: list[BaseException | None] = []

    def serve() -> None:
        try:
            run(backend, pyfuse3.main, 1, 3)
            results.append(None)
        except BaseException as e:  # pragma: no cover - reported below
            results.append(e)

    import tempfile
    mnt = tempfile.mkdtemp(prefix="pyfuse3-test-")
    try:
        pyfuse3.init(ops, mnt, [])
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            for i in range(8):
                os.stat(os.path.join(mnt, f"d{i}"))  # cached: only the slow lookups remain
            with ThreadPoolExecutor(8) as pool:
                assert all(pool.map(lambda i: os.path.isdir(os.path.join(mnt, f"d{i}", "slow")),
                                    range(8)))
        finally:
            pyfuse3.terminate()
            t.join(10)
            pyfuse3.close()
    finally:
        os.rmdir(mnt)
    assert results == [None]
    assert ops.most == 2, ops.most


def test_terminate_from_another_thread_ends_main(backend: str) -> None:
    ops = MemFS()
    with mounted(ops, backend=backend) as fs:
        assert os.path.isdir(fs.mountpoint)
        threading.Thread(target=pyfuse3.terminate).start()
        assert fs.thread is not None
        fs.thread.join(5)
        assert not fs.thread.is_alive()
        assert pyfuse3.trio_token is None


def test_close_unmounts_and_is_idempotent(backend: str) -> None:
    with mounted(MemFS(), backend=backend) as fs:
        mnt = fs.mountpoint
        assert os.path.ismount(mnt)
        pyfuse3.terminate()
        assert fs.thread is not None
        fs.thread.join(5)
        pyfuse3.close()
        assert not os.path.ismount(mnt)
        pyfuse3.close()  # a second close does nothing
    pyfuse3.terminate()  # after close(): nothing to end (a late Ctrl-C handler calls it)


def test_second_init_main_close_cycle(backend: str) -> None:
    for _ in range(2):
        with mounted(MemFS(), backend=backend) as fs:
            with open(fs.path("f"), "wb") as fh:
                fh.write(b"x")
            assert os.listdir(fs.mountpoint) == ["f"]


def test_external_unmount_ends_main(backend: str) -> None:
    with mounted(MemFS(), backend=backend) as fs:
        assert os.path.isdir(fs.mountpoint)
        os.system(f"fusermount3 -u {fs.mountpoint}")
        assert fs.thread is not None
        fs.thread.join(5)
        assert not fs.thread.is_alive()


@pytest.mark.fuse_errors_expected
def test_forget_and_init_exceptions_are_logged_not_fatal(
        backend: str, caplog: pytest.LogCaptureFixture) -> None:
    class Bad(MemFS):
        def init(self) -> None:
            raise RuntimeError("init failed")

        async def forget(self, inode_list: Any) -> None:
            raise RuntimeError("forget failed")

    with caplog.at_level(logging.ERROR, logger="pyfuse3"):
        with mounted(Bad(), backend=backend) as fs:
            os.mkdir(fs.path("d"))
            os.rmdir(fs.path("d"))
            # drop_caches makes the kernel send FORGET for everything unused
            with open("/proc/sys/vm/drop_caches", "w") as fh:
                fh.write("2")
            assert eventually(lambda: any("forget" in r.getMessage() for r in caplog.records))
            assert os.listdir(fs.mountpoint) == []
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "init() handler failed" in messages
    assert "forget() handler failed, nothing to answer" in messages  # not "answering EIO"


def test_enosys_defaults_behave_as_the_kernel_expects(backend: str) -> None:
    class Minimal(MemFS):
        flush = pyfuse3.Operations.flush  # the base class answers ENOSYS
        release = pyfuse3.Operations.release
        fsync = pyfuse3.Operations.fsync
        access = pyfuse3.Operations.access
        getxattr = pyfuse3.Operations.getxattr

    with mounted(Minimal(), backend=backend, options=[]) as fs:
        fd = os.open(fs.path("f"), os.O_CREAT | os.O_RDWR)
        os.fsync(fd)  # ENOSYS from fsync means "nothing to do" to the kernel
        os.close(fd)  # likewise flush and release
        assert os.access(fs.path("f"), os.R_OK)
        with pytest.raises(OSError) as e:
            os.getxattr(fs.path("f"), "user.x")
        assert e.value.errno == errno.EOPNOTSUPP  # the kernel's answer to ENOSYS for xattrs


class TaskRecordingFS(MemFS):
    """Records the coroutine of the task each getattr runs in; getattr of a file suspends."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[str] = []

    async def getattr(self, inode: Any, ctx: Any = None) -> pyfuse3.EntryAttributes:
        task = asyncio.current_task()
        assert task is not None, "handlers always run inside a task"
        self.tasks.append(task.get_coro().__qualname__)  # type: ignore[union-attr]
        if inode != pyfuse3.ROOT_INODE:
            await current().sleep(0.001)  # a suspended handler keeps the task it started in
        return await super().getattr(inode, ctx)


@pytest.mark.skipif(not hasattr(asyncio, "eager_task_factory"),
                    reason="eager tasks (Python 3.12+)")
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_asyncio_drains_in_the_readiness_callback(loop: str) -> None:
    """Python 3.12+: requests are read by a task started eagerly from the fd's readiness
    callback, not by waking the parked reader task (one poll per request, not two)."""
    ops = TaskRecordingFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))
    with mounted(ops, backend=loop, options=[]) as fs:
        for _ in range(20):
            os.stat(fs.mountpoint)  # answered inline
            os.stat(fs.path("f"))  # suspends once
            time.sleep(0.001)  # let the reader park, as between requests of a single client
    assert len(ops.tasks) >= 40
    eager = ops.tasks.count("Dispatcher.drain_once")
    assert eager >= 0.9 * len(ops.tasks), ops.tasks


class TrioTaskFS(MemFS):
    """Records the trio task each getattr of a file runs in; it suspends once."""

    def __init__(self) -> None:
        super().__init__()
        self.tasks: list[trio.lowlevel.Task] = []

    async def getattr(self, inode: Any, ctx: Any = None) -> pyfuse3.EntryAttributes:
        if inode != pyfuse3.ROOT_INODE:
            self.tasks.append(trio.lowlevel.current_task())
            await trio.sleep(0.001)
        return await super().getattr(inode, ctx)


def test_trio_reuses_the_tasks_of_finished_workers() -> None:
    """Each handler that suspends makes the dispatcher start a worker (the reader stays with
    the handler): under trio a task whose worker finished takes the next one instead of a
    new task (starting and ending a task costs about three times as much as waking one).
    main() still ends, with no task left (mounted() would fail)."""
    ops = TrioTaskFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))
    with mounted(ops, backend="trio", options=[]) as fs:
        for _ in range(50):
            os.stat(fs.path("f"))  # one at a time: suspends once, then answers
    assert len(ops.tasks) >= 50
    assert len(set(map(id, ops.tasks))) <= 3, len(set(map(id, ops.tasks)))


class InterruptedTrioFS(TrioTaskFS):
    """lookup of "slow" waits until interrupted; of "swallow" too, then swallows the
    cancellation and answers."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0
        self.interrupted: list[trio.lowlevel.Task] = []

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name in (b"slow", b"swallow"):
            self.waiting += 1
            try:
                await trio.sleep(600)
            except trio.Cancelled:
                self.interrupted.append(trio.lowlevel.current_task())
                if name == b"slow":
                    raise
            return await super().lookup(parent_inode, b"f", ctx)
        return await super().lookup(parent_inode, name, ctx)


def test_trio_never_reuses_the_task_of_an_interrupted_handler() -> None:
    """A handler interrupted by the kernel cancels its task's scope, which every handler run in
    that task later would inherit: such a task ends instead of taking the next worker, also
    when the handler swallowed the cancellation and answered."""
    ops = InterruptedTrioFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))
    with mounted(ops, backend="trio", options=[]) as fs:
        for i, name in enumerate(("slow", "swallow")):
            client = subprocess.Popen([sys.executable, "-c", "import os, sys; os.stat(sys.argv[1])",
                                       fs.path(name)], stderr=subprocess.DEVNULL)
            try:
                assert eventually(lambda n=i + 1: ops.waiting == n, timeout=10)
                client.kill()  # the kernel sends INTERRUPT
                client.wait(timeout=10)
            finally:
                if client.poll() is None:
                    client.kill()
            assert eventually(lambda n=i + 1: len(ops.interrupted) == n, timeout=10)
        # Each suspends once in getattr and must be answered (a reused task hung them).
        pool = ThreadPoolExecutor(1)
        try:
            pool.submit(lambda: [os.stat(fs.path("f")) for _ in range(20)]).result(timeout=10)
        finally:
            pool.shutdown(wait=False)  # a stat left hanging ends when the mount is aborted
    assert len(ops.tasks) >= 20  # (over io_uring the kernel asks once more)
    assert not set(map(id, ops.tasks)) & set(map(id, ops.interrupted))


class LongLinkFS(MemFS):
    """readlink() answers a target of ``self.length`` bytes."""

    length = 1

    async def readlink(self, inode: Any, ctx: Any) -> bytes:
        return b"t" * self.length


@pytest.mark.fuse_errors_expected
def test_a_symlink_target_longer_than_the_kernel_takes_is_named(
        backend: str, caplog: pytest.LogCaptureFixture) -> None:
    """The kernel refused the reply (libfuse printed "writing device: Invalid argument") and
    the caller got EIO, with nothing in the log. A page minus one byte still works."""
    ops = LongLinkFS()
    ops.add(pyfuse3.ROOT_INODE, b"l", Node(stat.S_IFLNK | 0o777))
    limit = os.sysconf("SC_PAGESIZE") - 1
    with mounted(ops, backend=backend) as fs:
        ops.length = limit
        assert len(os.readlink(fs.path("l"))) == limit
        ops.length = limit + 1
        with pytest.raises(OSError) as info:
            os.readlink(fs.path("l"))
        assert info.value.errno == errno.EIO
        ops.length = 3
        assert os.readlink(fs.path("l")) == "ttt"  # still serving
    errors = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert errors == [f"readlink() handler returned a symlink target of {limit + 1} bytes, "
                      f"more than the kernel takes ({limit})"]
