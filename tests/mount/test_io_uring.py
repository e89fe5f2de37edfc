"""FUSE over io_uring served by pyfuse3's own ring, driven by the event loop (mount option
``io_uring``): requests arrive in ring entries, answers are committed there, no libfuse ring
thread ever runs (libfuse's would call the handlers off the event loop: the mount hung,
measured before pyfuse3 drove the rings itself). Each test switches the fuse module's
enable_uring on and restores it."""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import _backends, _ring
from pyfuse3._ring import HAVE_URING
from pyfuse3.testing import MountedFS, mounted

from ..memfs import MemFS, Node
from ..util import eventually, run_with_timeout
from .test_edges import assert_clean_exit, child

pytestmark = pytest.mark.fuse
ENABLE_URING = Path(_ring.ENABLE_URING)
needs_ring_build = pytest.mark.skipif(
    not HAVE_URING, reason="this pyfuse3 was built without liburing or libfuse 3.18's header")


@pytest.fixture
def uring_enabled() -> Iterator[None]:
    """The fuse module's enable_uring on (the kernel then offers io_uring at INIT), restored
    afterwards."""
    if not ENABLE_URING.exists():
        pytest.skip("the kernel has no FUSE over io_uring (CONFIG_FUSE_IO_URING)")
    before = ENABLE_URING.read_text().strip()
    try:
        ENABLE_URING.write_text("Y")
    except OSError as e:
        pytest.skip(f"cannot switch enable_uring on: {e}")
    try:
        yield
    finally:
        ENABLE_URING.write_text(before)


def ring_threads() -> list[str]:
    names = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:
            pass  # a thread that ended
    return [n for n in names if n.startswith("fuse-ring-")]


def ring_of(fs: MountedFS) -> Any:
    return fs.mount._session.ring


def completions(fs: MountedFS) -> int:
    """The kernel's count of completions posted to the mount's ring (its fdinfo's CqTail)."""
    info = Path(f"/proc/self/fdinfo/{ring_of(fs).fd}").read_text()
    found = re.search(r"^CqTail:\s*(\d+)", info, re.M)
    assert found, info
    return int(found.group(1))


def client(script: str, *args: str) -> str:
    """Run ``script`` in a separate Python process (a client the event loop does not own)."""
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def ring_options(*extra: str) -> list[str]:
    return [*pyfuse3.default_options, "io_uring", *extra]


STAT_LOOP = """
import os, sys
for _ in range(int(sys.argv[2])):
    os.stat(sys.argv[1])
"""


@needs_ring_build
def test_requests_come_through_the_ring(backend: str, uring_enabled: None) -> None:
    with mounted(MemFS(), backend=backend, options=ring_options()) as fs:
        ring = ring_of(fs)
        assert ring is not None and ring.started and fs.mount.io_uring
        before, cq_before = ring.requests, completions(fs)
        client(STAT_LOOP, fs.path(""), "300")  # MemFS: attributes are never cached
        assert ring.requests - before >= 300
        assert completions(fs) - cq_before >= 300  # the kernel's own count agrees
        assert ring_threads() == []
        assert ring.error == 0 and ring.refused == 0


COPY = """
import os, sys
data = os.urandom(int(sys.argv[2]))
with open(sys.argv[1], "wb") as f:
    f.write(data)
os.posix_fadvise(os.open(sys.argv[1], os.O_RDONLY), 0, 0, os.POSIX_FADV_DONTNEED)
with open(sys.argv[1], "rb") as f:
    back = f.read()
assert back == data, (len(back), len(data))
print(len(back))
"""


@needs_ring_build
@pytest.mark.parametrize("size", [0, 1, 4096, 131072 + 1, 3 << 20])
def test_data_goes_both_ways_intact(backend: str, uring_enabled: None, size: int) -> None:
    """Writes land whole (the payload stays where the kernel put it) and reads come back whole
    (answers are copied into the entry), up to and past max_write."""
    with mounted(MemFS(), backend=backend, options=ring_options()) as fs:
        before = ring_of(fs).requests
        assert client(COPY, fs.path("f"), str(size)).strip() == str(size)
        assert ring_of(fs).requests > before
        assert len(fs.ops.node(fs.ops.child(pyfuse3.ROOT_INODE, b"f")).data) == size


@needs_ring_build
@pytest.mark.parametrize("max_write", [4096, 65536])
def test_smaller_max_write(backend: str, uring_enabled: None, max_write: int) -> None:
    """The entries' buffers follow the negotiated sizes (the kernel refuses smaller ones)."""
    with mounted(MemFS(), backend=backend,
                 options=ring_options(f"max_write={max_write}")) as fs:
        assert client(COPY, fs.path("f"), str(3 * max_write + 5)).strip() == \
            str(3 * max_write + 5)
        assert fs.mount.io_uring and ring_of(fs).error == 0


OVERSIZED = """
import errno, os, sys
small, big, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])

def outcome(fn):
    try:
        return repr(fn())
    except OSError as e:
        return errno.errorcode[e.errno]

fd = os.open(small, os.O_RDWR | os.O_CREAT)
print(outcome(lambda: os.write(fd, b"s" * 100)))
print(outcome(lambda: os.pwrite(fd, b"w" * (2 * limit), 0)))  # a request too large
os.close(fd)
print(outcome(lambda: len(open(small, "rb").read())))
print(outcome(lambda: len(open(big, "rb").read())))  # an answer too large
print(outcome(lambda: os.stat(small).st_size))
"""


@needs_ring_build
def test_requests_and_answers_larger_than_an_entry_get_eio(backend: str,
                                                           uring_enabled: None) -> None:
    """A request whose layout the ring does not know (here: a payload over the limit, as if
    the kernel sent more than the entries hold) and an answer that does not fit are answered
    with EIO and counted; the mount serves on and nothing of the refused write lands."""
    with mounted(MemFS(), backend=backend, options=ring_options()) as fs:
        ring = ring_of(fs)
        fs.ops.add(pyfuse3.ROOT_INODE, b"big", Node(stat.S_IFREG | 0o644, data=b"b" * 3000))
        ring._limit_payload(1000)
        got = client(OVERSIZED, fs.path("small"), fs.path("big"), "1000").split()
        assert got == ["100", "EIO", "100", "EIO", "100"], got
        assert ring.refused >= 2 and ring.error == 0
        assert fs.ops.node(fs.ops.child(pyfuse3.ROOT_INODE, b"small")).data == b"s" * 100


class SlowFS(MemFS):
    """getattr suspends (a network round trip), and counts how many run at once."""

    def __init__(self) -> None:
        super().__init__()
        self.now = self.most = 0

    async def getattr(self, inode: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await _backends.current().sleep(0.01)
            return await super().getattr(inode, ctx)
        finally:
            self.now -= 1


@needs_ring_build
def test_suspended_handlers_and_more_clients_than_entries(backend: str,
                                                          uring_enabled: None) -> None:
    """With one entry per CPU queue, 8 clients stat at once through handlers that suspend:
    every request is answered, never more at once than entries were registered."""
    ops = SlowFS()
    with mounted(ops, backend=backend, options=ring_options("io_uring_q_depth=1")) as fs:
        ring = ring_of(fs)
        assert ring.depth == 1
        before = ring.requests
        clients = [subprocess.Popen([sys.executable, "-c", STAT_LOOP, fs.path(""), "20"])
                   for _ in range(8)]
        try:
            for c in clients:
                assert c.wait(60) == 0
        finally:
            for c in clients:
                if c.poll() is None:
                    c.kill()
                    c.wait()
        assert ring.requests - before >= 160
        assert 1 <= ops.most <= ring.entries


class HeldFS(MemFS):
    """getattr waits until the test lets it go (a handler waiting for a lock, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.held = 0
        self.go = threading.Event()

    async def getattr(self, inode: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        self.held += 1
        while not self.go.is_set():
            await _backends.current().sleep(0.005)
        return await super().getattr(inode, ctx)


@needs_ring_build
def test_waiting_handlers_never_starve_the_ring(backend: str, uring_enabled: None) -> None:
    """12 handlers wait at once although each CPU queue started with one entry: the ring adds
    entries before a handler runs, so the next request still finds a free one and reaches a
    handler (a request that finds none waits in the kernel until an entry of its queue is
    answered, which these handlers never do)."""
    ops = HeldFS()
    with mounted(ops, backend=backend, options=ring_options("io_uring_q_depth=1")) as fs:
        ring = ring_of(fs)
        clients = []
        try:
            for k in range(12):
                clients.append(subprocess.Popen(
                    [sys.executable, "-c", STAT_LOOP, fs.path(""), "1"]))
                assert eventually(lambda k=k: ops.held > k, 30), (ops.held, ring.entries)
            assert ring.entries >= 12 + ring.queues
            # every queue keeps depth entries free for the next request
            assert ring.entries_in_kernel >= ring.queues * ring.depth
            ops.go.set()
            for c in clients:
                assert c.wait(60) == 0
        finally:
            ops.go.set()
            for c in clients:
                if c.poll() is None:
                    c.kill()
                    c.wait()


@needs_ring_build
def test_invalidation_and_forget_beside_the_ring(backend: str, uring_enabled: None) -> None:
    """Notifications still go through /dev/fuse, and FORGETs still come from it, while the
    requests come through the ring."""
    with mounted(MemFS(timeout=60), backend=backend, options=ring_options()) as fs:
        p = Path(fs.path("f"))
        run_with_timeout(lambda: p.write_bytes(b"old"))
        ino = run_with_timeout(lambda: p.stat().st_ino)
        assert run_with_timeout(lambda: p.stat().st_size) == 3  # cached for 60 s
        fs.ops.node(ino).data = bytearray(b"newer")
        assert run_with_timeout(lambda: p.stat().st_size) == 3  # the control: still cached
        fs.mount.invalidate_inode(ino, attr_only=True)
        assert run_with_timeout(lambda: p.stat().st_size) == 5
        forgets = fs.ops.calls["forget"]
        subprocess.run(["sh", "-c", "echo 2 > /proc/sys/vm/drop_caches"], check=True, timeout=60)
        assert eventually(lambda: fs.ops.calls["forget"] > forgets)
        assert ring_of(fs).requests > 0


@needs_ring_build
def test_no_ring_is_left_after_unmount(backend: str, uring_enabled: None) -> None:
    def rings() -> int:
        return sum(1 for fd in Path("/proc/self/fd").iterdir()
                   if _readlink(fd) == "anon_inode:[io_uring]")
    with mounted(MemFS(), backend=backend, options=ring_options()) as fs:
        client(STAT_LOOP, fs.path(""), "10")
        ring = ring_of(fs)
        fd, inside = ring.fd, rings()  # (uvloop's libuv may hold a ring of its own)
        assert _readlink(Path(f"/proc/self/fd/{fd}")) == "anon_inode:[io_uring]"
    assert ring.fd == -1 and rings() <= inside - 1


def _readlink(p: Path) -> str:
    try:
        return os.readlink(p)
    except OSError:
        return ""


@needs_ring_build
def test_libfuse_environment_switch_turns_pyfuse3_rings_on(
        backend: str, uring_enabled: None, monkeypatch: Any) -> None:
    """FUSE_URING_ENABLE=1 (libfuse's switch, read by libfuse in fuse_session_new too) serves
    through pyfuse3's ring without the option, and libfuse starts no ring thread."""
    monkeypatch.setenv("FUSE_URING_ENABLE", "1")
    monkeypatch.setenv("FUSE_URING_QUEUE_DEPTH", "2")
    with mounted(MemFS(), backend=backend, options=list(pyfuse3.default_options)) as fs:
        run_with_timeout(lambda: Path(fs.path("f")).write_bytes(b"through the ring"))
        assert run_with_timeout(lambda: os.listdir(fs.mountpoint)) == ["f"]
        assert ring_of(fs).depth == 2 and ring_of(fs).requests > 0
        assert ring_threads() == []


def test_a_kernel_with_rings_off_serves_through_dev_fuse(
        backend: str, caplog: pytest.LogCaptureFixture) -> None:
    if not ENABLE_URING.exists():
        pytest.skip("the kernel has no FUSE over io_uring (CONFIG_FUSE_IO_URING)")
    if not HAVE_URING:
        pytest.skip("this build refuses the option instead (tested below)")
    before = ENABLE_URING.read_text().strip()
    ENABLE_URING.write_text("N")
    try:
        with caplog.at_level(logging.WARNING, logger="pyfuse3"), \
                mounted(MemFS(), backend=backend, options=ring_options()) as fs:
            run_with_timeout(lambda: Path(fs.path("f")).write_bytes(b"x"))
            assert ring_of(fs) is None and not fs.mount.io_uring
    finally:
        ENABLE_URING.write_text(before)
    said = [r.getMessage() for r in caplog.records if "io_uring" in r.getMessage()]
    assert len(said) == 1 and "enable_uring is N" in said[0], said


@pytest.mark.skipif(HAVE_URING, reason="this build serves io_uring")
def test_a_build_without_rings_refuses_the_option(backend: str) -> None:
    with pytest.raises(OSError, match="needs pyfuse3 built with liburing"):
        with mounted(MemFS(), backend=backend, options=ring_options()):
            pass  # pragma: no cover


@pytest.mark.parametrize("hook", ["init_connection", "init"])
def test_an_interrupted_negotiation_starts_no_libfuse_ring(uring_enabled: None, monkeypatch: Any,
                                                           hook: str) -> None:
    """init_connection() raising SystemExit skipped the INIT callback's refusal of libfuse's
    own rings: under FUSE_URING_ENABLE=1 libfuse started ring threads that called the handlers
    without the GIL (a crash, 5 of 5 rounds), or the kernel waited for rings nobody served.
    init() raising it comes after the refusal and after pyfuse3's ring was offered. In a
    child process, under the poisoning allocator."""
    monkeypatch.setenv("FUSE_URING_ENABLE", "1")
    with child("exit_in_negotiation", "5", hook) as c:
        rc, stdout, stderr = c.finish(timeout=60)
        assert_clean_exit(rc, stdout, stderr, c.mountpoint)
        assert "outcomes=[('SystemExit(3), libfuse ring threads: 0', 5)]" in stdout, \
            f"{stdout}\n{stderr}"
