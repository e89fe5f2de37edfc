#!/usr/bin/env python3
"""A file system with one read-only file: python quickstart.py MOUNTPOINT [--debug]."""

import argparse
import errno
import logging
import os
import signal
import stat

import trio

import pyfuse3

GREETING = b"Hello from Python!\n"
FILE_INODE = pyfuse3.ROOT_INODE + 1


class GreetingFS(pyfuse3.Operations):
    def attributes(self, inode: int) -> pyfuse3.EntryAttributes:
        attr = pyfuse3.EntryAttributes()
        if inode == pyfuse3.ROOT_INODE:
            attr.st_mode = stat.S_IFDIR | 0o555
            attr.st_nlink = 2
        elif inode == FILE_INODE:
            attr.st_mode = stat.S_IFREG | 0o444
            attr.st_nlink = 1
            attr.st_size = len(GREETING)
        else:
            raise pyfuse3.FUSEError(errno.ENOENT)
        attr.st_ino = inode
        attr.st_uid, attr.st_gid = os.getuid(), os.getgid()
        attr.entry_timeout = attr.attr_timeout = 60  # nothing changes: let the kernel cache
        return attr

    async def getattr(self, inode, ctx=None):
        return self.attributes(inode)

    async def lookup(self, parent_inode, name, ctx=None):
        if parent_inode != pyfuse3.ROOT_INODE or name != b"greeting":
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self.attributes(FILE_INODE)

    async def opendir(self, inode, ctx):
        return inode

    async def readdir(self, fh, start_id, token):
        # one entry; its next_id (1) is the start_id of the kernel's next call
        if start_id == 0:
            pyfuse3.readdir_reply(token, b"greeting", self.attributes(FILE_INODE), 1)

    async def open(self, inode, flags, ctx):
        if flags & os.O_ACCMODE != os.O_RDONLY:
            raise pyfuse3.FUSEError(errno.EACCES)
        return pyfuse3.FileInfo(fh=inode)

    async def read(self, fh, off, size):
        return GREETING[off:off + size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mountpoint")
    parser.add_argument("--debug", action="store_true", help="log every request")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO)

    options = set(pyfuse3.default_options) | {"fsname=greetingfs"}
    pyfuse3.init(GreetingFS(), args.mountpoint, options)
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C, kill: main() returns
        signal.signal(signum, lambda *_: pyfuse3.terminate())
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close()  # unmounts


if __name__ == "__main__":
    main()
