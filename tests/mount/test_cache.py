"""Kernel cache control on a real mount: every scenario of the specification.

The file system caches for 300 s (entries, attributes, and data with keep_cache), so each test
first shows the kernel answering from its cache (handler counters unchanged), changes the data
"remotely" (directly in the file system's state), and then shows the effect of the call.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import pyfuse3
import pyfuse3.cache
from pyfuse3 import _notify
from pyfuse3.testing import MountedFS, mounted

from ..memfs import MemFS, Node
from ..util import eventually, run_with_timeout

pytestmark = pytest.mark.fuse
PAGE = 4096
ROOT = pyfuse3.ROOT_INODE


class CacheFS(MemFS):
    """MemFS with long timeouts and cached negative lookups."""

    def __init__(self) -> None:
        super().__init__(timeout=300)
        self.on_mkdir: Callable[[], object] | None = None  # called inside the mkdir handler
        self.errors: list[BaseException] = []

    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        if self.on_mkdir is not None:
            try:
                self.on_mkdir()
            except BaseException as e:
                self.errors.append(e)
                raise
        return await super().mkdir(parent_inode, name, mode, ctx)

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name not in self.node(parent_inode).entries and name != b".":
            self.calls["lookup"] += 1
            negative = pyfuse3.EntryAttributes()
            negative.st_ino = 0  # a negative entry the kernel caches for entry_timeout
            negative.entry_timeout = 300
            return negative
        return await super().lookup(parent_inode, name, ctx)


@pytest.fixture
def fs(backend: str) -> Iterator[MountedFS]:
    with mounted(CacheFS(), backend=backend) as mfs:
        yield mfs


def make_file(fs: MountedFS, name: str, data: bytes) -> int:
    """Create a file through the mount and return its inode."""
    with open(fs.path(name), "wb") as fh:
        fh.write(data)
    return os.stat(fs.path(name)).st_ino


def read(fs: MountedFS, name: str, size: int = -1, offset: int = 0) -> bytes:
    with open(fs.path(name), "rb", buffering=0) as fh:
        fh.seek(offset)
        return fh.read(size)


def remote_write(fs: MountedFS, inode: int, data: bytes) -> None:
    """Change a file's content behind the kernel's back (same size and times)."""
    fs.ops.nodes[inode].data = data


# ---------------------------------------------------------------- data

def test_invalidate_inode_drops_cached_data(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"A" * PAGE)
    assert read(fs, "f") == b"A" * PAGE
    reads = fs.ops.calls["read"]
    remote_write(fs, ino, b"B" * PAGE)
    assert read(fs, "f") == b"A" * PAGE  # served from the page cache: stale
    assert fs.ops.calls["read"] == reads
    pyfuse3.invalidate_inode(ino)
    assert read(fs, "f") == b"B" * PAGE
    assert fs.ops.calls["read"] > reads


def test_invalidate_inode_attr_only_shows_new_size(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"12345")
    assert os.stat(fs.path("f")).st_size == 5
    remote_write(fs, ino, b"1234567890")
    assert os.stat(fs.path("f")).st_size == 5  # attributes cached
    pyfuse3.invalidate_inode(ino, attr_only=True)
    assert os.stat(fs.path("f")).st_size == 10
    assert read(fs, "f") == b"1234567890"


def test_invalidate_inode_byte_range(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"A" * 2 * PAGE)
    assert read(fs, "f") == b"A" * 2 * PAGE
    remote_write(fs, ino, b"B" * 2 * PAGE)
    pyfuse3.invalidate_inode(ino, offset=PAGE, length=PAGE)
    assert read(fs, "f") == b"A" * PAGE + b"B" * PAGE  # only the second page was dropped


# ---------------------------------------------------------------- notify_store

def test_notify_store_serves_reads_without_the_handler(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"A" * PAGE)
    with open(fs.path("f"), "rb", buffering=0) as fh:  # open: keep_cache keeps what we store
        remote_write(fs, ino, b"S" * PAGE)
        pyfuse3.notify_store(ino, 0, b"S" * PAGE)
        reads = fs.ops.calls["read"]
        assert fh.read() == b"S" * PAGE
        assert fs.ops.calls["read"] == reads


def test_notify_store_prefetches_several_blocks(fs: MountedFS) -> None:
    blocks = [bytes([65 + i]) * PAGE for i in range(8)]
    ino = make_file(fs, "f", b"\0" * 8 * PAGE)
    with open(fs.path("f"), "rb", buffering=0) as fh:
        remote_write(fs, ino, b"".join(blocks))
        for i, block in enumerate(blocks):
            pyfuse3.notify_store(ino, i * PAGE, memoryview(bytearray(block)))
        reads = fs.ops.calls["read"]
        assert fh.read() == b"".join(blocks)
        assert fs.ops.calls["read"] == reads


def test_notify_store_beyond_current_size(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"A" * PAGE)
    with open(fs.path("f"), "rb", buffering=0) as fh:
        remote_write(fs, ino, b"A" * PAGE + b"\0" * PAGE + b"Z" * PAGE)  # the file grew
        pyfuse3.notify_store(ino, 2 * PAGE, b"Z" * PAGE)
        reads = fs.ops.calls["read"]
        fh.seek(2 * PAGE)
        assert fh.read(PAGE) == b"Z" * PAGE
        assert fs.ops.calls["read"] == reads
        assert os.fstat(fh.fileno()).st_size == 3 * PAGE


def test_notify_retrieve_returns_what_notify_store_put(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"\0" * 2 * PAGE)
    with open(fs.path("f"), "rb", buffering=0):
        data = os.urandom(2 * PAGE)
        pyfuse3.notify_store(ino, 0, data)
        got = fs.call(pyfuse3.cache.notify_retrieve, ino, 0, 2 * PAGE)
        assert got == data
        assert fs.call(pyfuse3.cache.notify_retrieve, ino, PAGE, PAGE) == data[PAGE:]


# ---------------------------------------------------------------- entries

def test_remote_delete(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"x")
    assert os.path.exists(fs.path("f"))
    del fs.ops.nodes[ROOT].entries[b"f"]
    assert os.stat(fs.path("f")).st_ino == ino  # the kernel still has the entry
    pyfuse3.invalidate_entry(ROOT, b"f")
    with pytest.raises(FileNotFoundError):
        os.stat(fs.path("f"))


def test_remote_delete_with_deleted(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"x")
    with open(fs.path("f"), "rb") as fh:
        assert os.fstat(fh.fileno()).st_nlink == 1
        del fs.ops.nodes[ROOT].entries[b"f"]
        fs.ops.nodes[ino].nlink = 0
        pyfuse3.invalidate_entry(ROOT, b"f", deleted=ino)
        with pytest.raises(FileNotFoundError):
            os.stat(fs.path("f"))
        assert os.fstat(fh.fileno()).st_nlink == 0  # the open file knows it was deleted


def test_remote_create(fs: MountedFS) -> None:
    with pytest.raises(FileNotFoundError):
        os.stat(fs.path("new"))
    lookups = fs.ops.calls["lookup"]
    fs.ops.add(ROOT, b"new", Node(stat.S_IFREG | 0o644, data=b"hi"))
    with pytest.raises(FileNotFoundError):
        os.stat(fs.path("new"))  # the negative entry is cached
    assert fs.ops.calls["lookup"] == lookups
    pyfuse3.invalidate_entry(ROOT, b"new")
    assert read(fs, "new") == b"hi"


def test_remote_rename(fs: MountedFS) -> None:
    ino = make_file(fs, "old", b"x")
    with pytest.raises(FileNotFoundError):
        os.stat(fs.path("new"))
    entries = fs.ops.nodes[ROOT].entries
    entries[b"new"] = entries.pop(b"old")
    assert os.path.exists(fs.path("old")) and not os.path.exists(fs.path("new"))  # stale
    pyfuse3.invalidate_entry(ROOT, b"old")
    pyfuse3.invalidate_entry(ROOT, b"new")
    assert not os.path.exists(fs.path("old"))
    assert os.stat(fs.path("new")).st_ino == ino


@pytest.mark.fuse_errors_expected
def test_invalidate_entry_async_on_a_name_never_cached(
        fs: MountedFS, caplog: pytest.LogCaptureFixture) -> None:
    os.listdir(fs.mountpoint)  # INIT done
    handle = pyfuse3.invalidate_entry_async(ROOT, b"never-looked-up", ignore_enoent=True)
    assert handle.result(timeout=5) is None
    handle = pyfuse3.invalidate_entry_async(ROOT, b"never-looked-up")
    with pytest.raises(FileNotFoundError):
        handle.result(timeout=5)
    with caplog.at_level(logging.ERROR, logger="pyfuse3"):
        unobserved = pyfuse3.invalidate_entry_async(ROOT, b"also-never")
        assert eventually(unobserved.done)
        del unobserved  # an error nobody looked at is logged
    assert any("nobody checked" in r.getMessage() for r in caplog.records)


def test_invalidate_entry_async_applies_in_order(fs: MountedFS) -> None:
    for i in range(20):
        make_file(fs, f"f{i}", b"x")
    for i in range(20):
        del fs.ops.nodes[ROOT].entries[f"f{i}".encode()]
    handles = [pyfuse3.invalidate_entry_async(ROOT, f"f{i}".encode()) for i in range(20)]
    handles[-1].result(timeout=5)
    assert all(h.done() for h in handles)
    assert not any(os.path.exists(fs.path(f"f{i}")) for i in range(20))


# ---------------------------------------------------------------- safety

class WritebackFS(CacheFS):
    """Writeback cache on; reading xattr user.invalidate makes a handler invalidate the file."""

    enable_writeback_cache = True

    async def getxattr(self, inode: Any, name: Any, ctx: Any) -> bytes:
        if name == b"user.invalidate":
            writes = self.calls["write"]
            await pyfuse3.cache.invalidate_inode(inode)
            return str(self.calls["write"] - writes).encode()
        return await super().getxattr(inode, name, ctx)

    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        attr = await super().mkdir(parent_inode, name, mode, ctx)
        # The kernel holds the directory's lock for this mkdir: a blocking invalidation of an
        # entry in it would wait for this handler forever.
        self.handles.append(await pyfuse3.cache.invalidate_entry(parent_inode, name))
        return attr

    handles: list[Any] = []


def test_awaitable_invalidate_inode_in_handler_with_writeback(backend: str) -> None:
    ops = WritebackFS()
    with mounted(ops, backend=backend) as fs:
        fd = os.open(fs.path("f"), os.O_CREAT | os.O_RDWR)
        try:
            os.write(fd, b"dirty" * 1000)  # stays in the kernel's page cache
            assert ops.calls["write"] == 0
            written = run_with_timeout(lambda: os.getxattr(fs.path("f"), "user.invalidate"))
            assert int(written) > 0  # the handler's invalidation flushed the dirty pages
            assert ops.nodes[os.fstat(fd).st_ino].data == b"dirty" * 1000
        finally:
            os.close(fd)


def test_awaitable_invalidate_entry_in_related_handler(backend: str) -> None:
    ops = WritebackFS()
    ops.handles = []
    with mounted(ops, backend=backend) as fs:
        run_with_timeout(lambda: os.mkdir(fs.path("d")))
        assert ops.handles[0].result(timeout=5) is None  # performed once mkdir was answered
        lookups = ops.calls["lookup"]
        assert os.path.isdir(fs.path("d"))
        assert ops.calls["lookup"] == lookups + 1  # the entry really was dropped


def test_awaitable_forms_outside_handlers(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"A" * PAGE)
    assert read(fs, "f") == b"A" * PAGE
    remote_write(fs, ino, b"B" * PAGE)
    fs.call(pyfuse3.cache.invalidate_inode, ino)
    assert read(fs, "f") == b"B" * PAGE
    del fs.ops.nodes[ROOT].entries[b"f"]
    handle = fs.call(pyfuse3.cache.invalidate_entry, ROOT, b"f")
    assert handle.done() and handle.result() is None
    assert not os.path.exists(fs.path("f"))
    with pytest.raises(FileNotFoundError):
        fs.call(pyfuse3.cache.invalidate_entry, ROOT, b"never")


def test_invalidator_coalesces_and_counts(fs: MountedFS) -> None:
    inodes = [make_file(fs, f"f{i}", b"A" * PAGE) for i in range(3)]
    for i in range(3):
        assert read(fs, f"f{i}") == b"A" * PAGE
        remote_write(fs, inodes[i], b"B" * PAGE)
    inv = pyfuse3.cache.Invalidator()
    for ino in inodes:
        inv.inode(ino, attr_only=True)
        inv.inode(ino)  # absorbs the attributes-only request
        inv.inode(ino)
    inv.entry(ROOT, b"never-cached")
    inv.entry(ROOT, b"never-cached")
    assert inv.pending() == 4
    assert fs.call(inv.flush) == []  # ENOENT ignored by policy
    assert [read(fs, f"f{i}") for i in range(3)] == [b"B" * PAGE] * 3
    stats = inv.statistics()
    assert (stats.requested, stats.coalesced, stats.performed) == (11, 7, 3)
    assert (stats.not_cached, stats.errors) == (1, 0)
    strict = pyfuse3.cache.Invalidator(ignore_enoent=False)
    strict.inode(999_999)
    errors = fs.call(strict.flush)
    assert len(errors) == 1 and errors[0][1].errno == errno.ENOENT


def test_invalidator_byte_ranges(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"A" * 6 * PAGE)
    assert read(fs, "f") == b"A" * 6 * PAGE
    remote_write(fs, ino, b"B" * 6 * PAGE)
    inv = pyfuse3.cache.Invalidator()
    inv.inode(ino, attr_only=True)  # absorbed by the ranges
    inv.inode(ino, offset=PAGE, length=PAGE)
    inv.inode(ino, offset=2 * PAGE, length=PAGE)  # joins the first: pages 1-2
    inv.inode(ino, offset=4 * PAGE, length=PAGE)
    assert inv.pending() == 1
    assert fs.call(inv.flush) == []
    assert read(fs, "f") == b"A" * PAGE + b"B" * 2 * PAGE + b"A" * PAGE + b"B" * PAGE + \
        b"A" * PAGE  # only the queued ranges were dropped
    stats = inv.statistics()
    assert (stats.requested, stats.coalesced, stats.performed) == (4, 3, 2)  # two kernel calls


def test_invalidator_one_failing_item_drops_no_other(fs: MountedFS) -> None:
    """A range merged past the largest offset, and an item the kernel call cannot take, used
    to make flush() raise and drop the rest of its batch (stale caches)."""
    inodes = [make_file(fs, f"f{i}", b"A" * PAGE) for i in range(3)]
    for i in range(3):
        assert read(fs, f"f{i}") == b"A" * PAGE  # cached
        remote_write(fs, inodes[i], b"B" * PAGE)
    inv = pyfuse3.cache.Invalidator()
    inv.inode(inodes[0], offset=0, length=(1 << 63) - 1)
    inv.inode(inodes[0], offset=(1 << 63) - 2, length=100)  # valid alone; merged: to the end
    inv._inodes[1 << 65] = None  # what no check can let in any more; here on purpose
    inv.inode(inodes[1])
    inv.inode(inodes[2], offset=0, length=PAGE)
    errors = fs.call(inv.flush)
    assert [what for what, _ in errors] == [f"inode {1 << 65} (attributes)"]
    assert [read(fs, f"f{i}") for i in range(3)] == [b"B" * PAGE] * 3
    assert inv.statistics().errors == 1 and inv.statistics().performed == 3


def _serve_while_flushing(backend: str, mnt: str) -> int:
    """Serve a mount while Invalidator.run() flushes what a task queues at every moment, then
    terminate it; returns the kernel calls performed."""
    import anyio

    from pyfuse3.testing import run

    ops = MemFS()
    ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o644, data=b"x"))
    with pyfuse3.Mount(ops, mnt) as m:
        inv = pyfuse3.cache.Invalidator(mount=m)

        async def feed() -> None:
            while m.state in ("mounted", "serving"):
                inv.entry(ROOT, b"f")
                inv.inode(ROOT)
                await anyio.sleep(0)

        async def stop() -> None:
            await anyio.to_thread.run_sync(os.stat, os.path.join(mnt, "f"))
            with anyio.fail_after(10):  # end serving while flushes are going on
                while inv.statistics().performed < 3:
                    await anyio.sleep(0.001)
            m.terminate()

        async def main() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(m.serve)
                tg.start_soon(inv.run, 0.0005)
                tg.start_soon(feed)
                tg.start_soon(stop)

        run(backend, main)  # an exception from run() fails the test here
        inv.entry(ROOT, b"f")
        with pytest.raises(RuntimeError, match="serving has ended"):
            run(backend, inv.flush)
        return inv.statistics().performed


def test_invalidator_run_returns_when_serving_ends(backend: str) -> None:
    """Serving ends while run() flushes: run() returns instead of raising; flush() afterwards
    says why nothing can be done."""
    import tempfile

    for _ in range(15):
        mnt = tempfile.mkdtemp(prefix="pyfuse3-test-")
        try:
            assert _serve_while_flushing(backend, mnt) > 0  # it flushed while serving
        finally:
            os.rmdir(mnt)


# ---------------------------------------------------------------- errors

def test_error_rows_of_the_specification(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"x")
    with pytest.raises(FileNotFoundError):
        pyfuse3.invalidate_inode(999_999)
    with pytest.raises(FileNotFoundError):
        pyfuse3.invalidate_inode(999_999, attr_only=True)
    with pytest.raises(NotADirectoryError):
        pyfuse3.invalidate_entry(ino, b"x")
    with pytest.raises(FileNotFoundError):
        pyfuse3.invalidate_entry(999_999, b"x")
    with pytest.raises(FileNotFoundError):
        pyfuse3.notify_store(999_999, 0, b"x")
    with pytest.raises(OSError) as e:
        pyfuse3.notify_store(ROOT, 0, b"x")  # a directory
    assert e.value.errno == errno.EINVAL
    pyfuse3.notify_store(ino, 0, b"")  # empty store: nothing to do


def test_bad_arguments(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"x")
    for call in (lambda: pyfuse3.invalidate_entry(ROOT, "f"),  # type: ignore[arg-type]
                 lambda: pyfuse3.invalidate_entry_async(ROOT, "f"),  # type: ignore[arg-type]
                 lambda: pyfuse3.notify_store(ino, 0, "text"),
                 lambda: pyfuse3.invalidate_inode("1")):  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            call()
    for call in (lambda: pyfuse3.invalidate_inode(-1),
                 lambda: pyfuse3.invalidate_entry(-1, b"f"),
                 lambda: pyfuse3.invalidate_entry_async(2**64, b"f"),
                 lambda: pyfuse3.notify_store(-1, 0, b"x")):
        with pytest.raises(OverflowError):
            call()
    with pytest.raises(ValueError):
        pyfuse3.notify_store(ino, -1, b"x")
    with pytest.raises(ValueError):
        pyfuse3.invalidate_inode(ino, offset=-5)
    # each error names its argument (it said "an integer is required")
    for call, error, text in (
            (lambda: pyfuse3.invalidate_inode("1"), TypeError, "inode must be an int, not str"),
            (lambda: pyfuse3.invalidate_entry("1", b"f"), TypeError,
             "inode_p must be an int, not str"),
            (lambda: pyfuse3.invalidate_entry(ROOT, b"f", deleted=True), TypeError,
             "deleted must be an int, not bool"),
            (lambda: pyfuse3.invalidate_inode(ino, length="5"), TypeError,
             "length must be an int, not str"),
            (lambda: pyfuse3.notify_store(ino, 1.0, b"x"), TypeError,
             "offset must be an int, not float"),
            (lambda: pyfuse3.invalidate_inode(-1), OverflowError,
             "inode must be between 0 and 2**64-1, got -1"),
            (lambda: pyfuse3.invalidate_entry_async(2**64, b"f"), OverflowError,
             "inode_p must be between 0 and 2**64-1, got 18446744073709551616"),
            (lambda: pyfuse3.invalidate_inode(ino, offset=2**63), OverflowError,
             "offset must be at most 2**63-1"),
            (lambda: pyfuse3.notify_store(ino, -1, b"x"), ValueError,
             "offset must not be negative, got -1")):
        with pytest.raises(error) as info:
            call()
        assert text in str(info.value)

    class Index:  # an integer type of another library (numpy's, say)
        def __init__(self, value: int) -> None:
            self.value = value

        def __index__(self) -> int:
            return self.value

    pyfuse3.notify_store(Index(ino), Index(0), b"x")  # taken, as the C conversion did


def test_calls_before_init_answered_and_after_close(tmp_path: Any) -> None:
    pyfuse3.init(CacheFS(), str(tmp_path), [])
    try:
        # mounted, but main() has not answered the kernel's INIT yet
        for call in (lambda: pyfuse3.invalidate_inode(ROOT),
                     lambda: pyfuse3.invalidate_entry_async(ROOT, b"x")):
            with pytest.raises(OSError) as e:
                call()
            assert e.value.errno == errno.ENOSYS
    finally:
        pyfuse3.close()
    with pytest.raises(RuntimeError, match="closed"):
        pyfuse3.invalidate_inode(ROOT)
    with pytest.raises(RuntimeError, match="closed"):
        pyfuse3.invalidate_entry_async(ROOT, b"x")


def test_expire_entry(fs: MountedFS) -> None:
    ino = make_file(fs, "f", b"x")
    os.stat(fs.path("f"))
    lookups = fs.ops.calls["lookup"]
    os.stat(fs.path("f"))
    assert fs.ops.calls["lookup"] == lookups  # cached
    pyfuse3.expire_entry(ROOT, b"f")
    assert os.stat(fs.path("f")).st_ino == ino
    assert fs.ops.calls["lookup"] == lookups + 1  # expired: looked up again
    with pytest.raises(FileNotFoundError):
        pyfuse3.expire_entry(ROOT, b"never-cached")


def test_entry_worker_restarts_with_each_session(backend: str) -> None:
    import threading

    for _ in range(2):
        with mounted(CacheFS(), backend=backend) as fs:
            make_file(fs, "f", b"x")
            del fs.ops.nodes[ROOT].entries[b"f"]
            assert pyfuse3.invalidate_entry_async(ROOT, b"f").result(timeout=5) is None
            assert not os.path.exists(fs.path("f"))
            workers = [t for t in threading.enumerate() if t.name == "pyfuse3-invalidate"]
            assert len(workers) == 1
        workers[0].join(5)
        assert not workers[0].is_alive()  # close() stopped it


class StoreRecipeFS(CacheFS):
    """The recipe of docs/cache-control.md: keep_cache, and no automatic data invalidation."""

    def __init__(self, auto_inval_data: bool) -> None:
        super().__init__()
        self.auto_inval_data = auto_inval_data

    def init_connection(self, conn: pyfuse3.ConnectionInfo) -> None:
        if not self.auto_inval_data:
            conn.want.discard("auto_inval_data")

    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        info = await super().open(inode, flags, ctx)
        info.keep_cache = True
        return info


@pytest.mark.parametrize("auto_inval_data", [False, True])
def test_notify_store_recipe_for_a_remote_change(backend: str, auto_inval_data: bool) -> None:
    """A remote value changed (new size and mtime) and the file system knows the new bytes."""
    with mounted(StoreRecipeFS(auto_inval_data), backend=backend) as fs:
        ino = make_file(fs, "f", b"A" * 2 * PAGE)
        assert read(fs, "f") == b"A" * 2 * PAGE
        new = b"B" * 3 * PAGE
        node = fs.ops.nodes[ino]
        node.data, node.times[1] = new, node.times[1] + 5_000_000_000  # changed remotely
        pyfuse3.invalidate_inode(ino, attr_only=True)  # 1. the new size and mtime
        pyfuse3.notify_store(ino, 0, new)              # 2. the new bytes, whole pages
        reads = fs.ops.calls["read"]
        st = os.stat(fs.path("f"))
        assert st.st_size == 3 * PAGE and st.st_mtime_ns == node.times[1]
        assert read(fs, "f") == new
        # with auto_inval_data the kernel drops the stored pages once it sees the new mtime
        assert (fs.ops.calls["read"] > reads) is auto_inval_data


# ---------------------------------------------------------------- invalidate_all (epoch)

READER = """
import os, sys
for line in sys.stdin:
    try:
        print(os.stat(line.strip()).st_ino, flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
""".replace("import os, sys", "import errno, os, sys")


class Reader:
    """A separate process that stats paths on request (its own view of the kernel cache)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", READER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def stat(self, path: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(path + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def _swap_behind_the_kernel(fs: MountedFS) -> None:
    """'a' and 'd/c' now name new files, and 'missing' exists: the kernel is not told."""
    ops = fs.ops
    for parent, name in ((ROOT, b"a"), (ops.nodes[ROOT].entries[b"d"], b"c")):
        ops.add(parent, name + b".new", Node(stat.S_IFREG | 0o644, data=b"new"))
        entries = ops.nodes[parent].entries
        entries[name] = entries.pop(name + b".new")
    ops.add(ROOT, b"missing", Node(stat.S_IFREG | 0o644, data=b"now here"))


@pytest.mark.parametrize("how", ["module", "mount", "awaitable", "in-handler"])
def test_invalidate_all_drops_every_cached_name(fs: MountedFS, how: str) -> None:
    """Names cached by another process (positive, nested, negative) are all looked up again
    after one invalidate_all(); before it, the same process still sees the old ones."""
    if not _notify.HAVE_EPOCH:
        pytest.skip(f"pyfuse3 was built against libfuse {pyfuse3.LIBFUSE_VERSION} (< 3.18)")
    make_file(fs, "a", b"old")
    os.mkdir(fs.path("d"))
    make_file(fs, "d/c", b"old")
    paths = [fs.path(p) for p in ("a", "d/c", "missing")]
    reader = Reader()
    try:
        before = [reader.stat(p) for p in paths]
        assert before[2] == "ENOENT"
        _swap_behind_the_kernel(fs)
        lookups = fs.ops.calls["lookup"]
        assert [reader.stat(p) for p in paths] == before  # the control: answered from cache
        assert fs.ops.calls["lookup"] == lookups
        try:
            if how == "module":
                pyfuse3.invalidate_all()
            elif how == "mount":
                assert fs.mount is not None
                fs.mount.invalidate_all()
            elif how == "awaitable":
                fs.call(pyfuse3.cache.invalidate_all)
            else:  # a handler calls it (it never waits, so it is allowed there)
                fs.ops.on_mkdir = lambda: pyfuse3.Mount.current().invalidate_all()
                os.mkdir(fs.path("trigger"))
                assert fs.ops.errors == []
        except OSError as e:
            if e.errno == errno.ENOSYS:
                pytest.skip(str(e))
            raise
        after = [reader.stat(p) for p in paths]
        assert after[0] != before[0] and after[1] != before[1] and after[2].isdigit()
        assert after[0] == str(fs.ops.nodes[ROOT].entries[b"a"])
    finally:
        reader.close()


class BudgetFS(MemFS):
    """MemFS that reports the lookups the kernel counts to an EntryBudget of ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.budget = pyfuse3.cache.EntryBudget(limit)

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        entry = await super().lookup(parent_inode, name, ctx)
        self.budget.looked_up(parent_inode, name, entry.st_ino)
        return entry

    async def forget(self, inode_list: Any) -> None:
        await super().forget(inode_list)
        for inode, _ in inode_list:
            if self.lookups[inode] <= 0:
                self.budget.forgotten(inode)


#: stats every file of DIR/d while DIR/d/f7 is open, prints "walked", holds until stdin closes
WALKER = """
import os, sys
d = sys.argv[1] + "/d"
with open(d + "/f7", "rb") as held:
    for i in range(int(sys.argv[2])):
        os.stat(f"{d}/f{i}")
    print("walked", flush=True)
    sys.stdin.readline()
    print(held.read().decode(), flush=True)
"""


@pytest.mark.parametrize("limit", [40, 1000], ids=["budget", "control"])
def test_an_entry_budget_keeps_the_kernels_inodes_near_its_limit(backend: str,
                                                                 limit: int) -> None:
    """The kernel keeps every inode it was sent (the control: all 401 held after a walk of
    400 files). With a budget of 40 it is asked to forget the entries looked up longest ago
    and does, sending forget(), down to the budget (plus the open file, if its entry was
    asked last); the open file stays known and readable."""
    files = 400
    ops = BudgetFS(limit)
    d = ops.add(ROOT, b"d", Node(stat.S_IFDIR | 0o755, nlink=2))
    for i in range(files):
        ops.add(d.st_ino, b"f%d" % i, Node(stat.S_IFREG | 0o644, data=b"%d" % i))
    ops.lookups.clear()  # (add() counts as the kernel would; these were never sent)
    with mounted(ops, backend=backend) as fs:
        walker = subprocess.Popen([sys.executable, "-c", WALKER, fs.mountpoint, str(files)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert walker.stdout is not None and walker.stdout.readline() == "walked\n"
            if limit > files:
                assert ops.budget.held == files + 1 and ops.budget.asked == 0
                assert ops.calls["forget"] == 0
            else:
                # One over at most: the open file's entry may be among the last asked, and
                # the kernel keeps what is in use (the budget counts it until then)
                assert eventually(lambda: ops.budget.held <= limit + 1, timeout=10), \
                    ops.budget.held
                assert ops.calls["forget"] > 0 and ops.budget.asked >= files - limit
                assert ops.lookups[d.st_ino + 8] > 0  # f7: open, so kept
            out, _ = walker.communicate("\n", timeout=10)
            assert out == "7\n"
        finally:
            if walker.poll() is None:
                walker.kill()
                walker.communicate(timeout=10)
