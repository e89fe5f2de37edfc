"""Race-free cache fills, kernel-free and deterministic: a handler computes its answer, is held,
an invalidation of what it answers about is sent, the handler is released. The reply must not
fill the kernel's caches with the state from before the change (its timeouts go out as 0),
and replies the change did not touch keep their timeouts."""

from __future__ import annotations

import stat
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import _backends
from pyfuse3._wire import CONSTANTS
from pyfuse3.testing import Harness
from pyfuse3.testing._harness import Request, layout

from ..memfs import MemFS, Node

ROOT = pyfuse3.ROOT_INODE
T = 300.0  # the file system's timeouts: long enough that a stale fill would stick
RING = 64  # as _fills.pxd: changes remembered per session


class Gate:
    """An event for one loop (trio or asyncio): wait() until open()."""

    def __init__(self) -> None:
        self.is_open = False
        self._waiters: list[Callable[[None], None]] = []

    async def wait(self) -> None:
        if not self.is_open:
            await _backends.current().wait_for_callback(self._waiters.append)

    def open(self) -> None:
        self.is_open = True
        waiters, self._waiters = self._waiters, []
        for deliver in waiters:
            deliver(None)


class HeldFS(MemFS):
    """MemFS whose handlers named in ``hold`` compute their answer, then wait for ``release``
    (as a network file system waits for its store after reading)."""

    def __init__(self) -> None:
        super().__init__(timeout=T)
        self.hold: set[str] = set()
        self.entered = Gate()
        self.release = Gate()
        self.open_changed = False
        self.f = self.add(ROOT, b"f", Node(stat.S_IFREG | 0o644, data=b"old")).st_ino
        self.d = self.add(ROOT, b"d", Node(stat.S_IFDIR | 0o755, nlink=2)).st_ino
        for name in (b"a", b"b", b"c"):
            self.add(self.d, name, Node(stat.S_IFREG | 0o644))

    async def _held(self, op: str, answer: Any) -> Any:
        if op in self.hold:
            self.entered.open()
            await self.release.wait()
        return answer

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        return await self._held("lookup", await super().lookup(parent_inode, name, ctx))

    async def getattr(self, inode: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        return await self._held("getattr", await super().getattr(inode, ctx))

    async def create(self, parent_inode: Any, name: Any, mode: Any, flags: Any,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        return await self._held("create", await super().create(parent_inode, name, mode, flags,
                                                               ctx))

    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        fi = await super().open(inode, flags, ctx)
        fi.changed = self.open_changed
        return fi


ENTRY = layout("fuse_entry_out")


async def _held_reply(h: Harness, fs: HeldFS, op: str, send: Callable[[], Request],
                      change: Callable[[pyfuse3.Mount], Awaitable[None] | None]) -> bytes:
    """Send a request, let its handler compute, make ``change`` while it is held, release."""
    assert h.mount is not None
    fs.hold = {op}
    req = send()
    await fs.entered.wait()
    pending = change(h.mount)
    if pending is not None:
        await pending
    fs.release.open()
    return await req.reply()


def _lookup(h: Harness, parent: int, name: bytes) -> Callable[[], Request]:
    return lambda: h.send("LOOKUP", parent, name + b"\0")


@pytest.mark.parametrize("change, attr_valid, entry_valid", [
    (lambda m: None, T, T),                                        # control: nothing changed
    (lambda m: m.invalidate_inode(2), 0, T),                       # f's attributes and data
    (lambda m: m.invalidate_inode(2, attr_only=True), 0, T),
    (lambda m: m.notify_store(2, 0, b"new"), 0, T),                # new data (and size)
    (lambda m: m.cache.invalidate_inode(2), 0, T),                 # the awaitable form
    (lambda m: m.invalidate_entry(ROOT, b"f"), T, 0),              # the name f
    (lambda m: m.expire_entry(ROOT, b"other"), T, 0),              # lookups only know the dir
    (lambda m: m.invalidate_entry(ROOT, b"f", deleted=2), 0, 0),   # f unlinked
    (lambda m: m.invalidate_inode(3), T, T),                       # another inode
    (lambda m: m.invalidate_entry(3, b"f"), T, T),                 # another directory
], ids=["control", "inode", "attr_only", "store", "awaitable", "entry", "expire", "deleted",
        "other_inode", "other_dir"])
def test_lookup_computed_before_a_change_is_not_cached(fuse_harness: Any, change: Any,
                                                       attr_valid: float,
                                                       entry_valid: float) -> None:
    fs = HeldFS()

    async def check(h: Harness) -> None:
        body = await _held_reply(h, fs, "lookup", _lookup(h, ROOT, b"f"), change)
        entry = ENTRY.unpack(body)
        assert (entry.nodeid, entry.attr.size) == (fs.f, 3)  # the answer itself is unchanged
        assert (entry.attr_valid, entry.entry_valid) == (attr_valid, entry_valid)

    fuse_harness(fs, check)


def test_invalidations_from_other_threads_count(fuse_harness: Any) -> None:
    """The entry worker's thread (invalidate_entry_async) and an Invalidator's are seen too."""
    fs = HeldFS()

    async def check(h: Harness) -> None:
        async def change(m: pyfuse3.Mount) -> None:
            handle = m.invalidate_entry_async(ROOT, b"f")
            await _backends.current().to_thread(lambda: handle.result(10))

        entry = ENTRY.unpack(await _held_reply(h, fs, "lookup", _lookup(h, ROOT, b"f"), change))
        assert (entry.attr_valid, entry.entry_valid) == (T, 0)

    fuse_harness(fs, check)


def test_more_changes_than_remembered_count_as_stale(fuse_harness: Any) -> None:
    fs = HeldFS()

    async def check(h: Harness) -> None:
        def change(m: pyfuse3.Mount) -> None:
            for ino in range(1000, 1000 + RING + 1):  # none of them is f, but f's is forgotten
                m.invalidate_inode(ino, attr_only=True)

        entry = ENTRY.unpack(await _held_reply(h, fs, "lookup", _lookup(h, ROOT, b"f"), change))
        assert (entry.attr_valid, entry.entry_valid) == (0, 0)

    fuse_harness(fs, check)


def test_getattr_computed_before_a_change_is_not_cached(fuse_harness: Any) -> None:
    fs = HeldFS()

    async def check(h: Harness) -> None:
        out = layout("fuse_attr_out")
        send = lambda: h.send("GETATTR", fs.f, layout("fuse_getattr_in").pack())  # noqa: E731
        body = await _held_reply(h, fs, "getattr", send, lambda m: m.invalidate_inode(fs.d))
        assert out.unpack(body).attr_valid == T  # control: another inode changed
        fs.entered, fs.release = Gate(), Gate()
        body = await _held_reply(h, fs, "getattr", send, lambda m: m.invalidate_inode(fs.f))
        assert out.unpack(body).attr_valid == 0

    fuse_harness(fs, check)


def test_create_computed_before_a_change_is_not_cached(fuse_harness: Any) -> None:
    fs = HeldFS()

    async def check(h: Harness) -> None:
        body = layout("fuse_create_in").pack(flags=0o2 | 0o100, mode=0o100644) + b"new\0"
        send = lambda: h.send("CREATE", ROOT, body)  # noqa: E731
        # the new file's inode is the next one: the invalidation names it before it is known
        data = await _held_reply(h, fs, "create", send,
                                 lambda m: m.invalidate_inode(fs.next_inode - 1))
        entry = ENTRY.unpack(data)
        assert entry.nodeid == fs.next_inode - 1
        assert (entry.attr_valid, entry.entry_valid) == (0, T)

    fuse_harness(fs, check)


def test_a_handler_that_invalidates_what_it_answers_inline(fuse_harness: Any) -> None:
    """A handler that never suspends (answered inline) is guarded too."""

    class SelfInvalidating(HeldFS):
        async def lookup(self, parent_inode: Any, name: Any,
                         ctx: Any) -> pyfuse3.EntryAttributes:
            answer = await super().lookup(parent_inode, name, ctx)
            if name == b"f":
                pyfuse3.Mount.current().invalidate_inode(answer.st_ino, attr_only=True)
            return answer

    fs = SelfInvalidating()

    async def check(h: Harness) -> None:
        f = await h.lookup(ROOT, b"f")
        d = await h.lookup(ROOT, b"d")
        assert (f.attr_valid, f.entry_valid, d.attr_valid, d.entry_valid) == (0, T, T, T)

    fuse_harness(fs, check)


def test_readdirplus_counts_changes_from_opendir(fuse_harness: Any) -> None:
    """A listing may be taken at opendir(): entries invalidated since then go out with
    timeout 0; a listing opened after the changes keeps its timeouts."""
    fs = HeldFS()

    async def check(h: Harness) -> None:
        assert h.mount is not None
        a, b = fs.child(fs.d, b"a"), fs.child(fs.d, b"b")
        fh = (await h.opendir(fs.d)).fh
        h.mount.invalidate_inode(a, attr_only=True)  # a's attributes
        h.mount.invalidate_entry(fs.d, b"b")         # the name b
        h.mount.invalidate_entry(ROOT, b"c")         # the name c, in another directory
        stale = {e.name: (e.entry.attr_valid, e.entry.entry_valid)
                 for e in await h.readdir(fs.d, fh)}
        assert stale == {b"a": (0, T), b"b": (T, 0), b"c": (T, T)}
        await h.releasedir(fs.d, fh)
        fresh = {e.name: (e.entry.attr_valid, e.entry.entry_valid)
                 for e in await h.listdir(fs.d)}
        assert fresh == {name: (T, T) for name in (b"a", b"b", b"c")}
        assert b in fs.nodes

    fuse_harness(fs, check)


def test_readdirplus_without_opendir_record_counts_from_its_own_start(fuse_harness: Any) -> None:
    """A handle the session never saw opened (closed, or another handle) counts from the
    READDIRPLUS itself: changes before it do not matter."""
    fs = HeldFS()

    async def check(h: Harness) -> None:
        assert h.mount is not None
        fh = (await h.opendir(fs.d)).fh
        await h.releasedir(fs.d, fh)
        h.mount.invalidate_inode(fs.child(fs.d, b"a"), attr_only=True)
        await h.next_notification()
        entries = await h.readdir(fs.d, fh)
        assert {e.entry.attr_valid for e in entries} == {T}

    fuse_harness(fs, check)


@pytest.mark.parametrize("changed", [False, True])
def test_open_reporting_a_change_drops_what_the_kernel_cached(fuse_harness: Any,
                                                              changed: bool) -> None:
    """Close-to-open: FileInfo(changed=True) sends an attribute invalidation before the open
    is answered, and the open's reply drops the cached pages (no FOPEN_KEEP_CACHE)."""
    fs = HeldFS()
    fs.open_changed = changed

    async def check(h: Harness) -> None:
        out = await h.open(fs.f)
        keep = bool(out.open_flags & CONSTANTS["FOPEN_KEEP_CACHE"])
        if changed:
            assert not keep and [(n.kind, n.fields.ino, n.fields.off) for n in h.notifications] \
                == [("inval_inode", fs.f, -1)]
        else:
            assert keep and h.notifications == []

    fuse_harness(fs, check)
