"""pyfuse3.cache.EntryBudget without a kernel: which entries it asks the kernel to forget, and
when (through a mount: tests/mount/test_cache.py)."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

import pytest

from pyfuse3.cache import EntryBudget


class Kernel:
    """Records invalidate_entry_async() calls; each answers when the test says so."""

    def __init__(self, refuse: Exception | None = None) -> None:
        self.asked: list[tuple[int, bytes]] = []
        self.handles: list[Future[None]] = []
        self.refuse = refuse

    def invalidate_entry_async(self, parent: int, name: bytes, deleted: int = 0,
                               ignore_enoent: bool = False) -> Future[None]:
        assert ignore_enoent and deleted == 0
        if self.refuse is not None:
            raise self.refuse
        self.asked.append((parent, name))
        handle: Future[None] = Future()
        self.handles.append(handle)
        return handle

    def answer_all(self) -> None:
        for handle in self.handles:
            if not handle.done():
                handle.set_result(None)


def budget(limit: int, kernel: Kernel) -> EntryBudget:
    return EntryBudget(limit, mount=kernel)  # type: ignore[arg-type]


def test_past_the_limit_the_oldest_names_are_asked_a_tenth_more_than_needed() -> None:
    kernel = Kernel()
    b = budget(20, kernel)
    for i in range(20):
        b.looked_up(1, b"f%d" % i, 100 + i)
    assert kernel.asked == [] and b.held == 20
    b.looked_up(1, b"f3", 103)  # looked up again: now the newest
    b.looked_up(1, b"new", 200)  # one over: 1 + 20 // 10 asked, oldest first
    assert kernel.asked == [(1, b"f0"), (1, b"f1"), (1, b"f2")] and b.asked == 3
    b.looked_up(1, b"newer", 201)  # still over, but three are being asked: nothing more
    assert len(kernel.asked) == 3
    kernel.answer_all()  # the kernel answered; forget() has not come (the names are in use)
    b.looked_up(1, b"newest", 202)
    assert kernel.asked[3:] == [(1, b"f4"), (1, b"f5"), (1, b"f6"), (1, b"f7"), (1, b"f8")]


def test_forgotten_inodes_leave_and_dot_names_are_never_asked() -> None:
    kernel = Kernel()
    b = budget(3, kernel)
    b.looked_up(1, b".", 1)
    b.looked_up(1, b"a", 2)
    b.looked_up(2, b"..", 1)
    b.looked_up(1, b"b", 3)
    b.forgotten(2)
    assert b.held == 2
    b.looked_up(1, b"c", 4)
    b.looked_up(1, b"d", 5)  # 4 held: the oldest name is b's (root was never named)
    assert kernel.asked == [(1, b"b")]  # one over, and a tenth of 3 is 0
    b.forgotten(3)
    b.forgotten(4)
    b.forgotten(99)  # never held: nothing happens
    assert b.held == 2


def test_a_refused_request_is_logged_once_and_the_name_kept(
        caplog: pytest.LogCaptureFixture) -> None:
    kernel = Kernel(refuse=RuntimeError("the mount is closing"))
    b = budget(2, kernel)
    with caplog.at_level(logging.WARNING, logger="pyfuse3"):
        for i in range(6):
            b.looked_up(1, b"f%d" % i, 10 + i)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "the mount is closing" in warnings[0], warnings
    kernel.refuse = None
    b.looked_up(1, b"g", 20)
    assert kernel.asked[0] == (1, b"f0")  # still the oldest, not lost


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "10"])
def test_a_bad_limit_is_a_value_error(limit: Any) -> None:
    with pytest.raises(ValueError, match="limit"):
        EntryBudget(limit)
