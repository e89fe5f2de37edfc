"""Lifecycle fuzzing: random interleavings of init/main/terminate/close/notify and cancellation.

``python -m tests.fuzz_lifecycle MOUNTPOINT [EXAMPLES]`` runs a hypothesis state machine in
this process (tests/mount/test_lifecycle_fuzz.py starts it under a poisoning allocator). Every
call from any thread must succeed, raise a documented error (RuntimeError for a call the
lifecycle does not allow now, OSError from the kernel), or be a no-op; nothing may hang or
crash. After each example: nothing mounted, no thread left, no fd more than before.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
import threading
import time
from typing import Any

import trio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import pyfuse3
from pyfuse3._backends import current
from pyfuse3.testing import lazy_unmount, run

from .memfs import MemFS, Node

MOUNTPOINT = ""
ALLOWED = (RuntimeError, OSError)
SEEN: dict[str, int] = {}  # what the calls did, over all examples (printed at the end)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fuse_mounted() -> bool:
    with open("/proc/self/mountinfo") as fh:
        return any(line.split()[4] == MOUNTPOINT and " - fuse" in line for line in fh)


class SlowFS(MemFS):
    """Lookups of ``slow`` stay suspended for a while (something to cancel or abandon)."""

    def __init__(self) -> None:
        super().__init__()
        self.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644, data=b"x" * 10000))

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name == b"slow":
            await current().sleep(0.3)
        return await super().lookup(parent_inode, name, ctx)


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.fds = fds()
        self.threads = threading.active_count()
        self.server: threading.Thread | None = None
        self.cancel: Any = None  # how to cancel the running main() from outside
        self.others: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    # -- helpers ------------------------------------------------------------------------

    def call(self, fn: Any, *args: Any) -> None:
        """Call fn; only the documented errors are allowed."""
        outcome = "ok"
        try:
            fn(*args)
        except ALLOWED as e:
            outcome = type(e).__name__
            if fn is pyfuse3.init and "already called" not in str(e):
                self.errors.append(e)  # anything else means the last close() left debris
        except BaseException as e:
            self.errors.append(e)
            outcome = "unexpected"
        key = f"{fn.__name__}:{outcome}"
        SEEN[key] = SEEN.get(key, 0) + 1

    def in_thread(self, fn: Any, *args: Any, wait: bool = True) -> None:
        t = threading.Thread(target=self.call, args=(fn, *args), daemon=True)
        t.start()
        if wait:
            t.join(10)
            assert not t.is_alive(), f"{fn.__name__}{args} hangs"
        else:
            self.others.append(t)

    def serving(self) -> bool:
        return self.server is not None and self.server.is_alive()

    # -- rules --------------------------------------------------------------------------

    @rule()
    def init(self) -> None:
        self.call(pyfuse3.init, SlowFS(), MOUNTPOINT, [])

    # No preconditions on thread state: hypothesis needs the same rules to be drawable when
    # it replays an example, and threads do not time the same twice.

    @rule(backend=st.sampled_from(["trio", "asyncio", "uvloop"]))
    def start_main(self, backend: str) -> None:
        if self.serving():
            return
        started = threading.Event()

        async def serve() -> None:
            if backend == "trio":
                with trio.CancelScope() as scope:
                    token = trio.lowlevel.current_trio_token()
                    self.cancel = lambda: token.run_sync_soon(scope.cancel)
                    started.set()
                    await pyfuse3.main()
            else:
                loop, task = asyncio.get_running_loop(), asyncio.current_task()
                assert task is not None
                self.cancel = lambda: loop.call_soon_threadsafe(task.cancel)
                started.set()
                await pyfuse3.main()

        def target() -> None:
            try:
                run(backend, serve)
            except (RuntimeError, OSError, asyncio.CancelledError):
                pass
            except BaseException as e:
                self.errors.append(e)
            finally:
                started.set()

        self.server = threading.Thread(target=target, daemon=True)
        self.server.start()
        started.wait(10)

    @rule(threaded=st.booleans())
    def terminate(self, threaded: bool) -> None:
        if threaded:
            self.in_thread(pyfuse3.terminate)
        else:
            self.call(pyfuse3.terminate)

    @rule(threaded=st.booleans())
    def close(self, threaded: bool) -> None:
        if threaded:
            self.in_thread(pyfuse3.close)
        else:
            self.call(pyfuse3.close)

    @rule()
    def cancel_main(self) -> None:
        if not self.serving() or self.cancel is None:
            return
        try:
            self.cancel()
        except (RuntimeError, trio.RunFinishedError):
            pass  # the loop ended meanwhile

    @rule(kind=st.sampled_from(["inode", "entry_async", "store", "expire"]))
    def notify(self, kind: str) -> None:
        calls = {
            "inode": (pyfuse3.invalidate_inode, pyfuse3.ROOT_INODE, True),
            "entry_async": (pyfuse3.invalidate_entry_async, pyfuse3.ROOT_INODE, b"f"),
            "store": (pyfuse3.notify_store, pyfuse3.ROOT_INODE, 0, b"y" * 9000),
            "expire": (pyfuse3.expire_entry, pyfuse3.ROOT_INODE, b"f"),
        }
        fn, *args = calls[kind]
        self.in_thread(fn, *args)

    @rule(name=st.sampled_from(["f", "slow"]))
    def client(self, name: str) -> None:
        if not self.serving():
            return
        # Not waited for: if main() is stopping, nobody answers until close().
        self.in_thread(os.stat, os.path.join(MOUNTPOINT, name), wait=False)

    @invariant()
    def no_unexpected_errors(self) -> None:
        assert not self.errors, self.errors

    def teardown(self) -> None:
        deadline = time.monotonic() + 20
        while self.serving() and time.monotonic() < deadline:
            self.call(pyfuse3.terminate)
            assert self.server is not None
            self.server.join(0.2)
        assert not self.serving(), "main() does not return after terminate()"
        self.call(pyfuse3.close)
        for t in self.others:
            t.join(10)
            assert not t.is_alive(), "a client stays blocked after close()"
        assert not self.errors, self.errors
        assert not fuse_mounted(), "close() left the mount behind"
        assert threading.active_count() == self.threads, threading.enumerate()
        assert fds() <= self.fds, (fds(), self.fds)


def main() -> None:
    global MOUNTPOINT
    MOUNTPOINT = sys.argv[1]
    examples = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    async def noop() -> None:
        pass

    for backend in ("trio", "asyncio", "uvloop"):  # first-use fds and threads are not leaks
        run(backend, noop)
    test = Lifecycle.TestCase
    test.settings = settings(max_examples=examples, stateful_step_count=12, deadline=None,
                             derandomize=True)
    try:
        import unittest

        result = unittest.TextTestRunner(verbosity=0).run(
            unittest.defaultTestLoader.loadTestsFromTestCase(test))
    finally:
        lazy_unmount(MOUNTPOINT)
    print(f"fuzz examples={examples} ok={result.wasSuccessful()}", flush=True)
    print("seen: " + ", ".join(f"{k}={v}" for k, v in sorted(SEEN.items())), flush=True)
    os._exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
