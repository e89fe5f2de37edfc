"""What the dispatcher needs from an async library, for trio and for asyncio.

A backend waits for /dev/fuse to become readable, starts tasks, and lets other threads (and
signal handlers) wake the loop. Each is created inside the running event loop by Mount.serve()
(current_backend()).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

import sniffio
import trio

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

log = logging.getLogger("pyfuse3")

Worker = Callable[[], Awaitable[None]]
Drain = Callable[[], Coroutine[Any, Any, bool]]


class Closed(Exception):
    """wait_readable() was woken by close_fd(): the session is ending."""


class Scope(Protocol):
    """A worker's cancel scope (trio's CancelScope, or pyfuse3's for an asyncio task)."""

    cancelled_caught: bool

    def cancel(self) -> None: ...


class Suspended(Protocol):
    """A handler that suspended (``_request.Pending``): awaitable, interrupt hook."""

    on_interrupt: Callable[[], None] | None

    def __await__(self) -> Generator[Any, Any, None]: ...


class Backend(Protocol):
    """The async-library operations the dispatcher uses."""

    @property
    def token(self) -> object:
        """trio's TrioToken, or "asyncio" (upstream's pyfuse3.trio_token)."""

    async def run(self, worker: Worker, cancel: Callable[[], None]) -> None:
        """Run worker and every task it spawns; return only when all of them have finished.

        If run() itself is cancelled (or a task fails), it calls ``cancel()`` to cancel the
        remaining tasks and still waits for them. A lone exception is raised as itself, not
        wrapped in an exception group.
        """

    def running(self) -> bool:
        """Whether the event loop still runs (False after Ctrl-C escaped it)."""

    def shutting_down(self) -> bool:
        """Whether the task running run() is being cancelled: a cancellation a handler sees
        then is the loop's shutdown (asyncio.run cancels every task at once on Python 3.10),
        not a foreign CancelledError."""

    def spawn(self, worker: Worker) -> None:
        """Start another worker task."""

    async def wait_readable(self, fd: int) -> None:
        """Wait until fd is readable; raise Closed once close_fd() was called."""

    async def checkpoint(self) -> None:
        """Let other tasks run."""

    def task_scope(self) -> AbstractContextManager[Scope]:
        """A context manager for a worker's whole life, giving its cancel scope."""

    async def serve(self, pending: Suspended, scope: Scope) -> None:
        """Await a suspended handler; cancel ``scope`` if the kernel interrupts its request."""

    def close_fd(self, fd: int) -> None:
        """Wake wait_readable() with Closed. Event-loop thread only."""

    def cancel_all(self) -> None:
        """Cancel every task run() started. Event-loop thread only."""

    def run_sync_soon(self, fn: Callable[[], None]) -> None:
        """Call fn on the event-loop thread; safe from any thread and from signal handlers.

        Does nothing once the event loop has ended.
        """

    def drain_on_wakeup(self, drain: Drain) -> None:
        """Where supported, run ``drain`` as soon as the fd is readable instead of waking the
        waiting reader; ``drain`` returns True when the reader must take over."""


class TrioBackend:
    """trio: wait_readable re-arms a one-shot epoll registration per wait."""

    def __init__(self) -> None:

        self._trio = trio
        self.token = trio.lowlevel.current_trio_token()
        self._nursery: Any = None
        self._running = True

    async def run(self, worker: Worker, cancel: Callable[[], None]) -> None:
        # trio cancels and awaits the nursery's tasks itself (and its Cancelled never comes
        # from elsewhere): cancel is not needed.
        try:
            async with self._trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(worker)
        except BaseExceptionGroup as group:
            # The nursery is ours, not the caller's: a lone KeyboardInterrupt (Ctrl-C),
            # SystemExit or error leaves main() as itself.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            self._running = False

    def shutting_down(self) -> bool:
        return False  # trio cancels only through the nursery run() owns

    def running(self) -> bool:
        return self._running

    def spawn(self, worker: Worker) -> None:
        self._nursery.start_soon(worker)

    async def wait_readable(self, fd: int) -> None:
        try:
            await self._trio.lowlevel.wait_readable(fd)
        except self._trio.ClosedResourceError:
            raise Closed from None

    async def checkpoint(self) -> None:
        await self._trio.lowlevel.checkpoint()

    def task_scope(self) -> Any:
        # Entered before any handler runs in the task: the scopes a handler opens while it runs
        # inline nest inside it. (A scope entered around the handler later would not nest.)
        return self._trio.CancelScope()

    async def serve(self, pending: Any, scope: Any) -> None:
        pending.on_interrupt = scope.cancel
        if pending.interrupted:
            scope.cancel()
        await pending  # on interrupt, Cancelled ends the worker at its scope

    def close_fd(self, fd: int) -> None:
        self._trio.lowlevel.notify_closing(fd)

    def cancel_all(self) -> None:
        self._nursery.cancel_scope.cancel()

    def run_sync_soon(self, fn: Callable[[], None]) -> None:
        try:
            self.token.run_sync_soon(fn)
        except self._trio.RunFinishedError:
            pass

    def drain_on_wakeup(self, drain: Drain) -> None:
        pass  # trio wakes the reader task directly; it has no readiness callbacks


class AsyncioBackend:
    """asyncio: one persistent reader registration for the whole session (no epoll_ctl per wait).

    On Python 3.12+ the readiness callback drains the fd itself, in an eagerly started task
    (handlers still run inside a task), so a request costs no task wake-up and no extra poll.
    Before 3.12 the callback wakes the reader task. asyncio's own loop then polls once more
    before that task runs, so right after the task has drained the fd, the callback polled in
    that same iteration still runs: ``_stale`` makes it ignore that one call (were it a real
    event, the level-triggered poll reports it again). uvloop runs woken tasks before it polls,
    so its callbacks are never stale.
    """

    token = "asyncio"

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiter: asyncio.Future[None] | None = None
        self._fd = -1
        self._closed = False
        self._stale = False
        self._stale_possible = not type(self._loop).__module__.startswith("uvloop")
        self._paused = False
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
            while self._tasks:
                done = [t for t in self._tasks if t.done()]
                if not done:
                    await self._task_finished()
                    continue
                for t in done:
                    self._tasks.discard(t)
                    if not (self._cancelled and t.cancelled()):
                        t.result()  # a failed worker ends main() with its exception
        finally:
            self._stop_reading()
            if self._tasks:  # run() was cancelled, or a worker failed
                cancel()
                await self._finish_all()

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
                if not t.cancelled() and t.exception() is not None:
                    log.error("a pyfuse3 worker failed while main() was ending",
                              exc_info=t.exception())
            if self._tasks:
                try:
                    await self._task_finished()
                except asyncio.CancelledError:
                    cancelled = True
        if cancelled:
            raise asyncio.CancelledError

    def _stop_reading(self) -> None:
        self._closed = True  # a cancelled worker must not register the fd again
        if self._fd >= 0 and not self._paused and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
            self._paused = True

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
        if self._closed:
            raise Closed
        if self._fd < 0 or self._paused:
            self._fd, self._paused = fd, False
            self._loop.add_reader(fd, self._on_readable)
        self._stale = self._stale_possible
        self._waiter = waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _on_readable(self) -> None:
        if self._stale:
            self._stale = False
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self._drain is None or self._drained_eagerly(waiter):
                waiter.set_result(None)
        elif waiter is None:
            # No task is waiting (all are busy): stop polling until one waits again.
            self._loop.remove_reader(self._fd)
            self._paused = True

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
        self._closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(Closed())

    def run_sync_soon(self, fn: Callable[[], None]) -> None:
        try:
            self._loop.call_soon_threadsafe(fn)
        except RuntimeError:  # the event loop is closed: main() has long returned
            pass


# Python 3.12+: a task whose first step runs inside the call that creates it.
_eager_task: Callable[..., asyncio.Task[Any]] | None = getattr(asyncio, "eager_task_factory", None)


class _TaskScope:
    """asyncio needs no scope: an interrupt cancels the task, and serve() absorbs it."""

    cancelled_caught = False

    def __enter__(self) -> _TaskScope:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def current_backend() -> TrioBackend | AsyncioBackend:
    """The backend for the async library this coroutine runs under."""

    library = sniffio.current_async_library()
    if library == "trio":
        return TrioBackend()
    if library == "asyncio":
        return AsyncioBackend()
    raise RuntimeError(f"pyfuse3.main() must run under trio or asyncio, not {library}")


# -- what the rest of pyfuse3 needs from whichever library runs the caller -----------------

T = TypeVar("T")


def _library() -> str:

    library = sniffio.current_async_library()
    if library not in ("trio", "asyncio"):
        raise RuntimeError(f"pyfuse3 runs under trio or asyncio, not {library}")
    return library


async def to_thread(fn: Callable[[], T]) -> T:
    """Run a blocking call on a worker thread of the running library and await its result."""
    if _library() == "trio":

        return await trio.to_thread.run_sync(fn)
    return await asyncio.get_running_loop().run_in_executor(None, fn)


async def sleep(seconds: float) -> None:
    """Sleep under the running library."""
    if _library() == "trio":

        await trio.sleep(seconds)
    else:
        await asyncio.sleep(seconds)


async def wait_for_callback(start: Callable[[Callable[[T], None]], object]) -> T:
    """Call ``start(deliver)`` and wait until ``deliver(value)`` is called on this loop's
    thread (a second call is ignored); return the value."""
    if _library() == "trio":

        done, box = trio.Event(), list[T]()

        def deliver_trio(value: T) -> None:
            if not box:
                box.append(value)
                done.set()

        start(deliver_trio)
        await done.wait()
        return box[0]
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()

    def deliver(value: T) -> None:
        if not future.done():
            future.set_result(value)

    start(deliver)
    return await future


async def wait_readable(fd: int) -> None:
    """Wait until ``fd`` is readable, under the running library."""
    if _library() == "trio":

        await trio.lowlevel.wait_readable(fd)
        return
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


class TaskGroup:
    """Background tasks of the running library: ``start_soon(fn)``; ``cancel()`` ends those
    still running; leaving ``async with`` waits for all of them (the first failure is raised)."""

    def __init__(self) -> None:
        self._library = _library()
        self._nursery: Any = None
        self._nursery_cm: Any = None
        self._tasks: list[asyncio.Task[Any]] = []

    async def __aenter__(self) -> TaskGroup:
        if self._library == "trio":

            self._nursery_cm = trio.open_nursery()
            self._nursery = await self._nursery_cm.__aenter__()
        return self

    def start_soon(self, fn: Callable[[], Awaitable[Any]]) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn)
        else:
            async def run() -> Any:
                return await fn()

            self._tasks.append(asyncio.ensure_future(run()))

    def cancel(self) -> None:
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        for task in self._tasks:
            task.cancel()

    async def __aexit__(self, *exc: Any) -> bool | None:
        if self._nursery_cm is not None:
            return bool(await self._nursery_cm.__aexit__(*exc))
        if exc[0] is not None:
            self.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError):
                raise result
        return None
