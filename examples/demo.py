#!/usr/bin/env python3
"""`make demo`: mount the hello example in a temporary directory, use it, unmount."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def wait_mounted(path: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.ismount(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the file system did not mount (exit code {proc.poll()})")
        time.sleep(0.02)


def main() -> None:
    mountpoint = tempfile.mkdtemp(prefix="pyfuse3-demo-")
    print(f"$ python examples/hello.py {mountpoint} &")
    proc = subprocess.Popen([sys.executable, str(HERE / "hello.py"), mountpoint])
    try:
        wait_mounted(mountpoint, proc)
        print(f"$ ls {mountpoint}\n{'  '.join(os.listdir(mountpoint))}")
        with open(os.path.join(mountpoint, "message")) as fh:
            print(f"$ cat {mountpoint}/message\n{fh.read()}", end="")
        print("$ kill -INT <pid>   # the example unmounts on SIGINT/SIGTERM")
        proc.send_signal(2)
        proc.wait(timeout=20)
        print(f"unmounted: {not os.path.ismount(mountpoint)}, exit code {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if os.path.ismount(mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False)
        os.rmdir(mountpoint)


if __name__ == "__main__":
    main()
