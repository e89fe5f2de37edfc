"""The request loop: one task reads /dev/fuse; a handler that suspends keeps its task.

A worker drains every queued request per wake-up. Handlers that finish without suspending are
answered inline (no task). When one suspends, the worker that started it stays with it (so the
handler's cancel scopes and current task are right), and a fresh worker takes over reading.

Reading never stops. At ``max_tasks`` (handlers suspended + the reader), the session parks
the requests that can wait (a copy, in arrival order) and runs at once only what suspended
handlers may be waiting for: FORGETs, closes, unlocks and INTERRUPTs (an INTERRUPT of a parked
request answers it with EINTR). Each handler that finishes lets a fresh task run the parked
ones while there is room.

Every task that runs handlers carries the dispatcher in the ``HANDLER`` context variable, and
tasks a handler starts inherit it: that is how the cache-control calls know they were called
from inside a handler, however deep in its task tree.
"""

from __future__ import annotations

import logging
import threading
from contextvars import ContextVar

from ._backends import Closed, EventLoop, Scope
from ._request import Pending
from ._session import DRAIN_BUSY, DRAIN_EMPTY, DRAIN_EXIT, DRAIN_PENDING, Session

BATCH = 64  # requests per drain before letting suspended handlers run
CALLER_CHECK = 0.2  # seconds between looks at the callers of held INTERRUPTs
log = logging.getLogger("pyfuse3")

#: Set in every task that runs handlers (inherited by the tasks they start).
HANDLER: ContextVar[Dispatcher | None] = ContextVar("pyfuse3_handler", default=None)


def in_handler() -> bool:
    """Whether the caller runs inside a request handler or a task one started."""
    return HANDLER.get() is not None


#: The dispatchers serving right now (any thread, any loop).
_serving: set[Dispatcher] = set()
_serving_lock = threading.Lock()


def served_by_this_thread(path: str, other_than: Session | None = None) -> str | None:
    """The mountpoint of a file system that this thread serves (its loop still running) and
    that ``path`` (absolute, not resolved) lies in, or None; ``other_than`` is not counted.
    Entering that file system from this thread would wait for a request only this thread can
    answer."""
    me = threading.get_ident()
    with _serving_lock:  # no loop inside: see "Loops and signals" in docs/design.md
        serving = tuple(_serving)
    for d in serving:
        top = d.session.mountpoint
        if d.loop_thread == me and d.session is not other_than and \
                (path == top or path.startswith(top.rstrip("/") + "/")) and \
                d.loop.running():
            return top
    return None


def handler_owner() -> object:
    """The ``owner`` of the dispatcher serving the calling handler, or None outside handlers."""
    dispatcher = HANDLER.get()
    return None if dispatcher is None else dispatcher.owner


def handler_on_this_thread() -> bool:
    """Inside a handler's task tree *and* on its event-loop thread (not in a worker thread)."""
    dispatcher = HANDLER.get()
    return dispatcher is not None and dispatcher.loop_thread == threading.get_ident()


class Dispatcher:
    """Runs one session's requests on one event loop."""

    def __init__(self, session: Session, loop: EventLoop, max_tasks: int,
                 owner: object = None) -> None:
        if max_tasks < 1:
            raise ValueError(f"max_tasks must be at least 1, got {max_tasks}")
        self.owner = owner  # the Mount served (Mount.current() returns it to its handlers)
        self.session = session
        self.loop = loop
        session.served_by(loop.shutting_down, self._hold)
        self.loop_thread = threading.get_ident()
        self.max_suspended = max(max_tasks - 1, 1)
        self.suspended = 0
        self.unparking = False  # a task runs parked requests
        self.stops = 0
        self.finished = False
        self.held: set[Pending] = set()  # INTERRUPTed handlers whose callers were not dying
        self.watching = False  # a task watches their callers

    async def run(self) -> None:
        """Serve requests until the session ends and every handler has answered."""
        self.loop.drain_on_wakeup(self.drain_once)
        with _serving_lock:
            _serving.add(self)
        try:
            await self.loop.run(self.worker, self.cancel_handlers)
        finally:
            self.finished = True
            with _serving_lock:
                _serving.discard(self)

    def stop(self) -> None:
        """terminate(): stop reading; the second call also cancels in-flight handlers.

        Runs on the event-loop thread; does nothing once run() has returned. Cancelled
        handlers answer EINTR.
        """
        if self.finished:
            return
        self.stops += 1
        if self.stops == 1 and self.suspended:
            n = self.suspended
            log.warning("%s: waiting for %d request%s to finish; terminate() again (a second "
                        "Ctrl-C) cancels %s", self.session.mountpoint, n, "s" * (n != 1),
                        "them" if n != 1 else "it")
        self.session.exit()
        self.loop.close_fd(self.session.wait_fd)
        self.session.fail_retrievals()  # their answers will not be read
        if self.stops > 1:
            self.cancel_handlers()

    def cancel_handlers(self) -> None:
        """Cancel every handler still running (their requests are answered with EINTR)."""
        self.session.expect_cancellation()
        self.loop.cancel_all()

    async def worker(self) -> None:
        """Read and dispatch requests; stay with a handler that suspends."""
        HANDLER.set(self)
        with self.loop.task_scope() as scope:
            try:
                await self._work(scope)
            except BaseException as exc:
                self.session.unwind(exc)
                raise

    async def _work(self, scope: Scope) -> None:
        session, loop, fd = self.session, self.loop, self.session.wait_fd
        while True:
            status = session.drain(BATCH)
            if status == DRAIN_EMPTY:
                try:
                    await loop.wait_readable(fd)
                except Closed:
                    return
            elif status == DRAIN_PENDING:
                await self._serve(scope, reader=True)
                return
            elif status == DRAIN_BUSY:
                await loop.checkpoint()
            else:
                assert status == DRAIN_EXIT
                session.fail_retrievals()
                if not self.stops:
                    # Unmounted or aborted: no answer can reach the kernel any more, so
                    # handlers still running would only keep main() from returning.
                    self.cancel_handlers()
                return

    async def drain_once(self) -> bool:
        """One drain run from the fd's readiness callback; True if the reader must take over.

        A handler that suspends keeps this task; the reader task stays parked meanwhile.
        HANDLER is already set here: the readiness callback was registered by a worker task,
        so it runs in (a copy of) that task's context, and this task copies it again.
        """
        status = self.session.drain(BATCH)
        if status != DRAIN_PENDING:
            return status != DRAIN_EMPTY  # a backlog or the end: the reader goes on
        with self.loop.task_scope() as scope:
            try:
                await self._serve(scope)
            except BaseException as exc:
                self.session.unwind(exc)
                raise
        return False

    async def unpark(self) -> None:
        """Run parked requests while there is room; stay with one whose handler suspends.

        Started through ``loop.spawn()``, never run on in the task a handler just finished in:
        under trio, an interrupted handler leaves its task's cancel scope cancelled (and trio's
        pooled tasks end rather than take another worker after that).
        """
        HANDLER.set(self)
        session = self.session
        with self.loop.task_scope() as scope:
            try:
                if await self._run_parked(scope):
                    return
            except BaseException as exc:
                session.unwind(exc)
                raise
        self.unparking = False

    async def _run_parked(self, scope: Scope) -> bool:
        # unpark()'s loop, in a function of its own: see "Loops and signals" in docs/design.md
        while self.suspended < self.max_suspended:
            status = self.session.drain_parked(BATCH)
            if status == DRAIN_PENDING:
                self.unparking = False
                await self._serve(scope)  # another task takes the rest, if there is room
                return True
            if status != DRAIN_BUSY:
                break
            await self.loop.checkpoint()
        return False

    async def _serve(self, scope: Scope, reader: bool = False) -> None:
        """Stay with the handler that suspended in the last drain (max_tasks accounting).

        ``reader``: this task was reading; a new one reads meanwhile (reading never stops; at
        the limit it parks). Parked requests get a task of their own while there is room.
        """
        pending = self.session.take_pending()
        self.suspended += 1
        self.session.park(self.suspended >= self.max_suspended)
        if reader:
            self.loop.spawn(self.worker)
        self._unpark_soon()
        try:
            await self.loop.serve(pending, scope)
        finally:
            self.suspended -= 1
            self.session.park(self.suspended >= self.max_suspended)
            self._unpark_soon()

    def _hold(self, pending: Pending | None) -> None:
        """The session held ``pending``'s INTERRUPT (its caller was not dying), or a parked
        request's (None): watch their callers."""
        if pending is not None:
            self.held.add(pending)
        if not self.watching:
            self.loop.spawn(self._watch_callers)
            self.watching = True  # (after: spawn() raises once the loop has ended)

    async def _watch_callers(self) -> None:
        """Cancel each held handler once its caller is being killed. The kernel sends one
        INTERRUPT per request, none for a kill that follows a handled signal."""
        try:
            await self._look_while_held()
        finally:
            self.watching = False

    async def _look_while_held(self) -> None:
        # _watch_callers' loop, in a function of its own: see "Loops and signals" in
        # docs/design.md
        session = self.session
        dying = session.interrupts.dying
        while self.held or session.parked_held:
            await self.loop.sleep(CALLER_CHECK)
            for pending in tuple(self.held):
                if pending.replied:
                    self.held.discard(pending)
                elif dying(pending.caller):
                    self.held.discard(pending)
                    pending.interrupt()
            session.end_parked_of_dying()

    def _unpark_soon(self) -> None:
        """Start a task for the parked requests if there are any, room, and none runs."""
        if self.session.parked_count and not self.unparking and \
                self.suspended < self.max_suspended and not self.session.exited:
            self.unparking = True
            self.loop.spawn(self.unpark)
