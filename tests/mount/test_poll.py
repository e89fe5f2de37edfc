"""poll (pyfuse3 3.5): Operations.poll answers the ready events, PollHandle.notify() wakes."""

from __future__ import annotations

import contextlib
import os
import select
import stat
import threading
from typing import Any

import pytest

import pyfuse3
from pyfuse3.testing import mounted

from ..memfs import MemFS, Node
from ..util import eventually

pytestmark = pytest.mark.fuse


class PollFS(MemFS):
    """``f`` becomes readable when ``ready`` is set; ``bad`` answers a wrong result type."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = False
        self.handles: list[pyfuse3.PollHandle] = []
        self.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644))
        self.bad = self.add(pyfuse3.ROOT_INODE, b"bad", Node(stat.S_IFREG | 0o644)).st_ino

    async def poll(self, inode: Any, fh: Any, poll_handle: Any, ctx: Any) -> int:
        if inode == self.bad:
            return "POLLIN"  # type: ignore[return-value]
        if poll_handle is not None:
            self.handles.append(poll_handle)
        return select.POLLIN if self.ready else 0


def _poll_in_thread(path: str, box: list[int]) -> threading.Thread:
    def target() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            box.extend(ev for _, ev in p.poll(10_000))
        finally:
            with contextlib.suppress(OSError):  # ENOTCONN once the file system is gone
                os.close(fd)

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t


def test_notify_wakes_a_waiting_poller(backend: str) -> None:
    ops = PollFS()
    with mounted(ops, backend=backend) as fs:
        box: list[int] = []
        t = _poll_in_thread(fs.path("f"), box)
        assert eventually(lambda: bool(ops.handles), 5), "poll() got no handle"
        assert t.is_alive() and box == []  # nothing ready: the poller waits
        ops.ready = True
        handle = ops.handles[-1]
        handle.notify()  # from this (non-loop) thread
        t.join(5)
        assert not t.is_alive() and box == [select.POLLIN]
        with pytest.raises(RuntimeError, match="already notified"):
            handle.notify()


def test_a_handle_kept_past_close_refuses(backend: str) -> None:
    ops = PollFS()
    box: list[int] = []
    with mounted(ops, backend=backend) as fs:
        t = _poll_in_thread(fs.path("f"), box)
        assert eventually(lambda: bool(ops.handles), 5)
    with pytest.raises(RuntimeError, match="closed"):  # not a call into freed memory
        ops.handles[0].notify()
    t.join(15)
    assert not t.is_alive()


@pytest.mark.fuse_errors_expected
def test_poll_errors_and_default(backend: str) -> None:
    ops = PollFS()
    with mounted(ops, backend=backend) as fs:
        fd = os.open(fs.path("bad"), os.O_RDONLY)
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            assert p.poll(5000) == [(fd, select.POLLERR)]  # EIO from a wrong result type
        finally:
            os.close(fd)
    with mounted(MemFS(), backend=backend) as fs:  # default: ENOSYS, always ready
        with open(fs.path("g"), "wb"):
            pass
        fd = os.open(fs.path("g"), os.O_RDONLY)
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            assert p.poll(5000)[0][1] & select.POLLIN
        finally:
            os.close(fd)
