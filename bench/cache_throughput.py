#!/usr/bin/env python3
"""Throughput of cache control on a real mount: invalidate_inode calls/s, notify_store MB/s.

The calls are made from the test thread (not the event loop), as a sync service would.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyfuse3
from pyfuse3.testing import mounted
from tests.memfs import MemFS, Node

MIB = 1 << 20


def rate(fn: object, seconds: float = 1.0) -> float:
    """Calls per second of fn() over about ``seconds``."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            fn()  # type: ignore[operator]
        n += 100
    return n / (time.perf_counter() - start)


def measure(backend: str) -> None:
    """Print the rates for one backend."""
    ops = MemFS(timeout=300)
    ops.add(pyfuse3.ROOT_INODE, b"f", Node(stat.S_IFREG | 0o644, data=b"\0" * 64 * MIB))
    with mounted(ops, backend=backend) as fs:
        ino = os.stat(fs.path("f")).st_ino
        with open(fs.path("f"), "rb") as fh:
            fh.read(MIB)
            attr = rate(lambda: pyfuse3.invalidate_inode(ino, attr_only=True))
            full = rate(lambda: pyfuse3.invalidate_inode(ino))
            chunk = b"x" * MIB
            offsets = iter(range(0, 1 << 40, MIB))
            stores = rate(lambda: pyfuse3.notify_store(ino, next(offsets) % (64 * MIB), chunk))
    print(f"{backend:8s} invalidate_inode: {attr:9.0f} calls/s attr_only, "
          f"{full:9.0f} calls/s with data; notify_store 1 MiB: {stores:6.0f} MB/s")


if __name__ == "__main__":
    for name in ("trio", "asyncio"):
        measure(name)
