#!/usr/bin/env python3
"""Measure one GETATTR round trip: syscalls the server makes per request, and microseconds.

Runs the benchmark file system (bench/benchfs.py, or its C twin) under each contender, with a
client doing fstat() in a loop at queue depth 1. Syscalls are counted with ``perf stat``
tracepoints, which barely slow the server; ``strace -c`` slows it so much that the next
request is always already queued, hiding the wait. Needs perf (Debian: linux-perf) and root.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyfuse3.testing import lazy_unmount, wait_mounted

HERE = Path(__file__).resolve().parent
N = 20_000


EVENTS = ["read", "writev", "epoll_wait", "epoll_ctl", "epoll_pwait", "splice"]


def build_c(name: str) -> str:
    """Compile bench/c/NAME.c (a libfuse low-level file system) if stale; its binary path.
    It links the libfuse pyfuse3 was built with (``make build``: 3.18 under build/), so the
    C rows compare like with like; without that build, the system's (pkg-config)."""
    import pyfuse3

    version = pyfuse3.LIBFUSE_VERSION
    source, binary = HERE / "c" / f"{name}.c", HERE / "c" / f"{name}-{version}"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        env = dict(os.environ)
        prefix = HERE.parent / "build" / f"libfuse-{version}" / "prefix"
        rpath = []
        if (prefix / "lib" / "pkgconfig").is_dir():
            env["PKG_CONFIG_PATH"] = str(prefix / "lib" / "pkgconfig")
            rpath = [f"-Wl,-rpath,{prefix / 'lib'}"]
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], check=True,
                               capture_output=True, text=True, env=env).stdout.split()
        subprocess.run(["gcc", "-O2", "-o", str(binary), str(source), *flags, *rpath],
                       check=True)
    return str(binary)


UPSTREAM_VENV = HERE / ".venv-upstream"


def upstream_python() -> str:
    """Python of a separate venv holding upstream pyfuse3 3.5.0 (created on first use)."""
    python = UPSTREAM_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(UPSTREAM_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pyfuse3==3.5.0", "trio"],
                       check=True)
    return str(python)


def serve(mountpoint: str, backend: str) -> subprocess.Popen[bytes]:
    """Start one contender: c, trio, asyncio, upstream-trio or upstream-asyncio."""
    python = sys.executable
    if backend.startswith("upstream-"):
        python, backend = upstream_python(), backend.removeprefix("upstream-")
    cmd = [build_c("benchfs_ll"), mountpoint] if backend == "c" else \
        [python, str(HERE / "benchfs.py"), mountpoint, backend]
    proc = subprocess.Popen(cmd)
    try:
        wait_mounted(mountpoint, proc)
    except (RuntimeError, TimeoutError) as e:
        raise SystemExit(f"server did not mount: {e}") from None
    return proc


def client(mountpoint: str, n: int) -> float:
    """Seconds per fstat() (= one GETATTR) over n calls, after a warm-up."""
    fd = os.open(os.path.join(mountpoint, "f00000"), os.O_RDONLY)  # attr timeout 0
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
    """SIGTERM; if that does not end it (upstream's asyncio mode), unmount; then kill."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        lazy_unmount(mountpoint)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    lazy_unmount(mountpoint)


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


def measure(backend: str) -> tuple[dict[str, float], float]:
    """Syscalls per getattr by kind (key "all": total) and µs per round trip."""
    mnt = tempfile.mkdtemp(prefix="pyfuse3-bench-")
    try:
        proc = serve(mnt, backend)
        try:
            return count_syscalls(proc.pid, mnt)
        finally:
            stop(proc, mnt)
    finally:
        os.rmdir(mnt)


def main() -> None:
    backends = sys.argv[1:] or ["c", "trio", "asyncio", "uvloop", "upstream-trio",
                                "upstream-asyncio"]
    rounds = 5
    results: dict[str, list[tuple[dict[str, float], float]]] = {b: [] for b in backends}
    for _ in range(rounds):  # interleaved, so machine noise hits every contender alike
        for backend in backends:
            results[backend].append(measure(backend))
    base = statistics.median(us for _, us in results[backends[0]])
    print(f"median of {rounds} interleaved rounds of {N} fstat() calls at queue depth 1")
    for backend, runs in results.items():
        us = sorted(u for _, u in runs)
        per = {k: round(statistics.median(r[k] for r, _ in runs if k in r), 2)
               for k in runs[0][0]}
        total = per.pop("all", 0.0)
        print(f"{backend:8s} {total:4.1f} syscalls per getattr {per}  "
              f"{statistics.median(us):5.1f} µs (range {us[0]:.1f}-{us[-1]:.1f}), "
              f"{base / statistics.median(us):.2f}x of {backends[0]}")


if __name__ == "__main__":
    main()
