#!/usr/bin/env python3
"""sharedfs between two mounts on one Redis: staleness, read-heavy throughput, writes.

    python bench/sharedfs_bench.py [--changes 1000] [--seconds 10] [--files 2000] [--plot PNG]

1. Staleness: mount A makes 1,000+ mixed changes (overwrite, append, chmod, create, unlink,
   rename); after each returns, mount B is polled until it shows the change. p50/p99/max.
2. Read-heavy: two reader processes stat and read small files through mount B while mount A
   rewrites one of them every 10 ms, in three configurations: (a) one-hour caching with
   invalidation (sharedfs's default), (b) timeouts 0 without invalidation, (c) 1 s timeouts
   without invalidation (the JuiceFS default model). Throughput, and stale reads: a read that
   returned an older version than one A had finished writing before the read began; their
   age (how long after A's write returned) shows each model's stale-read window.
3. Writes through A: sequential MB/s, small creates per second, and Redis commands per
   operation (INFO's total_commands_processed).
4. A large directory: 20,000 files created through A (per second), ``ls -l`` of them
   through B cold and warm, with Redis round trips per file (``--only listing``).
5. What durability costs (``--only durability``, not in the full run): the writes of 3.
   behind Redis Sentinel (a primary, a replica, three sentinels), without and with
   ``--wait-replicas 1``, alternating, ``--rounds`` times each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.sharedfs.conftest import (  # noqa: E402
    RedisServer,
    SentinelGroup,
    redis_server,
    sharedfs,
)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def commands(redis: RedisServer | SentinelGroup) -> tuple[int, int]:
    """(round trips: script calls made by clients, Redis commands run including the scripts'
    own) so far."""
    primary = redis.primary if isinstance(redis, SentinelGroup) else redis
    stats = primary.command("INFO", "commandstats")
    calls = {line.split(":")[0]: int(line.split("calls=")[1].split(",")[0])
             for line in stats.splitlines() if line.startswith("cmdstat_")}
    return calls.get("cmdstat_evalsha", 0) + calls.get("cmdstat_eval", 0), sum(calls.values())


# ---------------------------------------------------------------- 1. staleness

def staleness(a: Path, b: Path, n: int) -> list[float]:
    rng = random.Random(1)
    os.mkdir(a / "st")
    for i in range(20):
        (a / "st" / f"f{i}").write_bytes(b"v0")
    delays: list[float] = []
    existing = {f"f{i}" for i in range(20)}
    counter = 0
    while len(delays) < n:
        counter += 1
        kind = rng.choice(["overwrite", "append", "chmod", "create", "unlink", "rename"])
        name = rng.choice(sorted(existing))
        pa, pb = a / "st" / name, b / "st" / name
        if kind == "overwrite":
            token = f"v{counter}".encode()
            pb.read_bytes()
            pb.read_bytes()  # cached in B (the second read leaves no atime to fetch)

            def seen() -> bool:
                return pb.read_bytes() == token

            def change() -> None:
                pa.write_bytes(token)
        elif kind == "append":
            size = os.stat(pb).st_size

            def seen() -> bool:
                return os.stat(pb).st_size == size + 3

            def change() -> None:
                with open(pa, "ab") as fh:
                    fh.write(b"+++")
        elif kind == "chmod":
            mode = 0o600 if os.stat(pb).st_mode & 0o777 != 0o600 else 0o644

            def seen() -> bool:
                return os.stat(pb).st_mode & 0o777 == mode

            def change() -> None:
                os.chmod(pa, mode)
        elif kind == "create":
            new = f"n{counter}"
            pb = b / "st" / new
            existing.add(new)

            def seen() -> bool:
                return os.path.exists(pb)

            def change() -> None:
                (a / "st" / new).write_bytes(b"new")
        elif kind == "unlink" and len(existing) > 5:
            os.stat(pb)
            existing.discard(name)

            def seen() -> bool:
                return not os.path.exists(pb)

            def change() -> None:
                os.unlink(pa)
        elif kind == "rename" and len(existing) > 5:
            new = f"r{counter}"
            os.stat(pb)
            existing.discard(name)
            existing.add(new)

            def seen() -> bool:
                return not os.path.exists(pb) and os.path.exists(b / "st" / new)

            def change() -> None:
                os.rename(pa, a / "st" / new)
        else:
            continue
        change()
        t0 = time.perf_counter()
        while not seen():
            if time.perf_counter() - t0 > 10:
                raise SystemExit(f"mount B never showed a {kind}")
        delays.append((time.perf_counter() - t0) * 1000)
    return delays


# ---------------------------------------------------------------- 2. read-heavy

def reader(mnt: str, files: int, seconds: float, seed: int, out: mp.Queue) -> None:
    rng = random.Random(seed)
    ops = 0
    reads: list[tuple[int, float, int]] = []  # (file, start time, version read)
    end = time.time() + seconds
    while (now := time.time()) < end:
        i = rng.randrange(files)
        p = f"{mnt}/rh/f{i}"
        os.stat(p)
        with open(p, "rb") as fh:
            data = fh.read()
        ops += 2
        if i < 20:  # the files the writer changes
            head, _, rest = data.partition(b":")
            # A rewrites with O_TRUNC: a read between the truncate and the write is torn
            version = int(head) if head.isdigit() and len(rest) == 1000 else -1
            reads.append((i, now, version))
    out.put((ops, reads))


def read_heavy(redis: RedisServer, prefix: str, extra: list[str], files: int,
               seconds: float) -> dict[str, float]:
    with sharedfs(redis, prefix) as a, sharedfs(redis, prefix, *extra) as b:
        os.mkdir(a / "rh")
        for i in range(files):
            (a / "rh" / f"f{i}").write_bytes(b"0:" + b"x" * 1000)
        for i in range(files):  # warm B's cache once
            os.stat(b / "rh" / f"f{i}")
        out: mp.Queue = mp.Queue()
        procs = [mp.Process(target=reader, args=(str(b), files, seconds, k, out))
                 for k in range(2)]
        for p in procs:
            p.start()
        written: dict[int, list[tuple[float, int]]] = {i: [] for i in range(20)}
        version = 0
        end = time.time() + seconds
        while time.time() < end:
            version += 1
            i = version % 20
            (a / "rh" / f"f{i}").write_bytes(f"{version}:".encode() + b"x" * 1000)
            written[i].append((time.time(), version))  # acknowledged at this time
            time.sleep(0.01)
        results = [out.get(timeout=seconds + 60) for _ in procs]
        for p in procs:
            p.join(30)
    ops = sum(r[0] for r in results)
    stale_ages: list[float] = []
    checked = torn = regressions = 0
    all_reads = sorted((start, i, got) for _, reads in results for i, start, got in reads)
    seen = dict.fromkeys(range(20), 0)  # the newest version a reader of B had seen so far
    for start, i, got in all_reads:
        if got < 0:
            torn += 1
            continue
        checked += 1
        if got < seen[i]:
            regressions += 1  # older than what B already showed: never acceptable
        seen[i] = max(seen[i], got)
        newer = [t for t, v in written[i] if v > got and t < start]
        if newer:  # A had finished writing a newer version before this read began
            stale_ages.append((start - min(newer)) * 1000)
    return {"ops_per_s": ops / seconds, "reads_checked": checked, "torn_reads": torn,
            "stale_reads": len(stale_ages),
            "stale_over_100ms": sum(a > 100 for a in stale_ages),
            "stale_max_ms": max(stale_ages, default=0.0),
            "stale_p50_ms": statistics.median(stale_ages) if stale_ages else 0.0,
            "regressions": regressions}


# ---------------------------------------------------------------- 3. writes

def writes(redis: RedisServer | SentinelGroup, prefix: str,
           extra: tuple[str, ...] = ()) -> dict[str, float]:
    with sharedfs(redis, prefix, *extra) as a:
        data = os.urandom(1 << 20)
        (trips0, cmds0), t = commands(redis), time.perf_counter()
        with open(a / "big", "wb") as fh:
            for _ in range(64):
                fh.write(data)
            os.fsync(fh.fileno())
        seq_s = time.perf_counter() - t
        trips1, cmds1 = commands(redis)
        os.mkdir(a / "small")
        (trips2, cmds2), t = commands(redis), time.perf_counter()
        n = 1000
        for i in range(n):
            (a / "small" / f"f{i}").write_bytes(b"x" * 100)
        small_s = time.perf_counter() - t
        trips3, cmds3 = commands(redis)
    return {"seq_MB_per_s": 64 / seq_s, "seq_round_trips_per_MiB": (trips1 - trips0) / 64,
            "seq_redis_commands_per_MiB": (cmds1 - cmds0) / 64,
            "small_files_per_s": n / small_s,
            "round_trips_per_small_file": (trips3 - trips2) / n,
            "redis_commands_per_small_file": (cmds3 - cmds2) / n}


# ---------------------------------------------------------------- 4. a large directory

def listing(redis: RedisServer, prefix: str, n: int) -> dict[str, float]:
    """``n`` files created through A; ``ls -l`` of them through B, cold (B never saw them)
    and warm (again), with Redis round trips per file."""
    import subprocess

    def ls(mnt: Path) -> tuple[float, float]:
        (trips0, _), t = commands(redis), time.perf_counter()
        subprocess.run(["ls", "-l", str(mnt / "big")], stdout=subprocess.DEVNULL, check=True)
        elapsed = time.perf_counter() - t
        return elapsed, (commands(redis)[0] - trips0) / n

    with sharedfs(redis, prefix) as a:
        os.mkdir(a / "big")
        t = time.perf_counter()
        for i in range(n):
            os.close(os.open(a / "big" / f"file{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644))
        create_s = time.perf_counter() - t
        with sharedfs(redis, prefix) as b:
            cold_s, cold_trips = ls(b)
            warm_s, warm_trips = ls(b)
    return {"files": n, "creates_per_s": n / create_s, "ls_l_cold_s": cold_s,
            "ls_l_warm_s": warm_s, "round_trips_per_file_cold": cold_trips,
            "round_trips_per_file_warm": warm_trips}


def durability(rounds: int) -> None:
    """Writes behind Sentinel without and with WAIT for one replica, alternating."""
    from redis_server import sentinel_group

    got: dict[str, list[dict[str, float]]] = {"no wait": [], "--wait-replicas 1": []}
    with tempfile.TemporaryDirectory(prefix="pyfuse3-bench-redis-") as tmp, \
            sentinel_group(Path(tmp)) as group:
        for r in range(rounds):
            for label, extra in (("no wait", ()), ("--wait-replicas 1", ("--wait-replicas", "1"))):
                got[label].append(writes(group, f"d{r}{len(extra)}", extra))
    for label, runs in got.items():
        worst = {k: min(run[k] for run in runs) for k in ("seq_MB_per_s", "small_files_per_s")}
        median = {k: statistics.median(run[k] for run in runs) for k in worst}
        print(f"{label}: median {median}, worst {worst}", flush=True)


@contextlib.contextmanager
def server() -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="pyfuse3-bench-redis-") as tmp, \
            redis_server(Path(tmp)) as redis:
        yield redis


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--ls-files", type=int, default=20_000)
    ap.add_argument("--only", choices=("listing", "read-heavy", "durability"),
                    help="run this part alone (no plot)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of --only durability")
    ap.add_argument("--plot", default=str(ROOT / "bench" / "sharedfs.png"))
    ap.add_argument("--json", default=str(ROOT / "bench" / "sharedfs.json"))
    args = ap.parse_args()
    report: dict[str, object] = {}
    models = {"(a) 1 h caching + invalidation": [],
              "(a2) as (a), without close-to-open": ["--no-close-to-open"],
              "(b) timeouts 0, no invalidation": ["--timeout", "0", "--no-invalidation"],
              "(c) 1 s timeouts, no invalidation": ["--timeout", "1", "--no-invalidation"]}
    if args.only == "read-heavy":
        for label, extra in models.items():
            with server() as redis:
                print(label, read_heavy(redis, "rh", extra, args.files, args.seconds),
                      flush=True)
        return
    if args.only == "durability":
        durability(args.rounds)
        return
    if args.only == "listing":
        with server() as redis:
            print("large directory:", listing(redis, "ls", args.ls_files), flush=True)
        return
    with server() as redis, sharedfs(redis, "st") as a, sharedfs(redis, "st") as b:
        delays = staleness(a, b, args.changes)
    report["staleness_ms"] = {"changes": len(delays), "p50": pct(delays, 50),
                              "p99": pct(delays, 99), "max": max(delays)}
    print("staleness between mounts (ms):", report["staleness_ms"], flush=True)
    for label, extra in models.items():
        with server() as redis:
            report[label] = read_heavy(redis, "rh", extra, args.files, args.seconds)
        print(label, report[label], flush=True)
    with server() as redis:
        report["writes"] = writes(redis, "w")
    print("writes:", report["writes"], flush=True)
    with server() as redis:
        report["large_directory"] = listing(redis, "ls", args.ls_files)
    print("large directory:", report["large_directory"], flush=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.hist(delays, bins=50, color="tab:blue")
    left.set_xlabel("ms until mount B shows mount A's change")
    left.set_ylabel("changes")
    left.set_title(f"staleness over {len(delays)} changes (p99 {pct(delays, 99):.1f} ms)")
    labels = list(models)
    right.bar([lab.split(")")[0] + ")" for lab in labels],
              [report[lab]["ops_per_s"] for lab in labels],  # type: ignore[index]
              color=["tab:green", "tab:olive", "tab:red", "tab:orange"])
    right.set_ylabel("stat+read ops/s through mount B")
    right.set_ylim(0, 1.25 * max(report[lab]["ops_per_s"] for lab in labels))  # type: ignore[index]
    right.set_title("read-heavy, while mount A writes")
    for k, lab in enumerate(labels):
        r = report[lab]
        right.annotate(f"{r['stale_reads']} stale\nmax {r['stale_max_ms']:.0f} ms",  # type: ignore[index]
                       (k, r["ops_per_s"]), ha="center", va="bottom")  # type: ignore[index]
    fig.tight_layout()
    fig.savefig(args.plot, dpi=80)
    print("plot:", args.plot)


if __name__ == "__main__":
    main()
