#!/usr/bin/env python3
"""`make demo`: hello, then coherent caching at work, then unmount. Finishes in seconds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pyfuse3.testing import serving_process

HERE = Path(__file__).resolve().parent


@contextmanager
def example(script: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run an example file system until the block ends (then SIGINT); always unmount."""
    with serving_process([sys.executable, str(HERE / script), *args], args[-1]) as proc:
        yield proc


def reads(mnt: str) -> int:
    stats = json.loads(os.getxattr(mnt, "user.coherentfs.stats"))
    return int(stats["calls"].get("read", 0))


def until(check: Callable[[], bool]) -> float:
    """Milliseconds until check() holds (at most 2 s)."""
    start = time.monotonic()
    while not check() and time.monotonic() - start < 2:
        time.sleep(0.001)
    return (time.monotonic() - start) * 1000


def hello(tmp: str) -> None:
    mnt = os.path.join(tmp, "hello")
    os.mkdir(mnt)
    print(f"== hello: python examples/hello.py {mnt}")
    with example("hello.py", mnt):
        print(f"$ ls {mnt}\n{'  '.join(os.listdir(mnt))}")
        print(f"$ cat {mnt}/message\n{Path(mnt, 'message').read_text()}", end="")
    print(f"(SIGINT) unmounted: {not os.path.ismount(mnt)}\n")


def coherent(tmp: str) -> None:
    src, mnt = os.path.join(tmp, "source"), os.path.join(tmp, "coherent")
    os.mkdir(src)
    os.mkdir(mnt)
    Path(src, "report.txt").write_text("draft 1\n")
    Path(src, "old-name.txt").write_text("to be renamed\n")
    Path(src, "obsolete.txt").write_text("to be deleted\n")
    print(f"== coherentfs: kernel caching for 1 hour, kept correct by inotify\n"
          f"   python examples/coherentfs.py {src} {mnt}")
    with example("coherentfs.py", src, mnt):
        f = Path(mnt, "report.txt")
        print(f"read 1 through the mount: {f.read_text()!r}  read() handler calls: {reads(mnt)}")
        print(f"read 2 through the mount: {f.read_text()!r}  read() handler calls: {reads(mnt)}"
              "  <- served by the kernel cache, Python never saw it")
        Path(src, "report.txt").write_text("draft 2\n")
        ms = until(lambda: f.read_text() == "draft 2\n")
        print(f"changed in the source directory -> mount shows {f.read_text()!r} "
              f"after {ms:.1f} ms  (invalidate_inode)")
        os.rename(Path(src, "old-name.txt"), Path(src, "new-name.txt"))
        ms = until(lambda: Path(mnt, "new-name.txt").exists()
                   and not Path(mnt, "old-name.txt").exists())
        print(f"renamed in the source -> mount lists {sorted(os.listdir(mnt))} after {ms:.1f} ms"
              "  (invalidate_entry x2)")
        os.unlink(Path(src, "obsolete.txt"))
        ms = until(lambda: not Path(mnt, "obsolete.txt").exists())
        print(f"deleted in the source -> mount lists {sorted(os.listdir(mnt))} after {ms:.1f} ms"
              "  (invalidate_entry, deleted=)")
        stats = json.loads(os.getxattr(mnt, "user.coherentfs.stats"))["invalidations"]
        print(f"invalidations: {stats}")
    print(f"(SIGINT) unmounted: {not os.path.ismount(mnt)}")


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="pyfuse3-demo-")
    try:
        hello(tmp)
        coherent(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
