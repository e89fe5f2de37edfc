"""init/serve/close cycles for LeakSanitizer (``make sanitize``): C memory must not leak.

``python -m tests.leak_cycles`` under libasan with detect_leaks=1: each cycle mounts MemFS with
mount options (which libfuse copies into memory it allocates), serves a few requests under
trio and asyncio, calls notify_store from a thread, and closes.
"""

from __future__ import annotations

import os
import stat
import threading

import pyfuse3
from pyfuse3.testing import mounted

from .memfs import MemFS, Node


def main() -> None:
    for i in range(20):
        ops = MemFS()
        ino = ops.add(pyfuse3.ROOT_INODE, b"f",
                      Node(stat.S_IFREG | 0o644, data=b"x" * 9000)).st_ino
        with mounted(ops, backend=("trio", "asyncio")[i % 2],
                     options=["max_read=65536", "fsname=leakcheck"]) as fs:
            with open(fs.path("f"), "rb") as fh:
                assert fh.read() == b"x" * 9000
            t = threading.Thread(target=pyfuse3.notify_store, args=(ino, 0, b"y" * 9000))
            t.start()
            t.join()
            assert os.listdir(fs.path()) == ["f"]
    print("leak cycles done", flush=True)


if __name__ == "__main__":
    main()
