"""The edges where threads, cancellation and shutdown meet: one regression test per defect.

Scenarios that could corrupt memory run in a child process (tests/child_fs.py) under a
poisoning allocator, so a use after free crashes there instead of passing by luck.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import os
import re
import select
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sniffio
import trio

import pyfuse3
import pyfuse3.cache
from pyfuse3.testing import _mounted as testing_mount
from pyfuse3.testing import abort_connection, lazy_unmount, mounted

from ..memfs import MemFS, Node
from ..util import eventually, run_with_timeout

pytestmark = pytest.mark.fuse
ROOT = Path(__file__).resolve().parents[2]

#: glibc fills freed memory with 0x5a... and takes no shortcut past it (no tcache)
POISON = {"MALLOC_PERTURB_": "165", "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0",
          "PYTHONFAULTHANDLER": "1"}


def _fuse_mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as fh:
        return any(line.split()[4] == path and " - fuse" in line for line in fh)


class Child:
    """A scenario of tests/child_fs.py running in its own process."""

    def __init__(self, scenario: str, *args: str) -> None:
        self.mountpoint = tempfile.mkdtemp(prefix="pyfuse3-child-")
        self.clients: list[subprocess.Popen[str]] = []
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.child_fs", scenario, self.mountpoint, *args],
                cwd=ROOT, env={**os.environ, **POISON}, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
        except BaseException:
            os.rmdir(self.mountpoint)
            raise

    def wait_mounted(self, timeout: float = 20) -> None:
        assert eventually(lambda: _fuse_mounted(self.mountpoint) or self.proc.poll() is not None,
                          timeout), "the child did not mount"
        assert self.proc.poll() is None, self.proc.communicate()

    def client(self, name: str, op: str = "stat") -> subprocess.Popen[str]:
        path = os.path.join(self.mountpoint, name)
        code = ("import os, errno\n"
                f"try:\n    os.{op}({path!r})\nexcept OSError as e:\n"
                "    print(errno.errorcode[e.errno])\nelse:\n    print('ok')\n")
        c = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        self.clients.append(c)
        return c

    def line(self, timeout: float) -> str:
        """The next line the child prints (without its newline), read byte by byte from the
        pipe so that finish() gets the rest; what came when ``timeout`` seconds passed or
        the child ended first."""
        assert self.proc.stdout is not None
        fd, deadline, got = self.proc.stdout.fileno(), time.monotonic() + timeout, b""
        while not got.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
            byte = os.read(fd, 1)
            if not byte:
                break
            got += byte
        return got.decode().rstrip("\n")

    def idle(self) -> bool:
        """Whether the child's main thread waits in epoll (its event loop has nothing to do)."""
        with open(f"/proc/{self.proc.pid}/wchan") as fh:
            return "epoll" in fh.read()

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            abort_connection(self.mountpoint)  # a thread blocked in the kernel cannot die
            try:
                stdout, stderr = self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                stdout, stderr = "", "(unkillable: blocked in the kernel)"
            pytest.fail(f"the child hung; it printed:\n{stdout}\n{stderr}")
        return self.proc.returncode, stdout, stderr

    def cleanup(self) -> None:
        """End the child and its clients by PID, abort and detach the mount, remove the
        mountpoint: also when a process is stuck in the kernel."""
        try:
            procs = [self.proc, *self.clients]
            for p in procs:
                if p.poll() is None:
                    p.kill()
            if _fuse_mounted(self.mountpoint):
                abort_connection(self.mountpoint)  # frees processes blocked on the mount
            for p in procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(10)
            if _fuse_mounted(self.mountpoint):
                lazy_unmount(self.mountpoint)
        finally:
            _remove_dir(self.mountpoint)


def _remove_dir(path: str) -> None:
    for _ in range(50):  # a lazy unmount may take a moment to let go
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    os.rmdir(path)  # the error fails the test: a mountpoint left behind


@contextlib.contextmanager
def child(scenario: str, *args: str) -> Iterator[Child]:
    c = Child(scenario, *args)
    try:
        yield c
    finally:
        c.cleanup()


@contextlib.contextmanager
def second_mountpoint() -> Iterator[str]:
    """A directory for a child's second Mount: detached (if still mounted) and removed after."""
    other = tempfile.mkdtemp(prefix="pyfuse3-child-")
    try:
        yield other
    finally:
        if _fuse_mounted(other):
            lazy_unmount(other)
        os.rmdir(other)


def assert_clean_exit(rc: int, stdout: str, stderr: str, mountpoint: str) -> None:
    assert rc == 0, f"child exited with {rc}:\n{stdout}\n{stderr}"
    assert "Fatal Python error" not in stderr and "Traceback" not in stderr, stderr
    assert "exit" in stdout.split(), stdout
    assert not _fuse_mounted(mountpoint), "the mount was left behind"


def outcomes_of(stdout: str, stderr: str, after: str = "") -> dict[str, int]:
    """The ``outcomes=[...]`` line a storm scenario printed (followed by ``after``)."""
    found = re.search(r"^outcomes=(\[.*\])" + re.escape(after) + "$", stdout, re.M)
    assert found, f"{stdout}\n{stderr}"
    return dict(ast.literal_eval(found.group(1)))


def test_two_threads_notifying_one_poll_handle_free_it_once() -> None:
    """Both threads used to pass the "already notified" check: a double free (SIGSEGV or a
    glibc heap abort in 10 of 10 runs with 300 handles)."""
    with child("poll_handles_race", "300") as c:
        rc, stdout, stderr = c.finish(60)
        assert "handles=300" in stdout, stdout + stderr
        assert "notified=300 refused=300" in stdout, stdout + stderr
        assert "closed" in stdout.split("\n")
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)


# -- 1, 6, 10: Ctrl-C and cancellation of main() ------------------------------------------

@pytest.mark.parametrize("backend,how", [
    ("asyncio", "sigint"), ("uvloop", "sigint"), ("asyncio", "timeout"),   # defect 1
    ("asyncio", "run_until_complete"),                                      # defect 6
    ("trio", "sigint"),                                                     # defect 10
])
def test_ctrl_c_with_a_suspended_handler_ends_cleanly(backend: str, how: str) -> None:
    """main() returns only after its handlers finished; close() then unmounts, no crash."""
    with child("ctrl_c", backend, how) as c:
        c.wait_mounted()
        slow = c.client("slow")
        assert c.line(timeout=20) == "handler-suspended"
        assert eventually(c.idle, 10)  # test_ctrl_c_at_any_moment_ends_main: other moments
        if how != "timeout":
            c.proc.send_signal(signal.SIGINT)
        rc, stdout, stderr = c.finish()
        assert "closed" in stdout.split("\n"), stdout
        expected = "caught TimeoutError" if how == "timeout" else "caught KeyboardInterrupt"
        assert expected in stdout, f"{stdout}\n{stderr}"
        # main() unwound and said so: only asyncio.run of Python 3.11+ (uvloop.run too) turns
        # Ctrl-C into the main task's cancellation itself; else pyfuse3 does it for serve()
        own_handler = backend != "trio" and how == "sigint" and sys.version_info >= (3, 11)
        raised = "CancelledError" if how == "timeout" or own_handler else "KeyboardInterrupt"
        assert f"main raised {raised}" in stdout.split("\n"), f"{stdout}\n{stderr}"
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)
        # the suspended lookup was answered (EINTR) before the session went away
        assert slow.communicate(timeout=10)[0].strip() in ("EINTR", "ENOTCONN", "ENOENT")


@pytest.mark.parametrize("style", ["with", "async-with"])
@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_ctrl_c_with_two_mounts_serving_closes_both(backend: str, style: str) -> None:
    """One Ctrl-C ends both serve()s and the program's ``with`` (or ``async with``) closes both
    mounts. On 3.10, with pyfuse3's handler cancelling both, the first KeyboardInterrupt
    stopped the loop before the other unwound: both mounts were left to the garbage collector."""
    with second_mountpoint() as other, child("ctrl_c_two_mounts", backend, other, style) as c:
        assert c.line(timeout=20) == "mounted"
        assert eventually(lambda: _fuse_mounted(other) and c.idle(), 10)
        c.proc.send_signal(signal.SIGINT)
        rc, stdout, stderr = c.finish()
        expected = "states ['stopped', 'stopped']" if style == "with" else \
            "after the block ['closed', 'closed']"
        assert expected in stdout.split("\n"), f"{stdout}\n{stderr}"
        assert "caught KeyboardInterrupt" in stdout.split("\n"), f"{stdout}\n{stderr}"
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)
        assert not _fuse_mounted(other)


def test_async_with_ends_a_serve_still_running_then_closes(backend: str) -> None:
    """Leaving ``async with Mount`` while its serve() runs in the loop: under asyncio, because
    another Mount's serve() in the same gather raised. The request in flight is answered (not
    EINTR), serve() ends, both are closed and the error reaches the top. With ``with``, close()
    refused (RuntimeError, serve() still running) and the mount was left behind."""
    with second_mountpoint() as other, child("async_with_ends_serving", backend, other) as c:
        assert c.line(timeout=20) == "mounted"
        client = c.client("slow")
        assert c.line(timeout=20) == "handler-suspended"
        assert client.communicate(timeout=20)[0].strip() == "ENOENT"
        rc, stdout, stderr = c.finish()
        lines = stdout.split("\n")
        assert "answering while stopping" in lines, f"{stdout}\n{stderr}"
        if backend == "trio":
            assert "left the block: states ['closed']" in lines, f"{stdout}\n{stderr}"
        else:
            assert "states ['serving', 'stopped']" in lines, f"{stdout}\n{stderr}"
            assert "caught ValueError: this file system refuses to start" in lines, \
                f"{stdout}\n{stderr}"
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)
        assert not _fuse_mounted(other)


# -- 2, 11: cache calls from inside a handler's task tree ----------------------------------

class HandlerCallsFS(MemFS):
    """mkdir runs ``self.action(parent, name)`` in a task started by the handler."""

    def __init__(self, action: str) -> None:
        super().__init__(timeout=300)
        self.action = action
        self.errors: list[BaseException] = []
        self.handles: list[pyfuse3.InvalidationHandle] = []

    async def _act(self, parent: int, name: bytes) -> None:
        try:
            if self.action == "await-cache":
                self.handles.append(await pyfuse3.cache.invalidate_entry(parent, name))
            elif self.action == "sync":
                pyfuse3.invalidate_entry(parent, name)
            elif self.action == "sync-expire":
                pyfuse3.expire_entry(parent, name)
            elif self.action.startswith("thread"):  # a thread of the handler's is inside it
                call = pyfuse3.expire_entry if self.action == "thread-expire" \
                    else pyfuse3.invalidate_entry
                if sniffio.current_async_library() == "trio":
                    await trio.to_thread.run_sync(call, parent, name)
                else:
                    import asyncio

                    await asyncio.to_thread(call, parent, name)
        except BaseException as e:
            self.errors.append(e)
            raise

    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        if sniffio.current_async_library() == "trio":
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._act, parent_inode, name)
        else:
            import asyncio

            await asyncio.gather(asyncio.create_task(self._act(parent_inode, name)))
        return await super().mkdir(parent_inode, name, mode, ctx)


def test_awaitable_invalidate_entry_from_a_handlers_child_task(backend: str) -> None:
    """Defect 2: the awaitable form in a task a handler started must not wait for the kernel."""
    ops = HandlerCallsFS("await-cache")
    with mounted(ops, backend=backend, options=[]) as fs:
        run_with_timeout(lambda: os.mkdir(fs.path("d")), timeout=10)
        assert ops.errors == []
        assert os.path.isdir(fs.path("d"))
        # queued inside the handler, performed once the kernel allowed it (before unmounting:
        # a handle still queued at close() fails, and its unchecked error would be logged)
        assert len(ops.handles) == 1
        with contextlib.suppress(FileNotFoundError):  # ENOENT: the kernel held nothing
            ops.handles[0].result(10)


@pytest.mark.fuse_errors_expected
@pytest.mark.parametrize("action", ["sync", "sync-expire", "thread", "thread-expire"])
def test_blocking_entry_call_inside_a_handler_is_refused(backend: str, action: str) -> None:
    """Defect 11: inside a handler (or its child task) it raises, never hangs; also in a
    thread the handler awaits (it deadlocked: the refusal looked at the loop thread only)."""
    ops = HandlerCallsFS(action)
    with mounted(ops, backend=backend, options=[]) as fs:
        with pytest.raises(OSError) as info:
            run_with_timeout(lambda: os.mkdir(fs.path("d")), timeout=10)
        assert info.value.errno == errno.EIO
        assert len(ops.errors) == 1 and isinstance(ops.errors[0], RuntimeError)
        name = "expire_entry" if action.endswith("expire") else "invalidate_entry"
        assert f"pyfuse3.{name}() called inside a request handler" in str(ops.errors[0])
        assert "await pyfuse3.cache.invalidate_entry" in str(ops.errors[0])
        assert os.listdir(fs.path()) == []  # still serving


class WritebackFS(MemFS):
    enable_writeback_cache = True

    def __init__(self) -> None:
        super().__init__(timeout=300)
        self.errors: list[BaseException] = []

    async def setattr(self, inode: Any, attr: Any, fields: Any, fh: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        if fields.update_mode:
            try:
                pyfuse3.invalidate_inode(inode)
            except RuntimeError as e:
                self.errors.append(e)
        return await super().setattr(inode, attr, fields, fh, ctx)


def test_invalidate_inode_with_dirty_writeback_pages_inside_a_handler_is_refused(
        backend: str) -> None:
    """Defect 11: with the writeback cache, dropping data from a handler would wait for itself."""
    ops = WritebackFS()
    with mounted(ops, backend=backend, options=[]) as fs:
        def dirty_then_chmod() -> None:
            with open(fs.path("f"), "wb") as fh:
                fh.write(b"x" * 65536)  # dirty pages in the kernel, not written yet
                os.fchmod(fh.fileno(), 0o600)
        run_with_timeout(dirty_then_chmod, timeout=10)
        assert len(ops.errors) == 1
        assert "pyfuse3.cache.invalidate_inode" in str(ops.errors[0])
        assert "invalidate_entry_async" not in str(ops.errors[0])  # not the function to use
        with open(fs.path("f"), "rb") as fh:
            assert fh.read() == b"x" * 65536


# -- 3: a CancelledError nobody sent ---------------------------------------------------------

class SharedFutureFS(MemFS):
    """Lookups of ``shared`` await a future another task cancels (a shared fetch)."""

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        import asyncio

        if name in (b"shared", b"shared-now"):
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if name == b"shared-now":
                fut.cancel()  # awaiting it raises at once: the handler never suspends
            else:
                asyncio.get_running_loop().call_later(0.01, fut.cancel)
            await fut
        return await super().lookup(parent_inode, name, ctx)


@pytest.mark.fuse_errors_expected
@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
@pytest.mark.parametrize("name", ["shared", "shared-now"])
def test_foreign_cancelled_error_answers_eio_and_serving_goes_on(backend: str, name: str,
                                                                  caplog: Any) -> None:
    ops = SharedFutureFS()
    ops.add(pyfuse3.ROOT_INODE, b"file", Node(stat.S_IFREG | 0o644))
    with mounted(ops, backend=backend, options=[]) as fs:
        for _ in range(3):
            with pytest.raises(OSError) as info:
                run_with_timeout(lambda: os.stat(fs.path(name)), timeout=10)
            assert info.value.errno == errno.EIO
            assert run_with_timeout(lambda: os.stat(fs.path("file")), timeout=10) is not None
    assert "CancelledError although pyfuse3 did not cancel it" in caplog.text


# -- 4: close() and terminate() racing main() --------------------------------------------------

#: On Python 3.10 asyncio.run (and uvloop.run) have no SIGINT handler, nor has
#: loop.run_until_complete on any version: Python's own let KeyboardInterrupt out of any line
#: of the loop, which left a worker task that never ran, waited for, in ~1 round of 600
#: (repeats=5 of 3,000), or (run_until_complete, 3.13) 815 tracebacks in 3,000 rounds and
#: 250 ms per round, until serve() took Ctrl-C over there.
STORM_BACKENDS = pytest.mark.parametrize(
    "backend", ["trio", "asyncio", "uvloop", "run_until_complete"])


@STORM_BACKENDS
def test_ctrl_c_at_any_moment_ends_main(backend: str) -> None:
    """150 rounds of Ctrl-C, each a microsecond later after a handler suspends. Under trio,
    one landing in its start_soon (a worker being spawned) left a task that never ran, and
    main() hung (1 run in ~25 of the test above); one landing between a drain and the await
    of the handler that suspended in it corrupted trio's cancel-scope stack, and the handler,
    never answered, replied when garbage-collected to a freed session (heap corruption)."""
    with child("ctrl_c_storm", "150", backend) as c:
        rc, stdout, stderr = c.finish(timeout=120)
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)
        assert "outcomes=[('KeyboardInterrupt, stat: EINTR', 150)] repeats=0" in stdout, \
            f"{stdout}\n{stderr}"


@STORM_BACKENDS
def test_ctrl_c_as_main_starts_ends_it(backend: str) -> None:
    """150 rounds of Ctrl-C a microsecond apart from the call of main() on, a client's
    stat() waiting meanwhile: each ends main(), and close() answers the client (the child
    asserts it). One between serve()'s state change and its finally left the mount
    "serving": close() refused. One in the INIT negotiation was logged as its failure and
    lost: main() went on serving. Under io_uring, one that skipped the INIT callback's
    refusal of libfuse's own rings let libfuse start ring threads that called the handlers
    without the GIL (a crash), or the kernel waited for rings nobody started (a client still
    waiting after close())."""
    with child("ctrl_c_storm", "150", backend, "start") as c:
        rc, stdout, stderr = c.finish(timeout=120)
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)
        outcomes = outcomes_of(stdout, stderr, " repeats=0")
        assert {key.split(",")[0] for key in outcomes} == {"KeyboardInterrupt"}, outcomes
        assert sum(outcomes.values()) == 150, outcomes


def close_storm(where: str) -> dict[str, int]:
    """The outcomes of 150 rounds of tests/child_fs.py's ctrl_c_in_close (a clean exit)."""
    with child("ctrl_c_in_close", "150", where) as c:
        rc, stdout, stderr = c.finish(timeout=120)
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)
        return outcomes_of(stdout, stderr)


ASYNCIO_RUN_HANDLER = pytest.mark.skipif(sys.version_info < (3, 11),
                                         reason="asyncio.run's SIGINT handler: 3.11+")


@pytest.mark.parametrize("where", ["after", "trio",
                                   pytest.param("asyncio", marks=ASYNCIO_RUN_HANDLER),
                                   pytest.param("asyncio-twice", marks=ASYNCIO_RUN_HANDLER)])
def test_ctrl_c_in_close_lets_it_finish(where: str) -> None:
    """150 rounds of Ctrl-C 10 µs apart from the call of close() on, after trio.run (Python's
    handler) and inside it (trio's). One in the middle of the teardown left the mount behind
    (the state said closed, so a second close() did nothing: 10 of 150 under trio), or landed
    in the file system's destroy() and was logged as its failure, then lost (18 of 150).
    Inside asyncio.run, whose handler cancels the main task at the first Ctrl-C and raises
    KeyboardInterrupt wherever the second lands, close() holds both and hands them to that
    handler once it is done (a second one inside close() did the same damage), and
    asyncio.run raises KeyboardInterrupt."""
    outcomes = close_storm(where)
    assert set(outcomes) <= {"interrupted=True done", "interrupted=True not begun"}, outcomes
    assert sum(outcomes.values()) == 150


def test_ctrl_c_in_close_with_the_readmes_terminate_handler_changes_nothing() -> None:
    """The README's pattern: Ctrl-C calls pyfuse3.terminate(). One during close() raised
    RuntimeError ("was closed") out of close(), halfway through it before close() held
    Ctrl-C."""
    assert close_storm("terminate") == {"interrupted=False done": 150}


def test_ctrl_c_while_mounting_leaves_nothing_mounted() -> None:
    """600 rounds of Ctrl-C 3 µs apart from the call of Mount() on. One inside the session's
    mount() after the kernel mounted was answered by freeing the session without unmounting:
    a dead mount left behind (30-58 of 300 rounds). One after it, before the Mount was
    complete, left a half-built Mount whose __del__ failed (AttributeError) or left the
    mount (2 of 3 runs failed). A complete Mount that the interrupt kept from the caller (it
    came between the return and the assignment) closes itself when collected."""
    with child("ctrl_c_in_mount", "600") as c:
        rc, stdout, stderr = c.finish(timeout=120)
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)
        outcomes = outcomes_of(stdout, stderr)
        assert set(outcomes) <= {"interrupted", "interrupted, mounted"}, outcomes
        assert sum(outcomes.values()) == 600


def test_close_racing_main_start_never_crashes() -> None:
    with child("close_races_main", "60") as c:
        rc, stdout, stderr = c.finish(timeout=120)
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)
        assert "outcomes=" in stdout


def test_terminate_racing_the_end_of_main_is_a_no_op() -> None:
    with child("terminate_races_end", "30") as c:
        rc, stdout, stderr = c.finish(timeout=120)
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)
        assert "terminate_errors=0" in stdout, stdout


# -- 5: close() while the entry worker is inside libfuse ------------------------------------

def test_close_waits_for_the_entry_worker_and_frees_it() -> None:
    with child("close_with_blocked_worker") as c:
        rc, stdout, stderr = c.finish(timeout=60)
        assert "worker_done_before_close=False" in stdout, stdout  # it really was blocked
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)
        assert "main_returned=True" in stdout
        seconds = float(stdout.split("close_seconds=")[1].split()[0])
        assert seconds < 4.5, stdout  # answered the queued request instead of a 5 s guess
        assert "client=EIO" in stdout, stdout
        assert "slow=EINTR" in stdout, stdout


# -- 7: notify_store from a long-lived thread leaks no pipe --------------------------------------

def test_notify_store_from_a_thread_leaks_no_fds() -> None:
    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    ops = MemFS(timeout=300)
    ino = ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644, data=b"a" * 16384)).st_ino
    with ThreadPoolExecutor(1) as pool:  # the same thread for every cycle
        counts = []
        for _ in range(4):
            with mounted(ops) as fs:
                with open(fs.path("f"), "rb") as fh:
                    fh.read()
                pool.submit(pyfuse3.notify_store, ino, 0, b"b" * 16384).result()
            counts.append(fds())
    assert counts[-1] == counts[0], counts


# -- 8: -o max_read ---------------------------------------------------------------------------

def test_max_read_option_is_honoured() -> None:
    ops = MemFS()
    data = os.urandom(40000)
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644, data=data))
    reads: list[int] = []
    real_read = ops.read

    async def read(fh: int, off: int, size: int) -> bytes:
        reads.append(size)
        return await real_read(fh, off, size)

    ops.read = read  # type: ignore[method-assign]
    with mounted(ops, options=["max_read=8192"]) as fs:
        fd = os.open(fs.path("f"), os.O_RDONLY | os.O_DIRECT)
        try:
            assert os.read(fd, 40960) == data
        finally:
            os.close(fd)
    assert reads and max(reads) <= 8192, reads


# -- 9: testing.mounted() with a backend that cannot run ---------------------------------------

def test_mounted_raises_before_the_block_when_serving_cannot_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testing_mount, "uvloop", None)  # as if not installed
    before = open("/proc/self/mountinfo").read().count(" - fuse")
    with pytest.raises(RuntimeError, match="uvloop"):
        with mounted(MemFS(), backend="uvloop"):
            pytest.fail("the block ran although the file system could not serve")
    assert open("/proc/self/mountinfo").read().count(" - fuse") == before


# -- 12: accidental mounts ---------------------------------------------------------------------

def test_init_refuses_a_mount_point_and_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "mnt"
    target.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "none", str(target)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(RuntimeError, match="already a mount point"):
            pyfuse3.init(MemFS(), str(target), [])
            pyfuse3.close()
        pyfuse3.init(MemFS(), str(target), ["allow_stacked_mount"])  # on purpose: allowed
        assert _fuse_mounted(str(target))
        pyfuse3.close()
        assert not _fuse_mounted(str(target))
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)
    regular = tmp_path / "file"
    regular.write_bytes(b"")
    with pytest.raises(RuntimeError, match="not a directory"):
        pyfuse3.init(MemFS(), str(regular), [])
        pyfuse3.close()
    with pytest.raises(RuntimeError, match=r"cannot mount at .*missing: No such file") as info:
        pyfuse3.init(MemFS(), str(tmp_path / "missing"), [])
    assert info.value.__suppress_context__  # one traceback, not two chained ones
