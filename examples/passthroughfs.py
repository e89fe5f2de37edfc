#!/usr/bin/env python3
"""Mirror a source directory: ``python examples/passthroughfs.py SOURCE MOUNTPOINT``.

Every operation is forwarded with the ``os`` module and answers with the same errno. Each inode
the kernel knows is held as an ``O_PATH`` descriptor of the source's inode, found by its
(st_dev, st_ino), and every call acts relative to one (as libfuse's passthrough_ll does): a
file stays the same file whatever is renamed or replaced in the source meanwhile, and no
symlink is ever followed out of the source. Calls that can block on the disk (read, write,
fsync, open, create, readdir) run on worker threads, so the event loop keeps serving other
requests. Inode numbers are the source's own (a file on another file system below the source
gets a number of its own); the kernel's cache timeouts are 0 by default (``--timeout`` to
change), so changes made directly in the source are always seen. ``--no-xattrs`` hides
extended attributes (callers get EOPNOTSUPP), as libfuse's passthrough_hp does by default: the
kernel then stops asking, also for the ``security.capability`` it checks before every write.
Descriptors are bounded: the server raises its soft ``RLIMIT_NOFILE`` to the hard limit and
holds as many inodes as that less a reserve (a quarter, at least 1,024); past that it asks the
kernel to forget the entries looked up longest ago (``pyfuse3.cache.EntryBudget``), so a tree
of any size can be walked. An open directory holds no descriptor of its own.
Ctrl-C or SIGTERM unmounts.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import itertools
import logging
import os
import resource
import stat
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

import pyfuse3
from pyfuse3 import FUSEError

T = TypeVar("T")
log = logging.getLogger("passthroughfs")
_libc = ctypes.CDLL(None, use_errno=True)
ROOT = pyfuse3.ROOT_INODE


def renameat2(old_dir: int, old: bytes, new_dir: int, new: bytes, flags: int) -> None:
    """rename(2) between directory descriptors, with RENAME_NOREPLACE / RENAME_EXCHANGE
    (not in the os module)."""
    if _libc.renameat2(old_dir, old, new_dir, new, flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), os.fsdecode(old))


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit, as a server holding a
    descriptor per inode should; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard != resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def node_budget() -> int:
    """How many inodes to hold open: the soft RLIMIT_NOFILE less a reserve for open files,
    listings and the inodes that arrive while the kernel has yet to forget others (it is
    asked asynchronously: up to ~620 more during `find` and `ls -lR`, measured)."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit == resource.RLIM_INFINITY:
        return 1 << 40
    return max(limit - max(limit // 4, 1024), 64)


def in_directory(dir_fd: int, fn: Callable[[int], T]) -> T:
    """``fn`` on a descriptor of the directory ``dir_fd`` (an O_PATH one) opened for it."""
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd)
    try:
        return fn(fd)
    finally:
        os.close(fd)


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a call that may block on the disk in a worker thread."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


@dataclass(eq=False)
class Node:
    """An inode the kernel knows: an O_PATH descriptor of the source's inode."""

    fd: int
    key: tuple[int, int]  # (st_dev, st_ino) in the source
    mode: int
    lookups: int = 1

    @property
    def proc(self) -> str:
        """A path to this very inode (never resolved by name), for calls that take a path."""
        return f"/proc/self/fd/{self.fd}"


class OutOfDescriptors:
    """``with fs.descriptors:`` around a call that opens a descriptor: running out (EMFILE,
    ENFILE) is logged once, with what holds them; the caller still gets the error."""

    def __init__(self, fs: PassthroughFS) -> None:
        self.fs = fs
        self.logged = False

    def __enter__(self) -> None:
        pass

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if (isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE)
                and not self.logged):
            self.logged = True
            log.warning("out of file descriptors (RLIMIT_NOFILE %d): %d inodes held for the "
                        "kernel (the budget is %d; the kernel keeps those of open files and "
                        "working directories), the rest open files; callers get %s until "
                        "some are closed (raise the limit with ulimit -n; logged once)",
                        resource.getrlimit(resource.RLIMIT_NOFILE)[0], len(self.fs.nodes),
                        self.fs.max_nodes, errno.errorcode[exc.errno])


class PassthroughFS(pyfuse3.Operations):
    """Forwards every operation to the source's inode the kernel's inode stands for."""

    def __init__(self, source: str, timeout: float = 0.0, passthrough: bool = True,
                 xattrs: bool = True, max_nodes: int | None = None) -> None:
        super().__init__()
        self.source = os.path.abspath(source)
        self.timeout = timeout
        self.xattrs = xattrs
        # Kernel passthrough: reads and writes of open files go to the source file without
        # this process (where libfuse, the kernel and privileges allow; else read()/write()).
        self.enable_passthrough = passthrough
        fd = os.open(self.source, os.O_PATH | os.O_DIRECTORY)
        st = os.fstat(fd)
        self.nodes: dict[int, Node] = {ROOT: Node(fd, (st.st_dev, st.st_ino), st.st_mode)}
        self.by_key: dict[tuple[int, int], int] = {(st.st_dev, st.st_ino): ROOT}
        self.dev = st.st_dev
        self.spare_numbers = itertools.count(1 << 48)  # for inodes whose own number is taken
        self.listings: dict[int, tuple[int, list[str]]] = {}  # dir handle -> (inode, names)
        self.handles = itertools.count(1)
        # Held at most; then the kernel is asked to forget the entries looked up longest ago.
        self.budget = pyfuse3.cache.EntryBudget(node_budget() if max_nodes is None
                                                else max_nodes)
        self.descriptors = OutOfDescriptors(self)
        self.calls: Counter[str] = Counter()

    @property
    def max_nodes(self) -> int:
        """How many inodes to hold for the kernel before asking it to forget some."""
        return self.budget.limit

    # ---- inodes
    def node(self, inode: int) -> Node:
        try:
            return self.nodes[inode]
        except KeyError:
            raise FUSEError(errno.ESTALE) from None

    def number(self, st: os.stat_result) -> int:
        """The inode number the kernel knows for ``st`` (or would, if looked up)."""
        known = self.by_key.get((st.st_dev, st.st_ino))
        if known is not None:
            return known
        if st.st_dev == self.dev and st.st_ino != ROOT and st.st_ino not in self.nodes:
            return int(st.st_ino)
        return next(n for n in self.spare_numbers if n not in self.nodes)

    def attr(self, st: os.stat_result, inode: int | None = None) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = self.number(st) if inode is None else inode
        for name in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_rdev", "st_size",
                     "st_blksize", "st_blocks", "st_atime_ns", "st_mtime_ns", "st_ctime_ns"):
            setattr(a, name, getattr(st, name))
        a.entry_timeout = a.attr_timeout = self.timeout
        return a

    def find(self, parent: int, name: bytes) -> pyfuse3.EntryAttributes:
        """Look ``name`` up in ``parent`` (never following a symlink): one more lookup of the
        inode it names, which the kernel gives back with forget()."""
        dir_fd = self.node(parent).fd
        if name == b"." or (name == b".." and parent == ROOT):  # never above the source
            name = b"."
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        inode = self.by_key.get((st.st_dev, st.st_ino))
        if inode is not None:  # held open, so it is that very inode: no need to open it
            self.nodes[inode].lookups += 1
            self.found(parent, name, inode, st)
            return self.attr(st, inode)
        with self.descriptors:
            fd = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=dir_fd)
        try:
            st = os.fstat(fd)
            inode = self.number(st)
            node = self.nodes.get(inode)
            if node is not None:
                node.lookups += 1
            else:
                self.nodes[inode] = Node(fd, (st.st_dev, st.st_ino), st.st_mode)
                self.by_key[st.st_dev, st.st_ino] = inode
                fd = -1  # kept by the node
            self.found(parent, name, inode, st)
            return self.attr(st, inode)
        finally:
            if fd >= 0:
                os.close(fd)

    def found(self, parent: int, name: bytes, inode: int, st: os.stat_result) -> None:
        """The kernel now counts one more lookup of ``inode``, as ``name`` in ``parent``: past
        the budget, the kernel is asked to forget the entries looked up longest ago (it
        keeps what is in use, open files and working directories, and sends forget() for the
        rest, which closes their descriptors; never waits, so safe inside a handler)."""
        if inode != ROOT:  # (held for good: never forgotten)
            self.budget.looked_up(parent, name, inode)
        self.remember(parent, name, inode, st)

    def remember(self, parent: int, name: bytes, inode: int, st: os.stat_result) -> None:
        """Called for every lookup the kernel now counts (a hook for subclasses)."""

    def drop(self, inode: int, n: int) -> None:
        node = self.nodes.get(inode)
        if node is None or inode == ROOT:
            return
        node.lookups -= n
        if node.lookups <= 0:
            del self.nodes[inode], self.by_key[node.key]
            self.budget.forgotten(inode)
            os.close(node.fd)

    # ---- ownership
    def _give(self, dir_fd: int, name: bytes | None, ctx: Any, fd: int | None = None) -> None:
        """Make the caller own what it created (``name`` in ``dir_fd``, not followed, or
        ``fd``), as a local file system would; in a setgid directory the group stays the
        directory's. Only a server running as root can (else everything is the server's)."""
        if os.geteuid() != 0 or (ctx.uid == 0 and ctx.gid == 0):
            return
        if fd is not None:
            gid = -1 if os.fstat(fd).st_gid != os.getegid() else ctx.gid  # setgid parent
            os.fchown(fd, ctx.uid, gid)
        else:
            assert name is not None
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            gid = -1 if st.st_gid != os.getegid() else ctx.gid
            os.chown(name, ctx.uid, gid, dir_fd=dir_fd, follow_symlinks=False)

    # ---- entries
    @pyfuse3.errors_as_fuse
    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        self.calls["lookup"] += 1
        return self.find(parent_inode, name)

    async def forget(self, inode_list: Any) -> None:
        for inode, n in inode_list:
            self.drop(inode, n)

    @pyfuse3.errors_as_fuse
    async def getattr(self, inode: Any, ctx: Any = None) -> pyfuse3.EntryAttributes:
        self.calls["getattr"] += 1
        return self.attr(os.fstat(self.node(inode).fd), inode)

    @pyfuse3.errors_as_fuse
    async def setattr(self, inode: Any, attr: Any, fields: Any, fh: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        node = self.node(inode)
        if fields.update_size:
            os.truncate(fh if fh is not None else node.proc, attr.st_size)
        if fields.update_mode and not stat.S_ISLNK(node.mode):
            os.chmod(node.proc, stat.S_IMODE(attr.st_mode))
        if fields.update_uid or fields.update_gid:
            os.chown(node.proc, attr.st_uid if fields.update_uid else -1,
                     attr.st_gid if fields.update_gid else -1)
        if fields.update_atime or fields.update_mtime:
            st = os.fstat(node.fd)
            os.utime(node.proc, ns=(attr.st_atime_ns if fields.update_atime else st.st_atime_ns,
                                    attr.st_mtime_ns if fields.update_mtime else st.st_mtime_ns))
        return await self.getattr(inode)

    @pyfuse3.errors_as_fuse
    async def readlink(self, inode: Any, ctx: Any) -> bytes:
        return os.fsencode(os.readlink("", dir_fd=self.node(inode).fd))

    @pyfuse3.errors_as_fuse
    async def mknod(self, parent_inode: Any, name: Any, mode: Any, rdev: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        dir_fd = self.node(parent_inode).fd
        os.mknod(name, mode, rdev, dir_fd=dir_fd)
        self._give(dir_fd, name, ctx)
        return self.find(parent_inode, name)

    @pyfuse3.errors_as_fuse
    async def mkdir(self, parent_inode: Any, name: Any, mode: Any,
                    ctx: Any) -> pyfuse3.EntryAttributes:
        dir_fd = self.node(parent_inode).fd
        os.mkdir(name, stat.S_IMODE(mode), dir_fd=dir_fd)
        self._give(dir_fd, name, ctx)
        return self.find(parent_inode, name)

    @pyfuse3.errors_as_fuse
    async def symlink(self, parent_inode: Any, name: Any, target: Any,
                      ctx: Any) -> pyfuse3.EntryAttributes:
        dir_fd = self.node(parent_inode).fd
        os.symlink(target, name, dir_fd=dir_fd)
        self._give(dir_fd, name, ctx)
        return self.find(parent_inode, name)

    @pyfuse3.errors_as_fuse
    async def link(self, inode: Any, new_parent_inode: Any, new_name: Any,
                   ctx: Any) -> pyfuse3.EntryAttributes:
        # Through /proc the link is made to this very inode, also a symlink (not followed).
        os.link(self.node(inode).proc, new_name, dst_dir_fd=self.node(new_parent_inode).fd)
        return self.find(new_parent_inode, new_name)

    @pyfuse3.errors_as_fuse
    async def unlink(self, parent_inode: Any, name: Any, ctx: Any) -> None:
        os.unlink(name, dir_fd=self.node(parent_inode).fd)

    @pyfuse3.errors_as_fuse
    async def rmdir(self, parent_inode: Any, name: Any, ctx: Any) -> None:
        os.rmdir(name, dir_fd=self.node(parent_inode).fd)

    @pyfuse3.errors_as_fuse
    async def rename(self, parent_inode_old: Any, name_old: Any, parent_inode_new: Any,
                     name_new: Any, flags: Any, ctx: Any) -> None:
        renameat2(self.node(parent_inode_old).fd, name_old, self.node(parent_inode_new).fd,
                  name_new, flags)

    # ---- files
    @pyfuse3.errors_as_fuse
    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        # Reopened through /proc: this very inode, whatever its names are now.
        # Without O_DIRECT: read() and write() use buffers of any alignment. (The kernel opens
        # its own file with the caller's flags for passthrough, O_DIRECT included.)
        with self.descriptors:
            fd = await blocking(os.open, self.node(inode).proc,
                                flags & ~(os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_DIRECT))
        return pyfuse3.FileInfo(fh=fd, keep_cache=self.timeout > 0, backing_fd=self._backing(fd))

    def _backing(self, fd: int) -> int:
        return fd if self.enable_passthrough else -1

    @pyfuse3.errors_as_fuse
    async def create(self, parent_inode: Any, name: Any, mode: Any, flags: Any,
                     ctx: Any) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        dir_fd = self.node(parent_inode).fd
        # O_NOFOLLOW: a symlink put at the name meanwhile is not followed out of the source.
        with self.descriptors:
            fd = await blocking(os.open, name,
                                (flags | os.O_CREAT | os.O_NOFOLLOW) & ~os.O_DIRECT,
                                stat.S_IMODE(mode), dir_fd=dir_fd)
        try:
            self._give(dir_fd, None, ctx, fd)
            return pyfuse3.FileInfo(fh=fd, keep_cache=self.timeout > 0,
                                    backing_fd=self._backing(fd)), \
                self.find(parent_inode, name)
        except BaseException:
            os.close(fd)
            raise

    @pyfuse3.errors_as_fuse
    async def read(self, fh: Any, off: int, size: int) -> bytes:
        self.calls["read"] += 1
        return await blocking(os.pread, fh, size, off)

    @pyfuse3.errors_as_fuse
    async def write(self, fh: Any, off: int, buf: bytes) -> int:
        self.calls["write"] += 1
        return await blocking(os.pwrite, fh, buf, off)

    async def flush(self, fh: Any) -> None:
        pass  # writes went straight to the source file

    @pyfuse3.errors_as_fuse
    async def release(self, fh: Any) -> None:
        os.close(fh)

    @pyfuse3.errors_as_fuse
    async def fsync(self, fh: Any, datasync: bool) -> None:
        await blocking(os.fdatasync if datasync else os.fsync, fh)

    # ---- directories
    # An open directory holds no descriptor: its listing is read at the first readdir(), through
    # the inode's own (which the kernel keeps while the directory is open).
    @pyfuse3.errors_as_fuse
    async def opendir(self, inode: Any, ctx: Any) -> int:
        with self.descriptors:
            os.close(os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=self.node(inode).fd))
        fh = next(self.handles)  # (the open above: opendir()'s errors, e.g. EACCES, stay here)
        self.listings[fh] = (inode, [])
        return fh

    @pyfuse3.errors_as_fuse
    async def readdir(self, fh: Any, start_id: int, token: Any) -> None:
        self.calls["readdir"] += 1
        parent, names = self.listings[fh]
        dir_fd = self.node(parent).fd
        if start_id == 0 or not names:  # sorted: next_id values stay valid between calls
            with self.descriptors:
                names = sorted(await blocking(in_directory, dir_fd, os.listdir))
            self.listings[fh] = (parent, names)
        for i, name in enumerate(names[start_id:], start_id):
            raw = os.fsencode(name)
            try:
                if token.plus:  # the kernel counts a lookup for each entry it is sent
                    attr = self.find(parent, raw)
                else:
                    attr = self.attr(os.stat(name, dir_fd=dir_fd, follow_symlinks=False))
            except FileNotFoundError:
                continue
            if not pyfuse3.readdir_reply(token, raw, attr, i + 1):
                if token.plus:
                    self.drop(attr.st_ino, 1)  # not sent after all
                break
            if token.plus and len(self.nodes) > self.max_nodes:
                break  # the rest in the next call, once the kernel has forgotten some

    async def releasedir(self, fh: Any) -> None:
        del self.listings[fh]

    @pyfuse3.errors_as_fuse
    async def fsyncdir(self, fh: Any, datasync: bool) -> None:
        with self.descriptors:
            await blocking(in_directory, self.node(self.listings[fh][0]).fd,
                           os.fdatasync if datasync else os.fsync)

    @pyfuse3.errors_as_fuse
    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        st = os.statvfs(self.nodes[ROOT].fd)
        out = pyfuse3.StatvfsData()
        for name in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files",
                     "f_ffree", "f_favail", "f_namemax"):
            setattr(out, name, getattr(st, name))
        return out

    # ---- extended attributes
    def xattr_path(self, inode: int, call: str) -> str:
        """Where an xattr call on ``inode`` acts. Without xattrs ENOSYS, after which the
        kernel answers that call itself (EOPNOTSUPP) and never sends it again."""
        self.calls[call] += 1
        if not self.xattrs:
            raise FUSEError(errno.ENOSYS)
        return self.node(inode).proc

    @pyfuse3.errors_as_fuse
    async def setxattr(self, inode: Any, name: Any, value: Any, ctx: Any) -> None:
        os.setxattr(self.xattr_path(inode, "setxattr"), name, value)

    @pyfuse3.errors_as_fuse
    async def getxattr(self, inode: Any, name: Any, ctx: Any) -> bytes:
        return os.getxattr(self.xattr_path(inode, "getxattr"), name)

    @pyfuse3.errors_as_fuse
    async def listxattr(self, inode: Any, ctx: Any) -> list[bytes]:
        return [os.fsencode(n) for n in os.listxattr(self.xattr_path(inode, "listxattr"))]

    @pyfuse3.errors_as_fuse
    async def removexattr(self, inode: Any, name: Any, ctx: Any) -> None:
        os.removexattr(self.xattr_path(inode, "removexattr"), name)


def main() -> None:
    from _cli import parse_args, serve

    args = parse_args(__doc__ or "", with_source=True, with_passthrough=True)
    raise_fd_limit()
    serve(PassthroughFS(args.source, timeout=args.timeout, passthrough=not args.no_passthrough,
                        xattrs=not args.no_xattrs), args, "passthroughfs")


if __name__ == "__main__":
    main()
