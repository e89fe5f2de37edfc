"""Testing a file system with pyfuse3's pytest plugin: the example of docs/testing.md.

The same checks twice: through a real mount (needs FUSE) and kernel-free (needs nothing).
"""

import errno
import os
import sys
from pathlib import Path

import pytest

import pyfuse3

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from _hello_fs import MESSAGE, HelloFS


def test_hello_through_a_mount(fuse_mount):
    fs = fuse_mount(HelloFS())  # served on a background thread until the test ends
    assert os.listdir(fs.mountpoint) == ["message"]
    with open(fs.path("message"), "rb") as fh:
        assert fh.read() == MESSAGE
    with pytest.raises(PermissionError):
        open(fs.path("message"), "wb")


def test_hello_without_a_kernel(fuse_harness):
    async def check(h):
        entry = await h.lookup(pyfuse3.ROOT_INODE, b"message")
        assert entry.attr.size == len(MESSAGE)
        fh = (await h.open(entry.nodeid, os.O_RDONLY)).fh
        assert await h.read(entry.nodeid, fh, 0, 4096) == MESSAGE
        with pytest.raises(OSError) as info:
            await h.open(entry.nodeid, os.O_WRONLY)
        assert info.value.errno == errno.EACCES
        names = [e.name for e in await h.listdir(pyfuse3.ROOT_INODE)]
        assert names == [b"message"]

    fuse_harness(HelloFS(), check)
