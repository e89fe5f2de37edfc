#!/usr/bin/env python3
"""What FileRange (splice) buys for a file system that serves bytes of other files.

``python bench/splice_bench.py`` makes a 512 MiB file in /var/tmp (BACKING_PATH to choose; it
stays in the page cache) and mounts bench/benchfs.py with ``large`` served from it
(BENCHFS_BACKING): read into bytes with os.pread per request
(``copy``, what any pyfuse3 file system does), or returned as ``pyfuse3.FileRange``
(``splice``, this project only). Upstream pyfuse3 3.5 runs the ``copy`` variant. Sequential
1 MiB reads, O_DIRECT and buffered, configurations interleaved; prints a markdown table of
median MiB/s and server CPU per MiB.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402
from getattr_syscalls import stop  # noqa: E402

CONFIGS = [("trio", "copy"), ("trio", "splice"), ("upstream-trio", "copy")]
WORKLOADS = ["seq-read-direct", "seq-read-buffered"]


def make_backing(path: str) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        for _ in range(512):
            fh.write(block)


def measure(contender: str, mode: str) -> dict[str, tuple[float, float]]:
    os.environ["BENCHFS_SPLICE"] = "1" if mode == "splice" else "0"
    mnt = tempfile.mkdtemp(prefix="pyfuse3-splice-")
    proc = run.start(contender, mnt)
    out = {}
    try:
        for w in WORKLOADS:
            cpu0, wall0 = run.cpu_seconds(proc.pid), time.perf_counter()
            rate = run.WORKLOADS[w][1](mnt)
            busy = (run.cpu_seconds(proc.pid) - cpu0) / (time.perf_counter() - wall0)
            out[w] = (rate, 1e6 * busy / rate)
    finally:
        stop(proc, mnt)
        os.rmdir(mnt)
    return out


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    backing = os.environ.get("BACKING_PATH", "/var/tmp/pyfuse3-bench-backing")
    make_backing(backing)
    os.environ["BENCHFS_BACKING"] = backing
    try:
        results: dict[tuple[str, str], list[dict[str, tuple[float, float]]]] = {
            c: [] for c in CONFIGS}
        for _ in range(rounds):
            for config in CONFIGS:
                results[config].append(measure(*config))
    finally:
        os.unlink(backing)
    print(f"median of {rounds} interleaved rounds, {run.SECONDS} s each; backing file "
          f"{backing}, pipe-max-size {Path('/proc/sys/fs/pipe-max-size').read_text().strip()}")
    print("| workload | " + " | ".join(f"{c} {m}" for c, m in CONFIGS) + " |")
    print("|---|" + "---|" * len(CONFIGS))
    for w in WORKLOADS:
        cells = []
        for config in CONFIGS:
            rate = statistics.median(r[w][0] for r in results[config])
            cpu = statistics.median(r[w][1] for r in results[config])
            cells.append(f"{rate:,.0f} MiB/s ({cpu:,.0f} µs CPU/MiB)")
        print(f"| {run.WORKLOADS[w][0].removesuffix(', MiB/s')} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
