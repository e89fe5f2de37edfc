"""A throwaway redis-server on a unix socket in a directory, stopped by its PID (used by the
tests, the benchmark and `make demo`)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def redis_binary() -> str:
    """The redis-server on PATH; FileNotFoundError naming the package if there is none."""
    found = shutil.which("redis-server")
    if found is None:
        raise FileNotFoundError("redis-server is not installed (Debian: apt-get install "
                                "redis-server; make test and make demo install it)")
    return found


class RedisServer:
    """One redis-server on ``<dir>/redis.sock``; ``persistent`` turns on the append-only file
    with an fsync per write (appendfsync always), in ``dir``."""

    def __init__(self, directory: Path, *, persistent: bool = False,
                 password: str | None = None) -> None:
        self.dir = directory
        self.socket = directory / "redis.sock"
        self.persistent = persistent
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> RedisServer:
        argv = [redis_binary(), "--port", "0", "--unixsocket", str(self.socket),
                "--unixsocketperm", "777", "--dir", str(self.dir), "--save", "",
                "--appendonly", "yes" if self.persistent else "no",
                "--appendfsync", "always", "--daemonize", "no", "--logfile",
                str(self.dir / "redis.log")]
        if self.password:
            argv += ["--requirepass", self.password]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = (self.dir / "redis.log").read_text() if (self.dir / "redis.log").exists() \
                    else ""
                raise RuntimeError(f"redis-server did not start: {log[-2000:]}")
            time.sleep(0.01)
        return self

    def _answers(self) -> bool:
        import socket

        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(str(self.socket))
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
            return reply.startswith((b"+PONG", b"-NOAUTH"))
        return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """End the server by its PID (SIGTERM: a clean shutdown; SIGKILL: a crash)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()

    def command(self, *args: str) -> str:
        """One command through redis-cli (for tests that poke at the store directly)."""
        argv = ["redis-cli", "-s", str(self.socket)]
        if self.password:
            argv += ["--no-auth-warning", "-a", self.password]
        return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()


@contextlib.contextmanager
def redis_server(directory: Path, **kw: object) -> Iterator[RedisServer]:
    server = RedisServer(directory, **kw).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()
