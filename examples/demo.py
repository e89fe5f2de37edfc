#!/usr/bin/env python3
"""`make demo`: hello, coherent caching at work, two sharedfs mounts of one Redis; unmount.
Finishes in seconds."""

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


def shared(tmp: str) -> None:
    sys.path.insert(0, str(HERE / "sharedfs"))
    from redis_server import redis_server

    os.mkdir(os.path.join(tmp, "redis"))
    m1, m2 = os.path.join(tmp, "machine1"), os.path.join(tmp, "machine2")
    os.mkdir(m1)
    os.mkdir(m2)
    print("\n== sharedfs: two mounts of one Redis (as two machines would); each kernel caches "
          "for 1 hour,\n   each mount follows the other's changes through a Redis stream")
    with redis_server(Path(tmp, "redis")) as redis:
        url = redis.url
        print(f"   redis-server on {redis.socket} (pid {redis.proc.pid if redis.proc else '?'})")
        for m in (m1, m2):
            print(f"   python examples/sharedfs/sharedfs.py {m} --redis {url}")
        with example("sharedfs/sharedfs.py", "--redis", url, m1), \
                example("sharedfs/sharedfs.py", "--redis", url, m2):
            a, b = Path(m1), Path(m2)
            (a / "notes.txt").write_text("written on machine 1\n")
            ms = until(lambda: (b / "notes.txt").exists())
            print(f"machine 1 creates notes.txt -> machine 2 lists it after {ms:.1f} ms: "
                  f"{(b / 'notes.txt').read_text()!r}")
            (b / "notes.txt").read_text()  # now in machine 2's page cache
            (a / "notes.txt").write_text("edited on machine 1\n")
            ms = until(lambda: (b / "notes.txt").read_text() == "edited on machine 1\n")
            print(f"machine 1 edits it -> machine 2 reads {(b / 'notes.txt').read_text()!r} "
                  f"after {ms:.1f} ms  (invalidate_inode with the byte range)")
            os.mkdir(b / "archive")
            os.rename(b / "notes.txt", b / "archive" / "notes.txt")
            ms = until(lambda: not (a / "notes.txt").exists()
                       and (a / "archive" / "notes.txt").exists())
            print(f"machine 2 moves it to archive/ -> machine 1 sees the move after {ms:.1f} ms"
                  "  (invalidate_entry x2)")
    print(f"(SIGINT, then redis-server stopped by its pid) unmounted: "
          f"{not os.path.ismount(m1) and not os.path.ismount(m2)}")


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="pyfuse3-demo-")
    try:
        hello(tmp)
        coherent(tmp)
        shared(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
