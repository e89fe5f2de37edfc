#!/usr/bin/env python3
"""`make bench`: this project vs upstream pyfuse3 3.5 vs C, on seven workloads.

Contenders: c (bench/c/benchfs_ll.c), trio and asyncio (this project), upstream-trio and
upstream-asyncio (pyfuse3 3.5.0 from PyPI, in its own venv bench/.venv-upstream). All serve the
same file system (bench/benchfs.py, public API only). Each round mounts every contender in turn
(A B C D E, A B C D E, ...) so machine noise hits all alike, runs every workload for a fixed
time, and unmounts. Writes bench/results.md and bench/results.png.
"""

from __future__ import annotations

import mmap
import multiprocessing
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from getattr_syscalls import build_c, stop, upstream_python  # noqa: E402

CONTENDERS = ["c", "trio", "asyncio", "upstream-trio", "upstream-asyncio"]
SECONDS = float(os.environ.get("BENCH_SECONDS", "1.5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
MIB = 1 << 20


def start(contender: str, mnt: str) -> subprocess.Popen[bytes]:
    if contender == "c":
        cmd = [build_c("benchfs_ll"), mnt]
    else:
        python = sys.executable
        if contender.startswith("upstream-"):
            python, contender = upstream_python(), contender.removeprefix("upstream-")
        cmd = [python, str(HERE / "benchfs.py"), mnt, contender]
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 30
    while not os.path.ismount(mnt):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{contender} did not mount")
        time.sleep(0.02)
    return proc


def timed(body: Callable[[], int]) -> float:
    """Units of work per second: body() does one step and returns its units."""
    done, begin = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - begin) < SECONDS:
        done += body()
    return done / elapsed


def small(mnt: str) -> str:
    return f"{mnt}/f{random.randrange(10_000):05d}"


def stat_loop(mnt: str) -> float:
    return timed(lambda: (os.stat(small(mnt)), 1)[1])


def open_read_close(mnt: str) -> float:
    def step() -> int:
        fd = os.open(small(mnt), os.O_RDONLY)
        try:
            os.read(fd, 4096)
        finally:
            os.close(fd)
        return 1
    return timed(step)


def listing(mnt: str) -> float:
    return timed(lambda: len(os.listdir(mnt)))  # entries per second


def sequential(mnt: str, flags: int) -> float:
    buf = mmap.mmap(-1, MIB)  # page-aligned, as O_DIRECT wants
    state = {"fd": -1, "off": 0}

    def step() -> int:
        if state["fd"] < 0 or state["off"] >= 512 * MIB:
            if state["fd"] >= 0:
                os.close(state["fd"])
            state["fd"], state["off"] = os.open(f"{mnt}/large", os.O_RDONLY | flags), 0
        n = os.preadv(state["fd"], [buf], state["off"])
        state["off"] += n
        return n
    try:
        return timed(step) / MIB  # MiB/s
    finally:
        if state["fd"] >= 0:
            os.close(state["fd"])


def create_write_unlink(mnt: str) -> float:
    data = b"w" * 4096

    def step() -> int:
        path = f"{mnt}/rw/n{random.randrange(1 << 30)}"
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.unlink(path)
        return 1
    return timed(step)


def _stat_client(mnt: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    out.put(stat_loop(mnt))


def stat_parallel(mnt: str, clients: int = 4) -> float:
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    procs = [multiprocessing.Process(target=_stat_client, args=(mnt, out))
             for _ in range(clients)]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=SECONDS + 60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
    return total


WORKLOADS: dict[str, tuple[str, Callable[[str], float]]] = {
    "stat": ("uncached stat, ops/s", stat_loop),
    "open-read-close": ("open + read 4 KiB + close, ops/s", open_read_close),
    "listdir": ("list 10,002 entries, entries/s", listing),
    "seq-read-direct": ("sequential read 1 MiB O_DIRECT, MiB/s",
                        lambda m: sequential(m, os.O_DIRECT)),
    "seq-read-buffered": ("sequential read 1 MiB buffered, MiB/s", lambda m: sequential(m, 0)),
    "create-write-unlink": ("create + write 4 KiB + close + unlink, ops/s", create_write_unlink),
    "stat-4-clients": ("uncached stat, 4 client processes, ops/s", stat_parallel),
}


def run() -> dict[str, dict[str, list[float]]]:
    results = {w: {c: [] for c in CONTENDERS} for w in WORKLOADS}
    for rnd in range(ROUNDS):
        for contender in CONTENDERS:
            mnt = tempfile.mkdtemp(prefix="pyfuse3-bench-")
            proc = start(contender, mnt)
            try:
                for name, (_, fn) in WORKLOADS.items():
                    results[name][contender].append(fn(mnt))
            finally:
                stop(proc, mnt)
                os.rmdir(mnt)
            print(f"round {rnd + 1}/{ROUNDS} {contender} done", flush=True)
    return results


def report(results: dict[str, dict[str, list[float]]]) -> str:
    lines = [
        "# Benchmark results", "",
        f"`make bench` on {platform.node()}: {os.cpu_count()} cores, kernel "
        f"{platform.release()}, Python {platform.python_version()}. {ROUNDS} interleaved "
        f"rounds, {SECONDS} s per workload; median (min-max). Nothing else ran on the "
        "machine; the client is a Python process on the same 2 cores as the server.", "",
        "| workload | " + " | ".join(CONTENDERS) + " | trio / C | asyncio / C | "
        "trio / upstream-trio |",
        "|---|" + "---|" * (len(CONTENDERS) + 3),
    ]
    for name, (label, _) in WORKLOADS.items():
        med = {c: statistics.median(v) for c, v in results[name].items()}
        cells = [f"{med[c]:,.0f} ({min(v):,.0f}-{max(v):,.0f})"
                 for c, v in results[name].items()]
        lines.append(f"| {label} | " + " | ".join(cells) +
                     f" | {med['trio'] / med['c']:.2f}x | {med['asyncio'] / med['c']:.2f}x | "
                     f"{med['trio'] / med['upstream-trio']:.2f}x |")
    return "\n".join(lines) + "\n"


def plot(results: dict[str, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(WORKLOADS)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(CONTENDERS)
    for k, contender in enumerate(CONTENDERS):
        ratios = [statistics.median(results[n][contender]) /
                  statistics.median(results[n]["c"]) for n in names]
        ax.bar([i + k * width for i in range(len(names))], ratios, width, label=contender)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names, rotation=15)
    ax.set_ylabel("throughput relative to C")
    ax.set_title("pyfuse3 (this project) vs upstream pyfuse3 3.5 vs C, median of rounds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    results = run()
    text = report(results)
    (HERE / "results.md").write_text(text)
    plot(results, HERE / "results.png")
    print(text)


if __name__ == "__main__":
    main()
