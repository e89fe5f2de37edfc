#!/usr/bin/env python3
"""coherentfs vs passthroughfs (timeouts 0): workload speed-up and staleness window.

(a) a stat/read-heavy workload over a source of 10,000 files: walk + stat every file twice,
    then read 1,000 small files twice; (b) for N external changes of each kind (write, rename,
    delete) made directly in the source, the time until the mount shows it, and the number of
    stale reads in 10 reads right after it first did.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pyfuse3.testing import lazy_unmount, wait_mounted

HERE = Path(__file__).resolve().parents[1] / "examples"
FILES, READ_FILES, TRIALS = 10_000, 1_000, 100


def mount(script: str, src: str, mnt: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, str(HERE / script), src, mnt])
    try:
        wait_mounted(mnt, proc)
    except (RuntimeError, TimeoutError) as e:
        raise SystemExit(f"{script} did not mount: {e}") from None
    return proc


def unmount(proc: subprocess.Popen[bytes], mnt: str) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    finally:
        lazy_unmount(mnt)


def workload(mnt: str) -> float:
    start = time.perf_counter()
    for _ in range(2):
        for root, _dirs, files in os.walk(mnt):
            for name in files:
                os.stat(os.path.join(root, name))
    for _ in range(2):
        for i in range(READ_FILES):
            with open(os.path.join(mnt, f"d{i % 10}", f"f{i}"), "rb") as fh:
                fh.read()
    return time.perf_counter() - start


def staleness(src: str, mnt: str) -> tuple[list[float], int]:
    """Seconds from each external change until the mount shows it; stale reads afterwards."""
    delays, stale = [], 0
    Path(src, "s").mkdir()
    for i in range(TRIALS):
        f, g = Path(src, "s", f"w{i}"), Path(src, "s", f"r{i}")
        f.write_bytes(b"old %06d" % i)
        g.write_bytes(b"x")
        time.sleep(0.005)
        mf, mg, mg2 = Path(mnt, "s", f"w{i}"), Path(mnt, "s", f"r{i}"), Path(mnt, "s", f"q{i}")
        mf.read_bytes(), mg.exists(), mg2.exists()  # now cached, negative entry included
        changes: list[tuple[Callable[[], object], Callable[[], bool]]] = [
            (lambda f=f, i=i: f.write_bytes(b"new %06d" % i),
             lambda mf=mf, i=i: mf.read_bytes() == b"new %06d" % i),
            (lambda g=g, i=i: g.rename(Path(src, "s", f"q{i}")),
             lambda mg=mg, mg2=mg2: not mg.exists() and mg2.exists()),
            (lambda f=f: f.unlink(), lambda mf=mf: not mf.exists()),
        ]
        for change, visible in changes:
            start = time.perf_counter()
            change()
            while not visible():
                if time.perf_counter() - start > 5:
                    raise SystemExit("change never became visible")
            delays.append(time.perf_counter() - start)
            stale += sum(not visible() for _ in range(10))
    return delays, stale


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pyfuse3-coherent-") as tmp:
        src, mnt = os.path.join(tmp, "src"), os.path.join(tmp, "mnt")
        os.mkdir(src)
        os.mkdir(mnt)
        for d in range(10):
            os.mkdir(os.path.join(src, f"d{d}"))
        for i in range(FILES):
            Path(src, f"d{i % 10}", f"f{i}").write_bytes(b"%d\n" % i * 20)
        times = {}
        for script in ("passthroughfs.py", "coherentfs.py", "passthroughfs.py",
                       "coherentfs.py"):
            proc = mount(script, src, mnt)
            try:
                times.setdefault(script, []).append(workload(mnt))
            finally:
                unmount(proc, mnt)
        best = {k: min(v) for k, v in times.items()}
        print(f"workload (stat 10,000 files x2, read 1,000 files x2), best of 2: "
              f"passthroughfs (timeouts 0) {best['passthroughfs.py']:.2f} s, "
              f"coherentfs {best['coherentfs.py']:.2f} s, "
              f"speed-up {best['passthroughfs.py'] / best['coherentfs.py']:.1f}x")
        proc = mount("coherentfs.py", src, mnt)
        try:
            delays, stale = staleness(src, mnt)
        finally:
            unmount(proc, mnt)
        ms = sorted(d * 1000 for d in delays)
        p99 = ms[int(len(ms) * 0.99) - 1]
        print(f"staleness over {len(ms)} external changes (write, rename, delete): "
              f"median {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms, max {ms[-1]:.2f} ms; "
              f"stale reads after first fresh read: {stale}")


if __name__ == "__main__":
    main()
