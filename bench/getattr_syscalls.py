#!/usr/bin/env python3
"""Measure one GETATTR round trip: syscalls the server makes per request, and microseconds.

Runs bench/getattr_server.py under each backend with a client doing fstat() in a loop at queue
depth 1. Syscalls are counted with ``perf stat`` tracepoints, which barely slow the server
(``strace -c`` slows it so much that the next request is always already queued, hiding the
wait). Needs perf (Debian: linux-perf) and root.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
N = 20_000


EVENTS = ["read", "writev", "epoll_wait", "epoll_ctl", "epoll_pwait", "splice"]


def serve(mountpoint: str, backend: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, str(HERE / "getattr_server.py"), mountpoint,
                             backend])
    deadline = time.monotonic() + 20
    while not os.path.ismount(mountpoint):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("server did not mount")
        time.sleep(0.02)
    return proc


def client(mountpoint: str, n: int) -> float:
    """Seconds per fstat() (= one GETATTR) over n calls, after a warm-up."""
    fd = os.open(os.path.join(mountpoint, "file"), os.O_RDONLY)
    try:
        for _ in range(1000):
            os.fstat(fd)
        start = time.perf_counter()
        for _ in range(n):
            os.fstat(fd)
        return (time.perf_counter() - start) / n
    finally:
        os.close(fd)


def stop(proc: subprocess.Popen[bytes], mountpoint: str) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    finally:
        if os.path.ismount(mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False)


def count_syscalls(pid: int, mountpoint: str) -> tuple[dict[str, float], float]:
    """Per-request syscall counts of process pid while the client runs, and µs per request."""
    out = tempfile.mktemp(suffix=".perf")
    events = ",".join([f"syscalls:sys_enter_{e}" for e in EVENTS] + ["raw_syscalls:sys_enter"])
    perf = subprocess.Popen(["perf", "stat", "-e", events, "-p", str(pid), "-o", out])
    try:
        time.sleep(0.5)
        seconds = client(mountpoint, N)
    finally:
        os.kill(perf.pid, signal.SIGINT)
        perf.wait(timeout=20)
    counts: dict[str, float] = {}
    for line in Path(out).read_text().splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:raw_)?syscalls:sys_enter_?(\w*)", line)
        if m:
            counts[m.group(2) or "all"] = int(m.group(1).replace(",", "")) / (N + 1000)
    os.unlink(out)
    return {k: round(v, 2) for k, v in counts.items() if v >= 0.05}, seconds * 1e6


def measure(backend: str) -> None:
    mnt = tempfile.mkdtemp(prefix="pyfuse3-bench-")
    try:
        proc = serve(mnt, backend)
        try:
            per, us = count_syscalls(proc.pid, mnt)
        finally:
            stop(proc, mnt)
        total = per.pop("all", 0.0)
        print(f"{backend:8s} {total:4.1f} syscalls per getattr {per}  {us:5.1f} µs per round trip")
    finally:
        os.rmdir(mnt)


if __name__ == "__main__":
    for backend in sys.argv[1:] or ["trio", "asyncio"]:
        measure(backend)
