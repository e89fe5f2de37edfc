"""The Lane (the store's script calls on connections of their own) against a real redis-server:
replies reach their callers under concurrency, a cancelled or timed-out call never leaves its
reply for the next one, and errors come as coredis raises them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import coredis
import coredis.exceptions
import pytest

# (conftest puts examples/sharedfs on sys.path)
from lane import Lane

from sharedfs import connect

from .conftest import RedisServer, redis_server, require_redis

BACKENDS = pytest.mark.parametrize("backend", ["trio", "asyncio", "uvloop"])
ECHO = "return {KEYS[1], ARGV[1], ARGV[2]}"


def run(redis: RedisServer, backend: str, body: Callable[[coredis.Redis[bytes]],
                                                         Awaitable[Any]], **kw: Any) -> Any:
    async def main() -> Any:
        if backend == "uvloop":
            assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        async with connect(redis.url, **kw) as client:
            return await body(client)
    if backend == "uvloop":  # asyncio on uvloop's loop (sharedfs --backend uvloop)
        pytest.importorskip("uvloop")
        return anyio.run(main, backend="asyncio", backend_options={"use_uvloop": True})
    return anyio.run(main, backend=backend)


@BACKENDS
def test_concurrent_calls_get_their_own_replies(redis: RedisServer, backend: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """30 tasks at once, each needing a connection; afterwards at most MAX_IDLE (4 here)
    stay open, and sequential calls reuse one."""
    monkeypatch.setattr(sys.modules[Lane.__module__], "MAX_IDLE", 4)

    async def body(client: coredis.Redis[bytes]) -> None:
        lane = Lane(client, ECHO)
        got: dict[int, Any] = {}
        start = anyio.Event()
        waiting = [0]

        async def call(i: int) -> None:
            waiting[0] += 1
            await start.wait()  # all at once: each needs a connection of its own
            for j in range(20):
                got[i * 100 + j] = await lane.evalsha([f"k{i}"], [i, j * b"x"])

        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(call, i)
            while waiting[0] < 30:
                await anyio.sleep(0)
            start.set()
        assert got == {i * 100 + j: [f"k{i}".encode(), str(i).encode(), j * b"x"]
                       for i in range(30) for j in range(20)}
        assert 4 < lane.connections <= 30
        names = [c for c in await client.client_list() if c["name"] == "lane-test"]
        assert len(names) == 4 + 1  # and the client's own
        opened = lane.connections
        for _ in range(10):  # sequential calls reuse an idle connection
            await lane.command("PING")
        assert lane.connections == opened

    run(redis, backend, body, client_name="lane-test")


@BACKENDS
def test_a_cancelled_call_does_not_leave_its_reply_to_the_next(redis: RedisServer,
                                                               backend: str) -> None:
    async def body(client: coredis.Redis[bytes]) -> None:
        lane = Lane(client)
        await lane.command("PING")
        assert lane.connections == 1
        with anyio.move_on_after(0.2) as scope:
            await lane.command("BLPOP", "list", 2)  # its reply is due in 2 s
        assert scope.cancelled_caught
        await client.rpush("list", [b"item"])  # would have answered the BLPOP
        assert await lane.command("LRANGE", "list", 0, -1) == [b"item"]
        assert lane.connections == 2  # the cancelled call's connection was closed

    run(redis, backend, body)


@BACKENDS
def test_a_pipeline_answers_in_order_after_its_blocking_command(redis: RedisServer,
                                                               backend: str) -> None:
    """Commands written at once: their replies in order, error replies in the list; a command
    after a blocking one runs once that returned (it sees what woke it); cancelled while
    blocked, its connection is closed, so the next call reads its own replies."""
    async def body(client: coredis.Redis[bytes]) -> None:
        lane = Lane(client)
        got = await lane.pipeline(("SET", "k", "v"), ("INCR", "k"), ("GET", "k"))
        assert got[0] == b"OK" and got[2] == b"v"
        assert isinstance(got[1], coredis.exceptions.ResponseError)
        result: list[Any] = []

        async def blocked() -> None:
            result.extend(await lane.pipeline(("BLPOP", "bell", 10), ("LRANGE", "log", 0, -1)))

        async with anyio.create_task_group() as tg:
            tg.start_soon(blocked)
            await anyio.sleep(0.2)  # (whether BLPOP is waiting yet or not: same replies)
            await client.rpush("log", [b"entry"])
            await client.rpush("bell", [b"1"])
        assert result == [[b"bell", b"1"], [b"entry"]]
        with anyio.move_on_after(0.2):
            await lane.pipeline(("BLPOP", "bell", 10), ("GET", "k"))
        await client.rpush("bell", [b"2"])  # would have answered the cancelled BLPOP
        assert await lane.pipeline(("LLEN", "bell"), ("GET", "k")) == [1, b"v"]

    run(redis, backend, body)


@BACKENDS
@pytest.mark.parametrize("watchdog", [False, True])
def test_a_timed_out_call_raises_and_the_next_gets_its_own_reply(
        redis: RedisServer, backend: str, watchdog: bool) -> None:
    """With the watchdog running (as sharedfs runs it) or without (a cancel scope per call)."""
    async def body(client: coredis.Redis[bytes]) -> None:
        lane = Lane(client)
        async with anyio.create_task_group() as tg:
            if watchdog:
                tg.start_soon(lane.watchdog)
                await anyio.sleep(0)
            t = anyio.current_time()
            with pytest.raises(TimeoutError):
                await lane.command("BLPOP", "list", 2)  # (no timeout: None after 2 s)
            # (uvloop's clock counts milliseconds: 0.2 s later can read 0.19999...)
            assert anyio.current_time() - t >= 0.19
            await client.rpush("list", [b"item"])
            assert await lane.command("GET", "nothing") is None
            assert await lane.command("LLEN", "list") == 1
            tg.cancel_scope.cancel()

    run(redis, backend, body, stream_timeout=0.2)


@BACKENDS
def test_a_connection_the_server_closed_while_idle_is_replaced(redis: RedisServer,
                                                              backend: str) -> None:
    async def body(client: coredis.Redis[bytes]) -> None:
        lane = Lane(client, ECHO)
        await lane.evalsha(["k"], [1, 2])
        for line in await client.client_list():
            if line["name"] == "lane-test":
                await client.client_kill(identifier=int(line["id"]))
        await anyio.sleep(0.05)
        assert await lane.evalsha(["k"], [3, 4]) == [b"k", b"3", b"4"]
        assert lane.connections == 2

    run(redis, backend, body, client_name="lane-test")


def test_errors_come_as_coredis_raises_them(redis: RedisServer) -> None:
    async def body(client: coredis.Redis[bytes]) -> None:
        lane = Lane(client, "return redis.error_reply('ENOENT no such name')")
        with pytest.raises(coredis.exceptions.ResponseError, match=r"^ENOENT no such name$"):
            await lane.evalsha(["k"], [])
        await client.script_flush()  # as after a restart: the script is loaded again
        with pytest.raises(coredis.exceptions.ResponseError, match=r"^ENOENT"):
            await lane.evalsha(["k"], [])
        echo = Lane(client, ECHO)
        await client.script_flush()
        assert await echo.evalsha(["k"], [bytearray(b"a"), True]) == [b"k", b"a", b"1"]
        with pytest.raises(TypeError, match="not None"):
            await echo.evalsha(["k"], [None, 1])
        with pytest.raises(coredis.exceptions.ReplicationError,  # no replica to wait for
                           match=r"EVALSHA.? did not replicate to 1 replicas within 10 ms"):
            await echo.evalsha(["k"], [1, 2], replicas=1, replica_timeout_ms=10)
        assert await echo.evalsha(["k"], [1, 2]) == [b"k", b"1", b"2"]  # still in step

    run(redis, "trio", body)


ECHO_LIBRARY = """#!lua name=lane_echo
redis.register_function('lane_echo', function(keys, args)
  if args[1] == 'fail' then return redis.error_reply('ENOENT no such name') end
  return {keys[1], args[1], args[2]}
end)
"""


@BACKENDS
def test_a_function_library_is_loaded_when_redis_lacks_it(redis: RedisServer,
                                                          backend: str) -> None:
    """fcall() calls the library's function; a Redis without the library (restarted empty,
    FUNCTION FLUSH) gets it loaded again; error replies come as evalsha()'s do."""
    async def body(client: coredis.Redis[bytes]) -> None:
        lane = Lane(client, library=ECHO_LIBRARY)
        await lane.command("FUNCTION", "FLUSH")
        assert await lane.fcall(["k"], [1, b"x"]) == [b"k", b"1", b"x"]  # loaded, called
        await lane.command("FUNCTION", "FLUSH")
        assert await lane.fcall(["k"], [2, bytearray(b"y")]) == [b"k", b"2", b"y"]
        with pytest.raises(coredis.exceptions.ResponseError, match=r"^ENOENT no such name$"):
            await lane.fcall(["k"], ["fail"])
        with pytest.raises(coredis.exceptions.ReplicationError,  # no replica to wait for
                           match=r"FCALL.? did not replicate to 1 replicas within 10 ms"):
            await lane.fcall(["k"], [1, 2], replicas=1, replica_timeout_ms=10)
        assert await lane.fcall(["k"], [3, 4]) == [b"k", b"3", b"4"]  # still in step
        assert await lane.command("FUNCTION", "LIST", "LIBRARYNAME", "lane_echo")

    run(redis, backend, body)


def test_the_store_names_its_function_by_its_text() -> None:
    """Mounts of two sharedfs versions on one Redis each call their own function."""
    import store

    assert store.FUNCTION.startswith("sharedfs_")
    assert f"#!lua name={store.FUNCTION}\n" in store.LIBRARY
    assert f"redis.register_function('{store.FUNCTION}'" in store.LIBRARY
    assert "@FUNCTION@" not in store.LIBRARY


def test_password_and_database_come_from_the_client(tmp_path: Path) -> None:
    require_redis()
    with redis_server(tmp_path, password="s3cret") as server:
        async def body(client: coredis.Redis[bytes]) -> None:
            await client.set("k", b"in db 3")
            lane = Lane(client)
            assert await lane.command("GET", "k") == b"in db 3"

        anyio.run(_with(f"unix://:s3cret@{server.socket}?db=3", body), backend="trio")

        async def wrong(client: coredis.Redis[bytes]) -> None:
            with pytest.raises(coredis.exceptions.ResponseError, match="WRONGPASS"):
                await Lane(client).command("PING")

        anyio.run(_with(f"unix://:wrong@{server.socket}", wrong), backend="trio")


def test_an_unreachable_server_is_a_connection_error(tmp_path: Path) -> None:
    async def body() -> None:
        client = coredis.Redis.from_url(f"unix://{tmp_path}/none.sock")
        with pytest.raises(coredis.exceptions.ConnectionError, match=r"none\.sock"):
            await Lane(client).command("PING")

    anyio.run(body, backend="trio")


def _with(url: str, body: Callable[[coredis.Redis[bytes]], Awaitable[None]]) \
        -> Callable[[], Awaitable[None]]:
    async def main() -> None:
        async with coredis.Redis.from_url(url, decode_responses=False) as client:
            await body(client)
    return main
