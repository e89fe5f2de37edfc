"""Small helpers for tests."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from typing import NamedTuple

from pyfuse3.testing.posix import ALICE, BOB, as_user

__all__ = ["ALICE", "BOB", "RINGS", "Statx", "as_user", "eventually", "run_with_timeout",
           "statx"]

#: The suite runs with every mount served through io_uring (make test-io-uring).
RINGS = os.environ.get("FUSE_URING_ENABLE", "").strip() not in ("", "0")


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


STATX_BTIME, STATX_BASIC_STATS, AT_STATX_FORCE_SYNC = 0x800, 0x7FF, 0x2000


class Statx(NamedTuple):
    """What statx(2) answered (the fields these tests read)."""

    mask: int
    mode: int
    nlink: int
    ino: int
    size: int
    btime_ns: int
    mtime_ns: int


def statx(path: str | os.PathLike[str], mask: int = STATX_BASIC_STATS | STATX_BTIME,
          flags: int = 0) -> Statx:
    """statx(2) through libc (Python's os has no statx before 3.15)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)
    if libc.statx(-100, os.fsencode(path), flags, mask, buf) != 0:  # AT_FDCWD
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), os.fspath(path))
    raw = buf.raw
    (stx_mask, _blksize, _attrs, nlink, _uid, _gid, mode, _spare, ino, size) = struct.unpack_from(
        "<IIQIIIHHQQ", raw, 0)

    def ts(offset: int) -> int:
        sec, nsec = struct.unpack_from("<qI", raw, offset)
        return sec * 1_000_000_000 + nsec

    return Statx(stx_mask, mode, nlink, ino, size, ts(80), ts(112))  # stx_btime, stx_mtime
