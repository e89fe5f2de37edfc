#!/usr/bin/env python3
"""sharedfs between two mounts on one Redis: staleness, read-heavy throughput, writes.

    python bench/sharedfs_bench.py [--changes 1000] [--seconds 10] [--files 2000] [--plot PNG]

1. Staleness: mount A makes 1,000+ mixed changes (overwrite, append, chmod, create, unlink,
   rename); a reader process of its own caches the old state through mount B before each
   change and, once the change returned, polls B (every 0.2 ms) until it shows it.
   p50/p99/max, and how many changes B never showed within 10 s
   (``--only staleness``: that alone, ``--rounds`` times).
2. Read-heavy: two reader processes stat, open, read and close (one operation) small files
   through mount B, any of them (uniform) or only the 20 being changed (hot), while mount A
   rewrites one of those every 10 ms, in these configurations: (a) one-hour caching with
   invalidation (sharedfs's default), (b) timeouts 0 without invalidation, (c) 1 s timeouts
   without invalidation (the JuiceFS default model). Throughput, and stale reads: a read that
   returned an older version than one A had finished writing before the read began; their
   age (how long after A's write returned) shows each model's stale-read window.
3. Writes through A: sequential MB/s, small creates per second, Redis commands per
   operation (INFO's total_commands_processed), and Redis's memory per MiB of file data
   (INFO's used_memory before and after 64 MiB of random data; ``--only writes``), and
   the longest any one Redis command ran while SEEK_HOLE and SEEK_DATA looked through that
   file and it was truncated to 0, written again and deleted; and a 256 MiB file truncated
   to 128 MiB: how long, and its longest Redis command.
4. A large directory: 20,000 files created through A (per second), ``ls -l`` of them
   through B cold and warm, with Redis round trips per file and the longest any one Redis
   command ran while B listed them cold (``--only listing``).
4b. Creates (``--only creates``, ``--rounds`` times, ``--create-files`` each): empty files
   created one after another by one process, by ``--create-procs`` processes in one
   directory, and by as many each in a directory of its own; creates per second, and the
   mount's and Redis's CPU time (user + system) per create (``--sharedfs-args '--backend
   uvloop'``: the mount's options).
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from run import cpu_seconds  # noqa: E402  (bench/run.py, beside this script)

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
    return (calls.get("cmdstat_fcall", 0) + calls.get("cmdstat_evalsha", 0)
            + calls.get("cmdstat_eval", 0), sum(calls.values()))


def used_memory(redis: RedisServer | SentinelGroup) -> int:
    primary = redis.primary if isinstance(redis, SentinelGroup) else redis
    return int(primary.command("INFO", "memory").split("used_memory:")[1].split()[0])


@contextlib.contextmanager
def longest_command(redis: RedisServer | SentinelGroup) -> Iterator[list[float]]:
    """The longest any one Redis command (a script call included) ran inside Redis during the
    block, in ms, appended to the list at its end (Redis's latency monitor; 0: none >= 1 ms)."""
    primary = redis.primary if isinstance(redis, SentinelGroup) else redis
    primary.command("CONFIG", "SET", "latency-monitor-threshold", "1")
    primary.command("LATENCY", "RESET")
    got: list[float] = []
    yield got
    out = primary.command("LATENCY", "LATEST").split()
    got.append(float(out[out.index("command") + 3]) if "command" in out else 0.0)


# ---------------------------------------------------------------- 1. staleness

def _prime(kind: str, path: str, arg: object) -> object:
    """Make mount B's kernel cache what the change will make stale; return what seen()
    compares with."""
    if kind == "overwrite":
        Path(path).read_bytes()
        Path(path).read_bytes()  # cached (the second read leaves no atime to fetch)
    elif kind == "append":
        return os.stat(path).st_size + 3
    elif kind in ("chmod", "unlink", "rename"):
        os.stat(path)
    elif kind == "create":
        os.path.exists(path)
    return arg


def _seen(kind: str, path: str, want: object) -> bool:
    if kind == "overwrite":
        return Path(path).read_bytes() == want
    if kind == "append":
        return os.stat(path).st_size == want
    if kind == "chmod":
        return os.stat(path).st_mode & 0o777 == want
    if kind == "create":
        return os.path.exists(path)
    if kind == "unlink":
        return not os.path.exists(path)
    return not os.path.exists(path) and os.path.exists(str(want))  # rename


POLL = 0.0002  # seconds between the reader's looks


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def stale_reader(conn: Any) -> None:
    """The reader, a process of its own: primes mount B's cache for each change, then (once
    the writer says when the change returned) polls B until it shows it. Sends back the ms
    from the change's return to the first read that showed it (None: not within 10 s)."""
    while (msg := conn.recv()) is not None:
        kind, path, arg = msg
        want = _prime(kind, path, arg)
        conn.send("primed")
        done = conn.recv()  # time.perf_counter() when the change returned: one clock
        while not _seen(kind, path, want):
            if time.perf_counter() - done > 10:
                conn.send(None)
                break
            time.sleep(POLL)  # not a busy loop: on 2 cores it would starve the mounts
        else:
            conn.send((time.perf_counter() - done) * 1000)


def staleness(a: Path, b: Path, n: int) -> tuple[list[float], int]:
    """``n`` mixed changes through A, each watched through B by a reader process that had
    cached the old state. Return the delays (ms) and how many changes B never showed."""
    rng = random.Random(1)
    os.mkdir(a / "st")
    for i in range(20):
        (a / "st" / f"f{i}").write_bytes(b"v0")
    delays: list[float] = []
    never = 0
    existing = {f"f{i}" for i in range(20)}
    counter = 0
    ours, theirs = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=stale_reader, args=(theirs,))
    proc.start()
    try:
        while len(delays) + never < n:
            counter += 1
            kind = rng.choice(["overwrite", "append", "chmod", "create", "unlink", "rename"])
            name = rng.choice(sorted(existing))
            pa, pb = a / "st" / name, str(b / "st" / name)
            arg: object = None
            if kind == "overwrite":
                arg = token = f"v{counter}".encode()
                change: tuple[Callable[..., object], tuple[Any, ...]] = \
                    (pa.write_bytes, (token,))
            elif kind == "append":
                change = (_append, (pa, b"+++"))
            elif kind == "chmod":
                arg = mode = 0o600 if os.stat(pa).st_mode & 0o777 != 0o600 else 0o644
                change = (os.chmod, (pa, mode))
            elif kind == "create":
                new = f"n{counter}"
                pb = str(b / "st" / new)
                existing.add(new)
                change = ((a / "st" / new).write_bytes, (b"new",))
            elif kind in ("unlink", "rename") and len(existing) > 5:
                existing.discard(name)
                if kind == "unlink":
                    change = (os.unlink, (pa,))
                else:
                    new = f"r{counter}"
                    existing.add(new)
                    arg = str(b / "st" / new)
                    change = (os.rename, (pa, a / "st" / new))
            else:
                continue
            ours.send((kind, pb, arg))
            if ours.recv() != "primed":
                raise SystemExit("the reader failed")
            change[0](*change[1])
            ours.send(time.perf_counter())
            got = ours.recv()
            if got is None:
                never += 1
            else:
                delays.append(got)
    finally:
        ours.send(None)
        proc.join(30)
        if proc.is_alive():
            proc.kill()
    return delays, never


HOT = 20  # the files the writer changes (in turn, one every 10 ms)


def reader(mnt: str, files: int, seconds: float, seed: int, out: mp.Queue,
           hot: bool) -> None:
    """stat+open+read+close (one operation) of random files: any of them (uniform), or only
    the ones being changed (hot: the pattern that hurts a cache)."""
    rng = random.Random(seed)
    ops = 0
    reads: list[tuple[int, float, int]] = []  # (file, start time, version read)
    end = time.time() + seconds
    while (now := time.time()) < end:
        i = rng.randrange(HOT if hot else files)
        p = f"{mnt}/rh/f{i}"
        os.stat(p)
        with open(p, "rb") as fh:
            data = fh.read()
        ops += 1
        if i < HOT:  # the files the writer changes
            head, _, rest = data.partition(b":")
            # A rewrites with O_TRUNC: a read between the truncate and the write is torn
            version = int(head) if head.isdigit() and len(rest) == 1000 else -1
            reads.append((i, now, version))
    out.put((ops, reads))


def read_heavy(redis: RedisServer, prefix: str, extra: list[str], files: int,
               seconds: float, hot: bool = False) -> dict[str, float]:
    with sharedfs(redis, prefix) as a, sharedfs(redis, prefix, *extra) as b:
        os.mkdir(a / "rh")
        for i in range(files):
            (a / "rh" / f"f{i}").write_bytes(b"0:" + b"x" * 1000)
        for i in range(files):  # warm B's cache once
            os.stat(b / "rh" / f"f{i}")
        out: mp.Queue = mp.Queue()
        procs = [mp.Process(target=reader, args=(str(b), files, seconds, k, out, hot))
                 for k in range(2)]
        for p in procs:
            p.start()
        written: dict[int, list[tuple[float, int]]] = {i: [] for i in range(HOT)}
        version = 0
        end = time.time() + seconds
        while time.time() < end:
            version += 1
            i = version % HOT
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
    seen = dict.fromkeys(range(HOT), 0)  # the newest version a reader of B had seen so far
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
        mem0 = used_memory(redis)
        (trips0, cmds0), t = commands(redis), time.perf_counter()
        with open(a / "big", "wb") as fh:
            for _ in range(64):
                fh.write(data)
            os.fsync(fh.fileno())
        seq_s = time.perf_counter() - t
        trips1, cmds1 = commands(redis)
        mem1 = used_memory(redis)
        with longest_command(redis) as deleting:
            fd = os.open(a / "big", os.O_RDONLY)
            try:  # (the kernel asks the file system: sharedfs implements lseek)
                assert os.lseek(fd, 0, os.SEEK_HOLE) == 64 << 20
                assert os.lseek(fd, 1000, os.SEEK_DATA) == 1000
            finally:
                os.close(fd)
            os.truncate(a / "big", 0)
            (a / "big").write_bytes(data)
            os.unlink(a / "big")
        with open(a / "large", "wb") as fh:  # a truncate with many pages to keep and drop
            for _ in range(256):
                fh.write(data)
        with longest_command(redis) as truncating:
            t = time.perf_counter()
            os.truncate(a / "large", 128 << 20)
            truncate_s = time.perf_counter() - t
        os.unlink(a / "large")
        os.mkdir(a / "small")
        (trips2, cmds2), t = commands(redis), time.perf_counter()
        n = 1000
        for i in range(n):
            (a / "small" / f"f{i}").write_bytes(b"x" * 100)
        small_s = time.perf_counter() - t
        trips3, cmds3 = commands(redis)
    return {"seq_MB_per_s": 64 / seq_s, "seq_round_trips_per_MiB": (trips1 - trips0) / 64,
            "seq_redis_commands_per_MiB": (cmds1 - cmds0) / 64,
            "redis_memory_per_MiB_of_data": (mem1 - mem0) / (64 << 20),
            "longest_redis_command_ms_seeking_truncating_deleting_64MiB": deleting[0],
            "truncate_256MiB_to_128MiB_ms": truncate_s * 1000,
            "longest_redis_command_ms_truncating_256MiB_to_128MiB": truncating[0],
            "small_files_per_s": n / small_s,
            "round_trips_per_small_file": (trips3 - trips2) / n,
            "redis_commands_per_small_file": (cmds3 - cmds2) / n}


# ---------------------------------------------------------------- 4. a large directory

def listing(redis: RedisServer, prefix: str, n: int) -> dict[str, float]:
    """``n`` files created through A; ``ls -l`` of them through B, cold (B never saw them)
    and warm (again), with Redis round trips per file."""
    import subprocess

    def ls(mnt: Path) -> tuple[float, float, float]:
        with longest_command(redis) as longest:
            (trips0, _), t = commands(redis), time.perf_counter()
            subprocess.run(["ls", "-l", str(mnt / "big")], stdout=subprocess.DEVNULL,
                           check=True)
            elapsed = time.perf_counter() - t
        return elapsed, (commands(redis)[0] - trips0) / n, longest[0]

    with sharedfs(redis, prefix) as a:
        os.mkdir(a / "big")
        t = time.perf_counter()
        for i in range(n):
            os.close(os.open(a / "big" / f"file{i:06d}", os.O_CREAT | os.O_WRONLY, 0o644))
        create_s = time.perf_counter() - t
        with sharedfs(redis, prefix) as b:
            cold_s, cold_trips, longest = ls(b)
            warm_s, warm_trips, _ = ls(b)
    return {"files": n, "creates_per_s": n / create_s, "ls_l_cold_s": cold_s,
            "ls_l_warm_s": warm_s, "round_trips_per_file_cold": cold_trips,
            "round_trips_per_file_warm": warm_trips,
            "longest_redis_command_ms_listing_cold": longest}


def _create_files(directory: str, n: int, own: bool, worker: int) -> None:
    if own:
        directory = tempfile.mkdtemp(prefix="c", dir=directory)
    for i in range(n):  # (O_EXCL: a name another worker made would not count)
        os.close(os.open(f"{directory}/f{worker}-{i:06d}",
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))


def creates(redis: RedisServer, prefix: str, n: int, procs: int,
            extra: tuple[str, ...] = ()) -> dict[str, float]:
    """``n`` empty files created through one mount: by one process; by ``procs`` processes
    in one directory (the kernel holds a directory's lock from a create's LOOKUP to its
    CREATE, so they take turns); by ``procs`` processes, each in a directory of its own."""
    out: dict[str, float] = {}
    mounts: list[Any] = []
    assert redis.proc is not None
    with sharedfs(redis, prefix, *extra, procs=mounts) as a:
        pid = mounts[0].pid
        for label, k, own in (("one process", 1, False),
                              (f"{procs} processes, one directory", procs, False),
                              (f"{procs} processes, a directory each", procs, True)):
            d = tempfile.mkdtemp(prefix="d", dir=a)
            workers = [mp.Process(target=_create_files, args=(d, n // k, own, w))
                       for w in range(k)]
            redis0 = cpu_seconds(redis.proc.pid)
            cpu0, t = cpu_seconds(pid), time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join(600)
                if w.exitcode != 0:
                    raise RuntimeError(f"a creating process exited with {w.exitcode}")
            elapsed = time.perf_counter() - t
            made = n // k * k
            out[f"creates_per_s ({label})"] = made / elapsed
            out[f"mount_cpu_us_per_create ({label})"] = \
                (cpu_seconds(pid) - cpu0) / made * 1e6
            out[f"redis_cpu_us_per_create ({label})"] = \
                (cpu_seconds(redis.proc.pid) - redis0) / made * 1e6
    return out


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
    ap.add_argument("--create-files", type=int, default=5000)
    ap.add_argument("--create-procs", type=int, default=4)
    ap.add_argument("--only", choices=("creates", "listing", "read-heavy", "durability",
                                       "staleness", "writes"),
                    help="run this part alone (no plot)")
    ap.add_argument("--sharedfs-args", default="",
                    help="more sharedfs options for --only staleness and --only creates "
                         "(e.g. '--backend uvloop')")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of --only creates, durability, staleness and writes")
    ap.add_argument("--plot", default=str(ROOT / "bench" / "sharedfs.png"))
    ap.add_argument("--json", default=str(ROOT / "bench" / "sharedfs.json"))
    args = ap.parse_args()
    report: dict[str, object] = {}
    models = {"(a) 1 h caching + invalidation": [],
              "(a2) as (a), without close-to-open": ["--no-close-to-open"],
              "(b) timeouts 0, no invalidation": ["--timeout", "0", "--no-invalidation"],
              "(c) 1 s timeouts, no invalidation": ["--timeout", "1", "--no-invalidation"]}
    if args.only == "read-heavy":
        for hot in (False, True):
            got = {}
            for label, extra in models.items():
                with server() as redis:
                    got[label] = read_heavy(redis, "rh", extra, args.files, args.seconds, hot)
            base = next(r["ops_per_s"] for k, r in got.items() if k.startswith("(b)"))
            for label, r in got.items():
                print("hot" if hot else "uniform", label,
                      f"{r['ops_per_s'] / base:.2f}x (b)", r, flush=True)
        return
    if args.only == "staleness":
        extra = args.sharedfs_args.split()
        for _ in range(args.rounds):
            with server() as redis, sharedfs(redis, "st", *extra) as a, \
                    sharedfs(redis, "st", *extra) as b:
                delays, never = staleness(a, b, args.changes)
            print("staleness between mounts (ms):",
                  {"changes": len(delays) + never, "p50": round(pct(delays, 50), 2),
                   "p99": round(pct(delays, 99), 2), "max": round(max(delays), 2),
                   "never_shown": never}, flush=True)
        return
    if args.only == "durability":
        durability(args.rounds)
        return
    if args.only == "writes":
        for r in range(args.rounds):
            with server() as redis:
                print("writes:", writes(redis, f"w{r}"), flush=True)
        return
    if args.only == "creates":
        runs = []
        for r in range(args.rounds):
            with server() as redis:
                runs.append(creates(redis, f"c{r}", args.create_files, args.create_procs,
                                    tuple(args.sharedfs_args.split())))
            print("creates:", {k: round(v) for k, v in runs[-1].items()}, flush=True)
        print("creates, worst of each:",
              {k: round(min(run[k] for run in runs) if k.startswith("creates")
                        else max(run[k] for run in runs)) for k in runs[0]}, flush=True)
        return
    if args.only == "listing":
        with server() as redis:
            print("large directory:", listing(redis, "ls", args.ls_files), flush=True)
        return
    with server() as redis, sharedfs(redis, "st") as a, sharedfs(redis, "st") as b:
        delays, never = staleness(a, b, args.changes)
    report["staleness_ms"] = {"changes": len(delays) + never, "p50": pct(delays, 50),
                              "p99": pct(delays, 99), "max": max(delays), "never_shown": never}
    print("staleness between mounts (ms):", report["staleness_ms"], flush=True)
    for label, extra in models.items():
        with server() as redis:
            report[label] = read_heavy(redis, "rh", extra, args.files, args.seconds)
        print(label, report[label], flush=True)
    with server() as redis:
        report["writes"] = writes(redis, "w")
    print("writes:", report["writes"], flush=True)
    with server() as redis:
        report["creates"] = creates(redis, "c", args.create_files, args.create_procs)
    print("creates:", report["creates"], flush=True)
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
