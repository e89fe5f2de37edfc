"""Never hang: kernel interrupts cancel handlers; crashes and stale mounts are recoverable."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
import trio

import pyfuse3
from pyfuse3._backends import current
from pyfuse3.testing import abort_connection, lazy_unmount, mounted, wait_mounted

from ..memfs import ChangeFS, GatedLookupFS, GatedMemFS, MemFS, Node
from ..util import RINGS, eventually, run_with_timeout

pytestmark = pytest.mark.fuse


class SlowFS(MemFS):
    """Looking up b"slow-name", or reading file b"slow" (direct I/O), takes ten minutes.

    Only synchronous requests can be interrupted: a buffered read is a page-cache fill that a
    killed reader simply abandons (no INTERRUPT is sent), hence direct I/O for the read case.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = 0
        self.started = 0

    async def sleep_long(self) -> None:
        self.started += 1
        try:
            await current().sleep(600)
        except (trio.Cancelled, asyncio.CancelledError):
            self.cancelled += 1
            raise

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name == b"slow-name":
            await self.sleep_long()
        return await super().lookup(parent_inode, name, ctx)

    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        info = await super().open(inode, flags, ctx)
        info.direct_io = True
        return info

    async def read(self, fh: Any, off: int, size: int) -> bytes:
        if self.node(fh).data == b"slow":
            await self.sleep_long()
        return await super().read(fh, off, size)


def slow_fs(fs: type[SlowFS] = SlowFS) -> SlowFS:
    ops = fs()
    ops.add(pyfuse3.ROOT_INODE, b"slow", Node(0o100644, data=b"slow"))
    ops.add(pyfuse3.ROOT_INODE, b"fast", Node(0o100644, data=b"fast"))
    return ops


CLIENTS = {
    "stat": "import os, sys; os.stat(sys.argv[1] + '/slow-name')",
    "read": "import sys; open(sys.argv[1] + '/slow', 'rb', buffering=0).read(4)",
}
CLIENT = CLIENTS["read"]


@pyfuse3.interruptible
class InterruptibleSlowFS(SlowFS):
    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        return await super().lookup(parent_inode, name, ctx)

    async def read(self, fh: Any, off: int, size: int) -> bytes:
        return await super().read(fh, off, size)


@pytest.mark.parametrize(("signum", "fs_class"), [
    (signal.SIGKILL, SlowFS), (signal.SIGTERM, SlowFS), (signal.SIGINT, InterruptibleSlowFS)],
    ids=["kill", "term", "int-interruptible"])
@pytest.mark.parametrize("client_kind", ["stat", "read"])
def test_interrupt_cancels_the_handler(backend: str, signum: int, fs_class: type[SlowFS],
                                       client_kind: str) -> None:
    """A client killed (SIGKILL, or SIGTERM it does not handle) has its handler cancelled at
    once; one that handles its signal (Python's SIGINT) only if the handler is interruptible.
    """
    ops = slow_fs(fs_class)
    with mounted(ops, backend=backend) as fs:
        client = subprocess.Popen([sys.executable, "-c", CLIENTS[client_kind], fs.mountpoint],
                                  stderr=subprocess.DEVNULL)
        try:
            assert eventually(lambda: ops.started == 1, timeout=10)
            start = time.monotonic()
            client.send_signal(signum)
            client.wait(timeout=10)  # without interrupts: stuck in the kernel for 10 minutes
            assert time.monotonic() - start < 5
        finally:
            if client.poll() is None:
                client.kill()
        assert eventually(lambda: ops.cancelled == 1)
        with open(fs.path("fast"), "rb") as fh:  # still serving
            assert fh.read() == b"fast"


#: Runs ``python ARGS...`` as a ptraced child (as under strace or a debugger), prints its pid,
#: passes on every signal it stops for, and exits as the child did (128 + signal if killed).
TRACER = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_TRACEME, PTRACE_CONT = 0, 7
pid = os.fork()
if pid == 0:
    if libc.ptrace(PTRACE_TRACEME, 0, None, None) != 0:
        os._exit(99)
    os.execv(sys.executable, [sys.executable] + sys.argv[1:])
print(pid, flush=True)
execed = False
while True:
    status = os.waitpid(pid, 0)[1]
    if os.WIFSTOPPED(status):
        sig = os.WSTOPSIG(status)
        if sig == signal_SIGTRAP and not execed:  # the stop after execv
            sig, execed = 0, True
        libc.ptrace(PTRACE_CONT, pid, None, ctypes.c_void_p(sig))
        continue
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)
""".replace("signal_SIGTRAP", str(int(signal.SIGTRAP)))

#: CLIENTS["stat"], with no core file if a signal dumps core
NO_CORE = "import resource; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); "


@pytest.mark.parametrize(("signum", "traced"), [(signal.SIGQUIT, False), (signal.SIGTERM, True)],
                         ids=["core-dump-signal", "traced-term"])
def test_a_caller_dying_of_a_signal_the_kernel_leaves_pending_is_not_left_waiting(
        backend: str, signum: int, traced: bool) -> None:
    """The kernel turns a fatal signal into SIGKILL for every thread at once, except a signal
    that dumps core (SIGQUIT) and any signal of a ptraced caller (strace, a debugger): those
    stay pending as themselves while the caller waits. pyfuse3 sees them (pending, neither
    blocked, caught nor ignored, fatal by default) and cancels the handler; a test of
    SIGKILL alone would leave the caller waiting ten minutes."""
    ops = slow_fs()
    with mounted(ops, backend=backend) as fs:
        script = NO_CORE + CLIENTS["stat"]
        argv = [sys.executable, "-c", script, fs.mountpoint]
        if traced:
            argv = [sys.executable, "-c", TRACER, "-c", script, fs.mountpoint]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        caller = proc.pid
        try:
            assert proc.stdout is not None
            if traced:
                caller = int(proc.stdout.readline())
            assert eventually(lambda: ops.started == 1, timeout=10)
            os.kill(caller, signum)
            proc.wait(timeout=10)  # else: waiting for the handler for ten minutes
            assert proc.returncode == (128 + signum if traced else -signum)
        finally:
            if proc.poll() is None:
                if traced:  # the tracer has not reaped it: the pid is still the caller's
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(caller, signal.SIGKILL)
                proc.kill()
            proc.communicate(timeout=10)
        assert eventually(lambda: ops.cancelled == 1)
        with open(fs.path("fast"), "rb") as fh:  # still serving
            assert fh.read() == b"fast"


class UninterruptibleChangeFS(ChangeFS):
    mkdir = pyfuse3.uninterruptible(ChangeFS.mkdir)  # a marked copy: ChangeFS's stays as it is


class InterruptibleChangeFS(ChangeFS):
    mkdir = pyfuse3.interruptible(ChangeFS.mkdir)


#: mkdir through libc, a signal handler without SA_RESTART: prints "made" or the errno's name
MKDIR_CLIENT = """
import ctypes, errno, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGUSR1, lambda *_: None)
signal.siginterrupt(signal.SIGUSR1, True)
made = libc.mkdir(sys.argv[1].encode(), 0o755) == 0
print("made" if made else errno.errorcode[ctypes.get_errno()], flush=True)
"""


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()[0]


def _signal_a_waiting_client(fs: Any, ops: GatedMemFS, script: str, path: str, signum: int,
                             held: bool, then: int = 0, prefix: Sequence[str] = ()) -> str:
    """Run ``script`` on ``path`` (in d), send ``signum`` once its request waits in the gate;
    for a handler that is ``held`` (not cancelled), send ``then`` (a second signal) or open
    the gate once the INTERRUPT was read. The client's output. With ``prefix`` (a command
    that forks the client, such as unshare), the signals go to that command's child."""
    client = subprocess.Popen([*prefix, sys.executable, "-c", script, fs.path(path)],
                              stdout=subprocess.PIPE, text=True)
    caller = client.pid
    try:
        if prefix:
            caller = _only_child(client.pid)
        assert eventually(lambda: ops.waiting, timeout=10)
        os.kill(caller, signum)
        if held:
            # The kernel has sent INTERRUPT once it holds the caller in an uninterruptible
            # wait ('D'); a lookup answered after that was read after the INTERRUPT (FUSE
            # over io_uring carries it apart from requests: there this holds in practice, not
            # by order). Not in d: a mkdir holds d's lock, and without parallel_dirops d's
            # lookups queue.
            assert eventually(lambda: _state(caller) == "D", timeout=10)
            assert not run_with_timeout(lambda: os.path.exists(fs.path("other")))
            assert client.poll() is None and ops.cancelled == 0
            if then:
                os.kill(caller, then)  # the kernel sends no second INTERRUPT
            else:
                ops.go = True
        return client.communicate(timeout=10)[0]
    finally:
        ops.go = True
        if client.poll() is None:
            client.kill()
            client.wait(10)


@pytest.mark.parametrize(("fs_class", "signum", "made"), [
    (ChangeFS, signal.SIGUSR1, True), (ChangeFS, signal.SIGKILL, False),
    (InterruptibleChangeFS, signal.SIGUSR1, False),
    (UninterruptibleChangeFS, signal.SIGKILL, True)],
    ids=["default-handled", "default-killed", "interruptible-handled", "uninterruptible-killed"])
def test_which_signals_cancel_a_change(backend: str, fs_class: type[ChangeFS], signum: int,
                                       made: bool) -> None:
    """A change told EINTR has not happened. By default a signal the caller handles (SIGUSR1,
    no SA_RESTART) leaves mkdir running: the caller gets its answer; a killed caller's mkdir
    is cancelled. Marked interruptible, the handled signal cancels it (EINTR, nothing made);
    marked uninterruptible, a killed caller is held until mkdir ends (the directory is made)."""
    ops = fs_class()
    ops.add(pyfuse3.ROOT_INODE, b"d", Node(0o040755, nlink=2))
    with mounted(ops, backend=backend) as fs:
        out = _signal_a_waiting_client(fs, ops, MKDIR_CLIENT, "d/new", signum, made)
        assert out == ("" if signum == signal.SIGKILL else "made\n" if made else "EINTR\n")
        assert os.path.isdir(fs.path("d/new")) == made
        assert ops.cancelled == (not made)


@pyfuse3.interruptible  # every handler the class defines
class InterruptibleLookupFS(GatedLookupFS):
    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        return await super().lookup(parent_inode, name, ctx)


#: access() through libc under a SIGUSR1 handler with SA_RESTART: prints "ok" or the errno name
RESTARTING_CLIENT = """
import ctypes, errno, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGUSR1, lambda *_: None)
signal.siginterrupt(signal.SIGUSR1, False)  # SA_RESTART, as Go's runtime installs SIGURG's
found = libc.access(sys.argv[1].encode(), 0) == 0
print("ok" if found else errno.errorcode[ctypes.get_errno()], flush=True)
"""


@pytest.mark.parametrize("interruptible", [False, True], ids=["default", "interruptible-class"])
def test_a_handled_signal_interrupts_only_an_interruptible_class(backend: str,
                                                                 interruptible: bool) -> None:
    """The kernel interrupts on a signal the caller handles with SA_RESTART too, and restarts
    no call a file system answered: cancelled, access() gets EINTR, which no local file
    system gives (Go programs take SIGURG all the time). By default lookup runs on and
    access() answers; with the class marked interruptible it gets EINTR."""
    ops = InterruptibleLookupFS() if interruptible else GatedLookupFS()
    d = ops.add(pyfuse3.ROOT_INODE, b"d", Node(0o040755, nlink=2))
    ops.add(d.st_ino, b"gated", Node(0o100644))
    with mounted(ops, backend=backend) as fs:
        out = _signal_a_waiting_client(fs, ops, RESTARTING_CLIENT, "d/gated", signal.SIGUSR1,
                                       held=not interruptible)
        assert out == ("EINTR\n" if interruptible else "ok\n")
        assert ops.cancelled == interruptible


def test_the_watcher_forgets_an_answered_request_whose_caller_lives_on(backend: str) -> None:
    """A held request answered while its caller lives on (a long-running program) leaves the
    watched set, and the watcher task ends: nothing kept, nothing polled for ever."""
    ops = GatedLookupFS()
    d = ops.add(pyfuse3.ROOT_INODE, b"d", Node(0o040755, nlink=2))
    ops.add(d.st_ino, b"gated", Node(0o100644))
    with mounted(ops, backend=backend) as fs:
        assert fs.mount is not None
        dispatcher = fs.mount._dispatcher
        assert dispatcher is not None
        client = subprocess.Popen(
            [sys.executable, "-c", RESTARTING_CLIENT + "sys.stdin.readline()\n",
             fs.path("d/gated")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert eventually(lambda: ops.waiting, timeout=10)
            client.send_signal(signal.SIGUSR1)
            assert eventually(lambda: bool(dispatcher.held), timeout=10)
            ops.go = True
            assert client.stdout is not None and client.stdout.readline() == "ok\n"
            assert eventually(lambda: not dispatcher.held and not dispatcher.watching,
                              timeout=10)
            assert client.poll() is None  # it lived throughout
        finally:
            ops.go = True
            if client.poll() is None:
                client.kill()
            client.communicate(timeout=10)


def _only_child(pid: int) -> int:
    """The one child of process ``pid``, once it has one."""
    path = f"/proc/{pid}/task/{pid}/children"
    assert eventually(lambda: bool(open(path).read().split()), timeout=10)
    (child,) = open(path).read().split()
    return int(child)


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
@pytest.mark.parametrize("then", [0, signal.SIGKILL], ids=["answered", "killed-after"])
def test_a_caller_in_a_child_pid_namespace_is_seen_as_it_fares(backend: str, then: int) -> None:
    """A caller in a container (a pid namespace below the mount's) comes with its pid as the
    mount sees it, so its /proc status is read like any other: a handled signal leaves its
    lookup running (answered), a SIGKILL after it ends it with the gate shut."""
    ops = GatedLookupFS()
    d = ops.add(pyfuse3.ROOT_INODE, b"d", Node(0o040755, nlink=2))
    ops.add(d.st_ino, b"gated", Node(0o100644))
    with mounted(ops, backend=backend) as fs:
        out = _signal_a_waiting_client(fs, ops, RESTARTING_CLIENT, "d/gated", signal.SIGUSR1,
                                       held=True, then=then,
                                       prefix=["unshare", "--pid", "--kill-child"])
        assert out == ("" if then else "ok\n")
        assert ops.cancelled == bool(then)


#: mkdir through Go's os package, as any Go program makes one: prints "made" or the error
GO_MKDIR = """package main

import (
	"fmt"
	"os"
)

func main() {
	if err := os.Mkdir(os.Args[1], 0o755); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("made")
}
"""
SYS_TGKILL = 234  # x86_64
SYS_MKDIRAT = 258


class MadeThenAckFS(GatedMemFS):
    """mkdir makes the directory, then waits for ``go`` (a remote store acknowledging it)."""

    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        entry = await super().mkdir(parent_inode, name, mode, ctx)
        await self.gate()
        return entry


@pyfuse3.interruptible
class InterruptibleMadeThenAckFS(MadeThenAckFS):
    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        return await super().mkdir(parent_inode, name, mode, ctx)


def _thread_in(pid: int, syscall: int) -> int:
    """The thread of ``pid`` waiting in system call number ``syscall`` (0 if none)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/syscall") as fh:
            if fh.read().split()[0] == str(syscall):
                return int(tid)
    return 0


@pytest.mark.skipif(shutil.which("go") is None or os.uname().machine != "x86_64",
                    reason="needs a Go toolchain (Debian: golang-go) on x86_64")
@pytest.mark.parametrize(("fs_class", "expected"), [
    (MadeThenAckFS, "made\n"), (InterruptibleMadeThenAckFS, "file exists\n")],
    ids=["default", "interruptible"])
def test_a_go_program_preempted_in_a_change_gets_its_answer(
        backend: str, tmp_path: Any, fs_class: type[MadeThenAckFS], expected: str) -> None:
    """Go's runtime preempts goroutines with SIGURG (its handler, SA_RESTART) and its os
    package retries a call that returned EINTR. A SIGURG sent to the thread waiting in
    mkdirat: a mkdir made, then cancelled by the INTERRUPT, is retried and fails "file
    exists" although this program made it, which Go programs met when every INTERRUPT
    cancelled (the interruptible control). By default the handler runs on: "made"."""
    source = tmp_path / "mkdir.go"
    source.write_text(GO_MKDIR)
    binary = tmp_path / "mkdir"
    subprocess.run(["go", "build", "-o", str(binary), str(source)], check=True, timeout=300,
                   capture_output=True, cwd=tmp_path,
                   env={**os.environ, "GOCACHE": str(tmp_path / "cache"),
                        "GOPATH": str(tmp_path / "gopath"), "GO111MODULE": "off"})
    libc = ctypes.CDLL(None, use_errno=True)
    ops = fs_class()
    ops.add(pyfuse3.ROOT_INODE, b"d", Node(0o040755, nlink=2))
    with mounted(ops, backend=backend) as fs:
        client = subprocess.Popen([str(binary), fs.path("d/new")], stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert eventually(lambda: ops.waiting, timeout=10)
            tid = _thread_in(client.pid, SYS_MKDIRAT)
            assert tid, "no thread of the Go program waits in mkdirat"
            assert libc.syscall(SYS_TGKILL, client.pid, tid, signal.SIGURG) == 0
            if fs_class is MadeThenAckFS:  # held: the gate opens once the INTERRUPT was read
                assert eventually(lambda: _state(tid) == "D", timeout=10)
                assert client.poll() is None and ops.cancelled == 0
                ops.go = True
            out = client.communicate(timeout=10)[0]
        finally:
            ops.go = True
            if client.poll() is None:
                client.kill()
                client.communicate(timeout=10)
        assert out.endswith(expected), out
        assert os.path.isdir(fs.path("d/new"))
        assert ops.cancelled == (fs_class is not MadeThenAckFS)


def test_a_caller_killed_after_a_handled_signal_is_not_left_waiting(backend: str) -> None:
    """The kernel sends one INTERRUPT per request: a caller that handled a signal and is then
    killed gets none, yet its handler is cancelled (pyfuse3 watches the callers of held
    INTERRUPTs) and it ends, without the gate ever opening."""
    ops = GatedLookupFS()
    d = ops.add(pyfuse3.ROOT_INODE, b"d", Node(0o040755, nlink=2))
    ops.add(d.st_ino, b"gated", Node(0o100644))
    with mounted(ops, backend=backend) as fs:
        out = _signal_a_waiting_client(fs, ops, RESTARTING_CLIENT, "d/gated", signal.SIGUSR1,
                                       held=True, then=signal.SIGKILL)
        assert out == "" and ops.cancelled == 1
        assert os.path.isdir(fs.path("d"))  # still serving


def test_a_parked_request_of_a_caller_killed_after_a_handled_signal_ends(backend: str) -> None:
    """At max_tasks=2 a lookup waiting in the gate takes the only handler task, and a
    client's access() waits parked. A SIGUSR1 it handles (SA_RESTART) leaves it parked; a
    SIGKILL after it (the kernel sends no second INTERRUPT) ends the client, the gate shut."""
    ops = GatedLookupFS()
    d = ops.add(pyfuse3.ROOT_INODE, b"d", Node(0o040755, nlink=2))
    ops.add(d.st_ino, b"gated", Node(0o100644))
    ops.add(pyfuse3.ROOT_INODE, b"other", Node(0o100644))
    with mounted(ops, backend=backend, max_tasks=2) as fs:
        assert fs.mount is not None
        session = fs.mount.session
        holder = subprocess.Popen([sys.executable, "-c", "import os, sys; os.stat(sys.argv[1])",
                                   fs.path("d/gated")], stderr=subprocess.DEVNULL)
        client = None
        try:
            assert eventually(lambda: ops.waiting, timeout=10)
            client = subprocess.Popen([sys.executable, "-c", RESTARTING_CLIENT,
                                       fs.path("other")], stdout=subprocess.PIPE, text=True)
            assert eventually(lambda: session.parked_count == 1, timeout=10)
            client.send_signal(signal.SIGUSR1)
            assert eventually(lambda: session.parked_held, timeout=10)
            assert client.poll() is None and session.parked_count == 1
            client.send_signal(signal.SIGKILL)
            assert client.communicate(timeout=10)[0] == ""
            assert client.returncode == -signal.SIGKILL
            assert holder.poll() is None and ops.cancelled == 0 and not ops.go
        finally:
            ops.go = True
            for proc in (holder, client):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                if proc is not None:
                    proc.wait(10)


def test_second_terminate_cancels_handlers_that_never_finish(backend: str) -> None:
    ops = slow_fs()
    with mounted(ops, backend=backend) as fs:
        client = subprocess.Popen([sys.executable, "-c", CLIENTS["stat"], fs.mountpoint],
                                  stderr=subprocess.PIPE, text=True)
        try:
            assert eventually(lambda: ops.started == 1, timeout=10)
            pyfuse3.terminate()
            assert fs.thread is not None
            fs.thread.join(0.5)
            assert fs.thread.is_alive()  # graceful: waits for the handler
            pyfuse3.terminate()
            fs.thread.join(10)
            assert not fs.thread.is_alive()
            assert ops.cancelled == 1
            client.wait(timeout=10)
            assert client.returncode != 0 and "Interrupted system call" in client.stderr.read()
        finally:
            if client.poll() is None:
                client.kill()
            client.stderr.close()  # type: ignore[union-attr]


class TerminatingFS(SlowFS):
    """Reading file b"terminate" calls pyfuse3.terminate() on the event-loop thread."""

    async def read(self, fh: Any, off: int, size: int) -> bytes:
        if self.node(fh).data == b"terminate":
            pyfuse3.terminate()
        return await super().read(fh, off, size)


def test_first_terminate_waits_even_when_the_reader_sees_the_end_first(backend: str) -> None:
    """The reader drains on after a terminate() from inside the loop, before the dispatcher's
    stop() has run: that end of the session is not an unmount (which cancels handlers)."""
    ops = TerminatingFS()
    ops.add(pyfuse3.ROOT_INODE, b"terminate", Node(0o100644, data=b"terminate"))
    errors: list[OSError] = []

    def slow_stat(path: str) -> None:
        try:
            os.stat(path)
        except OSError as e:
            errors.append(e)

    fd = -1
    try:
        with mounted(ops, backend=backend) as fs:
            # opened first: the slow lookup below holds the root directory's lock in the
            # kernel. A thread, not a process, waits in it: forking while this process holds
            # a file of its own mount open sends a FLUSH from the child while the GIL is held.
            fd = os.open(fs.path("terminate"), os.O_RDONLY)  # direct I/O: every read is sent
            client = threading.Thread(target=slow_stat, args=(fs.path("slow-name"),),
                                      daemon=True)
            client.start()
            assert eventually(lambda: ops.started == 1, timeout=10)
            assert os.read(fd, 9) == b"terminate"
            assert fs.thread is not None
            fs.thread.join(0.5)
            assert (fs.thread.is_alive(), ops.cancelled) == (True, 0)  # graceful: waits
            pyfuse3.terminate()
            fs.thread.join(10)
            assert not fs.thread.is_alive()
            assert ops.cancelled == 1
            client.join(10)
    finally:
        if fd >= 0:  # only once unmounted: its FLUSH would wait for a server that stopped
            with contextlib.suppress(OSError):
                os.close(fd)
    assert [e.errno for e in errors] == [errno.EINTR]


def test_aborted_connection_cancels_handlers_and_ends_main(backend: str) -> None:
    ops = slow_fs()
    with mounted(ops, backend=backend) as fs:
        client = subprocess.Popen([sys.executable, "-c", CLIENTS["stat"], fs.mountpoint],
                                  stderr=subprocess.DEVNULL)
        try:
            assert eventually(lambda: ops.started == 1, timeout=10)
            assert abort_connection(fs.mountpoint)
            client.wait(timeout=10)  # the kernel failed its request with ECONNABORTED
            assert fs.thread is not None
            fs.thread.join(10)
            assert not fs.thread.is_alive() and ops.cancelled == 1
        finally:
            if client.poll() is None:
                client.kill()


def test_handler_that_finishes_first_answers_normally(backend: str) -> None:
    class QuickFS(SlowFS):
        async def read(self, fh: Any, off: int, size: int) -> bytes:
            await current().sleep(0.05)
            return b"done"[off:off + size]

    ops = QuickFS()
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(0o100644, data=b"done"))
    with mounted(ops, backend=backend) as fs:
        with open(fs.path("f"), "rb", buffering=0) as fh:
            assert fh.read(4) == b"done"


def test_terminate_from_inside_a_handler(backend: str) -> None:
    class StopFS(MemFS):
        async def lookup(self, parent_inode: Any, name: Any,
                         ctx: Any) -> pyfuse3.EntryAttributes:
            if name == b"stop":
                pyfuse3.terminate()
            return await super().lookup(parent_inode, name, ctx)

    ops = StopFS(timeout=300)  # stat then needs no GETATTR after the LOOKUP
    ops.add(pyfuse3.ROOT_INODE, b"stop", Node(0o100644))
    with mounted(ops, backend=backend) as fs:
        assert os.stat(fs.path("stop")).st_size == 0  # answered, then main() ends
        # No further request may be made here: nobody would answer it.
        assert fs.thread is not None
        fs.thread.join(10)
        assert not fs.thread.is_alive()


def test_lazy_unmount_with_a_request_in_flight(backend: str) -> None:
    ops = slow_fs()
    with mounted(ops, backend=backend) as fs:
        client = subprocess.Popen([sys.executable, "-c", CLIENT, fs.mountpoint],
                                  stderr=subprocess.DEVNULL)
        try:
            assert eventually(lambda: ops.started == 1, timeout=10)
            subprocess.run(["fusermount3", "-u", "-z", fs.mountpoint], check=True, timeout=10)
            assert not os.path.ismount(fs.mountpoint)  # detached, but the client holds it
            client.kill()  # the interrupt cancels the handler; the last user is gone
            client.wait(timeout=10)
            assert fs.thread is not None
            fs.thread.join(10)
            assert not fs.thread.is_alive()  # the connection closed and main() ended
        finally:
            if client.poll() is None:
                client.kill()


SERVER = """
import sys, trio, pyfuse3
sys.path.insert(0, sys.argv[2])
from tests.memfs import MemFS, Node
ops = MemFS(timeout=float(sys.argv[3]))
ops.add(pyfuse3.ROOT_INODE, b"f", Node(0o100644, data=b"data"))
pyfuse3.init(ops, sys.argv[1], [])
trio.run(pyfuse3.main)
"""


@pytest.mark.parametrize("timeout", [0, 3600])
def test_killed_file_system_gives_enotconn_and_a_clear_error_on_remount(timeout: int) -> None:
    """Also when the kernel still answers stat() of the dead mount from its cache."""
    mnt = tempfile.mkdtemp(prefix="pyfuse3-crash-")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    server = subprocess.Popen([sys.executable, "-c", SERVER, mnt, root, str(timeout)])
    try:
        wait_mounted(mnt, server)
        with open(os.path.join(mnt, "f"), "rb") as fh:
            assert fh.read() == b"data"
        os.stat(mnt)
        server.kill()
        server.wait(timeout=10)
        with pytest.raises(OSError) as e:
            os.statvfs(mnt)
        # Through io_uring the kernel ends a request its dead ring queue still held with
        # ECONNABORTED rather than ENOTCONN (its choice; libfuse's rings see the same).
        assert e.value.errno in ((errno.ENOTCONN, errno.ECONNABORTED) if RINGS
                                 else (errno.ENOTCONN,))
        if timeout:
            assert os.stat(mnt).st_ino == pyfuse3.ROOT_INODE  # cached: stat() cannot tell
        with pytest.raises(RuntimeError, match="fusermount3 -u"):
            pyfuse3.init(MemFS(), mnt, [])
        subprocess.run(["fusermount3", "-u", mnt], check=True, timeout=10)  # the documented fix
        with mounted(MemFS()) as fs:  # and mounting works again
            assert os.listdir(fs.mountpoint) == []
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        lazy_unmount(mnt)
        os.rmdir(mnt)
