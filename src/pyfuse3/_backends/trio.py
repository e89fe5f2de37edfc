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


class _Pooled:
    """One pooled task: its cancel scope, entered once when it started (as a context manager,
    the worker's task_scope()), and the worker spawn() hands it when it wakes it (None: end)."""

    __slots__ = ("scope", "task", "worker")

    def __init__(self, scope: trio.CancelScope) -> None:
        self.scope = scope
        self.task = trio.lowlevel.current_task()
        self.worker: Worker | None = None

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
        self._pooled: dict[trio.lowlevel.Task, _Pooled] = {}  # every pooled task running
        self._idle: list[_Pooled] = []  # those waiting for a worker
        self._active = 0  # workers spawned and not returned yet

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
            pooled = self._idle.pop()
            pooled.worker = worker
            trio.lowlevel.reschedule(pooled.task)
        else:
            self._nursery.start_soon(self._pool_task, worker)

    async def _pool_task(self, worker: Worker) -> None:
        # Not KI-protected, as a task of its own per worker was: Ctrl-C reaches handlers.
        # One cancel scope for the task's life, entered before any handler runs in it, is the
        # one task_scope() gives each worker (entering one costs 5-7 µs on this VM, about as
        # much as the rest of starting a worker). Cancelled (a handler interrupted), it and
        # its task end.
        with trio.CancelScope() as scope:
            pooled = self._pooled[trio.lowlevel.current_task()] = _Pooled(scope)
            try:
                await self._run_workers(pooled, worker)
            finally:
                del self._pooled[pooled.task]

    async def _run_workers(self, pooled: _Pooled, worker: Worker | None) -> None:
        # _pool_task's loop, in a function of its own: see "Loops and signals" in
        # docs/design.md
        while worker is not None:
            try:
                await worker()
            finally:
                self._worker_done()
            worker = await self._next_worker(pooled)

    @trio.lowlevel.enable_ki_protection
    def _worker_done(self) -> None:
        self._active -= 1
        if not self._active:  # all done: no worker is left to spawn one
            for idle in self._idle:
                trio.lowlevel.reschedule(idle.task)  # its worker is None: it ends
            self._idle.clear()

    @trio.lowlevel.enable_ki_protection  # Ctrl-C never leaves _idle naming a task that ended
    async def _next_worker(self, pooled: _Pooled) -> Worker | None:
        """The next worker spawn() hands this task, or None once no worker runs (then none
        can spawn another, and every idle task ends). A task whose scope an interrupted handler
        cancelled (also one that swallowed the cancellation) is aborted here at once by trio
        and ends: never handed a worker."""
        if not self._active:
            return None
        self._idle.append(pooled)

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._idle.remove(pooled)  # cancelled (Ctrl-C, cancel_all) while idle
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        worker, pooled.worker = pooled.worker, None
        return worker

    async def wait_readable(self, fd: int) -> None:
        try:
            await trio.lowlevel.wait_readable(fd)
        except trio.ClosedResourceError:
            raise Closed from None

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    async def checkpoint(self) -> None:
        await trio.lowlevel.checkpoint()

    def task_scope(self) -> Any:
        # Entered before any handler runs in the task: the scopes a handler opens while it runs
        # inline nest inside it. (A scope entered around the handler later would not nest.)
        # Every worker runs in a pooled task: the one that task entered (see _pool_task).
        return self._pooled[trio.lowlevel.current_task()]

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
