"""The kernel's requests as typed methods of the harness: arguments encoded, answers decoded."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from types import SimpleNamespace

from ._messages import CONSTANTS, Notification, Request, layout

K = CONSTANTS


class Calls:
    """The operations, one method each (mixed into ``Harness``). An error answer raises
    OSError with the file system's errno."""

    def send(self, opcode: str | int, nodeid: int = 0, body: bytes = b"", *,
             expect_reply: bool = True, unique: int | None = None) -> Request:
        raise NotImplementedError

    async def call(self, opcode: str | int, nodeid: int = 0, body: bytes = b"") -> bytes:
        raise NotImplementedError

    def _negotiated(self, flag: str) -> bool:
        raise NotImplementedError


    async def lookup(self, parent: int, name: bytes) -> SimpleNamespace:
        """LOOKUP: the ``fuse_entry_out`` (nodeid, generation, timeouts, attr)."""
        return layout("fuse_entry_out").unpack(await self.call("LOOKUP", parent, name + b"\0"))

    def forget(self, nodeid: int, nlookup: int) -> None:
        """FORGET (no answer)."""
        self.send("FORGET", nodeid, layout("fuse_forget_in").pack(nlookup=nlookup),
                  expect_reply=False)

    def batch_forget(self, items: Iterable[tuple[int, int]]) -> None:
        """BATCH_FORGET of (nodeid, nlookup) pairs (no answer)."""
        pairs = list(items)
        body = layout("fuse_batch_forget_in").pack(count=len(pairs)) + b"".join(
            layout("fuse_forget_one").pack(nodeid=n, nlookup=c) for n, c in pairs)
        self.send("BATCH_FORGET", 0, body, expect_reply=False)

    async def getattr(self, nodeid: int) -> SimpleNamespace:
        """GETATTR: the ``fuse_attr_out`` (attr_valid, attr)."""
        return layout("fuse_attr_out").unpack(
            await self.call("GETATTR", nodeid, layout("fuse_getattr_in").pack()))

    async def statx(self, nodeid: int, mask: int, flags: int = 0,
                    fh: int | None = None) -> SimpleNamespace:
        """STATX (protocol 7.39; LookupError on a build whose header predates it): the
        ``fuse_statx_out`` (attr_valid, flags, stat with mask, btime...)."""
        body = layout("fuse_statx_in").pack(
            getattr_flags=0 if fh is None else K["FUSE_GETATTR_FH"], fh=fh or 0,
            sx_flags=flags, sx_mask=mask)
        return layout("fuse_statx_out").unpack(await self.call("STATX", nodeid, body))

    async def setattr(self, nodeid: int, *, mode: int | None = None, size: int | None = None,
                      uid: int | None = None, gid: int | None = None,
                      atime_ns: int | None = None, mtime_ns: int | None = None,
                      fh: int | None = None) -> SimpleNamespace:
        """SETATTR of the given fields: the ``fuse_attr_out``."""
        valid, fields = 0, {}
        for flag, name, value in (("MODE", "mode", mode), ("SIZE", "size", size),
                                  ("UID", "uid", uid), ("GID", "gid", gid), ("FH", "fh", fh)):
            if value is not None:
                valid |= K[f"FATTR_{flag}"]
                fields[name] = value
        for flag, name, ns in (("ATIME", "atime", atime_ns), ("MTIME", "mtime", mtime_ns)):
            if ns is not None:
                valid |= K[f"FATTR_{flag}"]
                fields[name], fields[f"{name}nsec"] = divmod(ns, 1_000_000_000)
        body = layout("fuse_setattr_in").pack(valid=valid, **fields)
        return layout("fuse_attr_out").unpack(await self.call("SETATTR", nodeid, body))

    async def readlink(self, nodeid: int) -> bytes:
        return await self.call("READLINK", nodeid)

    async def mkdir(self, parent: int, name: bytes, mode: int = 0o755) -> SimpleNamespace:
        """MKDIR: the ``fuse_entry_out``; ``mode`` gets S_IFDIR as from the kernel."""
        body = layout("fuse_mkdir_in").pack(mode=_typed(mode, stat.S_IFDIR)) + name + b"\0"
        return layout("fuse_entry_out").unpack(await self.call("MKDIR", parent, body))

    async def mknod(self, parent: int, name: bytes, mode: int, rdev: int = 0) -> SimpleNamespace:
        body = layout("fuse_mknod_in").pack(mode=_typed(mode, stat.S_IFREG), rdev=rdev)
        body += name + b"\0"
        return layout("fuse_entry_out").unpack(await self.call("MKNOD", parent, body))

    async def symlink(self, parent: int, name: bytes, target: bytes) -> SimpleNamespace:
        body = name + b"\0" + target + b"\0"
        return layout("fuse_entry_out").unpack(await self.call("SYMLINK", parent, body))

    async def link(self, nodeid: int, new_parent: int, new_name: bytes) -> SimpleNamespace:
        body = layout("fuse_link_in").pack(oldnodeid=nodeid) + new_name + b"\0"
        return layout("fuse_entry_out").unpack(await self.call("LINK", new_parent, body))

    async def unlink(self, parent: int, name: bytes) -> None:
        await self.call("UNLINK", parent, name + b"\0")

    async def rmdir(self, parent: int, name: bytes) -> None:
        await self.call("RMDIR", parent, name + b"\0")

    async def rename(self, parent: int, name: bytes, new_parent: int, new_name: bytes,
                     flags: int = 0) -> None:
        body = layout("fuse_rename2_in").pack(newdir=new_parent, flags=flags)
        await self.call("RENAME2", parent, body + name + b"\0" + new_name + b"\0")

    async def open(self, nodeid: int, flags: int = os.O_RDONLY) -> SimpleNamespace:
        """OPEN: the ``fuse_open_out`` (fh, open_flags)."""
        return layout("fuse_open_out").unpack(
            await self.call("OPEN", nodeid, layout("fuse_open_in").pack(flags=flags)))

    async def create(self, parent: int, name: bytes, mode: int = 0o644,
                     flags: int = os.O_RDWR | os.O_CREAT) -> tuple[SimpleNamespace,
                                                                   SimpleNamespace]:
        """CREATE: (``fuse_entry_out``, ``fuse_open_out``); ``mode`` gets S_IFREG as from the
        kernel."""
        body = layout("fuse_create_in").pack(flags=flags, mode=_typed(mode, stat.S_IFREG))
        body += name + b"\0"
        data = await self.call("CREATE", parent, body)
        entry = layout("fuse_entry_out")
        return entry.unpack(data), layout("fuse_open_out").unpack(data, entry.size)

    async def tmpfile(self, parent: int, mode: int = 0o100600,
                      flags: int = os.O_RDWR) -> tuple[SimpleNamespace, SimpleNamespace]:
        """TMPFILE (O_TMPFILE): (``fuse_entry_out``, ``fuse_open_out``), as for CREATE."""
        data = await self.call("TMPFILE", parent,
                               layout("fuse_create_in").pack(flags=flags, mode=mode))
        entry = layout("fuse_entry_out")
        return entry.unpack(data), layout("fuse_open_out").unpack(data, entry.size)

    async def read(self, nodeid: int, fh: int, offset: int, size: int) -> bytes:
        body = layout("fuse_read_in").pack(fh=fh, offset=offset, size=size)
        return await self.call("READ", nodeid, body)

    async def write(self, nodeid: int, fh: int, offset: int, data: bytes) -> int:
        body = layout("fuse_write_in").pack(fh=fh, offset=offset, size=len(data)) + data
        return int(layout("fuse_write_out").unpack(await self.call("WRITE", nodeid, body)).size)

    async def flush(self, nodeid: int, fh: int, lock_owner: int = 0) -> None:
        await self.call("FLUSH", nodeid, layout("fuse_flush_in").pack(fh=fh,
                                                                      lock_owner=lock_owner))

    async def release(self, nodeid: int, fh: int) -> None:
        await self.call("RELEASE", nodeid, layout("fuse_release_in").pack(fh=fh))

    async def fsync(self, nodeid: int, fh: int, datasync: bool = False) -> None:
        body = layout("fuse_fsync_in").pack(fh=fh, fsync_flags=int(datasync))
        await self.call("FSYNC", nodeid, body)

    async def opendir(self, nodeid: int) -> SimpleNamespace:
        return layout("fuse_open_out").unpack(
            await self.call("OPENDIR", nodeid, layout("fuse_open_in").pack()))

    async def readdir(self, nodeid: int, fh: int, offset: int = 0, size: int = 4096, *,
                      plus: bool = True) -> list[SimpleNamespace]:
        """One READDIRPLUS (or plain READDIR) reply, decoded: entries with ``name``, ``ino``,
        ``off`` (the next offset), ``type`` and, for plus, ``entry`` (a fuse_entry_out)."""
        body = layout("fuse_read_in").pack(fh=fh, offset=offset, size=size)
        data = await self.call("READDIRPLUS" if plus else "READDIR", nodeid, body)
        return _dirents(data, plus)

    async def listdir(self, nodeid: int, *, plus: bool = True) -> list[SimpleNamespace]:
        """OPENDIR, READDIR(PLUS) until the end, RELEASEDIR (its error ignored, as the kernel
        does): every entry."""
        fh = (await self.opendir(nodeid)).fh
        entries: list[SimpleNamespace] = []
        try:
            while True:
                page = await self.readdir(nodeid, fh, entries[-1].off if entries else 0,
                                          plus=plus)
                if not page:
                    return entries
                entries.extend(page)
        finally:
            with contextlib.suppress(OSError):  # as the kernel, which ignores its errors
                await self.releasedir(nodeid, fh)

    async def releasedir(self, nodeid: int, fh: int) -> None:
        await self.call("RELEASEDIR", nodeid, layout("fuse_release_in").pack(fh=fh))

    async def statfs(self, nodeid: int = 1) -> SimpleNamespace:
        st: SimpleNamespace = layout("fuse_statfs_out").unpack(
            await self.call("STATFS", nodeid)).st
        return st

    async def setxattr(self, nodeid: int, name: bytes, value: bytes, flags: int = 0) -> None:
        body = layout("fuse_setxattr_in").pack(size=len(value), flags=flags)
        if not self._negotiated("SETXATTR_EXT"):  # the struct is shorter then
            body = body[:K["FUSE_COMPAT_SETXATTR_IN_SIZE"]]
        await self.call("SETXATTR", nodeid, body + name + b"\0" + value)

    async def getxattr(self, nodeid: int, name: bytes, size: int = 65536) -> bytes:
        body = layout("fuse_getxattr_in").pack(size=size)
        return await self.call("GETXATTR", nodeid, body + name + b"\0")

    async def listxattr(self, nodeid: int, size: int = 65536) -> list[bytes]:
        data = await self.call("LISTXATTR", nodeid, layout("fuse_getxattr_in").pack(size=size))
        return data.split(b"\0")[:-1]

    async def removexattr(self, nodeid: int, name: bytes) -> None:
        await self.call("REMOVEXATTR", nodeid, name + b"\0")

    async def access(self, nodeid: int, mask: int) -> None:
        await self.call("ACCESS", nodeid, layout("fuse_access_in").pack(mask=mask))

    async def fsyncdir(self, nodeid: int, fh: int, datasync: bool = False) -> None:
        body = layout("fuse_fsync_in").pack(fh=fh, fsync_flags=int(datasync))
        await self.call("FSYNCDIR", nodeid, body)

    async def lseek(self, nodeid: int, fh: int, offset: int, whence: int) -> int:
        """LSEEK (SEEK_DATA / SEEK_HOLE): the offset found."""
        out = await self.call("LSEEK", nodeid, layout("fuse_lseek_in").pack(
            fh=fh, offset=offset, whence=whence))
        offset_found: int = layout("fuse_lseek_out").unpack(out).offset
        return offset_found

    async def fallocate(self, nodeid: int, fh: int, offset: int, length: int,
                        mode: int = 0) -> None:
        await self.call("FALLOCATE", nodeid, layout("fuse_fallocate_in").pack(
            fh=fh, offset=offset, length=length, mode=mode))

    async def copy_file_range(self, nodeid_in: int, fh_in: int, off_in: int, nodeid_out: int,
                              fh_out: int, off_out: int, length: int, flags: int = 0) -> int:
        """COPY_FILE_RANGE: the number of bytes copied."""
        out = await self.call("COPY_FILE_RANGE", nodeid_in, layout(
            "fuse_copy_file_range_in").pack(fh_in=fh_in, off_in=off_in, nodeid_out=nodeid_out,
                                            fh_out=fh_out, off_out=off_out, len=length,
                                            flags=flags))
        size: int = layout("fuse_write_out").unpack(out).size
        return size

    def _lk(self, fh: int, owner: int, type: int, start: int, end: int, pid: int,
            flock: bool) -> bytes:
        return layout("fuse_lk_in").pack(
            fh=fh, owner=owner, lk_flags=K["FUSE_LK_FLOCK"] if flock else 0,
            lk={"start": start, "end": end, "type": type, "pid": pid})

    async def getlk(self, nodeid: int, fh: int, owner: int, type: int, start: int = 0,
                    end: int = 0x7FFFFFFFFFFFFFFF, pid: int = 0) -> SimpleNamespace:
        """GETLK: the conflicting lock's ``fuse_file_lock`` (type F_UNLCK if none); ``end``
        is inclusive, as on the wire."""
        out = await self.call("GETLK", nodeid, self._lk(fh, owner, type, start, end, pid, False))
        lk: SimpleNamespace = layout("fuse_lk_out").unpack(out).lk
        return lk

    async def setlk(self, nodeid: int, fh: int, owner: int, type: int, start: int = 0,
                    end: int = 0x7FFFFFFFFFFFFFFF, pid: int = 0, *, wait: bool = False,
                    flock: bool = False) -> None:
        """SETLK, or SETLKW with ``wait``; ``flock`` for a BSD lock (flock(2))."""
        await self.call("SETLKW" if wait else "SETLK", nodeid,
                        self._lk(fh, owner, type, start, end, pid, flock))

    async def bmap(self, nodeid: int, block: int, blocksize: int) -> int:
        """BMAP: the device block of file block ``block``."""
        out = await self.call("BMAP", nodeid, layout("fuse_bmap_in").pack(
            block=block, blocksize=blocksize))
        device_block: int = layout("fuse_bmap_out").unpack(out).block
        return device_block

    async def ioctl(self, nodeid: int, fh: int, cmd: int, arg: int = 0, in_data: bytes = b"",
                    out_size: int = 0, flags: int = 0) -> tuple[int, bytes]:
        """IOCTL (restricted, as from a regular file): the result and the output bytes."""
        out = await self.call("IOCTL", nodeid, layout("fuse_ioctl_in").pack(
            fh=fh, cmd=cmd, arg=arg, flags=flags, in_size=len(in_data),
            out_size=out_size) + in_data)
        head = layout("fuse_ioctl_out")
        return head.unpack(out).result, out[head.size:]

    async def poll(self, nodeid: int, fh: int, events: int, kh: int | None = None) -> int:
        """POLL: the events ready now; with ``kh`` the file system is asked to send a
        ``poll`` notification carrying it when that changes."""
        flags = 0 if kh is None else K["FUSE_POLL_SCHEDULE_NOTIFY"]
        out = await self.call("POLL", nodeid, layout("fuse_poll_in").pack(
            fh=fh, kh=kh or 0, flags=flags, events=events))
        revents: int = layout("fuse_poll_out").unpack(out).revents
        return revents

    def answer_retrieve(self, note: Notification, data: bytes) -> None:
        """Answer a ``retrieve`` notification with the cached bytes, as the kernel would."""
        f = note.fields
        body = layout("fuse_notify_retrieve_in").pack(offset=f.offset, size=len(data))
        # libfuse matches the answer to its notification by the unique it sent
        self.send("NOTIFY_REPLY", f.nodeid, body + data, expect_reply=False,
                  unique=f.notify_unique)


def _dirents(data: bytes, plus: bool) -> list[SimpleNamespace]:
    entries = []
    pos = 0
    dirent = layout("fuse_dirent")
    entry = layout("fuse_entry_out") if plus else None
    while pos < len(data):
        start = pos
        out = entry.unpack(data, pos) if entry is not None else None
        if entry is not None:
            pos += entry.size
        d = dirent.unpack(data, pos)
        name = data[pos + dirent.size:pos + dirent.size + d.namelen]
        d.name, d.entry = name, out
        entries.append(d)
        pos = start + ((pos - start + dirent.size + d.namelen + 7) & ~7)
    return entries


def _typed(mode: int, file_type: int) -> int:
    """``mode`` with ``file_type`` where it names none, as the kernel sends it."""
    return mode if stat.S_IFMT(mode) else file_type | mode
