"""Small helpers for tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from pyfuse3.testing.posix import ALICE, BOB, as_user

__all__ = ["ALICE", "BOB", "as_user", "eventually", "run_with_timeout"]


def eventually(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``cond`` until it holds or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return cond()
        time.sleep(0.005)
    return True


def run_with_timeout(fn: Callable[[], object], timeout: float = 10.0) -> object:
    """Run fn in a daemon thread; TimeoutError if it does not finish (a deadlocked call).

    The mount fixture's teardown then aborts the FUSE connection, which releases the thread.
    """
    import threading

    box: list[object] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise TimeoutError(f"{fn} did not finish within {timeout}s (deadlock?)")
    if errors:
        raise errors[0]
    return box[0] if box else None
