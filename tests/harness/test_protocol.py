"""Every reply kind, the error policy, interrupts and readdir paging, kernel-free: the file
system is served over a socket pair by pyfuse3.testing.Harness (no /dev/fuse, no mount)."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import select
import socket
import stat
from typing import Any

import pytest

import pyfuse3
from pyfuse3 import FUSEError
from pyfuse3._backends import current
from pyfuse3._negotiation import undelivered
from pyfuse3.testing import Harness
from pyfuse3.testing._harness import layout

from .. import memfs
from ..memfs import GatedLookupFS, MemFS, Node

ROOT = pyfuse3.ROOT_INODE


def _fs() -> MemFS:
    ops = MemFS()
    ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o644, data=b"hello"))
    ops.add(ROOT, b"d", Node(stat.S_IFDIR | 0o755, nlink=2))
    return ops


def test_init_negotiates_what_was_offered(fuse_harness: Any) -> None:
    async def check(h: Harness) -> None:
        assert h.init_reply is not None and h.init_reply.major == 7
        flags = h.init_reply.flags
        assert flags & pyfuse3._wire.CONSTANTS["FUSE_DO_READDIRPLUS"]
        assert not flags & pyfuse3._wire.CONSTANTS["FUSE_WRITEBACK_CACHE"]  # not enabled

    fuse_harness(_fs(), check)

    async def without(h: Harness) -> None:
        assert h.init_reply is not None
        assert not h.init_reply.flags & pyfuse3._wire.CONSTANTS["FUSE_DO_READDIRPLUS"]

    fuse_harness(_fs(), without, capabilities={"ASYNC_READ", "BIG_WRITES"})


class ParallelDirops(MemFS):
    def init_connection(self, conn: pyfuse3.ConnectionInfo) -> None:
        conn.want.add("parallel_dirops")


@pytest.mark.skipif(bool(undelivered(pyfuse3.LIBFUSE_VERSION)),
                    reason=f"libfuse {pyfuse3.LIBFUSE_VERSION} never sends parallel_dirops")
def test_parallel_dirops_is_sent_only_when_wanted(fuse_harness: Any) -> None:
    flag = pyfuse3._wire.CONSTANTS["FUSE_PARALLEL_DIROPS"]

    async def off(h: Harness) -> None:
        assert h.init_reply is not None and not h.init_reply.flags & flag

    async def on(h: Harness) -> None:
        assert h.init_reply is not None and h.init_reply.flags & flag

    fuse_harness(_fs(), off)
    fuse_harness(ParallelDirops(), on)
    by_attribute = _fs()
    by_attribute.enable_parallel_dirops = True
    fuse_harness(by_attribute, on)


def test_every_reply_kind(fuse_harness: Any) -> None:
    async def check(h: Harness) -> None:
        f = await h.lookup(ROOT, b"f")  # entry
        assert f.attr.size == 5 and stat.S_ISREG(f.attr.mode) and f.nodeid > ROOT
        assert (await h.getattr(f.nodeid)).attr.ino == f.nodeid  # attr
        assert (await h.setattr(f.nodeid, mode=0o600)).attr.mode & 0o777 == 0o600
        opened = await h.open(f.nodeid, os.O_RDWR)  # open
        assert await h.read(f.nodeid, opened.fh, 1, 3) == b"ell"  # read
        assert await h.write(f.nodeid, opened.fh, 5, b"!!") == 2  # write
        await h.flush(f.nodeid, opened.fh)
        await h.fsync(f.nodeid, opened.fh)
        await h.release(f.nodeid, opened.fh)  # none
        entry, created = await h.create(ROOT, b"new", 0o640)  # create
        assert entry.attr.mode & 0o777 == 0o640 and created.fh == entry.nodeid
        await h.release(entry.nodeid, created.fh)
        d = await h.mkdir(ROOT, b"sub", 0o700)
        assert stat.S_ISDIR(d.attr.mode)
        assert stat.S_ISFIFO((await h.mknod(ROOT, b"fifo", stat.S_IFIFO | 0o644)).attr.mode)
        link = await h.symlink(ROOT, b"l", b"target")
        assert await h.readlink(link.nodeid) == b"target"  # readlink
        assert (await h.link(f.nodeid, ROOT, b"hard")).attr.nlink == 2
        await h.rename(ROOT, b"hard", d.nodeid, b"moved")
        await h.unlink(d.nodeid, b"moved")
        await h.rmdir(ROOT, b"sub")
        st = await h.statfs()  # statfs
        assert st.namelen == 255
        await h.setxattr(f.nodeid, b"user.a", b"value")
        assert await h.getxattr(f.nodeid, b"user.a") == b"value"  # xattr
        assert await h.listxattr(f.nodeid) == [b"user.a"]  # listxattr
        with pytest.raises(OSError) as info:
            await h.getxattr(f.nodeid, b"user.a", size=2)  # too small: ERANGE
        assert info.value.errno == errno.ERANGE
        await h.removexattr(f.nodeid, b"user.a")
        await h.access(f.nodeid, os.R_OK)  # access
        names = {e.name for e in await h.listdir(ROOT)}  # readdir (plus)
        assert names == {b"f", b"d", b"new", b"fifo", b"l"}
        plain = await h.listdir(ROOT, plus=False)
        assert {e.name for e in plain} == names and all(e.entry is None for e in plain)
        h.forget(f.nodeid, 1)  # no reply
        h.batch_forget([(f.nodeid, 1)])
        assert (await h.getattr(f.nodeid)).attr.size == 7  # still serving after forgets

    ops = _fs()
    fuse_harness(ops, check)
    assert ops.calls["forget"] == 2


class FaultyFS(MemFS):
    async def getattr(self, inode: Any, ctx: Any) -> Any:
        if inode == 7:
            raise FUSEError(errno.EACCES)
        if inode == 8:
            raise RuntimeError("getattr broke")
        if inode == 9:
            return "not attributes"
        if inode == 10:
            return current().sleep(0)  # returned, not awaited
        return await super().getattr(inode, ctx)


@pytest.mark.fuse_errors_expected
def test_error_policy(fuse_harness: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def check(h: Harness) -> None:
        for inode, err in ((7, errno.EACCES), (8, errno.EIO), (9, errno.EIO), (10, errno.EIO),
                           (99, errno.ENOENT)):
            with pytest.raises(OSError) as info:
                await h.getattr(inode)
            assert info.value.errno == err, inode
        assert (await h.getattr(ROOT)).attr.ino == ROOT  # still serving

    fuse_harness(FaultyFS(), check)
    messages = [r.getMessage() for r in caplog.records if r.name == "pyfuse3"]
    assert len(messages) == 3
    assert "getattr() handler failed, answering EIO" in messages[0]
    assert any("is an 'await' missing?" in str(r.exc_info[1]) for r in caplog.records
               if r.exc_info)


class MisnamedFS(MemFS):
    """getattr() without ctx; poll() with other arguments; lookup wrapped
    by errors_as_fuse and flush() taking anything: both fine."""

    async def getattr(self, inode: Any) -> Any:  # type: ignore[override]
        return await super().getattr(inode, None)

    async def poll(self, fh: Any, events: int, handle: Any = None) -> Any:  # type: ignore[override]
        return select.POLLIN

    @pyfuse3.errors_as_fuse
    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> Any:
        return await super().lookup(parent_inode, name, ctx)

    async def flush(self, *args: Any) -> None:
        pass


@pytest.mark.fuse_errors_expected
def test_a_handler_that_cannot_take_its_arguments_is_named_at_mount(
        fuse_harness: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Each request to it failed with a TypeError in the log, and nothing earlier said so."""
    ops = MisnamedFS()

    async def check(h: Harness) -> None:
        assert (await h.lookup(ROOT, b".")).nodeid == ROOT  # the others serve
        with pytest.raises(OSError) as info:
            await h.getattr(ROOT)
        assert info.value.errno == errno.EIO

    fuse_harness(ops, check)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
                and "cannot be called" in r.getMessage()]
    assert warnings == [
        "MisnamedFS.getattr(inode: 'Any') -> 'Any' cannot be called as getattr(inode, ctx) "
        "(too many positional arguments): every getattr request will be answered with EIO",
        "MisnamedFS.poll(fh: 'Any', events: 'int', handle: 'Any' = None) -> 'Any' cannot be "
        "called as poll(inode, fh, poll_handle, ctx) (too many positional arguments): "
        "every poll request will be answered with EIO"]


class WriteCountFS(MemFS):
    """write() reports ``self.count`` bytes written."""

    count: object = 0

    async def write(self, fh: Any, off: int, buf: bytes) -> Any:
        return self.count


@pytest.mark.fuse_errors_expected
def test_a_write_count_outside_what_was_given_is_named(fuse_harness: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A negative count said only "can't convert negative value to size_t"."""
    ops = WriteCountFS()
    ino = ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o644, data=b"abc")).st_ino

    async def check(h: Harness) -> None:
        fh = (await h.open(ino, os.O_WRONLY)).fh
        for count in (-1, 4, 2**70, 1.0):
            ops.count = count
            with pytest.raises(OSError) as info:
                await h.write(ino, fh, 0, b"xyz")
            assert info.value.errno == errno.EIO, count
        for count in (0, 3):
            ops.count = count
            assert await h.write(ino, fh, 0, b"xyz") == count  # still serving

    fuse_harness(ops, check)
    errors = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert errors == [
        "write() handler reported -1 bytes written, but 3 were given (expected 0 to 3)",
        "write() handler reported 4 bytes written, but 3 were given (expected 0 to 3)",
        f"write() handler reported {2**70} bytes written, but 3 were given (expected 0 to 3)",
        "write() handler returned float, expected int"]


class NumberFS(MemFS):
    """lseek, poll, bmap, opendir, ioctl and getlk answer with ``self.value``."""

    value: object = 0

    async def lseek(self, fh: Any, offset: int, whence: int) -> Any:
        return self.value

    async def poll(self, inode: Any, fh: Any, poll_handle: Any, events: int) -> Any:
        return self.value

    async def bmap(self, inode: Any, blocksize: int, idx: int) -> Any:
        return self.value

    async def opendir(self, inode: Any, ctx: Any) -> Any:
        return self.value

    async def ioctl(self, fh: Any, cmd: int, arg: int, in_data: bytes, out_size: int,
                    flags: int) -> Any:
        return self.value

    async def getlk(self, fh: Any, owner: int, lock: Any) -> Any:
        return pyfuse3.FileLock(fcntl.F_WRLCK, self.value, 1, 1)  # type: ignore[arg-type]


@pytest.mark.fuse_errors_expected
def test_a_number_a_reply_cannot_carry_is_named(fuse_harness: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Said only "can't convert negative value to uint64_t" (bmap, opendir) or "Python int too
    large to convert to C long" (lseek, ioctl), without the handler; a negative offset from
    lseek() went to the kernel."""
    ops = NumberFS()
    ino = ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o644, data=b"abc")).st_ino

    async def check(h: Harness) -> None:
        fh = (await h.open(ino, os.O_RDONLY)).fh
        calls = {"lseek": lambda: h.lseek(ino, fh, 0, os.SEEK_DATA),
                 "poll": lambda: h.poll(ino, fh, select.POLLIN),
                 "bmap": lambda: h.bmap(ino, 0, 512),
                 "opendir": lambda: h.opendir(ROOT),
                 "ioctl": lambda: h.ioctl(ino, fh, 0x5401),
                 "getlk": lambda: h.getlk(ino, fh, 1, fcntl.F_WRLCK)}
        for value in (-1, 2**64, 2**70):
            ops.value = value
            for name, call in calls.items():
                if value == -1 and name in ("ioctl", "getlk"):
                    continue  # a negative ioctl result is the caller's errno; off_t is signed
                with pytest.raises(OSError) as info:
                    await call()
                assert info.value.errno == errno.EIO, (name, value)
        ops.value = 2
        assert await h.lseek(ino, fh, 0, os.SEEK_DATA) == 2  # still serving
        assert await h.bmap(ino, 0, 512) == 2
        assert (await h.ioctl(ino, fh, 0x5401))[0] == 2

    fuse_harness(ops, check)
    errors = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    ranges = {"lseek": "an offset from 0 to 9223372036854775807",
              "poll": "ready events from 0 to 4294967295",
              "bmap": "a block number from 0 to 18446744073709551615",
              "opendir": "a file handle from 0 to 18446744073709551615",
              "ioctl": "a result from -2147483648 to 2147483647"}
    expected = []
    for value in (-1, 2**64, 2**70):
        for name, allowed in ranges.items():
            if not (name == "ioctl" and value == -1):
                expected.append(f"{name}() handler returned {value}, expected {allowed}")
        if value != -1:
            expected.append("getlk() handler returned a number out of range for FileLock")
    assert [e.split(" (")[0] for e in errors] == expected


class UntypedFS(MemFS):
    """Node ``u`` has st_mode 0o644 (no file type); ``neg`` looks up as a negative entry
    (inode 0, no mode); create() drops the file type the kernel sent."""

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> Any:
        if name == b"neg":
            entry = pyfuse3.EntryAttributes()
            entry.st_ino, entry.st_mode = 0, 0
            return entry
        return await super().lookup(parent_inode, name, ctx)

    async def create(self, parent_inode: Any, name: Any, mode: Any, flags: Any,
                     ctx: Any) -> Any:
        return await super().create(parent_inode, name, stat.S_IMODE(mode), flags, ctx)


@pytest.mark.fuse_errors_expected
def test_attributes_without_a_file_type_are_named(fuse_harness: Any,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The kernel answers EIO for them (and marks a known inode bad), so a handler that set
    st_mode = 0o644 failed with nothing logged."""
    ops = UntypedFS()
    ino = ops.add(ROOT, b"u", Node(0o644)).st_ino

    async def check(h: Harness) -> None:
        for call in (lambda: h.lookup(ROOT, b"u"), lambda: h.getattr(ino),
                     lambda: h.create(ROOT, b"new"), lambda: h.listdir(ROOT)):
            with pytest.raises(OSError) as info:
                await call()
            assert info.value.errno == errno.EIO
        assert (await h.lookup(ROOT, b"neg")).nodeid == 0  # a negative entry has no mode
        assert {e.name for e in await h.listdir(ROOT, plus=False)} == {b"u", b"new"}

    fuse_harness(ops, check)
    problem = ("st_mode 0o644, which names no file type (stat.S_IFREG | 0o644 for a regular "
               "file, S_IFDIR for a directory, ...; the kernel answers EIO)")
    assert [str(r.exc_info[1]) for r in caplog.records if r.exc_info] == [
        f"lookup() handler returned {problem}", f"getattr() handler returned {problem}",
        f"create() handler returned {problem}", f"readdir_reply(): b'new' has {problem}"]


class SlowFS(MemFS):
    def __init__(self) -> None:
        super().__init__()
        self.cancelled = 0

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> Any:
        if name == b"slow":
            try:
                await current().sleep(3600)
            except BaseException:
                self.cancelled += 1
                raise
        return await super().lookup(parent_inode, name, ctx)


def test_an_interrupt_cancels_a_handler_once_its_caller_is_killed(fuse_harness: Any) -> None:
    """A caller's signal sends INTERRUPT, but only a caller being killed has its handler
    cancelled: one that handles the signal is watched, and cancelled once it is killed,
    although the kernel sends no second INTERRUPT."""
    import anyio

    ops = SlowFS()

    async def check(h: Harness) -> None:
        with anyio.fail_after(10):
            h.pid = 1001
            killed = h.send("LOOKUP", ROOT, b"slow\0")
            h.pid = 1002
            signalled = h.send("LOOKUP", ROOT, b"slow\0")
            await current().sleep(0.05)
            h.kill(killed)
            h.interrupt(signalled)
            with pytest.raises(OSError) as info:
                await killed.reply()
            assert info.value.errno == errno.EINTR
            with pytest.raises(OSError):
                await h.lookup(ROOT, b"other")  # ENOENT: still serving, after both INTERRUPTs
            assert not signalled.answered and ops.cancelled == 1
            h.kill(signalled)  # no INTERRUPT: one was sent already
            with pytest.raises(OSError) as info:
                await signalled.reply()
            assert info.value.errno == errno.EINTR

    fuse_harness(ops, check)
    assert ops.cancelled == 2


class ChangeFS(SlowFS, memfs.ChangeFS):
    pass


class UninterruptibleChangeFS(ChangeFS):
    mkdir = pyfuse3.uninterruptible(ChangeFS.mkdir)


class InterruptibleChangeFS(ChangeFS):
    mkdir = pyfuse3.interruptible(ChangeFS.mkdir)


@pytest.mark.parametrize(("fs", "how", "made"), [
    (ChangeFS, "interrupt", True), (ChangeFS, "kill", False),
    (UninterruptibleChangeFS, "kill", True), (InterruptibleChangeFS, "interrupt", False)],
    ids=["default-handled", "default-killed", "uninterruptible-killed",
         "interruptible-handled"])
@pytest.mark.parametrize("wrapped", [False, True], ids=["plain", "errors_as_fuse"])
def test_which_signals_cancel_a_handler(fuse_harness: Any, fs: type[ChangeFS], how: str,
                                        made: bool, wrapped: bool) -> None:
    """By default the INTERRUPT of a caller that handles its signal is held: the handler runs
    to its end and its answer goes out; a killed caller's handler is cancelled (EINTR).
    Marked uninterruptible, no signal cancels it; marked interruptible, any does."""
    ops = pyfuse3.errors_as_fuse(type("Wrapped", (fs,), {"mkdir": fs.mkdir}))() \
        if wrapped else fs()

    async def check(h: Harness) -> None:
        body = layout("fuse_mkdir_in").pack(mode=stat.S_IFDIR | 0o755) + b"new\0"
        req = h.send("MKDIR", ROOT, body)
        while not ops.waiting:
            await current().sleep(0.005)
        getattr(h, how)(req)
        if not made:
            with pytest.raises(OSError) as info:
                await req.reply()
            assert info.value.errno == errno.EINTR
            with pytest.raises(OSError):
                await h.lookup(ROOT, b"new")
            return
        with pytest.raises(OSError):
            await h.lookup(ROOT, b"other")  # ENOENT, answered after the INTERRUPT was read
        assert not req.answered
        ops.go = True
        entry = layout("fuse_entry_out").unpack(await req.reply())
        assert (await h.lookup(ROOT, b"new")).nodeid == entry.nodeid

    fuse_harness(ops, check)
    assert ops.cancelled == (not made)


#: What happens to a caller while its lookup waits: the outcome it must see.
CALLER_FATES = {
    "nothing": "answered", "handled": "answered", "killed": "EINTR",
    "handled-then-killed": "EINTR", "handled-first": "answered", "killed-first": "EINTR",
}


@pytest.mark.parametrize("seed", range(3))
def test_interrupts_in_any_order_answer_each_caller_as_it_fares(fuse_harness: Any,
                                                                seed: int) -> None:
    """60 waiting lookups, each from a caller of its own, in random order: untouched, a handled
    signal (INTERRUPT), killed, a handled signal and then killed (no second INTERRUPT), or the
    INTERRUPT read before its request (libfuse keeps it and delivers it as the handler
    suspends). The killed ones answer EINTR while the gate stays shut, the others once it
    opens."""
    import random

    import anyio

    from pyfuse3.testing import Request

    rng = random.Random(seed)
    ops = GatedLookupFS()
    ops.add(ROOT, b"gated", Node(stat.S_IFREG | 0o644))
    fates = [rng.choice(list(CALLER_FATES)) for _ in range(60)]

    async def check(h: Harness) -> None:
        requests: list[Request] = []
        with anyio.fail_after(20):
            for i, fate in enumerate(fates):
                h.pid = 3000 + i
                if fate.endswith("-first"):
                    unique = 1_000_000 + i
                    early = Request(unique, 0, h.pid)
                    h.kill(early) if fate == "killed-first" else h.interrupt(early)
                    requests.append(h.send("LOOKUP", ROOT, b"gated\0", unique=unique))
                    continue
                req = h.send("LOOKUP", ROOT, b"gated\0")
                requests.append(req)
                if rng.random() < 0.5:
                    await current().sleep(0.001)  # the handler may have suspended, or not
                if fate in ("handled", "handled-then-killed"):
                    h.interrupt(req)
                elif fate == "killed":
                    h.kill(req)
            for req, fate in zip(requests, fates, strict=True):
                if fate == "handled-then-killed":
                    h.kill(req)  # no INTERRUPT: one was sent
            for req, fate in zip(requests, fates, strict=True):
                if CALLER_FATES[fate] == "EINTR":
                    with pytest.raises(OSError) as info:
                        await req.reply()
                    assert info.value.errno == errno.EINTR, fate
            assert not any(r.answered for r, f in zip(requests, fates, strict=True)
                           if CALLER_FATES[f] == "answered")
            ops.go = True
            for req, fate in zip(requests, fates, strict=True):
                if CALLER_FATES[fate] == "answered":
                    await req.reply()

    fuse_harness(ops, check)
    assert ops.cancelled == sum(CALLER_FATES[f] == "EINTR" for f in fates)


class GateFS(MemFS):
    """lookup of ``gate`` waits until ``opened``."""

    def __init__(self) -> None:
        super().__init__()
        self.add(ROOT, b"f", Node(stat.S_IFREG | 0o644))
        self.waiting = self.opened = False
        self.forgotten: list[int] = []

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> Any:
        if name == b"gate":
            self.waiting = True
            while not self.opened:
                await current().sleep(0.005)
        return await super().lookup(parent_inode, name, ctx)

    async def forget(self, inode_list: Any) -> None:
        self.forgotten += [inode for inode, _ in inode_list]
        await super().forget(inode_list)


def test_at_max_tasks_requests_are_parked_in_order(fuse_harness: Any) -> None:
    """At max_tasks pyfuse3 stopped reading, so nothing reached the file system, not even the
    interrupt of a request that waited. Now requests that can wait are parked in order, an
    INTERRUPT of a parked one answers it if its caller is being killed (else it stays parked),
    and FORGET runs at once."""
    import anyio

    ops = GateFS()

    async def check(h: Harness) -> None:
        with anyio.fail_after(10):
            f = await h.lookup(ROOT, b"f")
            gate = h.send("LOOKUP", ROOT, b"gate\0")  # suspends: with the reader, 2 tasks
            while not ops.waiting:
                await current().sleep(0.005)
            h.pid = 1001
            given_up = h.send("LOOKUP", ROOT, b"f\0")
            h.pid = 1002
            kept = h.send("LOOKUP", ROOT, b"f\0")
            signalled = h.send("LOOKUP", ROOT, b"f\0")
            h.send("FORGET", f.nodeid, layout("fuse_forget_in").pack(nlookup=1),
                   expect_reply=False)
            h.interrupt(signalled)  # a signal its caller handles: it stays parked
            h.kill(given_up)
            with pytest.raises(OSError) as info:
                await given_up.reply()
            assert info.value.errno == errno.EINTR
            assert ops.forgotten == [f.nodeid]  # run although later than kept
            # kept and signalled wait for room
            assert not (kept.answered or signalled.answered or gate.answered)
            ops.opened = True
            with pytest.raises(OSError):
                await gate.reply()  # ENOENT: no such name
            await kept.reply()
            await signalled.reply()

    fuse_harness(ops, check, max_tasks=2)


def test_a_parked_request_of_a_caller_killed_after_a_handled_signal_ends(
        fuse_harness: Any) -> None:
    """At max_tasks a request waits parked. The INTERRUPT of a signal its caller handles
    leaves it there (libfuse keeps that INTERRUPT for when it runs); once the caller is
    killed (the kernel sends no second INTERRUPT) pyfuse3 answers it EINTR, the gate shut."""
    import anyio

    ops = GateFS()

    async def check(h: Harness) -> None:
        with anyio.fail_after(10):
            gate = h.send("LOOKUP", ROOT, b"gate\0")  # suspends: with the reader, 2 tasks
            while not ops.waiting:
                await current().sleep(0.005)
            h.pid = 1001
            late = h.send("LOOKUP", ROOT, b"f\0")
            h.interrupt(late)
            assert h.mount is not None
            while not h.mount.session.parked_held:  # the INTERRUPT was read, and held
                await current().sleep(0.005)
            assert not late.answered
            h.kill(late)
            with pytest.raises(OSError) as info:
                await late.reply()
            assert info.value.errno == errno.EINTR
            assert not gate.answered
            ops.opened = True
            with pytest.raises(OSError):
                await gate.reply()  # ENOENT: no such name
            await h.lookup(ROOT, b"f")

    fuse_harness(ops, check, max_tasks=2)


def test_readdir_paging_lists_each_entry_once(fuse_harness: Any) -> None:
    ops = MemFS()
    for i in range(500):
        ops.add(ROOT, f"entry-{i:04}".encode(), Node(stat.S_IFREG | 0o644))

    async def check(h: Harness) -> None:
        fh = (await h.opendir(ROOT)).fh
        pages, seen, offset = 0, [], 0
        while page := await h.readdir(ROOT, fh, offset, size=1024):
            pages += 1
            seen += [e.name for e in page]
            offset = page[-1].off
        await h.releasedir(ROOT, fh)
        assert pages > 10
        assert seen == sorted(f"entry-{i:04}".encode() for i in range(500))

    fuse_harness(ops, check)


def test_plain_readdir_is_not_a_lookup(fuse_harness: Any) -> None:
    ops = _fs()
    before = sum(ops.lookups.values())

    async def check(h: Harness) -> None:
        await h.listdir(ROOT, plus=False)
        assert sum(ops.lookups.values()) == before
        await h.listdir(ROOT, plus=True)
        assert sum(ops.lookups.values()) == before + 2

    fuse_harness(ops, check)


def test_leaving_the_harness_cancels_a_handler_that_never_returns(fuse_harness: Any) -> None:
    ops = SlowFS()

    async def check(h: Harness) -> None:
        h.send("LOOKUP", ROOT, b"slow\0")
        await current().sleep(0.05)

    fuse_harness(ops, check)  # returns: the stuck handler was cancelled on the way out
    assert ops.cancelled == 1


def test_first_terminate_says_what_it_waits_for(fuse_harness: Any,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """A first Ctrl-C (terminate()) during a long handler was silent for its whole length."""
    import anyio

    ops = GateFS()

    async def check(h: Harness) -> None:
        with anyio.fail_after(10):
            gate = h.send("LOOKUP", ROOT, b"gate\0")
            while not ops.waiting:
                await current().sleep(0.005)
            assert h.mount is not None
            h.mount.terminate()
            while "waiting for" not in caplog.text:
                await current().sleep(0.005)
            ops.opened = True
            with pytest.raises(OSError):
                await gate.reply()  # answered (ENOENT) before serving ends

    fuse_harness(ops, check)
    assert "waiting for 1 request to finish; terminate() again (a second Ctrl-C) cancels it" \
        in caplog.text


@pytest.mark.parametrize("cancelled", [False, True])
def test_leaving_async_with_while_serving(fuse_harness: Any, cancelled: bool) -> None:
    """``Mount.__aexit__`` while serve() runs in the loop: terminate(), the handler in flight
    finishes and is answered (ENOENT, not EINTR), serve() returns, then the Mount is closed.
    Cancelled in its wait, it terminates again (the handler is cancelled: EINTR) and leaves
    the Mount open instead of closing it under serve() (the harness closes it)."""
    import anyio

    ops = GateFS()
    left: list[str] = []

    async def check(h: Harness) -> None:
        mount = h.mount
        assert mount is not None
        scope = anyio.CancelScope()

        async def leave() -> None:
            with scope:
                await mount.__aexit__(None, None, None)
            left.append(mount.state)

        with anyio.fail_after(10):
            gate = h.send("LOOKUP", ROOT, b"gate\0")
            while not ops.waiting:
                await current().sleep(0.005)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(leave)
                while mount.state == "serving":
                    await current().sleep(0.005)
                assert mount.state == "stopping" and not left  # waits for the gate
                if cancelled:
                    scope.cancel()
                else:
                    ops.opened = True
            with pytest.raises(OSError) as info:
                await gate.reply()
            assert info.value.errno == (errno.EINTR if cancelled else errno.ENOENT)

    fuse_harness(ops, check)
    if cancelled:
        assert len(left) == 1 and left[0] in ("stopping", "stopped")
    else:
        assert left == ["closed"]


class StrNameFS(MemFS):
    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        pyfuse3.readdir_reply(token, "name", await self.getattr(ROOT, None), 1)


@pytest.mark.fuse_errors_expected
def test_readdir_reply_names_its_argument(fuse_harness: Any,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """readdir_reply() with a str name said only "expected bytes, got str"."""
    async def check(h: Harness) -> None:
        fh = (await h.opendir(ROOT)).fh
        with pytest.raises(OSError) as info:
            await h.readdir(ROOT, fh, 0)
        assert info.value.errno == errno.EIO

    fuse_harness(StrNameFS(), check)
    assert "readdir_reply(): name must be bytes (os.fsencode() turns a str into bytes), " \
        "not str" in caplog.text


class LoopingFS(MemFS):
    """readdir() gives the entry at index i the next_id ``self.cookie(i)``."""

    cookie = staticmethod(lambda i: i + 1)
    names = [b"a", b"b", b"c"]

    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        attr = await self.getattr(ROOT, None)
        for i in range(start_id, len(self.names)):
            if not pyfuse3.readdir_reply(token, self.names[i], attr, self.cookie(i)):
                break


@pytest.mark.fuse_errors_expected
@pytest.mark.parametrize(("cookie", "offset", "problem"), [
    (lambda i: i, 0, "next_id 0 would make the kernel list the directory again from its "
     "first entry"),
    (lambda i: i + 1 if i < 2 else i, 2, "next_id 2 would make the kernel list the directory "
     "again from start_id 2, where this call began"),
    (lambda i: (i + 1) % 3, 0, "next_id 0 would make"),  # (the last entry's)
])
def test_readdir_reply_refuses_a_next_id_that_never_ends(
        fuse_harness: Any, caplog: pytest.LogCaptureFixture, cookie: Any, offset: int,
        problem: str) -> None:
    """The kernel asks again from the last entry's next_id: with one that leads back there,
    `ls` listed the same entries forever (measured on 6.18: 66,000 READDIRs in 3 s)."""
    async def check(h: Harness) -> None:
        fh = (await h.opendir(ROOT)).fh
        if offset:
            assert [e.off for e in await h.readdir(ROOT, fh, 0)][:offset] == \
                list(range(1, offset + 1))
        with pytest.raises(OSError) as info:
            await h.readdir(ROOT, fh, offset)
        assert info.value.errno == errno.EIO
        ops.cookie = staticmethod(lambda i: i + 1)  # type: ignore[assignment]
        assert [e.name for e in await h.listdir(ROOT)] == LoopingFS.names  # still serving

    ops = LoopingFS()
    ops.cookie = staticmethod(cookie)  # type: ignore[assignment]
    fuse_harness(ops, check)
    assert problem in caplog.text


def test_a_mount_over_a_socket_says_attached_not_mounted() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    mount = pyfuse3.Mount._over_fd(MemFS(), theirs.detach())
    try:
        assert mount.state == "attached" and repr(mount).endswith("attached>")
    finally:
        mount.close()
        ours.close()
    assert mount.state == "closed"


class DotsFS(MemFS):
    """lookup() answers ``..`` and ``...`` of any directory with the root."""

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name in (b"..", b"..."):
            return self.entry(ROOT)
        return await super().lookup(parent_inode, name, ctx)


@pytest.mark.fuse_errors_expected
def test_only_dot_names_may_answer_the_root_or_their_directory(
        fuse_harness: Any, caplog: pytest.LogCaptureFixture) -> None:
    """``.`` and ``..`` (looked up for NFS export) may name the directory or the root; any
    other name naming them the kernel refuses, or marks the inode bad."""
    ops = DotsFS()

    async def check(h: Harness) -> None:
        d = ops.add(ROOT, b"d", Node(stat.S_IFDIR | 0o755, nlink=2)).st_ino
        assert (await h.lookup(d, b".")).nodeid == d
        assert (await h.lookup(d, b"..")).nodeid == ROOT
        assert (await h.lookup(ROOT, b"..")).nodeid == ROOT
        for parent in (d, ROOT):
            with pytest.raises(OSError) as info:
                await h.lookup(parent, b"...")
            assert info.value.errno == errno.EIO

    fuse_harness(ops, check)
    assert caplog.text.count("lookup() handler returned st_ino 1 (the root) for a name") == 2


class HiddenFS(MemFS):
    """readdir() lists ``.`` and ``..`` with inode 0, then ``a`` and ``b`` with inode 0 (their
    st_ino forgotten) and ``c`` with its own."""

    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        entries = [(b".", 0), (b"..", 0), (b"a", 0), (b"b", 0), (b"c", 5)]
        for i in range(start_id, len(entries)):
            attr = pyfuse3.EntryAttributes()
            attr.st_ino, attr.st_mode = entries[i][1], stat.S_IFREG | 0o644
            if not pyfuse3.readdir_reply(token, entries[i][0], attr, i + 1):
                break


@pytest.mark.parametrize("plus", [True, False])
def test_an_entry_without_an_inode_is_named_once_per_request(
        fuse_harness: Any, caplog: pytest.LogCaptureFixture, plus: bool) -> None:
    """The kernel passes it on, and the C library hides it from listings: the name was
    missing from `ls` with nothing in the log."""
    async def check(h: Harness) -> None:
        fh = (await h.opendir(ROOT)).fh
        entries = await h.readdir(ROOT, fh, 0, plus=plus)
        assert [(e.name, e.ino) for e in entries][2:] == [(b"a", 0), (b"b", 0), (b"c", 5)]

    with caplog.at_level(logging.WARNING, logger="pyfuse3"):
        fuse_harness(HiddenFS(), check)
    assert [r.getMessage() for r in caplog.records] == [
        "readdir_reply(): entry b'a' has st_ino 0, which hides it from listings (the C library "
        "skips entries with inode 0): set attr.st_ino (logged once per readdir request)"]
