#!/usr/bin/env python3
"""`make soak`: 1,000,000 requests of mixed kinds through the tmpfs example.

Four client processes create, write, stat, read, rename and unlink files until the server has
answered the requested number of requests (counted from its write syscalls in /proc/PID/io:
one per reply). Reports the server's resident memory after a warm-up and at the end (target:
growth under 10 MiB), its open file descriptors, errors, and the unlinked inodes tmpfs still
held after unmount (must be 0).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyfuse3.testing import lazy_unmount, wait_mounted

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CLIENT = r"""
import os, sys, random
root = sys.argv[1]; rng = random.Random(int(sys.argv[2])); os.makedirs(root, exist_ok=True)
errors = 0
while True:
    name = os.path.join(root, "f%d" % rng.randrange(200))
    try:
        kind = rng.randrange(6)
        if kind == 0:
            with open(name, "wb") as fh: fh.write(os.urandom(rng.randrange(1, 8192)))
        elif kind == 1:
            os.stat(name)
        elif kind == 2:
            with open(name, "rb") as fh: fh.read()
        elif kind == 3:
            os.rename(name, os.path.join(root, "f%d" % rng.randrange(200)))
        elif kind == 4:
            os.unlink(name)
        else:
            os.listdir(root)
    except FileNotFoundError:
        pass
    except OSError as e:
        errors += 1
        print("error", e, flush=True)
"""


def proc_value(pid: int, path: str, key: str) -> int:
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise KeyError(key)


def replies(pid: int) -> int:
    return proc_value(pid, "io", "syscw:")


def rss_kib(pid: int) -> int:
    return proc_value(pid, "status", "VmRSS:")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    mnt = tempfile.mkdtemp(prefix="pyfuse3-soak-")
    server = subprocess.Popen([sys.executable, str(EXAMPLES / "tmpfs.py"), mnt],
                              stderr=subprocess.PIPE, text=True)
    clients: list[subprocess.Popen[str]] = []
    try:
        wait_mounted(mnt, server)
        clients = [subprocess.Popen([sys.executable, "-c", CLIENT, f"{mnt}/c{i}", str(i)],
                                    stdout=subprocess.PIPE, text=True)
                   for i in range(args.clients)]
        start_replies = replies(server.pid)
        while replies(server.pid) - start_replies < 50_000:  # warm-up
            time.sleep(0.1)
        rss0, fds0 = rss_kib(server.pid), len(os.listdir(f"/proc/{server.pid}/fd"))
        t0, r0 = time.monotonic(), replies(server.pid)
        while replies(server.pid) - start_replies < args.requests:
            time.sleep(0.2)
        elapsed, done = time.monotonic() - t0, replies(server.pid) - r0
        rss1, fds1 = rss_kib(server.pid), len(os.listdir(f"/proc/{server.pid}/fd"))
    finally:
        for c in clients:
            c.send_signal(signal.SIGKILL)
        errors = sum(c.communicate()[0].count("error") for c in clients)
        server.send_signal(signal.SIGINT)
        _, log = server.communicate(timeout=60)
        lazy_unmount(mnt)
        os.rmdir(mnt)
    leak_line = next((ln for ln in log.splitlines() if "unmounted:" in ln), "no report")
    print(f"requests: {args.requests:,} answered "
          f"({done / elapsed:,.0f}/s after warm-up), client errors: {errors}")
    print(f"server RSS: {rss0 / 1024:.1f} MiB after warm-up, {rss1 / 1024:.1f} MiB at the end "
          f"(growth {(rss1 - rss0) / 1024:+.2f} MiB); open fds: {fds0} -> {fds1}")
    print(f"tmpfs after unmount: {leak_line.split('tmpfs INFO: ')[-1]}")


if __name__ == "__main__":
    main()
