"""asyncio (and uvloop): the Backend, and the EventLoop one serve() reads /dev/fuse with."""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import FrameType
from typing import Any, TypeVar

from ._protocol import Closed, Drain, Worker

T = TypeVar("T")
log = logging.getLogger("pyfuse3")

# Python 3.12+: a task whose first step runs inside the call that creates it.
_eager_task: Callable[..., asyncio.Task[Any]] | None = getattr(asyncio, "eager_task_factory", None)


class Reader(enum.Enum):
    """Who reads /dev/fuse next: the state of the fd's readiness registration."""

    PAUSED = "paused"    # not registered: no task waits to read (or none has yet)
    STALE = "stale"      # registered, a reader waits; the next callback may be stale
    WAITING = "waiting"  # registered, a reader waits for the next callback
    WOKEN = "woken"      # registered, the reader was woken and has not run yet
    BUSY = "busy"        # registered, no reader waits: every task is busy with handlers
    CLOSED = "closed"    # close_fd() or the end of run(): nobody reads any more


R = Reader
IGNORE, WAKE, PAUSE = "ignore", "wake", "pause"

#: What the readiness callback does in each state, and the state it leaves.
ON_READABLE: dict[Reader, tuple[str, Reader]] = {
    R.STALE:   (IGNORE, R.WAITING),  # the poll ran before the reader drained (see AsyncioLoop)
    R.WAITING: (WAKE, R.WOKEN),      # or drain eagerly (3.12+) and stay WAITING
    R.WOKEN:   (IGNORE, R.WOKEN),    # the reader will drain when it runs
    R.BUSY:    (PAUSE, R.PAUSED),    # stop polling until a task waits again
    R.PAUSED:  (IGNORE, R.PAUSED),   # (not registered)
    R.CLOSED:  (IGNORE, R.CLOSED),   # (not registered)
}
REGISTERED = frozenset({R.STALE, R.WAITING, R.WOKEN, R.BUSY})


class AsyncioLoop:
    """asyncio: one persistent reader registration for the whole session (no epoll_ctl per wait).

    On Python 3.12+ the readiness callback drains the fd itself, in an eagerly started task
    (handlers still run inside a task), so a request costs no task wake-up and no extra poll.
    Before 3.12 the callback wakes the reader task. asyncio's own loop then polls once more
    before that task runs, so right after the task has drained the fd, the callback polled in
    that same iteration still runs: STALE makes it ignore that one call (were it a real event,
    the level-triggered poll reports it again). uvloop runs woken tasks before it polls, so
    its callbacks are never stale.
    """

    token = "asyncio"

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiter: asyncio.Future[None] | None = None
        self._fd = -1
        self._reader = R.PAUSED
        self._stale_possible = not type(self._loop).__module__.startswith("uvloop")
        self._cancelled = False
        self._drain: Drain | None = None
        self._changed: asyncio.Future[None] | None = None
        self._run_task: asyncio.Task[Any] | None = None

    def shutting_down(self) -> bool:
        task = self._run_task
        if task is None:
            return False
        if sys.version_info >= (3, 11):
            return task.cancelled() or task.cancelling() > 0
        # 3.10: cancel() either marks the task or cancels the future it waits for
        waiter = getattr(task, "_fut_waiter", None)
        return task.cancelled() or bool(getattr(task, "_must_cancel", False)) or (
            waiter is not None and waiter.cancelled())

    async def run(self, worker: Worker, cancel: Callable[[], None]) -> None:
        self._run_task = asyncio.current_task()
        self.spawn(worker)
        try:
            await self._until_all_finished()
        finally:
            self._close_reader()
            if self._tasks:  # run() was cancelled, or a worker failed
                cancel()
                await self._finish_all()

    async def _until_all_finished(self) -> None:
        # run()'s loop, in a function of its own: see "Loops and signals" in docs/design.md
        while self._tasks:
            done = [t for t in self._tasks if t.done()]
            if not done:
                await self._task_finished()
                continue
            for t in done:
                self._tasks.discard(t)
                if not (self._cancelled and t.cancelled()):
                    t.result()  # a failed worker ends main() with its exception

    async def _task_finished(self) -> None:
        """Wait until any task of ours finishes (also one started after this call)."""
        self._changed = self._loop.create_future()
        await self._changed

    async def _finish_all(self) -> None:
        # Handlers must not outlive main(): close() frees their requests' session. A second
        # cancellation of main() is remembered and raised once they all have finished.
        cancelled = False
        while self._tasks:
            for t in [t for t in self._tasks if t.done()]:
                self._tasks.discard(t)
                # (KeyboardInterrupt or SystemExit: the interrupt itself, raised to the caller)
                if not t.cancelled() and isinstance(t.exception(), Exception):
                    log.error("a pyfuse3 worker failed while main() was ending",
                              exc_info=t.exception())
            if self._tasks:
                try:
                    await self._task_finished()
                except asyncio.CancelledError:
                    cancelled = True
        if cancelled:
            raise asyncio.CancelledError

    def _close_reader(self) -> None:
        """Nobody reads any more: unregister the fd (a cancelled worker must not register it
        again)."""
        if self._reader in REGISTERED and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        self._reader = R.CLOSED

    def running(self) -> bool:
        return self._loop.is_running()

    def spawn(self, worker: Worker) -> None:
        self._track(self._loop.create_task(worker()))  # type: ignore[arg-type]

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        changed = self._changed
        if changed is not None and not changed.done():
            changed.set_result(None)

    def drain_on_wakeup(self, drain: Drain) -> None:
        if _eager_task is not None:
            self._drain = drain
            self._stale_possible = False  # the callback drains: no event can be stale

    async def wait_readable(self, fd: int) -> None:
        if self._reader is R.CLOSED:
            raise Closed
        if self._reader is R.PAUSED:
            self._fd = fd
            self._loop.add_reader(fd, self._on_readable)
        self._reader = R.STALE if self._stale_possible else R.WAITING
        self._waiter = waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None
            if self._reader is not R.CLOSED:
                self._reader = R.BUSY

    def _on_readable(self) -> None:
        action, self._reader = ON_READABLE[self._reader]
        if action is WAKE:
            waiter = self._waiter
            assert waiter is not None
            if self._drain is None or self._drained_eagerly(waiter):
                if not waiter.done():
                    waiter.set_result(None)
            elif self._reader is R.WOKEN and not waiter.done():
                self._reader = R.WAITING  # the callback drained; the reader waits on
        elif action is PAUSE:
            self._loop.remove_reader(self._fd)

    def _drained_eagerly(self, waiter: asyncio.Future[None]) -> bool:
        """Drain in a task started at once; True if the waiting reader must take over."""
        assert self._drain is not None and _eager_task is not None
        task = _eager_task(self._loop, self._drain())
        if not task.done():  # it stays with a handler that suspended
            self._track(task)
            return False
        if task.cancelled():
            return True
        exc = task.exception()
        if exc is not None:
            waiter.set_exception(exc)  # the reader fails with it, which ends main()
            return False
        return bool(task.result())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def checkpoint(self) -> None:
        await asyncio.sleep(0)

    def task_scope(self) -> Any:
        return _TaskScope()

    async def serve(self, pending: Any, scope: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        pending.on_interrupt = task.cancel
        if pending.interrupted:
            task.cancel()
        try:
            await pending
        except asyncio.CancelledError:
            if not pending.interrupted:
                raise  # the task itself is being cancelled (shutdown)
        finally:
            pending.on_interrupt = None
            if pending.interrupted and hasattr(task, "uncancel"):  # Python 3.11+
                task.uncancel()  # our cancel() is settled: later timeouts count right

    def cancel_all(self) -> None:
        self._cancelled = True
        for t in self._tasks:
            t.cancel()

    def close_fd(self, fd: int) -> None:
        self._close_reader()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(Closed())

    def run_sync_soon(self, fn: Callable[[], None]) -> None:
        try:
            self._loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the event loop is closed: main() has long returned
            pass


class _TaskScope:
    """asyncio needs no scope: an interrupt cancels the task, and serve() absorbs it."""

    cancelled_caught = False

    def __enter__(self) -> _TaskScope:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _Tasks:
    """A TaskGroup of asyncio tasks (asyncio.TaskGroup needs Python 3.11)."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> _Tasks:
        return self

    def start_soon(self, fn: Callable[[], Awaitable[Any]]) -> None:
        async def run() -> Any:
            return await fn()

        self._tasks.append(asyncio.ensure_future(run()))

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def __aexit__(self, *exc: Any) -> bool | None:
        if exc[0] is not None:
            self.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError):
                raise result
        return None


class AsyncioBackend:
    """asyncio, on its own event loop or uvloop's."""

    name = "asyncio"

    def event_loop(self) -> AsyncioLoop:
        return AsyncioLoop()

    def run(self, afn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        return asyncio.run(afn(*args))

    def loop_handle(self) -> object:
        return asyncio.get_running_loop()

    def call_from_thread(self, handle: Any, afn: Callable[..., Coroutine[Any, Any, T]],
                         *args: Any, timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(afn(*args), handle).result(timeout)

    async def to_thread(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait_for_callback(self, start: Callable[[Callable[[T], None]], object]) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()

        def deliver(value: T) -> None:
            if not future.done():
                future.set_result(value)

        start(deliver)
        return await future

    async def wait_readable(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def on_readable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            await ready
        finally:
            loop.remove_reader(fd)

    def task_group(self) -> _Tasks:
        return _Tasks()


ASYNCIO = AsyncioBackend()


class CtrlC:
    """Ctrl-C as cancellation of serve() under asyncio, where nothing else makes it one.

    Python's own SIGINT handler raises KeyboardInterrupt wherever the signal lands, also inside
    the event loop between taking a callback and running it: a worker task whose first step
    was lost never ran, and serve() waited for it forever (about 1 Ctrl-C in 600 under
    Python 3.10's asyncio.run and uvloop.run); out of ``loop.run_until_complete`` it leaves
    serve() never unwound. asyncio.run of Python 3.11+ installs its own handler (it cancels the
    main task) and so does ``loop.add_signal_handler``: those are left alone. While one serve()
    runs on the main thread under Python's own handler, this one takes its place: the first
    Ctrl-C cancels that serve(), which raises KeyboardInterrupt once it has unwound; a second
    one, while it unwinds, goes to Python's handler (KeyboardInterrupt where it lands), as
    asyncio.run's does. Several serve() at once are left to Python's handler: a
    KeyboardInterrupt out of the first to end would stop the loop before the others unwound.
    """

    def __init__(self) -> None:
        self._task: asyncio.Task[Any] | None = None  # the serve() watched
        self._interrupted = False  # a Ctrl-C cancelled it

    def watch(self, task: asyncio.Task[Any]) -> bool:
        """Take Ctrl-C over for ``task`` (True), unless another handler owns it, this is not
        the main thread, or another serve() runs (False; that one's is then given back)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        if self._task is not None:
            if not self._interrupted:
                self._forget()
            return False
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return False
        signal.signal(signal.SIGINT, self._on_sigint)
        self._task, self._interrupted = task, False
        return True

    def leave(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching ``task``; whether a Ctrl-C cancelled it (its cancellation then
        settled: 3.11+'s ``uncancel()``)."""
        if task is not self._task:
            return False
        interrupted = self._interrupted
        self._forget()
        if interrupted and hasattr(task, "uncancel"):
            task.uncancel()
        return interrupted

    def _forget(self) -> None:
        self._task = None
        self._python_handler()

    def _python_handler(self) -> None:
        if signal.getsignal(signal.SIGINT) == self._on_sigint:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        task = self._task
        if task is None or task.done() or not task.get_loop().is_running():
            # its loop stopped under it (a KeyboardInterrupt out of run_until_complete): the
            # program is past it
            self._forget()
        if self._task is None or self._interrupted:  # (a second Ctrl-C)
            self._python_handler()
            signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt here
            return
        self._interrupted = True
        self._task.cancel()
        self._task.get_loop().call_soon_threadsafe(_nothing)  # wake a loop waiting in poll


def _nothing() -> None:
    pass


CTRL_C = CtrlC()


async def cancelled_by_ctrl_c(afn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """``await afn(*args, **kwargs)`` with CTRL_C watching the current task: KeyboardInterrupt
    once it has unwound if a Ctrl-C cancelled it (chained to an error it raised)."""
    task = asyncio.current_task()
    if task is None or not CTRL_C.watch(task):
        return await afn(*args, **kwargs)
    try:
        result = await afn(*args, **kwargs)
    except BaseException as e:
        if CTRL_C.leave(task) and not isinstance(e, KeyboardInterrupt):  # (a second Ctrl-C's)
            raise KeyboardInterrupt from (None if isinstance(e, asyncio.CancelledError) else e)
        raise
    if CTRL_C.leave(task):
        raise KeyboardInterrupt
    return result
