#!/usr/bin/env python3
"""Two what-if measurements on bench/benchfs.py, configurations interleaved, markdown tables.

1. What answering handlers inline buys: the uncached-stat workloads of bench/run.py per backend,
   as is (getattr and lookup never suspend, so pyfuse3 answers them inline, without a task) and
   with BENCHFS_SUSPEND=1 (each yields to the event loop once, as a handler awaiting I/O does,
   so it is handed to a task).
2. What listing costs besides the file system's own Python: the 10,002-entry listing with
   BENCHFS_REUSE_ATTRS=1 (readdir reuses EntryAttributes built once instead of building one per
   entry), against C, with the server's CPU time per entry.
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

BACKENDS = ["trio", "asyncio", "uvloop"]
WORKLOADS = ["stat", "stat-4-clients"]


LISTING = [("c", False), ("trio", False), ("trio", True), ("uvloop", True),
           ("upstream-trio", False), ("upstream-trio", True)]


def measure(backend: str, suspend: bool) -> dict[str, float]:
    os.environ["BENCHFS_SUSPEND"] = "1" if suspend else "0"
    mnt = tempfile.mkdtemp(prefix="pyfuse3-ablation-")
    proc = run.start(backend, mnt)
    try:
        return {w: run.WORKLOADS[w][1](mnt) for w in WORKLOADS}
    finally:
        stop(proc, mnt)
        os.rmdir(mnt)
        os.environ.pop("BENCHFS_SUSPEND")


def measure_listing(contender: str, reuse: bool) -> tuple[float, float]:
    """Entries per second and server CPU nanoseconds per entry."""
    os.environ["BENCHFS_REUSE_ATTRS"] = "1" if reuse else "0"
    mnt = tempfile.mkdtemp(prefix="pyfuse3-ablation-")
    proc = run.start(contender, mnt)
    try:
        run.listing(mnt)  # the first listing builds the reused attributes
        cpu0, wall0 = run.cpu_seconds(proc.pid), time.perf_counter()
        rate = run.listing(mnt)
        busy = (run.cpu_seconds(proc.pid) - cpu0) / (time.perf_counter() - wall0)
        return rate, 1e9 * busy / rate
    finally:
        stop(proc, mnt)
        os.rmdir(mnt)
        os.environ.pop("BENCHFS_REUSE_ATTRS")


def listing_table(rounds: int) -> None:
    results: dict[tuple[str, bool], list[tuple[float, float]]] = {c: [] for c in LISTING}
    for _ in range(rounds):
        for config in LISTING:
            results[config].append(measure_listing(*config))
    c_rate = statistics.median(r for r, _ in results["c", False])
    print("| server | attributes | entries/s | / C | server CPU per entry |")
    print("|---|---|---|---|---|")
    for (contender, reuse), runs in results.items():
        rate = statistics.median(r for r, _ in runs)
        ns = statistics.median(n for _, n in runs)
        what = "C" if contender == "c" else "reused" if reuse else "built per entry"
        print(f"| {contender} | {what} | {rate:,.0f} | {rate / c_rate:.2f}x | {ns:,.0f} ns |")


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    listing_table(rounds)
    configs = [(b, s) for b in BACKENDS for s in (False, True)]
    results: dict[tuple[str, bool], list[dict[str, float]]] = {c: [] for c in configs}
    for _ in range(rounds):
        for config in configs:
            results[config].append(measure(*config))
    print(f"median of {rounds} interleaved rounds, {run.SECONDS} s each, ops/s")
    print("| backend | workload | inline | suspending once | inline / suspending |")
    print("|---|---|---|---|---|")
    for backend in BACKENDS:
        for w in WORKLOADS:
            inline = statistics.median(r[w] for r in results[backend, False])
            suspending = statistics.median(r[w] for r in results[backend, True])
            print(f"| {backend} | {run.WORKLOADS[w][0].removesuffix(', ops/s')} | {inline:,.0f} | "
                  f"{suspending:,.0f} | {inline / suspending:.2f}x |")


if __name__ == "__main__":
    main()
