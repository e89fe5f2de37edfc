"""CPU per Redis command in this process: coredis, sharedfs's lane, and a plain socket.

    python bench/redis_client_cost.py [--calls 5000] [--rounds 3]

A redis-server of its own on a unix socket (started and stopped by its PID); each client
makes ``--calls`` sequential GETs and as many calls of a one-line script, under trio and
under asyncio; the process's user + system CPU time (getrusage) and the wall time per
command are printed, each client's rounds interleaved, the worst round (the most CPU) kept.
Redis's own time per command is a few µs; the rest is the client. This is why sharedfs's
store calls go through ``examples/sharedfs/lane.py`` (its README: "Why coredis, and the
lane").
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "sharedfs"))
import coredis  # noqa: E402
from lane import Lane  # noqa: E402
from redis_server import redis_server  # noqa: E402

SCRIPT = "return ARGV[1]"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def measure(calls: int, fn: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    await fn()  # connected, script loaded
    t, c = time.perf_counter(), cpu()
    for _ in range(calls):
        await fn()
    return (cpu() - c) / calls * 1e6, (time.perf_counter() - t) / calls * 1e6


async def one_round(socket: Path, calls: int) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    async with coredis.Redis(unix_socket_path=str(socket), decode_responses=False) as client:
        script = client.register_script(SCRIPT)
        lane = Lane(client, SCRIPT)
        out["coredis GET"] = await measure(calls, lambda: client.get("k"))
        out["coredis script"] = await measure(calls, lambda: script(keys=["k"], args=["x"]))
        out["lane GET"] = await measure(calls, lambda: lane.command("GET", "k"))
        out["lane script"] = await measure(calls, lambda: lane.evalsha(["k"], ["x"]))
    stream = await anyio.connect_unix(str(socket))
    async with stream:
        async def raw() -> None:
            await stream.send(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
            await stream.receive()  # (a 5-byte reply arrives whole)
        out["plain anyio socket GET"] = await measure(calls, raw)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyfuse3-bench-redis-") as tmp, \
            redis_server(Path(tmp)) as server:
        for backend in ("trio", "asyncio"):
            worst: dict[str, tuple[float, float]] = {}
            for _ in range(args.rounds):
                got = anyio.run(one_round, server.socket, args.calls, backend=backend)
                for name, (c, w) in got.items():
                    if name not in worst or c > worst[name][0]:
                        worst[name] = (c, w)
            for name, (c, w) in worst.items():
                print(f"{backend:8} {name:24} {c:6.0f} µs CPU {w:6.0f} µs wall per command "
                      f"(worst of {args.rounds})")


if __name__ == "__main__":
    main()
