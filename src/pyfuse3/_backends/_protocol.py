"""What pyfuse3 needs from an async library: a Backend per library, an EventLoop per serve."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
Worker = Callable[[], Awaitable[None]]
Drain = Callable[[], Coroutine[Any, Any, bool]]


class Closed(Exception):
    """wait_readable() was woken by close_fd(): the session is ending."""


class Scope(Protocol):
    """A worker's cancel scope (trio's CancelScope, or pyfuse3's for an asyncio task)."""

    cancelled_caught: bool

    def cancel(self) -> None: ...


class Pending(Protocol):
    """What an EventLoop needs of ``_request.Pending`` (a suspended handler's request):
    awaitable, interrupt hook (called when pyfuse3 cancels it for a kernel INTERRUPT)."""

    on_interrupt: Callable[[], None] | None
    interrupted: bool

    def __await__(self) -> Generator[Any, Any, None]: ...


class TaskGroup(Protocol):
    """Background tasks: ``start_soon(fn)``; ``cancel()`` ends those still running; leaving
    ``async with`` waits for all of them (the first failure is raised)."""

    async def __aenter__(self) -> TaskGroup: ...

    async def __aexit__(self, *exc: Any) -> bool | None: ...

    def start_soon(self, fn: Callable[[], Awaitable[Any]]) -> None: ...

    def cancel(self) -> None: ...


class EventLoop(Protocol):
    """One serve()'s view of the running event loop: what the dispatcher uses."""

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
        """Wait until fd (always the same one) is readable; raise Closed once close_fd() was
        called."""

    async def checkpoint(self) -> None:
        """Let other tasks run."""

    async def sleep(self, seconds: float) -> None:
        """Sleep (cancelled by cancel_all())."""

    def task_scope(self) -> AbstractContextManager[Scope]:
        """A context manager for a worker's whole life, giving its cancel scope."""

    async def serve(self, pending: Pending, scope: Scope) -> None:
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


class Backend(Protocol):
    """One async library: everything pyfuse3 does differently under it."""

    name: str

    def event_loop(self) -> EventLoop:
        """A new EventLoop for one serve(); called inside the running loop."""

    def run(self, afn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Block running ``await afn(*args)`` in a new event loop of this library."""

    def loop_handle(self) -> object:
        """What call_from_thread() needs to reach the running loop (called inside it)."""

    def call_from_thread(self, handle: object, afn: Callable[..., Coroutine[Any, Any, T]],
                         *args: Any, timeout: float) -> T:
        """From another thread: run ``await afn(*args)`` in the loop of ``handle``; wait for
        the result (TimeoutError after ``timeout`` seconds where the library can tell)."""

    async def to_thread(self, fn: Callable[[], T]) -> T:
        """Run a blocking call on a worker thread and await its result."""

    async def sleep(self, seconds: float) -> None:
        """Sleep."""

    async def wait_for_callback(self, start: Callable[[Callable[[T], None]], object]) -> T:
        """Call ``start(deliver)`` and wait until ``deliver(value)`` is called on this loop's
        thread (a second call is ignored); return the value."""

    async def wait_readable(self, fd: int) -> None:
        """Wait until ``fd`` is readable (any fd; registered for this wait only)."""

    def task_group(self) -> TaskGroup:
        """A new group of background tasks (enter it with ``async with``)."""
