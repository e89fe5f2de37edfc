"""Scenarios that must run in their own process: ``python -m tests.child_fs SCENARIO MNT``.

Run by tests/mount/test_edges.py under a poisoning allocator (MALLOC_PERTURB_, tcache off),
so that a use after free crashes instead of passing by luck. Each prints what it saw on
stdout, one ``key=value`` or marker line at a time, and exits 0 unless something failed.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import trio

import pyfuse3
from pyfuse3._backends import current
from pyfuse3._backends.asyncio import AsyncioLoop
from pyfuse3._backends.trio import TrioLoop
from pyfuse3._sysutil import lazy_unmount, mount_of

from .memfs import MemFS, Node
from .util import eventually


async def sleep_forever() -> None:
    await current().sleep(3600)


class SlowFS(MemFS):
    """MemFS whose lookup of ``slow`` and mkdir in ``hold`` never finish on their own."""

    def __init__(self) -> None:
        super().__init__(timeout=300)  # hold/ stays cached: a client's mkdir goes straight in
        self.hold = self.add(pyfuse3.ROOT_INODE, b"hold",
                             Node(stat.S_IFDIR | 0o777, nlink=2)).st_ino
        self.suspended = threading.Event()  # the lookup of slow runs

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name == b"slow":
            print("handler-suspended", flush=True)
            self.suspended.set()
            await sleep_forever()
        return await super().lookup(parent_inode, name, ctx)

    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        if parent_inode == self.hold:
            await sleep_forever()
        return await super().mkdir(parent_inode, name, mode, ctx)


def wchan(pid: int, tid: int | None = None) -> str:
    """Where in the kernel a process (or one of its threads) sleeps; "0" when it runs."""
    with open(f"/proc/{pid}/task/{tid}/wchan" if tid else f"/proc/{pid}/wchan") as fh:
        return fh.read()


def out(line: str) -> None:
    print(line, flush=True)


def client(path: str, op: str = "stat") -> subprocess.Popen[str]:
    """A client process doing one call; it prints the errno name or 'ok'."""
    code = ("import os, sys, errno\n"
            f"try:\n    os.{op}({path!r})\nexcept OSError as e:\n"
            "    print(errno.errorcode[e.errno])\nelse:\n    print('ok')\n")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def serve_in_thread(backend: str = "trio") -> threading.Thread:
    from pyfuse3.testing import run

    t = threading.Thread(target=run, args=(backend, pyfuse3.main), daemon=True)
    t.start()
    return t


def wait_served(mnt: str) -> None:
    """Block until the kernel's INIT was answered (a stat through the mount works)."""
    os.stat(os.path.join(mnt, "hold"))


# -- scenarios ---------------------------------------------------------------------------

def ctrl_c(mnt: str, backend: str, how: str) -> None:
    """Ctrl-C (or a timeout) while a handler is suspended; the usual try/finally close()."""
    pyfuse3.init(SlowFS(), mnt, [])

    async def main() -> None:
        """pyfuse3.main(), saying what it raised (if it unwound at all)."""
        try:
            await pyfuse3.main()
        except BaseException as e:
            out(f"main raised {type(e).__name__}")
            raise

    async def runner() -> None:
        try:
            if how == "timeout" and sys.version_info >= (3, 11):
                async with asyncio.timeout(1.0):  # cancels this very task
                    await main()
            elif how == "timeout":
                await asyncio.wait_for(main(), 1.0)
            else:
                await main()
        finally:
            pyfuse3.close()
            out("closed")

    try:
        if backend == "trio":
            trio.run(runner)
        elif how == "run_until_complete":  # upstream's own asyncio example
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(main())
            finally:
                pyfuse3.close()
                out("closed")
        else:
            from pyfuse3.testing import run

            run(backend, runner)
    except KeyboardInterrupt:
        out("caught KeyboardInterrupt")
    except asyncio.TimeoutError:
        out("caught TimeoutError")


def ctrl_c_two_mounts(mnt: str, backend: str, other: str, style: str) -> None:
    """Two Mounts served at once (asyncio.gather), one Ctrl-C while both wait: each serve()
    unwinds, both are closed, and the KeyboardInterrupt reaches the top. ``style`` "with":
    ``with`` and ``gather(..., return_exceptions=True)``; cancelled, a plain gather returns as
    soon as one serve() has ended (Python 3.10), and the ``with`` would close a mount whose
    serve() still unwinds, which close() refuses (whether it does depends on the order asyncio
    runs the tasks in). "async-with": ``async with`` and a plain gather; leaving the block
    waits for a serve() still unwinding."""
    import contextlib

    from pyfuse3.testing import run

    mounts: list[pyfuse3.Mount] = []

    async def main() -> None:
        with contextlib.ExitStack() as stack:
            mounts.extend(stack.enter_context(pyfuse3.Mount(MemFS(), path, []))
                          for path in (mnt, other))
            out("mounted")
            try:
                await asyncio.gather(*(m.serve() for m in mounts), return_exceptions=True)
            finally:
                out(f"states {[m.state for m in mounts]}")

    async def main_async_with() -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                for path in (mnt, other):
                    mounts.append(await stack.enter_async_context(
                        pyfuse3.Mount(MemFS(), path, [])))
                out("mounted")
                await asyncio.gather(*(m.serve() for m in mounts))
        finally:
            out(f"after the block {[m.state for m in mounts]}")

    try:
        run(backend, main if style == "with" else main_async_with)
    except KeyboardInterrupt:
        out("caught KeyboardInterrupt")


class AnswersOnceStopping(MemFS):
    """The lookup of ``slow`` answers (ENOENT) only once its Mount is stopping: a request in
    flight when terminate() came."""

    def __init__(self) -> None:
        super().__init__()
        self.mount: pyfuse3.Mount | None = None
        self.in_flight: Callable[[], None] = lambda: None

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name == b"slow" and self.mount is not None:
            out("handler-suspended")
            self.in_flight()
            for _ in range(1000):
                if self.mount.state != "serving":
                    break
                await current().sleep(0.01)
            out(f"answering while {self.mount.state}")
            raise pyfuse3.FUSEError(errno.ENOENT)
        return await super().lookup(parent_inode, name, ctx)


class RefusesInit(MemFS):
    def init_connection(self, conn: pyfuse3.ConnectionInfo) -> None:
        raise ValueError("this file system refuses to start")


def async_with_ends_serving(mnt: str, backend: str, other: str) -> None:
    """``async with`` Mounts, left while a serve() still runs in the loop. asyncio, uvloop:
    two Mounts in one gather; the one at ``other`` starts serving once a request of the one
    at ``mnt`` is in flight, and its serve() raises (init_connection); leaving the block must
    end the other serve() (that request answered first) before closing both. trio: one Mount
    served in a nursery outside the block, left while the request is in flight."""
    import contextlib

    from pyfuse3.testing import run

    ops = AnswersOnceStopping()

    async def main_asyncio() -> None:
        busy = asyncio.Event()
        ops.in_flight = busy.set
        async with contextlib.AsyncExitStack() as stack:
            ops.mount = await stack.enter_async_context(pyfuse3.Mount(ops, mnt, []))
            failing = await stack.enter_async_context(pyfuse3.Mount(RefusesInit(), other, []))
            mounts = [ops.mount, failing]
            out("mounted")

            async def serve_failing_once_busy() -> None:
                await busy.wait()
                await failing.serve()

            try:
                await asyncio.gather(ops.mount.serve(), serve_failing_once_busy())
            finally:
                out(f"states {[m.state for m in mounts]}")
        out(f"left the block: states {[m.state for m in mounts]}")

    async def main_trio() -> None:
        busy = trio.Event()
        ops.in_flight = busy.set
        async with trio.open_nursery() as nursery:
            async with pyfuse3.Mount(ops, mnt, []) as mount:
                ops.mount = mount
                nursery.start_soon(mount.serve)
                out("mounted")
                await busy.wait()
            out(f"left the block: states {[mount.state]}")

    try:
        run(backend, main_trio if backend == "trio" else main_asyncio)
    except ValueError as e:
        out(f"caught ValueError: {e}")


def close_races_main(mnt: str, rounds: str) -> None:
    """close() on one thread while main() starts on another, many times."""
    import pyfuse3._mount as lifecycle

    real_current = lifecycle.current

    def slow_current() -> Any:  # widens the window between main() starting and running
        time.sleep(0.002)
        return real_current()

    lifecycle.current = slow_current  # type: ignore[assignment]
    outcomes: dict[str, int] = {}
    for i in range(int(rounds)):
        pyfuse3.init(MemFS(), mnt, [])
        barrier = threading.Barrier(2)
        result: list[str] = []

        def serve(barrier: threading.Barrier = barrier, result: list[str] = result) -> None:
            barrier.wait()
            try:
                trio.run(pyfuse3.main)
                result.append("served")
            except RuntimeError as e:
                result.append("refused" if "closed" in str(e) else repr(e))

        t = threading.Thread(target=serve)
        t.start()
        barrier.wait()
        time.sleep(0.0005 * (i % 7))
        try:
            pyfuse3.close()
            closed = "closed"
        except RuntimeError:
            closed = "close-refused"
            for _ in range(200):  # main() runs: end it the documented way
                pyfuse3.terminate()
                t.join(0.05)
                if not t.is_alive():
                    break
            pyfuse3.close()
        t.join(10)
        assert not t.is_alive(), "main() did not return"
        key = f"{closed}/{result[0] if result else '?'}"
        outcomes[key] = outcomes.get(key, 0) + 1
    out(f"outcomes={outcomes}")


def terminate_races_end(mnt: str, rounds: str) -> None:
    """terminate() from another thread over and over while main() ends."""
    def slowly(real: Any) -> Any:  # widens the window between looking up the loop and waking it
        def run_sync_soon(self: Any, fn: Any) -> None:
            time.sleep(0.002)
            real(self, fn)
        return run_sync_soon

    for cls in (TrioLoop, AsyncioLoop):
        cls.run_sync_soon = slowly(cls.run_sync_soon)  # type: ignore[method-assign]
    errors = 0
    for _ in range(int(rounds)):
        pyfuse3.init(MemFS(), mnt, [])
        t = serve_in_thread("asyncio" if _ % 2 else "trio")
        stop = threading.Event()

        def hammer(stop: threading.Event = stop) -> None:
            nonlocal errors
            while not stop.is_set():
                try:
                    pyfuse3.terminate()
                except Exception as e:
                    errors += 1
                    out(f"terminate raised {e!r}")

        h = threading.Thread(target=hammer)
        h.start()
        t.join(10)
        time.sleep(0.005)
        stop.set()
        h.join()
        pyfuse3.close()
    out(f"terminate_errors={errors}")


def close_with_blocked_worker(mnt: str) -> None:
    """The entry worker waits in the kernel for a request nobody will read; then shut down.

    With max_tasks=2 and one handler suspended forever, the next request (a mkdir that holds
    hold/'s lock) stays unread in the kernel, and an invalidation in hold/ blocks there.
    """
    from pyfuse3.testing import run

    ops = SlowFS()
    pyfuse3.init(ops, mnt, [])
    t = threading.Thread(target=run, args=("trio", pyfuse3.main, 1, 2), daemon=True)
    t.start()
    wait_served(mnt)
    slow = client(os.path.join(mnt, "slow"))
    assert ops.suspended.wait(10)
    c = client(os.path.join(mnt, "hold", "x"), "mkdir")
    # it holds hold/'s lock, waiting for its request's answer
    assert eventually(lambda: wchan(c.pid) == "request_wait_answer", 10), wchan(c.pid)
    handle = pyfuse3.invalidate_entry_async(ops.hold, b"x")
    worker = next(t for t in threading.enumerate() if t.name == "pyfuse3-invalidate")
    assert eventually(lambda: wchan(os.getpid(), worker.native_id) == "fuse_reverse_inval_entry",
                      10), wchan(os.getpid(), worker.native_id)  # it waits for that lock
    out(f"worker_done_before_close={handle.done()}")
    start = time.monotonic()
    for _ in range(2):  # the second cancels the suspended lookup
        pyfuse3.terminate()
        t.join(2)
    out(f"main_returned={not t.is_alive()}")
    pyfuse3.close()
    out(f"close_seconds={time.monotonic() - start:.2f}")
    out(f"client={c.communicate(timeout=10)[0].strip()}")
    out(f"slow={slow.communicate(timeout=10)[0].strip()}")
    try:
        handle.result(timeout=5)
        out("handle=ok")
    except Exception as e:
        out(f"handle={type(e).__name__}")


def poll_handles_race(mnt: str, handles: str) -> None:
    """Two threads notify the same poll handles at once (each handle behind a barrier): each
    must be notified exactly once and freed exactly once."""
    import select

    n = int(handles)

    class PollFS(MemFS):
        def __init__(self) -> None:
            super().__init__()
            self.handles: list[Any] = []
            self.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))

        async def poll(self, inode: Any, fh: Any, poll_handle: Any, ctx: Any) -> int:
            if poll_handle is not None:
                self.handles.append(poll_handle)
            return 0

    ops = PollFS()
    pyfuse3.init(ops, mnt, ["fsname=pyfuse3-test"])
    t = serve_in_thread()
    fds = [os.open(os.path.join(mnt, "f"), os.O_RDONLY) for _ in range(n)]
    ep = select.epoll()
    for fd in fds:  # each open file registers its own poll handle
        ep.register(fd, select.EPOLLIN)
    deadline = time.monotonic() + 20
    while len(ops.handles) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    out(f"handles={len(ops.handles)}")
    barrier = threading.Barrier(2)
    notified = [0, 0]
    refused = [0, 0]

    def notify_all(i: int) -> None:
        for h in ops.handles:
            barrier.wait()
            try:
                h.notify()
                notified[i] += 1
            except RuntimeError:
                refused[i] += 1

    from pyfuse3._state import Lifecycle

    real_enter = Lifecycle.enter_call

    def enter_call(self: Any, what: str) -> None:  # widens any window around entering libfuse
        time.sleep(0.0002)
        real_enter(self, what)

    Lifecycle.enter_call = enter_call  # type: ignore[method-assign]
    threads = [threading.Thread(target=notify_all, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    Lifecycle.enter_call = real_enter  # type: ignore[method-assign]
    out(f"notified={sum(notified)} refused={sum(refused)}")
    ops.handles.clear()
    ep.close()
    for fd in fds:
        os.close(fd)
    pyfuse3.terminate()
    t.join(10)
    pyfuse3.close()
    out("closed")


class CtrlCAlarm:
    """Ctrl-C at a chosen microsecond: SIGALRM from an interval timer, handed with the frame
    it interrupted to whichever SIGINT handler is installed (trio's, asyncio.run's, Python's,
    or one holding it), while ``active()`` says so. ``fired`` counts the deliveries; a
    repeating timer stops after ``limit`` of them (0: never)."""

    def __init__(self, active: Callable[[], bool] = lambda: True) -> None:
        self.active = active
        self.fired = 0
        self.limit = 0
        signal.signal(signal.SIGALRM, self._deliver)

    def _deliver(self, signum: int, frame: Any) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if self.limit and self.fired >= self.limit:
            return  # one the timer had sent before it was stopped
        if self.active() and callable(handler):
            self.fired += 1
            if self.fired == self.limit:
                signal.setitimer(signal.ITIMER_REAL, 0)
            handler(signal.SIGINT, frame)

    def arm(self, delay: float, repeat: float = 0.0) -> None:
        signal.setitimer(signal.ITIMER_REAL, delay, repeat)

    def wait(self) -> None:
        """Until the alarm fired (``limit`` times, if set). A call, not a loop inside the
        caller's ``try``: Python 3.13 skips that ``try`` for an exception raised at such a
        loop's back-edge."""
        while self.fired < max(self.limit, 1):
            time.sleep(0.0001)


def unmounted_if_left(mnt: str) -> bool:
    """Whether something is still mounted at ``mnt`` (then detached, for the next round)."""
    if mount_of(mnt) is None:
        return False
    lazy_unmount(mnt)
    return True


def assert_answered(client: threading.Thread, round_: int) -> None:
    """The client thread's stat() returned within 10 s (close() answered it)."""
    client.join(10)
    assert not client.is_alive(), f"round {round_}: the client's stat() never returned " \
        f"({wchan(os.getpid(), client.native_id)})"


def ctrl_c_storm(mnt: str, rounds: str, backend: str = "trio", at: str = "suspend") -> None:
    """Ctrl-C at a different moment of each round, from the instant a handler suspends on: it
    lands in pyfuse3's dispatch code, in trio's and in the handler. main() must end every time.
    ``at`` "start": from the instant main() is called on (serve()'s state change,
    the INIT negotiation, the first requests). ``backend`` "run_until_complete": asyncio
    without asyncio.run (upstream's own example), so Python's SIGINT handler on any version.

    The signal is SIGALRM from a timer the handler arms (in-process, microseconds apart),
    handed to the SIGINT handler trio installed, with the frame it interrupted. The garbage
    collector is off meanwhile: CPython drops a KeyboardInterrupt raised in a weakref callback
    it runs. Should one be lost anyway, the timer fires again after 2 s (``repeats``).
    """
    from pyfuse3.testing import run

    serving = [False]
    alarm = CtrlCAlarm(lambda: serving[0])

    class Storm(SlowFS):
        def __init__(self, delay: float) -> None:
            super().__init__()
            self.delay = delay

        async def lookup(self, parent_inode: Any, name: Any,
                         ctx: Any) -> pyfuse3.EntryAttributes:
            if name == b"slow" and at == "suspend":
                alarm.arm(self.delay, 2.0)
                await sleep_forever()
            return await super().lookup(parent_inode, name, ctx)

    start_delay = [0.0]

    async def main() -> None:
        serving[0] = True
        if at == "start":
            alarm.arm(start_delay[0], 2.0)
        try:
            await pyfuse3.main()
        finally:
            serving[0] = False

    outcomes: dict[str, int] = {}
    repeats = 0
    for i in range(int(rounds)):
        delay = 1e-6 * (1 + i % 150)  # a microsecond later each round
        pyfuse3.init(Storm(delay), mnt, [])
        answer: list[str] = []
        stat_ = threading.Thread(
            target=lambda a=answer: a.append(outcome_of(os.stat, os.path.join(mnt, "slow"))),
            daemon=True)
        gc.collect()
        gc.disable()
        alarm.fired = 0
        try:
            try:
                stat_.start()
                start_delay[0] = delay
                if backend == "run_until_complete":
                    loop = asyncio.new_event_loop()
                    try:
                        loop.run_until_complete(main())
                    finally:
                        loop.close()
                else:
                    run(backend, main)
                result = "returned"
            except KeyboardInterrupt:
                result = "KeyboardInterrupt"
        finally:
            alarm.arm(0)
            gc.enable()
            pyfuse3.close()
        repeats += max(alarm.fired - 1, 0)  # none: the round's result says "returned"
        assert_answered(stat_, i)
        key = f"{result}, stat: {answer[0]}"
        outcomes[key] = outcomes.get(key, 0) + 1
    out(f"outcomes={sorted(outcomes.items())} repeats={repeats}")


def ctrl_c_in_close(mnt: str, rounds: str, where: str = "after") -> None:
    """Ctrl-C at a different moment of close() in each round (10 µs apart, from its call on),
    after main() served a request: close() must unmount and free the mount (or, interrupted
    before it began, leave it to a second call), and the interrupt must reach the caller.
    ``where``: "after" trio.run (Python's own SIGINT handler), "trio" (inside it), or
    "asyncio" (inside asyncio.run, whose handler only cancels the main task at the first
    Ctrl-C); "asyncio-twice": a second one 20 µs after the first (asyncio.run's handler
    raises KeyboardInterrupt at the second, wherever it lands); "terminate": after trio.run,
    with the README's handler (Ctrl-C calls pyfuse3.terminate()), which must change nothing."""
    if where == "terminate":
        signal.signal(signal.SIGINT, lambda signum, frame: pyfuse3.terminate())
    alarm = CtrlCAlarm()
    alarm.limit = 2 if where == "asyncio-twice" else 1

    def close_interrupted(delay: float) -> None:
        alarm.fired = 0
        alarm.arm(delay, 20e-6 if alarm.limit > 1 else 0.0)
        pyfuse3.close()

    async def serve_one(delay: float) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pyfuse3.main)
            await trio.to_thread.run_sync(os.stat, mnt)
            pyfuse3.terminate()
        if where == "trio":
            close_interrupted(delay)
            while not alarm.fired:
                await trio.sleep(0.0001)

    async def serve_one_asyncio(delay: float) -> None:
        serving = asyncio.ensure_future(pyfuse3.main())
        await asyncio.to_thread(os.stat, mnt)
        pyfuse3.terminate()
        await serving
        close_interrupted(delay)
        # Waited for without an await (the second Ctrl-C too, before the cancellation can end
        # the task): asyncio.run's handler cancels the main task from the signal handler, and
        # one landing inside an asyncio.sleep() timer's callback, between its cancelled()
        # check and set_result(), makes asyncio log InvalidStateError (CPython's race, not
        # close()'s: 1 in ~300 runs of 150 rounds on 3.13). The task ends cancelled when this
        # returns, and asyncio.run raises KeyboardInterrupt.
        alarm.wait()

    outcomes: dict[str, int] = {}
    for i in range(int(rounds)):
        delay = 10e-6 * (1 + i % 150)
        pyfuse3.init(MemFS(), mnt, [])
        interrupted = False
        try:
            if where.startswith("asyncio"):
                asyncio.run(serve_one_asyncio(delay))
            else:
                trio.run(serve_one, delay)
            if where in ("after", "terminate"):
                close_interrupted(delay)
                alarm.wait()
        except KeyboardInterrupt:
            interrupted = True
        if pyfuse3._module_api._default.state != "closed":  # type: ignore[union-attr]
            result = "not begun"  # interrupted before it did anything: a second call does it
            pyfuse3.close()
        else:
            result = "done"
        if unmounted_if_left(mnt):
            result = "left mounted"
        key = f"interrupted={interrupted} {result}"
        outcomes[key] = outcomes.get(key, 0) + 1
    out(f"outcomes={sorted(outcomes.items())}")


def ctrl_c_in_mount(mnt: str, rounds: str) -> None:
    """Ctrl-C at a different moment of creating a Mount in each round (3 µs apart, from its
    call on): the interrupt must reach the caller and nothing may stay mounted once the Mount
    it may have returned is closed."""
    alarm = CtrlCAlarm()
    outcomes: dict[str, int] = {}
    for i in range(int(rounds)):
        alarm.fired = 0
        mount = None
        try:
            alarm.arm(3e-6 * (1 + i % 150))
            mount = pyfuse3.Mount(MemFS(), mnt, [])
            alarm.wait()
            result = "returned"
        except KeyboardInterrupt:
            result = "interrupted"
        if mount is not None:
            result += ", mounted"
            mount.close()
        gc.collect()  # a Mount the interrupt kept from the caller closes itself (a warning)
        if unmounted_if_left(mnt):
            result += ", left mounted"
        outcomes[result] = outcomes.get(result, 0) + 1
    out(f"outcomes={sorted(outcomes.items())}")


def exit_in_negotiation(mnt: str, rounds: str, hook: str = "init_connection") -> None:
    """``hook`` (init_connection: before the INIT callback refuses libfuse's own rings, init:
    after) raises SystemExit: main() must raise it, libfuse must start no ring thread of its
    own (FUSE_URING_ENABLE=1 asks it to), and close() must answer the client that waited
    meanwhile."""
    from pyfuse3.testing import run

    class Quitting(MemFS):
        def init_connection(self, conn: Any) -> None:
            if hook == "init_connection":
                raise SystemExit(3)

        def init(self) -> None:
            if hook == "init":
                raise SystemExit(3)

    outcomes: dict[str, int] = {}
    for i in range(int(rounds)):
        pyfuse3.init(Quitting(), mnt, [])
        answer: list[str] = []
        client = threading.Thread(
            target=lambda a=answer: a.append(outcome_of(os.stat, os.path.join(mnt, "f"))),
            daemon=True)
        client.start()
        try:
            try:
                run("trio", pyfuse3.main)
                result = "returned"
            except SystemExit as e:
                result = f"SystemExit({e.code})"
        finally:
            rings = sum(1 for t in os.listdir(f"/proc/{os.getpid()}/task")
                        if _comm(t).startswith("fuse-ring-"))
            pyfuse3.close()
        assert_answered(client, i)
        key = f"{result}, libfuse ring threads: {rings}"
        outcomes[key] = outcomes.get(key, 0) + 1
    out(f"outcomes={sorted(outcomes.items())}")


def _comm(tid: str) -> str:
    try:
        with open(f"/proc/{os.getpid()}/task/{tid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return ""  # a thread that ended


def outcome_of(fn: Callable[[str], object], path: str) -> str:
    try:
        fn(path)
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno or 0]


SCENARIOS = {
    "poll_handles_race": poll_handles_race,
    "ctrl_c": ctrl_c,
    "ctrl_c_storm": ctrl_c_storm,
    "ctrl_c_two_mounts": ctrl_c_two_mounts,
    "async_with_ends_serving": async_with_ends_serving,
    "exit_in_negotiation": exit_in_negotiation,
    "ctrl_c_in_close": ctrl_c_in_close,
    "ctrl_c_in_mount": ctrl_c_in_mount,
    "close_races_main": close_races_main,
    "terminate_races_end": terminate_races_end,
    "close_with_blocked_worker": close_with_blocked_worker,
}

if __name__ == "__main__":
    scenario, mountpoint, *args = sys.argv[1:]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    SCENARIOS[scenario](mountpoint, *args)
    out("exit")
    sys.stdout.flush()
    os._exit(0)  # daemon threads still in the kernel would keep a normal exit waiting
