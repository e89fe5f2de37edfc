#!/usr/bin/env python3
"""What answering handlers inline buys: the same file system with handlers that suspend once.

``python bench/ablation.py`` runs the uncached-stat workloads of bench/run.py against
bench/benchfs.py twice per backend: as is (getattr and lookup never suspend, so pyfuse3
answers them inline, without a task) and with BENCHFS_SUSPEND=1 (each yields to the event loop
once, as a handler awaiting I/O does, so it is handed to a task). Configurations interleave;
prints a markdown table of medians.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402
from getattr_syscalls import stop  # noqa: E402

BACKENDS = ["trio", "asyncio", "uvloop"]
WORKLOADS = ["stat", "stat-4-clients"]


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


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
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
