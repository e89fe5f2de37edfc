"""Small helpers for tests."""

from __future__ import annotations

import errno
import os
import pickle
import select
import signal
import time
import warnings
from collections.abc import Callable

ALICE, BOB = 1000, 1001  # unprivileged users for permission tests


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


def as_user(uid: int, fn: Callable[[], object], timeout: float = 10) -> object:
    """Run fn in a child process as uid (gid = uid); return its result or errno name."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        # The child only makes system calls and exits; the kill on timeout covers the rest.
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            try:
                result: object = fn()
            except OSError as e:
                result = errno.errorcode[e.errno or 0]
            os.write(w, pickle.dumps(result))
        finally:
            os._exit(0)
    os.close(w)
    try:
        if not select.select([r], [], [], timeout)[0]:
            os.kill(pid, signal.SIGKILL)
            raise TimeoutError("child did not answer")
        return pickle.loads(os.read(r, 1 << 20))
    finally:
        os.close(r)
        os.waitpid(pid, 0)
