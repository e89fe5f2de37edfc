"""Every notification a file system sends, seen kernel-free on the harness's side of the socket:
what pyfuse3 writes for each cache-control call, byte for byte as <linux/fuse.h> lays it out."""

from __future__ import annotations

import errno
import select
import stat
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import _notify
from pyfuse3._wire import CONSTANTS
from pyfuse3.testing import Harness
from pyfuse3.testing._tasks import TaskGroup

from ..memfs import MemFS, Node

ROOT = pyfuse3.ROOT_INODE


def _fs() -> MemFS:
    ops = MemFS()
    ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o644, data=b"x" * 8192))
    return ops


def test_cache_control_calls_send_their_notifications(fuse_harness: Any) -> None:
    async def check(h: Harness) -> None:
        assert h.mount is not None
        m = h.mount
        m.invalidate_inode(5, offset=4096, length=100)
        note = await h.next_notification()
        assert (note.kind, vars(note.fields)) == ("inval_inode", {"ino": 5, "off": 4096,
                                                                  "len": 100})
        m.invalidate_inode(5, attr_only=True)
        assert (await h.next_notification()).fields.off == -1  # attributes only
        m.invalidate_entry(ROOT, b"name")
        note = await h.next_notification()
        assert note.kind == "inval_entry" and note.data == b"name\0"
        assert (note.fields.parent, note.fields.namelen, note.fields.flags) == (ROOT, 4, 0)
        m.invalidate_entry(ROOT, b"gone", deleted=9)
        note = await h.next_notification()
        assert note.kind == "delete" and note.data == b"gone\0"
        assert (note.fields.parent, note.fields.child) == (ROOT, 9)
        m.expire_entry(ROOT, b"old")
        note = await h.next_notification()
        assert note.kind == "inval_entry" and note.fields.flags == CONSTANTS["FUSE_EXPIRE_ONLY"]
        m.notify_store(5, 10, b"stored")
        note = await h.next_notification()
        assert note.kind == "store" and note.data == b"stored"
        assert (note.fields.nodeid, note.fields.offset, note.fields.size) == (5, 10, 6)
        handle = m.invalidate_entry_async(ROOT, b"later")  # from the worker thread
        note = await h.next_notification()
        assert note.kind == "inval_entry" and note.data == b"later\0"
        assert handle.result(5) is None
        assert h.notifications == []

    fuse_harness(_fs(), check)


def test_retrieve_round_trip(fuse_harness: Any) -> None:
    async def check(h: Harness) -> None:
        assert h.mount is not None
        got: list[bytes] = []

        async def retrieve() -> None:
            assert h.mount is not None
            got.append(await h.mount.cache.notify_retrieve(2, 4096, 100))

        async with TaskGroup() as group:
            group.start_soon(retrieve)
            note = await h.next_notification()
            assert note.kind == "retrieve"
            assert (note.fields.nodeid, note.fields.offset, note.fields.size) == (2, 4096, 100)
            h.answer_retrieve(note, b"what the kernel had cached")
        assert got == [b"what the kernel had cached"]

    fuse_harness(_fs(), check)


class PollFS(MemFS):
    def __init__(self) -> None:
        super().__init__()
        self.handles: list[Any] = []

    async def poll(self, inode: Any, fh: Any, poll_handle: Any, ctx: Any) -> int:
        if poll_handle is not None:
            self.handles.append(poll_handle)
        return select.POLLOUT


def test_poll_reply_and_wakeup(fuse_harness: Any) -> None:
    ops = PollFS()
    ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o644))

    async def check(h: Harness) -> None:
        f = await h.lookup(ROOT, b"f")
        fh = (await h.open(f.nodeid)).fh
        assert await h.poll(f.nodeid, fh, select.POLLIN, kh=77) == select.POLLOUT
        assert len(ops.handles) == 1
        ops.handles[0].notify()
        note = await h.next_notification()
        assert note.kind == "poll" and note.fields.kh == 77

    fuse_harness(ops, check)


def test_retrieve_fails_when_serving_ends_first(fuse_harness: Any) -> None:
    """An awaited notify_retrieve() whose answer never came used to wait forever, so the
    task group around serving never exited and close() was never reached."""
    async def check(h: Harness) -> None:
        assert h.mount is not None
        mount = h.mount
        got: list[BaseException] = []

        async def retrieve() -> None:
            try:
                await mount.cache.notify_retrieve(2, 0, 100)
            except RuntimeError as e:
                got.append(e)

        async with TaskGroup() as group:
            group.start_soon(retrieve)
            note = await h.next_notification()
            assert note.kind == "retrieve"  # never answered
            mount.terminate()
        assert len(got) == 1 and "serving ended before the kernel's answer" in str(got[0])

    fuse_harness(_fs(), check)


def test_notifications_arrive_without_being_awaited(fuse_harness: Any) -> None:
    """h.notifications filled only while next_notification() was awaited."""
    async def check(h: Harness) -> None:
        assert h.mount is not None
        h.mount.invalidate_inode(pyfuse3.ROOT_INODE, attr_only=True)
        await h.getattr(pyfuse3.ROOT_INODE)  # any round trip: the notification came first
        assert [n.kind for n in h.notifications] == ["inval_inode"]

    fuse_harness(MemFS(), check)


def test_invalidate_all_says_what_is_missing(fuse_harness: Any) -> None:
    """Where the kernel (here: the harness playing Linux 6.1, FUSE 7.38) or the libfuse built
    against lacks epoch invalidation, the error names which, and serving goes on."""

    async def check(h: Harness) -> None:
        assert h.mount is not None
        with pytest.raises(OSError) as info:
            h.mount.invalidate_all()
        assert info.value.errno == errno.ENOSYS
        if _notify.HAVE_EPOCH:
            assert "the kernel lacks epoch invalidation (FUSE protocol 7.44" in str(info.value)
        else:
            assert "needs libfuse 3.18 or newer" in str(info.value)
        with pytest.raises(OSError):
            await h.mount.cache.invalidate_all()
        await h.getattr(ROOT)  # still serving

    fuse_harness(MemFS(), check, protocol_minor=38)


def test_a_request_timeout_the_kernel_lacks_fails_serving_with_the_reason(
        fuse_harness: Any) -> None:
    """Where the kernel lacks request timeouts (here: the harness playing Linux 6.1, FUSE
    7.38), asking for one ends serving with the reason, instead of serving without the
    promised timeout."""

    async def check(h: Harness) -> None:
        pass  # pragma: no cover - INIT already fails

    with pytest.raises((RuntimeError, OSError)) as info:  # OSError: at once, without 3.18
        fuse_harness(MemFS(), check, options=["request_timeout=5"], protocol_minor=38)
    cause = info.value.__cause__ if isinstance(info.value, RuntimeError) else info.value
    assert ("the kernel lacks request timeouts (FUSE protocol 7.43" in str(cause)
            or "needs libfuse 3.18" in str(cause))


def test_invalidator_sends_inode_notifications_before_entry_ones(fuse_harness: Any) -> None:
    """A delete notification lets the kernel evict the inode; an inode notification that
    then meets the inode being freed waits for it (16 ms measured), holding up the rest of
    the flush. So a flush sends every inode notification first."""
    async def check(h: Harness) -> None:
        assert h.mount is not None
        inv = pyfuse3.cache.Invalidator(mount=h.mount)
        inv.entry(ROOT, b"gone", deleted=9)
        inv.entry(ROOT, b"renamed")
        inv.inode(9, attr_only=True)
        inv.inode(ROOT, attr_only=True)
        inv.inode(7, offset=0, length=3)
        await inv.flush()
        kinds = [(await h.next_notification()).kind for _ in range(5)]
        assert kinds == ["inval_inode"] * 3 + ["delete", "inval_entry"]

    fuse_harness(_fs(), check)
