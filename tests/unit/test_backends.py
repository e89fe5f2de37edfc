"""The backends without a kernel: the registry, the asyncio reader's state table driven with a
socket pair, and the helpers every library must provide."""

from __future__ import annotations

import asyncio
import socket

import pytest
import trio

from pyfuse3._backends import BACKENDS, Closed, current
from pyfuse3._backends.asyncio import ON_READABLE, REGISTERED, AsyncioLoop, Reader
from pyfuse3.testing import run
from pyfuse3.testing._tasks import TaskGroup


def test_every_reader_state_has_a_readiness_rule() -> None:
    assert set(ON_READABLE) == set(Reader)
    for state, (_, after) in ON_READABLE.items():
        # the callback only runs while registered; it never registers by itself
        assert state in REGISTERED or after is state


@pytest.mark.parametrize("backend", ["trio", "asyncio", "uvloop"])
def test_current_backend_and_its_helpers(backend: str) -> None:
    async def main() -> tuple[str, int, str, list[int]]:
        b = current()
        value = await b.to_thread(lambda: 42)
        await b.sleep(0)
        got = await b.wait_for_callback(lambda deliver: (deliver("first"), deliver("second")))
        done: list[int] = []
        async with TaskGroup() as group:
            for i in range(3):
                async def add(i: int = i) -> None:
                    await b.sleep(0.001 * i)
                    done.append(i)
                group.start_soon(add)
        return b.name, value, got, sorted(done)

    expected = "trio" if backend == "trio" else "asyncio"
    assert run(backend, main) == (expected, 42, "first", [0, 1, 2])
    assert BACKENDS[expected].name == expected


def test_task_group_cancel_ends_the_tasks_still_running() -> None:
    async def main() -> list[str]:
        seen: list[str] = []

        async def forever() -> None:
            try:
                await current().sleep(3600)
            finally:
                seen.append("ended")
        async with TaskGroup() as group:
            group.start_soon(forever)
            await current().sleep(0.01)
            group.cancel()
        return seen

    for backend in ("trio", "asyncio"):
        assert run(backend, main) == ["ended"]


def test_no_backend_outside_trio_and_asyncio() -> None:
    with pytest.raises(Exception, match="async library"):
        current()


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    return a, b


def test_asyncio_reader_states_through_a_session() -> None:
    """Who reads next: a waiting reader is woken; while every task is busy, readiness pauses
    the registration; waiting again registers again; close_fd() ends the waits for good."""
    async def main() -> list[Reader]:
        r, w = _pair()
        loop = AsyncioLoop()
        seen = [loop._reader]

        async def read_once() -> None:
            await loop.wait_readable(r.fileno())
            seen.append(loop._reader)  # BUSY: woken, and nobody waits now

        waiter = asyncio.ensure_future(read_once())
        await asyncio.sleep(0)
        seen.append(loop._reader)  # STALE (asyncio's loop) or WAITING
        w.send(b"x")
        await asyncio.wait_for(waiter, 5)
        for _ in range(5):  # the data is still there: the level-triggered poll reports it
            await asyncio.sleep(0)
        seen.append(loop._reader)  # PAUSED: not registered while busy
        waiter = asyncio.ensure_future(loop.wait_readable(r.fileno()))
        await asyncio.wait_for(waiter, 5)  # registered again, and the data wakes it at once
        r.recv(10)
        waiter = asyncio.ensure_future(loop.wait_readable(r.fileno()))
        await asyncio.sleep(0)
        loop.close_fd(r.fileno())
        with pytest.raises(Closed):
            await asyncio.wait_for(waiter, 5)
        seen.append(loop._reader)
        with pytest.raises(Closed):
            await loop.wait_readable(r.fileno())
        r.close()
        w.close()
        return seen

    seen = asyncio.run(main())
    assert seen[0] is Reader.PAUSED
    assert seen[1] is Reader.STALE  # asyncio's own loop, no drain callback
    assert seen[2:] == [Reader.BUSY, Reader.PAUSED, Reader.CLOSED]


def test_trio_wait_readable_is_woken_by_data() -> None:
    async def main() -> bytes:
        r, w = _pair()
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(current().wait_readable, r.fileno())
                w.send(b"y")
        data = r.recv(1)
        r.close()
        w.close()
        return data

    assert trio.run(main) == b"y"
