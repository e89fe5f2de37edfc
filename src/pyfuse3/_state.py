"""The life of one session as a state table, changed under one lock.

Every public entry point (init/main/terminate/close, the notify calls, the entry worker) goes
through ``Lifecycle``: an event is allowed in the states the table lists for it and moves the
session to the state it names; anywhere else it raises a RuntimeError that says why. Calls
that enter libfuse with the GIL released (notify) are counted, so close() can wait until no
thread is inside libfuse before the session's C memory is freed.
"""

from __future__ import annotations

import enum
import threading


class State(enum.Enum):
    """Where a session is in its life."""

    CREATED = "created"    # libfuse session exists, nothing mounted
    MOUNTED = "mounted"    # mounted; main() has not run (or terminate() came first)
    SERVING = "serving"    # main() is running
    STOPPING = "stopping"  # terminate() asked main() to return
    STOPPED = "stopped"    # main() returned; still mounted
    CLOSING = "closing"    # close() is stopping threads and unmounting
    CLOSED = "closed"      # C memory freed (or deliberately kept, see close())


S = State

#: event -> {state it may happen in: state it leads to}
TRANSITIONS: dict[str, dict[State, State]] = {
    "mount":   {S.CREATED: S.MOUNTED},
    "serve":   {S.MOUNTED: S.SERVING, S.STOPPED: S.SERVING},
    "stop":    {S.SERVING: S.STOPPING},
    "served":  {S.SERVING: S.STOPPED, S.STOPPING: S.STOPPED},
    # close() while main() is suspended in a loop that no longer runs (Ctrl-C out of
    # run_until_complete): main() will never unwind, so close() ends serving itself.
    "abandon": {S.SERVING: S.STOPPED, S.STOPPING: S.STOPPED},
    "close":   {S.CREATED: S.CLOSING, S.MOUNTED: S.CLOSING, S.STOPPED: S.CLOSING},
    "closed":  {S.CLOSING: S.CLOSED},
}

#: States in which notify calls may enter libfuse. Not once main() stops reading: the kernel
#: may make such a call wait for a request nobody will read before close(). (MOUNTED is
#: harmless: before INIT the kernel answers ENOSYS at once.)
CALLS_ALLOWED = frozenset({S.MOUNTED, S.SERVING})

_RUNNING = "the file system is already being served (main() or Mount.serve() is running)"
_GONE = "the file system was closed: mount it again (pyfuse3.init() or a new pyfuse3.Mount)"
#: Why an event is refused, where the generic message would not say enough.
REFUSALS: dict[tuple[str, State], str] = {
    ("serve", S.SERVING): _RUNNING,
    ("serve", S.STOPPING): _RUNNING,
    ("serve", S.CLOSING): _GONE,
    ("serve", S.CLOSED): _GONE,
    ("close", S.SERVING): "close() called while the file system is served: call terminate() "
                          "and let main() (or Mount.serve()) return first",
    ("close", S.STOPPING): "close() called while main() (or Mount.serve()) is still "
                           "returning: let it return first",
}


_NO_CALLS = {
    S.CREATED: "the file system is not mounted yet",
    S.STOPPING: "serving is ending (main() or Mount.serve() is returning): nobody reads the "
                "kernel's requests any more, so the kernel could make this call wait forever",
    S.STOPPED: "serving has ended (main() or Mount.serve() returned): nobody reads the "
               "kernel's requests any more, so the kernel could make this call wait forever",
}


class LifecycleError(RuntimeError):
    """An event that the session's state does not allow."""


class Lifecycle:
    """One session's state, its transitions, and the count of threads inside libfuse."""

    def __init__(self) -> None:
        # Re-entrant: terminate() may run in a signal handler on a thread that holds it.
        self.lock = threading.RLock()
        self._changed = threading.Condition(self.lock)
        self._state = S.CREATED
        self._calls = 0

    @property
    def state(self) -> State:
        """The current state (may change as soon as the lock is not held)."""
        return self._state

    def fire(self, event: str) -> State:
        """Apply ``event``; return the state it left. LifecycleError if not allowed now."""
        with self.lock:
            old = self._state
            new = TRANSITIONS[event].get(old)
            if new is None:
                raise LifecycleError(REFUSALS.get(
                    (event, old), f"pyfuse3: cannot {event} a session that is {old.value}"))
            self._state = new
            self._changed.notify_all()
            return old

    def enter_call(self, what: str) -> None:
        """Count a thread entering libfuse; RuntimeError if the session cannot take calls."""
        with self.lock:
            if self._state not in CALLS_ALLOWED:
                raise LifecycleError(f"pyfuse3.{what}(): " + _NO_CALLS.get(self._state, _GONE))
            self._calls += 1

    def leave_call(self) -> None:
        """The thread counted by enter_call() left libfuse."""
        with self.lock:
            self._calls -= 1
            self._changed.notify_all()

    @property
    def calls(self) -> int:
        """Threads inside libfuse with this session right now."""
        return self._calls

    def wait_calls(self, timeout: float) -> bool:
        """Wait until no thread is inside libfuse; False on timeout."""
        with self.lock:
            return self._changed.wait_for(lambda: self._calls == 0, timeout)
