"""The store's script calls and the change log's reads on connections of their own: one
request (or a few written at once) and its replies, nothing between.

coredis, sharedfs's Redis client for everything else (finding the primary through Sentinel,
startup checks, the heartbeat), spends 260-460 µs of CPU per command (a writer and a
reader task per connection, retry and telemetry layers); a file created costs the store two
script calls and the change log one read, which held creates near 600/s. A :class:`Lane`
writes a command on an idle connection it owns, waits for that connection's reply in the
caller's task and parses it with hiredis: 53-103 µs, as a plain socket
(``python bench/redis_client_cost.py``).

It connects where the coredis client connects (its address, or the primary its sentinels
name now), with the client's password, database, TLS context and timeouts, so there is one
configuration, and it raises coredis's exceptions (ConnectionError, ReadOnlyError,
ResponseError, ReplicationError, TimeoutError), so callers handle one set of errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from typing import Any

import anyio
import anyio.abc
import coredis
import coredis.connection
import coredis.exceptions
import hiredis
import sniffio

#: error replies that mean something to the caller (the rest are ResponseError)
ERRORS: dict[str, type[coredis.exceptions.RedisError]] = {
    "READONLY": coredis.exceptions.ReadOnlyError,  # a demoted primary
    "LOADING": coredis.exceptions.BusyLoadingError,  # restarting: a ConnectionError
}
MAX_IDLE = 32  # idle connections kept (a burst of concurrent calls opens more, then closes them)
RECENT = 0.002  # seconds idle under which a connection is not checked before use
# a connection that broke (TimeoutError, an OSError too, is raised as it is)
_LOST = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class _Conn:
    """One connection: a plain socket waited on through the event loop, or (TLS) a stream."""

    __slots__ = ("expired", "generation", "idle_since", "on_asyncio", "reader", "sock",
                 "stream", "waiter")

    def __init__(self, sock: socket.socket | None, stream: anyio.abc.ByteStream | None,
                 generation: int) -> None:
        self.sock = sock
        self.stream = stream
        self.reader = hiredis.Reader()
        self.generation = generation
        self.expired = False  # the watchdog closed it: its call took too long
        self.idle_since = 0.0
        # asyncio (uvloop too): replies are waited for with the loop's own reader callback
        # (_asyncio_readable); the future of the call waiting now
        self.on_asyncio = sniffio.current_async_library() == "asyncio"
        self.waiter: asyncio.Future[None] | None = None

    def interrupt(self) -> None:
        """Wake the call waiting for this plain socket's reply, before it is closed (its
        next read then fails)."""
        assert self.sock is not None
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            if not waiter.done():
                waiter.set_result(None)
        else:  # (or waits in anyio.wait_writable(), asyncio too)
            anyio.notify_closing(self.sock)

    def closed_by_peer(self) -> bool:
        """True if the server closed it (or sent what nobody asked for) while it was idle
        (a TLS stream cannot tell: its first call then fails)."""
        if self.sock is None:
            return False
        try:
            self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except OSError:
            pass
        return True

    def send_nowait(self, data: bytes) -> bytes | memoryview:
        """Send what the socket takes now (a command usually fits); return the rest (a view:
        a large write's rest is not copied)."""
        if self.sock is None:
            return data
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            return data
        return memoryview(data)[sent:] if sent < len(data) else b""

    async def send(self, data: bytes | memoryview) -> None:
        if self.stream is not None:
            await self.stream.send(data)
            return
        assert self.sock is not None
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view):]
            except BlockingIOError:
                await anyio.wait_writable(self.sock)

    async def close(self) -> None:
        if self.stream is not None:
            await anyio.aclose_forcefully(self.stream)
        elif self.sock is not None:
            self.sock.close()


class Lane:
    """Script calls for ``client``'s server over a pool of connections used one call at a
    time. A call cancelled or timed out while its reply is due closes its connection (the
    reply would be read by the next call)."""

    def __init__(self, client: coredis.Redis[bytes], script: str = "", *,
                 library: str = "") -> None:
        self._pool = client.connection_pool
        options = self._pool.connection_kwargs
        self._timeout: float | None = options.get("stream_timeout")
        self._connect_timeout: float | None = options.get("connect_timeout")
        self._ssl = options.get("ssl_context")
        hello: list[tuple[Any, ...]] = []
        if options.get("password"):
            user = options.get("username")
            hello.append(("AUTH", user, options["password"]) if user
                         else ("AUTH", options["password"]))
        if options.get("db"):
            hello.append(("SELECT", options["db"]))
        if options.get("client_name"):
            hello.append(("CLIENT", "SETNAME", options["client_name"]))
        self._hello = [hiredis.pack_command(c) for c in hello]
        self._script = script
        self._sha = client.register_script(script).sha if script else ""
        # a Redis function library (Redis 7+): one function, named as the library
        self._library = library
        self._function = library.partition("\n")[0].partition("name=")[2].strip()
        self._idle: list[_Conn] = []
        self._generation = 0
        # calls in flight on plain sockets -> their deadlines (time.monotonic()), while
        # watchdog() runs: it ends those that overrun, which costs a call nothing (a cancel
        # scope per call cost ~10% of a create's CPU); without it each call gets a scope
        self._deadlines: dict[_Conn, float] | None = None
        self.connections = 0  # opened so far (for the tests)

    async def disconnect(self) -> None:
        """Close the idle connections; those in use are closed when their call ends."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def watchdog(self) -> None:
        """Enforce the client's stream_timeout on calls while this runs (a task of the
        owner's; without it each call gets a cancel scope instead). A call that overruns
        raises TimeoutError, within a quarter of the timeout (at most 0.25 s) after it."""
        if not self._timeout or self._deadlines is not None:
            return
        deadlines: dict[_Conn, float] = {}
        self._deadlines = deadlines
        tick = min(0.25, self._timeout / 4)
        try:
            while True:
                await anyio.sleep(tick)
                _expire(deadlines, time.monotonic())
        finally:
            self._deadlines = None

    async def command(self, *args: Any) -> Any:
        """One command's reply (an error reply raised as coredis raises it)."""
        reply = await self._call(_pack(args), None)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        """The replies of ``commands``, written at once: Redis runs them one after another,
        so a command after a blocking one (BLPOP) runs once that one returned. Error replies
        are in the list, not raised."""
        return await self._call(b"".join(map(_pack, commands)), None, len(commands) - 1)

    async def evalsha(self, keys: list[Any], args: list[Any],
                      replicas: int = 0, replica_timeout_ms: int = 0) -> Any:
        """The script's reply; with ``replicas``, ReplicationError unless that many replicas
        had the change within ``replica_timeout_ms`` (WAIT, in the same write)."""
        return await self._loaded_call(("EVALSHA", self._sha, len(keys), *keys, *args),
                                       replicas, replica_timeout_ms)

    async def fcall(self, keys: list[Any], args: list[Any],
                    replicas: int = 0, replica_timeout_ms: int = 0) -> Any:
        """The library's function's reply, as evalsha() (FCALL: Redis sets nothing up per
        call, ~4 µs less of its time than EVALSHA of the same code); the library is loaded
        when Redis lacks it (restarted, FUNCTION FLUSH)."""
        return await self._loaded_call(("FCALL", self._function, len(keys), *keys, *args),
                                       replicas, replica_timeout_ms)

    async def load(self) -> None:
        """Load the function library (FUNCTION LOAD REPLACE); an error reply is raised."""
        reply = await self._call(_pack(("FUNCTION", "LOAD", "REPLACE", self._library)), None)
        if isinstance(reply, Exception):
            raise reply

    async def _loaded_call(self, command: tuple[Any, ...], replicas: int,
                           replica_timeout_ms: int) -> Any:
        # EVALSHA or FCALL; when Redis lacks the script or the library (restarted, flushed),
        # load it, once, and call again
        # (the command's name, for the error when too few replicas had it in time)
        wait = (command[0], replicas, replica_timeout_ms) if replicas else None
        data = _pack(command)
        reply = await self._call(data, wait)
        if isinstance(reply, coredis.exceptions.NoScriptError):
            await self._call(_pack(("SCRIPT", "LOAD", self._script)), None)
            reply = await self._call(data, wait)
        elif isinstance(reply, coredis.exceptions.ResponseError) and \
                "Function not found" in str(reply):
            await self.load()
            reply = await self._call(data, wait)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _call(self, data: bytes, wait: tuple[str, int, int] | None, more: int = 0) -> Any:
        # data: packed commands, one, or 1 + more (a pipeline: the list of their replies)
        # wait: (the command's name, replicas, timeout in ms): WAIT for them in the same write
        if wait is not None:
            data += hiredis.pack_command(("WAIT", wait[1], wait[2]))
        conn = self._take_recent() or await self._take()
        deadlines = self._deadlines if conn.sock is not None else None
        try:
            if deadlines is not None and self._timeout:
                deadlines[conn] = time.monotonic() + self._timeout
                try:
                    reply = await self._exchange(conn, data, wait, more)
                finally:
                    deadlines.pop(conn, None)
            elif self._timeout:
                with anyio.fail_after(self._timeout):
                    reply = await self._exchange(conn, data, wait, more)
            else:
                reply = await self._exchange(conn, data, wait, more)
        except BaseException as e:
            await conn.close()
            if conn.expired:
                raise TimeoutError(f"no reply from Redis within {self._timeout} s") from None
            if isinstance(e, _LOST) and not isinstance(e, TimeoutError):
                raise coredis.exceptions.ConnectionError(f"Redis connection lost: {e!r}") \
                    from e
            raise
        if conn.generation == self._generation and len(self._idle) < MAX_IDLE and \
                not _read_only(reply, more):
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            await conn.close()
        return reply

    @staticmethod
    async def _exchange(conn: _Conn, data: bytes, wait: tuple[str, int, int] | None,
                        more: int) -> Any:
        rest = conn.send_nowait(data)
        if rest:
            await conn.send(rest)
        reply = await _reply(conn)
        if more:
            reply = [reply]
            for _ in range(more):
                reply.append(await _reply(conn))
        if wait is not None:
            replicated = await _reply(conn)
            if isinstance(replicated, int) and replicated < wait[1] \
                    and not isinstance(reply, Exception):
                reply = coredis.exceptions.ReplicationError(wait[0].encode(), wait[1], wait[2])
        return reply

    def _take_recent(self) -> _Conn | None:
        """An idle connection used a moment ago, or None (see _take())."""
        if self._idle and time.monotonic() - self._idle[-1].idle_since < RECENT:
            return self._idle.pop()
        return None

    async def _take(self) -> _Conn:
        while self._idle:
            conn = self._idle.pop()
            # (a connection used a moment ago is taken as it is: the check is a system call,
            # and a server that closed it just now fails this call as it would fail one
            # already sent)
            if time.monotonic() - conn.idle_since < RECENT or not conn.closed_by_peer():
                return conn
            await conn.close()
        return await self._open()

    async def _greet(self, conn: _Conn) -> None:
        for hello in self._hello:
            await conn.send(hello)
            reply = await _reply(conn)
            if isinstance(reply, Exception):
                raise reply

    async def _open(self) -> _Conn:
        generation = self._generation
        get_primary = getattr(self._pool, "get_primary_location", None)
        where: Any = "the primary" if get_primary else self._pool.location
        conn: _Conn | None = None
        try:
            with anyio.fail_after(self._connect_timeout) if self._connect_timeout \
                    else _no_deadline():
                if get_primary:
                    where = await get_primary()
                if isinstance(where, coredis.connection.UnixDomainSocketLocation):
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    conn = _Conn(sock, None, generation)
                    sock.setblocking(False)
                    await _connect(sock, where.path)
                elif self._ssl is None:
                    family = socket.AF_INET6 if ":" in where.host else socket.AF_INET
                    sock = socket.socket(family, socket.SOCK_STREAM)
                    conn = _Conn(sock, None, generation)
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    await _connect(sock, (where.host, where.port))
                else:
                    stream = await anyio.connect_tcp(where.host, where.port, tls=True,
                                                     ssl_context=self._ssl,
                                                     tls_standard_compatible=False)
                    conn = _Conn(None, stream, generation)
            await self._greet(conn)
        except BaseException as e:
            if conn is not None:
                await conn.close()
            if isinstance(e, _LOST) and not isinstance(e, TimeoutError):
                raise coredis.exceptions.ConnectionError(
                    f"cannot connect to Redis at {where}: {e}") from e
            raise
        self.connections += 1
        return conn


def _expire(deadlines: dict[_Conn, float], now: float) -> None:
    # (A loop in a function of its own, not inside the caller's try: an exception at its end
    # would skip that try's finally on Python 3.13; docs/design.md, Loops and signals.)
    for conn, deadline in list(deadlines.items()):
        if now > deadline and conn.sock is not None:
            del deadlines[conn]
            conn.expired = True  # mark, wake its waiter, close: no checkpoint
            conn.interrupt()
            conn.sock.close()


async def _connect(sock: socket.socket, address: Any) -> None:
    try:
        sock.connect(address)
    except BlockingIOError:
        await anyio.wait_writable(sock)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err)) from None


async def _reply(conn: _Conn) -> Any:
    reader, sock = conn.reader, conn.sock
    reply = reader.gets()
    while reply is False:
        # (the socket read inline, not in a method of _Conn: a coroutine less per call)
        if sock is None:
            assert conn.stream is not None
            reader.feed(await conn.stream.receive())
        else:
            if conn.on_asyncio:
                await _asyncio_readable(conn, sock)
            else:
                await anyio.wait_readable(sock)
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                raise anyio.EndOfStream
            reader.feed(data)
        reply = reader.gets()
    if isinstance(reply, hiredis.ReplyError):
        message = str(reply)
        if message.startswith("NOSCRIPT"):
            return coredis.exceptions.NoScriptError(message)
        return ERRORS.get(message.partition(" ")[0], coredis.exceptions.ResponseError)(message)
    return reply


async def _asyncio_readable(conn: _Conn, sock: socket.socket) -> None:
    """anyio.wait_readable() on asyncio, less what it costs there per wait: a pass of the
    event loop before waiting and an Event (with those, sharedfs on uvloop made 8-16% fewer
    creates per second)."""
    loop = asyncio.get_running_loop()
    fd = sock.fileno()
    waiter = conn.waiter = loop.create_future()
    loop.add_reader(fd, _wake, waiter)
    try:
        await waiter
    finally:
        if conn.waiter is waiter:  # (else interrupt() removed the reader)
            conn.waiter = None
            loop.remove_reader(fd)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _read_only(reply: Any, more: int) -> bool:
    """Whether a reply (a pipeline's: any of them) says the server became a replica."""
    if more:
        return any(isinstance(r, coredis.exceptions.ReadOnlyError) for r in reply)
    return isinstance(reply, coredis.exceptions.ReadOnlyError)


def _pack(command: tuple[Any, ...]) -> bytes:
    try:
        return hiredis.pack_command(command)
    except TypeError:  # bytearray, bool: what hiredis does not take
        return hiredis.pack_command(tuple(map(_plain, command)))


def _plain(arg: Any) -> Any:
    if isinstance(arg, (bytearray, memoryview)):
        return bytes(arg)
    if isinstance(arg, bool):
        return int(arg)
    if isinstance(arg, (str, bytes, int, float)):
        return arg
    raise TypeError(f"a Redis argument must be str, bytes, int or float, not {arg!r}")


@contextlib.contextmanager
def _no_deadline() -> Any:
    yield
