#!/usr/bin/env python3
"""Cold lookups in one directory from several threads: sharedfs with parallel_dirops (as it
ships) against the same sharedfs without it (the kernel then sends one lookup of a directory
at a time), in interleaved rounds.

    python bench/sharedfs_lookups.py [--files 2000] [--threads 1 4 8] [--rounds 4]

Mount A creates ``--files`` empty files in one directory; each round mounts B afresh (its
kernel has cached none of them) and ``--threads`` threads stat them all, each its share of
the names: stats per second, every one a lookup that waits for Redis. Prints the worst,
median and best round of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from sharedfs_bench import server  # noqa: E402

from tests.sharedfs.conftest import SHAREDFS, sharedfs  # noqa: E402

# sharedfs.py without parallel_dirops (pyfuse3's default)
SERIAL = f"""import sys
sys.path.insert(0, {str(SHAREDFS.parent)!r})
import sharedfs
sharedfs.SharedFS.enable_parallel_dirops = False
sharedfs.main()
"""


def stats_per_second(mnt: Path, files: int, threads: int) -> float:
    names = [str(mnt / "d" / f"f{i:06d}") for i in range(files)]
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda share: [os.stat(n) for n in share],
                      [names[k::threads] for k in range(threads)]))
    return files / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyfuse3-bench-") as tmp, server() as redis:
        serial = Path(tmp) / "serial_sharedfs.py"
        serial.write_text(SERIAL)
        with sharedfs(redis, "lookups") as a:
            os.mkdir(a / "d")
            for i in range(args.files):
                os.close(os.open(a / "d" / f"f{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644))
        variants = {"parallel_dirops": SHAREDFS, "without": serial}
        for threads in args.threads:
            got: dict[str, list[float]] = {label: [] for label in variants}
            for r in range(args.rounds):
                order = list(variants) if r % 2 == 0 else list(reversed(variants))
                for label in order:
                    with sharedfs(redis, "lookups", script=variants[label]) as b:
                        got[label].append(stats_per_second(b, args.files, threads))
            for label, runs in got.items():
                print(f"{threads} thread(s), {label}: worst {min(runs):,.0f}, median "
                      f"{statistics.median(runs):,.0f}, best {max(runs):,.0f} stats/s",
                      flush=True)


if __name__ == "__main__":
    main()
