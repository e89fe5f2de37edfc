"""trio: the Backend, and the EventLoop one serve() reads /dev/fuse with."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import trio

from ._protocol import Closed, Worker

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class _Entered:
    """A cancel scope already entered (by the task it belongs to), as a context manager."""

    __slots__ = ("scope",)

    def __init__(self, scope: trio.CancelScope) -> None:
        self.scope = scope

    def __enter__(self) -> trio.CancelScope:
        return self.scope

    def __exit__(self, *exc: object) -> None:
        pass


class TrioLoop:
    """trio: wait_readable re-arms a one-shot epoll registration per wait.

    Workers run in pooled tasks: one whose worker returned waits for the next spawn() instead
    of ending (starting a trio task and ending it cost about three times as much as waking
    one, and a handler that suspends makes the dispatcher spawn a worker), and keeps the one
    cancel scope it entered first. The idle ones end when no worker runs any more (nothing
    can spawn another then), or are cancelled with the rest.
    """

    def __init__(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        self._nursery: Any = None
        self._running = True
        self._idle: list[trio.lowlevel.Task] = []  # pooled tasks waiting for a worker
        self._handed: dict[trio.lowlevel.Task, Worker | None] = {}  # woken with (None: end)
        self._active = 0  # workers spawned and not returned yet
        self._scopes: dict[trio.lowlevel.Task, _Entered] = {}  # each pooled task's

    async def run(self, worker: Worker, cancel: Callable[[], None]) -> None:
        # trio cancels and awaits the nursery's tasks itself (and its Cancelled never comes
        # from elsewhere): cancel is not needed.
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.spawn(worker)
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

    @trio.lowlevel.enable_ki_protection
    def spawn(self, worker: Worker) -> None:
        # trio's start_soon is not protected against KeyboardInterrupt: raised between adding
        # the task to the nursery and scheduling it, it leaves a task that never runs, and the
        # nursery (main()) waits for it forever. Here Ctrl-C is delivered at a checkpoint.
        self._active += 1
        if self._idle:
            task = self._idle.pop()
            self._handed[task] = worker
            trio.lowlevel.reschedule(task)
        else:
            self._nursery.start_soon(self._pooled, worker)

    async def _pooled(self, worker: Worker) -> None:
        # Not KI-protected, as a task of its own per worker was: Ctrl-C reaches handlers.
        # One cancel scope for the task's life, entered before any handler runs in it, is the
        # one task_scope() gives each worker (entering one costs 5-7 µs on this VM, about as
        # much as the rest of starting a worker). Cancelled (a handler interrupted), it and
        # its task end.
        task = trio.lowlevel.current_task()
        with trio.CancelScope() as scope:
            self._scopes[task] = _Entered(scope)
            try:
                await self._run_workers(worker)
            finally:
                del self._scopes[task]

    async def _run_workers(self, worker: Worker | None) -> None:
        # _pooled's loop, in a function of its own: see "Loops and signals" in docs/design.md
        while worker is not None:
            try:
                await worker()
            finally:
                self._worker_done()
            worker = await self._next_worker()

    @trio.lowlevel.enable_ki_protection
    def _worker_done(self) -> None:
        self._active -= 1
        if not self._active:  # all done: no worker is left to spawn one
            for task in self._idle:
                self._handed[task] = None
                trio.lowlevel.reschedule(task)
            self._idle.clear()

    @trio.lowlevel.enable_ki_protection  # Ctrl-C never leaves _idle naming a task that ended
    async def _next_worker(self) -> Worker | None:
        """The next worker spawn() hands this task, or None once no worker runs (then none
        can spawn another, and every idle task ends). A task whose scope an interrupted handler
        cancelled (also one that swallowed the cancellation) is aborted here at once by trio
        and ends: never handed a worker."""
        if not self._active:
            return None
        task = trio.lowlevel.current_task()
        self._idle.append(task)

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._idle.remove(task)  # cancelled (Ctrl-C, cancel_all) while idle
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        return self._handed.pop(task)

    async def wait_readable(self, fd: int) -> None:
        try:
            await trio.lowlevel.wait_readable(fd)
        except trio.ClosedResourceError:
            raise Closed from None

    async def checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    def task_scope(self) -> Any:
        # Entered before any handler runs in the task: the scopes a handler opens while it runs
        # inline nest inside it. (A scope entered around the handler later would not nest.)
        # A pooled task's own (see _pooled).
        entered = self._scopes.get(trio.lowlevel.current_task())
        return trio.CancelScope() if entered is None else entered

    async def serve(self, pending: Any, scope: Any) -> None:
        pending.on_interrupt = scope.cancel
        if pending.interrupted:
            scope.cancel()
        await pending  # on interrupt, Cancelled ends the worker at its scope

    def close_fd(self, fd: int) -> None:
        trio.lowlevel.notify_closing(fd)

    def cancel_all(self) -> None:
        self._nursery.cancel_scope.cancel()

    def run_sync_soon(self, fn: Callable[[], None]) -> None:
        try:
            self.token.run_sync_soon(fn)
        except trio.RunFinishedError:
            pass

    def drain_on_wakeup(self, drain: Any) -> None:
        pass  # trio wakes the reader task directly; it has no readiness callbacks


class _Tasks:
    """A TaskGroup over a trio nursery."""

    def __init__(self) -> None:
        self._cm: Any = None
        self._nursery: Any = None

    async def __aenter__(self) -> _Tasks:
        self._cm = trio.open_nursery()
        self._nursery = await self._cm.__aenter__()
        return self

    @trio.lowlevel.enable_ki_protection
    def start_soon(self, fn: Callable[[], Awaitable[Any]]) -> None:
        self._nursery.start_soon(fn)  # protected: see TrioLoop.spawn

    def cancel(self) -> None:
        self._nursery.cancel_scope.cancel()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return bool(await self._cm.__aexit__(*exc))


class TrioBackend:
    """trio."""

    name = "trio"

    def event_loop(self) -> TrioLoop:
        return TrioLoop()

    def run(self, afn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        return trio.run(afn, *args)

    def loop_handle(self) -> object:
        return trio.lowlevel.current_trio_token()

    def call_from_thread(self, handle: Any, afn: Callable[..., Coroutine[Any, Any, T]],
                         *args: Any, timeout: float) -> T:
        return trio.from_thread.run(afn, *args, trio_token=handle)

    async def to_thread(self, fn: Callable[[], T]) -> T:
        return await trio.to_thread.run_sync(fn)

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    async def wait_for_callback(self, start: Callable[[Callable[[T], None]], object]) -> T:
        done, box = trio.Event(), list[T]()

        def deliver(value: T) -> None:
            if not box:
                box.append(value)
                done.set()

        start(deliver)
        await done.wait()
        return box[0]

    async def wait_readable(self, fd: int) -> None:
        await trio.lowlevel.wait_readable(fd)

    def task_group(self) -> _Tasks:
        return _Tasks()


TRIO = TrioBackend()


def interrupt_at_checkpoints(fn: F) -> F:
    """Under trio, a KeyboardInterrupt that arrives while ``fn`` runs in its own task (not in
    a task it started) waits for that task's next checkpoint: code that must run to its end
    once it began (a state change and the ``finally`` that undoes it) is not split by Ctrl-C.
    asyncio has no such mechanism (Python 3.11+'s asyncio.run turns Ctrl-C into cancellation).
    """
    return trio.lowlevel.enable_ki_protection(fn)
