#!/usr/bin/env python3
"""Kernel passthrough against the backing file read and written directly.

``python bench/passthrough_bench.py [ROUNDS]`` makes a 1 GiB file in /var/tmp (BACKING_DIR to
choose) and mounts examples/passthroughfs.py over its directory twice: with passthrough (the
default) and with ``--no-passthrough`` (every READ and WRITE through the Python process).
Workloads: sequential 1 MiB reads with the page cache dropped first (buffered), O_DIRECT reads,
and 1 MiB writes of the whole file (buffered then fsync; O_DIRECT). Also with passthrough_hp's
1-day timeouts, with and without ``--no-xattrs`` (passthrough_hp keeps no xattrs by default,
so its kernel never asks for ``security.capability`` before a write). Each round runs every
configuration in turn (direct on the file system below, passthrough, no passthrough), so a
noisy neighbour hurts all of them alike. Prints a markdown table of the worst round's MiB/s
(and the median) and the server's CPU per MiB (user + system of the file-system process).

The C rows: libfuse's own example passthrough_hp (compiled here from the libfuse source that
``make build`` unpacked, linked to that libfuse) with its defaults, with passthrough and with
``--nopassthrough`` (it then serves reads with its thread pool and, caching, the writeback
cache). Left out when that source is not there (a build against the system's libfuse).
"""

from __future__ import annotations

import mmap
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20
SIZE = int(os.environ.get("BENCH_SIZE_MIB", "1024")) * MIB
WORKLOADS = ["read-buffered", "read-direct", "write-buffered", "write-direct"]
CONFIGS = ["backing file", "passthrough", "passthrough --timeout 86400",
           "passthrough --timeout 86400 --no-xattrs", "no passthrough",
           "C passthrough_hp",
           "C passthrough_hp --nopassthrough"]


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3")


def run_workload(path: str, workload: str) -> float:
    """Seconds for the whole file, 1 MiB at a time."""
    direct = workload.endswith("direct")
    buf = mmap.mmap(-1, MIB)  # page-aligned, as O_DIRECT needs
    buf.write(os.urandom(MIB))
    if workload.startswith("read"):
        drop_caches()
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECT if direct else 0))
        start = time.perf_counter()
        while os.readv(fd, [buf]) > 0:
            pass
    else:
        fd = os.open(path, os.O_WRONLY | (os.O_DIRECT if direct else 0))
        start = time.perf_counter()
        for _ in range(SIZE // MIB):
            os.writev(fd, [buf])
        os.fsync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    return elapsed


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def passthrough_hp() -> str | None:
    """libfuse's example/passthrough_hp.cc built against the libfuse pyfuse3 links, or None
    where its source is not unpacked under build/."""
    import pyfuse3

    version = pyfuse3.LIBFUSE_VERSION
    tree = ROOT / "build" / f"libfuse-{version}"
    source = tree / "src" / "example" / "passthrough_hp.cc"
    if not source.exists():
        return None
    binary = ROOT / "bench" / "c" / f"passthrough_hp-{version}"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(["g++", "-O2", "-std=c++17", "-o", str(binary), str(source),
                        f"-I{source.parent}", f"-I{tree / 'prefix' / 'include' / 'fuse3'}",
                        f"-L{tree / 'prefix' / 'lib'}", "-lfuse3", "-lpthread",
                        f"-Wl,-rpath,{tree / 'prefix' / 'lib'}"], check=True)
    return str(binary)


def server_argv(config: str, source: str, mnt: str) -> list[str]:
    if config.startswith("C passthrough_hp"):
        binary = passthrough_hp()
        assert binary is not None
        return [binary, "--foreground", *config.split()[2:], source, mnt]
    argv = [sys.executable, str(ROOT / "examples" / "passthroughfs.py"), source, mnt]
    if config.startswith("passthrough"):
        return [*argv, *config.split()[1:]]
    return [*argv, "--no-passthrough"]


class Mounted:
    def __init__(self, argv: list[str]) -> None:
        self.mnt = tempfile.mkdtemp(prefix="pyfuse3-ptbench-")
        self.proc = subprocess.Popen([a.replace("{mnt}", self.mnt) for a in argv])
        deadline = time.monotonic() + 30
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait(10)
                os.rmdir(self.mnt)
                raise RuntimeError(f"{argv[0]} did not mount")
            time.sleep(0.05)

    def close(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], check=False)
        os.rmdir(self.mnt)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    base = os.environ.get("BACKING_DIR", "/var/tmp")
    source = tempfile.mkdtemp(prefix="pyfuse3-ptbench-src-", dir=base)
    backing = os.path.join(source, "big")
    with open(backing, "wb") as fh:
        block = os.urandom(MIB)
        for _ in range(SIZE // MIB):
            fh.write(block)
    mounts: dict[str, Mounted] = {}
    speed: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    try:
        configs = [c for c in CONFIGS if passthrough_hp() or not c.startswith("C ")]
        for config in configs[1:]:
            mounts[config] = Mounted(server_argv(config, source, "{mnt}"))
        for _ in range(rounds):
            for workload in WORKLOADS:
                for config in configs:
                    mounted = mounts.get(config)
                    path = backing if mounted is None else os.path.join(mounted.mnt, "big")
                    before = 0.0 if mounted is None else cpu_seconds(mounted.proc.pid)
                    try:
                        seconds = run_workload(path, workload)
                    except OSError as e:
                        raise RuntimeError(f"{workload} on {config}: {e}") from e
                    used = 0.0 if mounted is None else cpu_seconds(mounted.proc.pid) - before
                    speed.setdefault((workload, config), []).append(SIZE / MIB / seconds)
                    cpu.setdefault((workload, config), []).append(used * 1e6 / (SIZE / MIB))
    finally:
        for m in mounts.values():
            m.close()
        shutil.rmtree(source)
    print(f"| workload | config | MiB/s worst (median) | vs backing file | server CPU us/MiB |"
          f"  ({rounds} rounds, {SIZE // MIB} MiB each)")
    print("|---|---|---|---|---|")
    for workload in WORKLOADS:
        base_worst = min(speed[(workload, "backing file")])
        for config in configs:
            values = speed[(workload, config)]
            print(f"| {workload} | {config} | {min(values):,.0f} "
                  f"({statistics.median(values):,.0f}) | {min(values) / base_worst:.2f}x | "
                  f"{statistics.median(cpu[(workload, config)]):,.0f} |")


if __name__ == "__main__":
    main()
