"""Race-free cache fills through a real kernel: a reply computed before a change must not
keep the old state cached after the change was announced (timeouts here are an hour).

Each test shows the stale state the kernel would keep (or proves its cache hot with a control),
drives the interleaving deterministically (the handler is held while the change happens), and
checks what a client sees afterwards.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import _backends
from pyfuse3.testing import MountedFS, mounted

from ..memfs import MemFS, Node
from ..util import eventually, run_with_timeout

pytestmark = pytest.mark.fuse
ROOT = pyfuse3.ROOT_INODE
HOUR = 3600.0
#: Older kernels than this one (6.18) may use a reply with timeout 0 until their clock ticks
#: (1/HZ: at most 10 ms for HZ >= 100). A check that the stale state is gone waits one tick
#: first; it is a lower bound on the kernel's clock, not a guess at the machine's speed.
TICK = 0.02


class RaceFS(MemFS):
    """MemFS caching for an hour. ``hold``: a name whose lookup waits after computing its
    answer until ``resume``. opendir() takes the listing (names and attributes) and readdir()
    hands it out later. open() reports ``changed`` for inodes in ``changed``."""

    def __init__(self) -> None:
        super().__init__(timeout=HOUR)
        self.hold: bytes | None = None
        self.entered = threading.Event()
        self.resume = threading.Event()
        self.listings: dict[int, list[tuple[bytes, pyfuse3.EntryAttributes]]] = {}
        self.next_fh = 1000
        self.changed: set[int] = set()
        self.report_changes = False

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        answer = await super().lookup(parent_inode, name, ctx)
        if name == self.hold:
            self.entered.set()
            await _backends.current().to_thread(lambda: self.resume.wait(30))
        return answer

    async def opendir(self, inode: Any, ctx: Any) -> int:
        await super().opendir(inode, ctx)
        fh, self.next_fh = self.next_fh, self.next_fh + 1
        self.listings[fh] = [(name, self.attr(ino))
                             for name, ino in sorted(self.node(inode).entries.items())]
        return fh

    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        for i, (name, attr) in enumerate(self.listings[fh][start_id:], start_id):
            if not pyfuse3.readdir_reply(token, name, attr, i + 1):
                break
            if token.plus:
                self.lookups[attr.st_ino] += 1

    async def releasedir(self, fh: Any) -> None:
        del self.listings[fh]

    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        fi = await super().open(inode, flags, ctx)
        if self.report_changes and inode in self.changed:
            self.changed.discard(inode)
            fi.changed = True
        return fi


@pytest.fixture
def fs(backend: str) -> Iterator[MountedFS]:
    with mounted(RaceFS(), backend=backend) as mfs:
        yield mfs


def _mount(fs: MountedFS) -> pyfuse3.Mount:
    assert fs.mount is not None
    return fs.mount


def test_lookup_answered_after_an_invalidation_it_missed(fs: MountedFS) -> None:
    """The measured race: a client looks up a name the kernel never saw while the file is
    written elsewhere; the invalidation finds nothing cached (ENOENT) and arrives before the
    lookup's answer. That answer (the old size) must not stay cached for an hour."""
    ops: RaceFS = fs.ops
    ino = ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o644, data=b"old")).st_ino
    ops.hold = b"f"
    first: list[int] = []
    client = threading.Thread(target=lambda: first.append(os.stat(fs.path("f")).st_size))
    client.start()
    try:
        assert ops.entered.wait(10), "the lookup never reached the file system"
        ops.nodes[ino].data = b"new, and longer"  # the change, while the answer is held
        with pytest.raises(FileNotFoundError):    # the kernel has no such inode yet
            _mount(fs).invalidate_inode(ino)
    finally:
        ops.resume.set()
        client.join(10)
    assert first in ([3], [15])  # the old state was computed first: either is linearizable
    time.sleep(TICK)
    assert run_with_timeout(lambda: os.stat(fs.path("f")).st_size) == 15
    # control: the kernel caches this inode's attributes for an hour again
    ops.nodes[ino].data = b"unannounced"
    assert run_with_timeout(lambda: os.stat(fs.path("f")).st_size) == 15


def test_readdirplus_listing_taken_at_opendir(fs: MountedFS) -> None:
    """A listing taken at opendir() and handed out by READDIRPLUS after changes: neither the
    chmod nor the unlink may be undone in the kernel."""
    ops: RaceFS = fs.ops
    d = ops.add(ROOT, b"d", Node(stat.S_IFDIR | 0o755, nlink=2)).st_ino
    a = ops.add(d, b"a", Node(stat.S_IFREG | 0o644)).st_ino
    b = ops.add(d, b"b", Node(stat.S_IFREG | 0o644)).st_ino
    ops.add(d, b"c", Node(stat.S_IFREG | 0o644))
    for name in ("a", "b", "c"):
        os.stat(fs.path("d", name))  # cached in the kernel for an hour
    fd = os.open(fs.path("d"), os.O_RDONLY | os.O_DIRECTORY)  # opendir: the listing is taken
    try:
        ops.nodes[a].mode = stat.S_IFREG | 0o600  # chmod elsewhere, announced
        _mount(fs).invalidate_inode(a, attr_only=True)
        del ops.nodes[d].entries[b"b"]  # unlink elsewhere, announced
        _mount(fs).invalidate_entry(d, b"b", deleted=b)
        assert sorted(os.listdir(fd)) == ["a", "b", "c"]  # the old listing, handed out now
    finally:
        os.close(fd)
    time.sleep(TICK)
    assert stat.S_IMODE(os.stat(fs.path("d", "a")).st_mode) == 0o600
    assert not os.path.exists(fs.path("d", "b"))
    # control: untouched entries stay cached (a change to c unannounced stays unseen)
    ops.nodes[ops.child(d, b"c")].mode = stat.S_IFREG | 0o600
    assert stat.S_IMODE(os.stat(fs.path("d", "c")).st_mode) == 0o644


def test_close_to_open(fs: MountedFS) -> None:
    """A file changed elsewhere whose notification has not arrived: an open whose FileInfo
    says ``changed`` reads the new content; without it the kernel serves its cache."""
    ops: RaceFS = fs.ops
    ino = ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o644, data=b"old!!")).st_ino

    def read() -> bytes:  # no fstat(): a read after a read would refresh the atime
        fd = os.open(fs.path("f"), os.O_RDONLY)
        try:
            return os.read(fd, 4096)
        finally:
            os.close(fd)

    assert run_with_timeout(read) == b"old!!"
    ops.nodes[ino].data = b"new content"  # written elsewhere, not announced (yet)
    ops.changed.add(ino)
    assert run_with_timeout(read) == b"old!!"  # control: attributes and pages were cached
    ops.report_changes = True
    assert run_with_timeout(read) == b"new content"
    assert os.stat(fs.path("f")).st_size == 11


def test_an_invalidation_meeting_a_fill_that_may_be_landing_is_repeated(fs: MountedFS) -> None:
    """The kernel installs a looked-up inode in the client's thread after the answer was
    written; an invalidation in between finds nothing. So after an entry answer naming the
    inode, ENOENT is asked again (0.5 to 8 ms apart) before it is believed.
    (bench/fill_race.py measures what this closes at random timing.)"""
    ops: RaceFS = fs.ops
    ino = ops.add(ROOT, b"g", Node(stat.S_IFREG | 0o644)).st_ino
    counted = ops.lookups[ino]  # (add() counts one of its own)
    os.stat(fs.path("g"))  # an entry answer named ino
    _mount(fs).invalidate_entry(ROOT, b"g")  # the kernel lets go of the name ...
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("2")  # ... and of the inode: it will never land now
    assert eventually(lambda: ops.lookups[ino] == counted)  # forgotten
    start = time.monotonic()
    with pytest.raises(FileNotFoundError):
        _mount(fs).invalidate_inode(ino)
    assert time.monotonic() - start >= 0.0155  # asked 5 more times before believing ENOENT
