"""The harness never drops a reply, as /dev/fuse never does: replies that find the socket full
wait for room, whatever the socket's buffer (its size capped by net.core.wmem_max)."""

from __future__ import annotations

import stat
from typing import Any

import pytest

import pyfuse3
from pyfuse3.testing import Harness
from pyfuse3.testing._harness import layout

from ..memfs import MemFS, Node

ROOT = pyfuse3.ROOT_INODE
READS, SIZE = 64, 128 * 1024


@pytest.mark.parametrize("socket_buffer", [1 << 21, 212992, 150_000])
def test_many_large_replies_at_once_all_arrive(fuse_harness: Any, socket_buffer: int) -> None:
    """64 concurrent 128 KiB reads: 27 were never answered (libfuse dropped each reply that
    met EAGAIN on the non-blocking socket)."""
    ops = MemFS()
    data = bytes(range(256)) * (READS * SIZE // 256)
    ops.add(ROOT, b"f", Node(stat.S_IFREG | 0o644, data=data))

    async def check(h: Harness) -> list[bytes]:
        f = await h.lookup(ROOT, b"f")
        fh = (await h.open(f.nodeid)).fh
        reqs = [h.send("READ", f.nodeid, layout("fuse_read_in").pack(
            fh=fh, offset=i * SIZE, size=SIZE)) for i in range(READS)]  # all before any reply
        return [await r.reply() for r in reqs]

    got = fuse_harness(ops, check, socket_buffer=socket_buffer)
    assert len(got) == READS
    assert b"".join(got) == data
