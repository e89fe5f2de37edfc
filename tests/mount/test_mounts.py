"""Several file systems in one process and one event loop: pyfuse3.Mount."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import pyfuse3
from pyfuse3._sysutil import mount_of
from pyfuse3.testing import run

from ..memfs import MemFS, Node

pytestmark = pytest.mark.fuse


@contextlib.contextmanager
def mounts(n: int, make_ops: Callable[[int], Any] = lambda i: MemFS(),
           options: set[str] | None = None) -> Iterator[list[pyfuse3.Mount]]:
    """``n`` Mounts on fresh mountpoints; all closed and removed afterwards."""
    made: list[pyfuse3.Mount] = []
    dirs: list[str] = []
    try:
        for i in range(n):
            dirs.append(tempfile.mkdtemp(prefix="pyfuse3-test-"))
            made.append(pyfuse3.Mount(make_ops(i), dirs[-1],
                                      options if options is not None else pyfuse3.default_options))
        yield made
    finally:
        try:
            for m in made:
                with contextlib.suppress(RuntimeError):
                    m.terminate()
                m.close()
        finally:  # also when a close failed: nothing is left behind in /tmp
            for d in dirs:
                with contextlib.suppress(OSError):
                    os.rmdir(d)


def serve_all(backend: str, made: list[pyfuse3.Mount], client: Callable[[], object]) -> list[Any]:
    """Serve every mount in one event loop while ``client`` runs on a thread; then terminate
    them all. Returns what each serve() returned or raised."""

    async def main() -> list[Any]:
        if backend == "trio":
            import trio

            results: list[Any] = [None] * len(made)

            async def serve(i: int) -> None:
                try:
                    await made[i].serve()
                except Exception as e:
                    results[i] = e

            async with trio.open_nursery() as nursery:
                for i in range(len(made)):
                    nursery.start_soon(serve, i)
                try:
                    await trio.to_thread.run_sync(client)
                finally:
                    for m in made:
                        m.terminate()
            return results
        import asyncio

        tasks = [asyncio.ensure_future(m.serve()) for m in made]
        try:
            await asyncio.get_running_loop().run_in_executor(None, client)
        finally:
            for m in made:
                m.terminate()
            done = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        return list(done)

    return run(backend, main)


@pytest.mark.parametrize("n", [2, 10])
def test_several_mounts_serve_in_one_loop(backend: str, n: int) -> None:
    def make(i: int) -> MemFS:
        ops = MemFS()
        ops.add(pyfuse3.ROOT_INODE, b"who", Node(stat.S_IFREG | 0o644, data=f"fs{i}".encode()))
        return ops

    with mounts(n, make) as made:
        def client() -> None:
            for i, m in enumerate(made):
                with open(os.path.join(m.mountpoint, "who"), "rb") as fh:
                    assert fh.read() == f"fs{i}".encode()
                with open(os.path.join(m.mountpoint, f"new{i}"), "wb") as fh:
                    fh.write(b"x" * i)
            for i, m in enumerate(made):
                assert sorted(os.listdir(m.mountpoint)) == sorted(["who", f"new{i}"])

        assert serve_all(backend, made, client) == [None] * n
        for m in made:
            assert m.state == "stopped" and mount_of(m.mountpoint) is not None
            assert m.ops.calls["create"] == 1
    assert all(mount_of(m.mountpoint) is None for m in made)
    assert all(m.state == "closed" for m in made)


class WhoServesMe(MemFS):
    """Records Mount.current() in its lookups."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[pyfuse3.Mount] = []

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        self.seen.append(pyfuse3.Mount.current())
        return await super().lookup(parent_inode, name, ctx)


def test_a_handler_reaches_its_own_mount(backend: str) -> None:
    with mounts(3, lambda i: WhoServesMe()) as made:
        def client() -> None:
            for m in made:
                with contextlib.suppress(FileNotFoundError):
                    os.stat(os.path.join(m.mountpoint, "nothing"))

        assert serve_all(backend, made, client) == [None] * 3
        for m in made:
            assert m.ops.seen and all(seen is m for seen in m.ops.seen)
    with pytest.raises(RuntimeError, match="outside a request handler"):
        pyfuse3.Mount.current()


def test_cache_control_acts_on_its_own_mount_only(backend: str) -> None:
    def make(i: int) -> MemFS:
        ops = MemFS(timeout=300)  # the kernel keeps what it read
        ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644, data=b"old"))
        return ops

    with mounts(2, make) as (a, b):
        inode = a.ops.child(pyfuse3.ROOT_INODE, b"f")
        assert inode == b.ops.child(pyfuse3.ROOT_INODE, b"f")  # same inode number in both

        def read(m: pyfuse3.Mount) -> bytes:
            with open(os.path.join(m.mountpoint, "f"), "rb") as fh:
                return fh.read()

        def client() -> None:
            assert read(a) == read(b) == b"old"
            for m in (a, b):
                m.ops.nodes[inode].data = b"new"  # changed behind the kernel's back
            assert read(a) == read(b) == b"old"  # both cached
            a.invalidate_inode(inode)
            assert read(a) == b"new"
            assert read(b) == b"old"  # b's cache untouched
            b.notify_store(inode, 0, b"NEW")  # into b's page cache only
            assert read(b) == b"NEW" and read(a) == b"new"

        assert serve_all(backend, [a, b], client) == [None, None]


def test_awaitable_cache_control_of_a_mount(backend: str) -> None:
    got: list[bytes] = []
    handles: list[Any] = []

    class StoringFS(MemFS):
        async def read(self, fh: Any, off: int, size: int) -> bytes:
            data = await super().read(fh, off, size)
            mount = self.mount
            await mount.cache.notify_store(fh, 4096, b"s" * 4096)  # a whole page: kept
            got.append(await mount.cache.notify_retrieve(fh, 4096, 4096))
            handle = await mount.cache.invalidate_entry(pyfuse3.ROOT_INODE, b"f")
            handles.append(handle)
            return data

    def make(i: int) -> MemFS:
        ops = StoringFS(timeout=300)
        ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644, data=b"x" * 8192))
        return ops

    with mounts(2, make) as made:
        for m in made:
            m.ops.mount = m

        def client() -> None:
            fd = os.open(os.path.join(made[1].mountpoint, "f"), os.O_RDONLY | os.O_DIRECT)
            try:
                os.pread(fd, 4096, 0)
            finally:
                os.close(fd)
            # queued from the handler, performed after it answered; wait while still serving
            # (an invalidation still queued when serving ends fails with RuntimeError)
            assert handles[0].result(10) is None

        assert serve_all(backend, made, client) == [None, None]
    assert got == [b"s" * 4096]
    assert made[0].ops.calls["read"] == 0


def test_one_unmounted_from_outside_leaves_the_others_serving(backend: str) -> None:
    with mounts(3) as made:
        def client() -> None:
            os.listdir(made[1].mountpoint)
            subprocess.run([shutil.which("fusermount3") or "fusermount3", "-u",
                            made[1].mountpoint], check=True, timeout=30)
            for m in (made[0], made[2]):
                with open(os.path.join(m.mountpoint, "still"), "wb") as fh:
                    fh.write(b"serving")
                assert os.listdir(m.mountpoint) == ["still"]

        assert serve_all(backend, made, client) == [None, None, None]
        assert mount_of(made[1].mountpoint) is None  # (a stat of a mount not served would hang)
        assert None not in [mount_of(m.mountpoint) for m in (made[0], made[2])]


def test_a_failing_init_connection_ends_only_its_own_mount(backend: str) -> None:
    def make(i: int) -> MemFS:
        ops = MemFS()
        if i == 0:
            ops.init_connection = lambda conn: conn.want.add("no-such-capability")  # type: ignore
        return ops

    with mounts(2, make) as made:
        def client() -> None:
            with open(os.path.join(made[1].mountpoint, "f"), "wb") as fh:
                fh.write(b"fine")

        results = serve_all(backend, made, client)
    assert isinstance(results[0], ValueError) and "no-such-capability" in str(results[0])
    assert results[1] is None


class LeavesItsOwnBlock(MemFS):
    """A lookup that leaves its own Mount's ``async with`` (awaits its __aexit__)."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[BaseException] = []

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name == b"leave":
            try:
                await pyfuse3.Mount.current().__aexit__(None, None, None)
            except RuntimeError as e:
                self.errors.append(e)
        return await super().lookup(parent_inode, name, ctx)


def test_async_with_refuses_to_be_left_inside_its_own_handler(backend: str) -> None:
    """It would wait for serve() to return, which waits for the handler: refused, and the
    mount serves on."""
    with mounts(1, lambda i: LeavesItsOwnBlock()) as made:
        def client() -> None:
            with contextlib.suppress(FileNotFoundError):
                os.stat(os.path.join(made[0].mountpoint, "leave"))
            assert os.listdir(made[0].mountpoint) == []  # still served

        assert serve_all(backend, made, client) == [None]
        errors = made[0].ops.errors
        assert len(errors) == 1 and "inside one of its own handlers" in str(errors[0])
        assert made[0].state == "stopped"


def test_async_with_closes_a_mount_not_served_and_refuses_one_served_elsewhere(
        backend: str) -> None:
    """Not serving: leaving the block just closes. Served by another thread's loop: it cannot
    wait for that loop, so it refuses as close() does (the mount serves on)."""
    import threading

    with mounts(2) as made:
        run(backend, made[0].__aexit__, None, None, None)
        assert made[0].state == "closed" and mount_of(made[0].mountpoint) is None

        served = threading.Event()

        async def serve() -> None:
            served.set()
            await made[1].serve()

        thread = threading.Thread(target=run, args=(backend, serve))
        thread.start()
        try:
            assert served.wait(10)
            os.listdir(made[1].mountpoint)  # answered: serving
            with pytest.raises(RuntimeError, match="terminate"):
                run(backend, made[1].__aexit__, None, None, None)
            assert os.listdir(made[1].mountpoint) == []
        finally:
            made[1].terminate()
            thread.join(10)
        assert not thread.is_alive()
        run(backend, made[1].__aexit__, None, None, None)
        assert made[1].state == "closed" and mount_of(made[1].mountpoint) is None


def test_a_mountpoint_may_be_a_path(backend: str) -> None:
    import pathlib

    path = pathlib.Path(tempfile.mkdtemp(prefix="pyfuse3-test-"))
    try:
        with pyfuse3.Mount(MemFS(), path, []) as m:
            assert m.mountpoint == str(path) and mount_of(str(path)) is not None

            def client() -> None:
                (path / "f").write_bytes(b"through a Path")
                assert (path / "f").read_bytes() == b"through a Path"

            assert serve_all(backend, [m], client) == [None]
        assert mount_of(str(path)) is None
    finally:
        path.rmdir()


def test_mount_refuses_bad_arguments_and_reports_its_state(mnt: Any) -> None:
    with pytest.raises(TypeError, match=r"mountpoint must be str or os.PathLike "
                       r"\(a pathlib.Path\), not int"):
        pyfuse3.Mount(MemFS(), 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mount options must be a collection of str"):
        pyfuse3.Mount(MemFS(), str(mnt), "ro")  # nothing mounted: checked first
    # a class instead of an instance mounted, and failed every request (its unbound handlers
    # lacked an argument); None failed with "'NoneType' object has no attribute 'lookup'"
    with pytest.raises(TypeError, match=r"^ops must be an instance: pass MemFS\(\), not the "
                       r"class itself$"):
        pyfuse3.Mount(MemFS, str(mnt))
    with pytest.raises(TypeError, match=r"^ops must be a pyfuse3.Operations instance, not "
                       r"NoneType \(it has no lookup\(\) handler\)$"):
        pyfuse3.init(None, str(mnt))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="already a mount point"):
        pyfuse3.Mount(MemFS(), str(mnt))
    with mounts(1) as (m,):
        assert m.state == "mounted" and repr(m).endswith("mounted>")
        with m:
            pass
        assert m.state == "closed"
        with pytest.raises(RuntimeError, match="was closed"):
            m.invalidate_inode(1)
        m.terminate()  # nothing serves: does nothing (a late Ctrl-C handler calls it)
        m.close()  # a second close does nothing
        assert m.state == "closed"
