#!/usr/bin/env python3
"""Where a server's time goes, per workload: py-spy samples of the benchmark file system.

``python bench/profile.py [CONTENDER ...]`` mounts bench/benchfs.py under each contender (trio,
asyncio, asyncio-uvloop, upstream-trio, ...), runs every workload of bench/run.py while py-spy
samples the server (Python and native frames, idle time included) and writes
bench/profiles.md: for each workload, the share of the server's wall-clock time spent waiting
for the kernel, in the file system's own code, in pyfuse3, in the event loop, in libfuse and in
the read/writev system calls. Needs py-spy (``make profile`` installs it) and root.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # noqa: E402
from getattr_syscalls import stop  # noqa: E402

CATEGORIES = ["idle", "file system", "pyfuse3", "event loop", "libfuse", "read/writev", "other"]
IDLE = {"epoll_wait", "epoll_pwait", "poll", "select"}
SYSCALLS = {"writev", "read", "splice", "write"}


def classify(stack: list[str]) -> str:
    """The category of one sampled stack (frames outermost first)."""
    leaf = stack[-1].split(" (")[0]
    if leaf in IDLE:
        return "idle"
    if leaf in SYSCALLS:
        return "read/writev"
    for frame in reversed(stack):
        where = frame.rpartition(" (")[2]
        if "benchfs.py" in where:
            return "file system"
        if "pyfuse3" in where:  # this project's modules or upstream's extension
            return "pyfuse3"
        if "libfuse3" in where:
            return "libfuse"
        if any(lib in where for lib in ("trio/", "asyncio/", "selectors", "uvloop", "outcome")):
            return "event loop"
    return "other"


def summarize(raw: Path) -> dict[str, float]:
    """Shares (percent) of samples per category, from py-spy's collapsed-stack output."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        counts[classify(stack.split(";"))] += int(n)
    total = sum(counts.values()) or 1
    return {c: 100 * counts[c] / total for c in CATEGORIES}


def profile(contender: str, workload: str, seconds: float) -> dict[str, float]:
    mnt = tempfile.mkdtemp(prefix="pyfuse3-profile-")
    raw = Path(tempfile.mktemp(suffix=".txt"))
    proc = run.start(contender, mnt)
    try:
        spy = subprocess.Popen(
            [str(Path(sys.executable).parent / "py-spy"), "record", "--native", "--idle",
             "--rate", "400", "--format", "raw", "--output", str(raw), "--pid", str(proc.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)  # py-spy attaches
            run.SECONDS = seconds
            run.WORKLOADS[workload][1](mnt)
        finally:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        if not raw.exists():
            raise SystemExit(f"py-spy recorded nothing for {contender} (is it allowed to ptrace?)")
        return summarize(raw)
    finally:
        stop(proc, mnt)
        os.rmdir(mnt)
        raw.unlink(missing_ok=True)


def main() -> None:
    contenders = sys.argv[1:] or ["trio", "asyncio"]
    if "c" in contenders:
        raise SystemExit("py-spy samples Python processes only: profile the C server with perf")
    seconds = float(os.environ.get("PROFILE_SECONDS", "3"))
    lines = [
        "# Where the server's time goes", "",
        f"`make profile`: py-spy samples (400 Hz, Python and native frames, idle included) of "
        f"bench/benchfs.py while the clients of bench/run.py run each workload for {seconds} s. "
        "Shares of the server process's wall-clock time. 'idle' is time inside epoll_wait: "
        "waiting for the next request, and also the kernel's own work of putting the server to "
        "sleep and waking it, which on this VM is most of the server's CPU time (perf figures "
        "in results.md); 'read/writev' likewise includes waking the client. py-spy stops the "
        "server to unwind native stacks, which slows it: compare shares, not absolute speed.",
        "",
        "| workload | contender | " + " | ".join(CATEGORIES) + " |",
        "|---|---|" + "---|" * len(CATEGORIES),
    ]
    for workload in run.WORKLOADS:
        for contender in contenders:
            shares = profile(contender, workload, seconds)
            lines.append(f"| {workload} | {contender} | " +
                         " | ".join(f"{shares[c]:.1f}%" for c in CATEGORIES) + " |")
            print(lines[-1], flush=True)
    (HERE / "profiles.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
