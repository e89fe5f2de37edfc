#!/usr/bin/env python3
"""A/B of the request path: the same workloads on two source trees, interleaved.

    python bench/ab.py OLD_SRC NEW_SRC [backend ...]

OLD_SRC and NEW_SRC are ``src`` directories with built extensions (e.g. a ``git worktree`` of
the commit before a change, built with ``setup.py build_ext --inplace``). Each round mounts
bench/benchfs.py once per tree and backend, in turn (the order alternates by round), and runs
bench/run.py's workloads (AB_WORKLOADS: a comma-separated choice); prints medians and
NEW/OLD. BENCH_SECONDS and BENCH_ROUNDS as for bench/run.py.
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

WORKLOADS = os.environ.get(
    "AB_WORKLOADS", "stat,open-read-close,create-write-unlink,stat-4-clients").split(",")


def main() -> None:
    old, new, *backends = sys.argv[1:]
    backends = backends or ["trio", "asyncio", "uvloop"]
    trees = {"old": old, "new": new}
    results: dict[tuple[str, str, str], list[float]] = {}
    for r in range(run.ROUNDS):
        for backend in backends:
            order = list(trees.items())
            for name, src in order if r % 2 == 0 else order[::-1]:  # no order bias
                mnt = tempfile.mkdtemp(prefix="pyfuse3-ab-")
                try:
                    proc = run.start(backend, mnt, env={**os.environ, "PYTHONPATH": src})
                except BaseException:
                    os.rmdir(mnt)  # nothing was mounted on it
                    raise
                try:
                    for w in WORKLOADS:
                        value = run.WORKLOADS[w][1](mnt)
                        results.setdefault((w, backend, name), []).append(value)
                finally:
                    stop(proc, mnt)
                    os.rmdir(mnt)
    print(f"| workload | backend | old | new | new/old |  ({run.ROUNDS} rounds x "
          f"{run.SECONDS} s, medians)")
    print("|---|---|---|---|---|")
    for w in WORKLOADS:
        for backend in backends:
            o = statistics.median(results[(w, backend, "old")])
            n = statistics.median(results[(w, backend, "new")])
            print(f"| {w} | {backend} | {o:,.0f} | {n:,.0f} | {n / o:.3f} |")


if __name__ == "__main__":
    main()
