"""The request loop: one task reads /dev/fuse; a handler that suspends keeps its task.

A worker drains every queued request per wake-up. Handlers that finish without suspending are
answered inline (no task). When one suspends, the worker that started it stays with it (so the
handler's cancel scopes and current task are right), and a fresh worker takes over reading.
At most ``max_tasks`` handlers are suspended at once; beyond that, requests wait in the kernel.
"""

from __future__ import annotations

from ._backends import Backend, Closed
from ._session import DRAIN_BUSY, DRAIN_EMPTY, DRAIN_EXIT, DRAIN_PENDING, Session

BATCH = 64  # requests per drain before letting suspended handlers run


class Dispatcher:
    """Runs one session's requests on one backend."""

    def __init__(self, session: Session, backend: Backend, max_tasks: int) -> None:
        if max_tasks < 1:
            raise ValueError(f"max_tasks must be at least 1, got {max_tasks}")
        self.session = session
        self.backend = backend
        self.max_suspended = max(max_tasks - 1, 1)
        self.suspended = 0
        self.reader_wanted = False
        self.stops = 0

    async def run(self) -> None:
        """Serve requests until the session ends and every handler has answered."""
        self.backend.drain_on_wakeup(self.drain_once)
        await self.backend.run(self.worker)

    def stop(self) -> None:
        """terminate(): stop reading; the second call also cancels in-flight handlers.

        Runs on the event-loop thread. Cancelled handlers answer EINTR.
        """
        self.stops += 1
        self.session.exit()
        self.backend.close_fd(self.session.fd)
        if self.stops > 1:
            self.backend.cancel_all()

    async def worker(self) -> None:
        """Read and dispatch requests; stay with a handler that suspends."""
        with self.backend.task_scope() as scope:
            await self._work(scope)
        if scope.cancelled_caught and self.reader_wanted and not self.session.exited:
            # An interrupted handler ended this worker, which was to read next.
            self.reader_wanted = False
            self.backend.spawn(self.worker)

    async def _work(self, scope: object) -> None:
        session, backend, fd = self.session, self.backend, self.session.fd
        while True:
            status = session.drain(BATCH)
            if status == DRAIN_EMPTY:
                try:
                    await backend.wait_readable(fd)
                except Closed:
                    return
            elif status == DRAIN_PENDING:
                if not await self._serve(session.take_pending(), scope):
                    return
            elif status == DRAIN_BUSY:
                await backend.checkpoint()
            else:
                assert status == DRAIN_EXIT
                if not self.stops:
                    # Unmounted or aborted: no answer can reach the kernel any more, so
                    # handlers still running would only keep main() from returning.
                    backend.cancel_all()
                return

    async def drain_once(self) -> bool:
        """One drain run from the fd's readiness callback; True if the reader must take over.

        A handler that suspends keeps this task; the reader task stays parked meanwhile.
        """
        if self.suspended >= self.max_suspended:
            return True  # the reader's own path applies the max_tasks limit
        session = self.session
        status = session.drain(BATCH)
        if status != DRAIN_PENDING:
            return status != DRAIN_EMPTY  # a backlog or the end: the reader goes on
        with self.backend.task_scope() as scope:
            self.suspended += 1
            try:
                await self.backend.serve(session.take_pending(), scope)
            finally:
                self.suspended -= 1
        if self.reader_wanted and not session.exited:
            self.reader_wanted = False
            self.backend.spawn(self.worker)
        return False

    async def _serve(self, pending: object, scope: object) -> bool:
        """Finish a suspended handler; return True if this task must go back to reading."""
        self.suspended += 1
        if self.suspended < self.max_suspended:
            self.backend.spawn(self.worker)
        else:
            self.reader_wanted = True
        try:
            await self.backend.serve(pending, scope)
        finally:
            self.suspended -= 1
        if self.reader_wanted and not self.session.exited:
            self.reader_wanted = False
            return True
        return False


# The coroutines of the tasks handlers run in (cache.in_handler() tells them apart by these).
HANDLER_TASK_CODES = (Dispatcher.worker.__code__, Dispatcher.drain_once.__code__)
