"""A throwaway redis-server on a unix socket in a directory, stopped by its PID (used by the
tests, the benchmark and `make demo`)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def redis_binary() -> str:
    """The redis-server on PATH; FileNotFoundError naming the package if there is none."""
    found = shutil.which("redis-server")
    if found is None:
        raise FileNotFoundError("redis-server is not installed (Debian: apt-get install "
                                "redis-server; make test and make demo install it)")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server on ``<dir>/redis.sock``; ``persistent`` turns on the append-only file
    with an fsync per write (appendfsync always), in ``dir``. ``port`` also listens on
    127.0.0.1 (replication and Sentinel need TCP); ``replica_of`` starts it as a replica."""

    def __init__(self, directory: Path, *, persistent: bool = False,
                 password: str | None = None, port: int = 0,
                 replica_of: int | None = None, tls: Path | None = None,
                 tls_clients: bool = False) -> None:
        self.dir = directory
        self.socket = directory / "redis.sock"
        self.persistent = persistent
        self.password = password
        self.port = port
        self.replica_of = replica_of
        self.tls = tls  # a directory from tls_files(): ``port`` then speaks TLS only
        self.tls_clients = tls_clients  # and wants client certificates
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """unix:// (rediss:// to the TLS port with ``tls``; the socket then stays for the
        tests' redis-cli)."""
        return f"rediss://127.0.0.1:{self.port}" if self.tls else f"unix://{self.socket}"

    def start(self) -> RedisServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        argv = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "777", "--dir", str(self.dir), "--save", "",
                "--appendonly", "yes" if self.persistent else "no",
                "--appendfsync", "always", "--daemonize", "no", "--logfile",
                str(self.dir / "redis.log")]
        if self.password:
            argv += ["--requirepass", self.password, "--masterauth", self.password]
        if self.tls:
            argv[argv.index("--port") + 1] = "0"
            argv += ["--tls-port", str(self.port), *tls_options(self.tls, self.tls_clients)]
        if self.replica_of:
            argv += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        if self.port:  # a replica's first copy starts at once (not after 5 s)
            argv += ["--repl-diskless-sync-delay", "0"]
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


def tls_files(directory: Path) -> Path:
    """A throwaway CA, a certificate for 127.0.0.1 and a client certificate signed by it,
    in ``directory`` (ca.crt, server.crt, server.key, client.crt, client.key), made with
    openssl."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for argv in (["req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
                  "-subj", "/CN=sharedfs test CA"],
                 ["req", *key, "-keyout", "server.key", "-out", "server.csr",
                  "-subj", "/CN=127.0.0.1"],
                 ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                  "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile",
                  "san.ext"],
                 ["req", *key, "-keyout", "client.key", "-out", "client.csr",
                  "-subj", "/CN=sharedfs test client"],
                 ["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                  "-CAcreateserial", "-out", "client.crt", "-days", "2"]):
        subprocess.run(["openssl", *argv], cwd=directory, check=True, capture_output=True,
                       timeout=60)
    return directory


def tls_options(tls: Path, clients: bool = False) -> list[str]:
    """redis-server options for TLS with the files of tls_files() (TLS to replicas and, for
    a sentinel, to the servers and the other sentinels too); ``clients``: clients must show
    a certificate signed by the CA (else they need none)."""
    return ["--tls-cert-file", str(tls / "server.crt"), "--tls-key-file",
            str(tls / "server.key"), "--tls-ca-cert-file", str(tls / "ca.crt"),
            "--tls-auth-clients", "yes" if clients else "no", "--tls-replication", "yes"]


@contextlib.contextmanager
def redis_server(directory: Path, **kw: object) -> Iterator[RedisServer]:
    server = RedisServer(directory, **kw).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


class SentinelGroup:
    """A primary, ``replicas`` replicas and three redis-sentinels watching them (service
    ``svc``), all on 127.0.0.1 ports, each in its own directory under ``directory``. A primary
    not answering for ``down_after`` ms is failed over. ``url`` is the redis+sentinel:// URL.
    ``password``: the servers' (requirepass); ``sentinel_password``: the sentinels' own;
    ``tls``: a directory from tls_files(): every port then speaks TLS only, and with
    ``tls_clients`` wants client certificates (the servers' own serve between them)."""

    SERVICE = "svc"

    def __init__(self, directory: Path, *, replicas: int = 1, down_after: int = 1000,
                 password: str | None = None, sentinel_password: str | None = None,
                 tls: Path | None = None, tls_clients: bool = False) -> None:
        self.dir = directory
        self.tls = tls
        self.tls_clients = tls_clients
        self.primary = RedisServer(directory / "primary", port=free_port(), password=password,
                                   tls=tls, tls_clients=tls_clients)
        self.replicas = [RedisServer(directory / f"replica{i}", port=free_port(),
                                     replica_of=self.primary.port, password=password, tls=tls,
                                     tls_clients=tls_clients)
                         for i in range(replicas)]
        self.password = password
        self.sentinel_password = sentinel_password
        self.down_after = down_after
        self.sentinel_ports: list[int] = []
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def servers(self) -> list[RedisServer]:
        return [self.primary, *self.replicas]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"{'rediss' if self.tls else 'redis'}+sentinel://{hosts}/{self.SERVICE}"

    def start(self) -> SentinelGroup:
        try:
            for server in self.servers:
                server.start()
            for i in range(3):
                d = self.dir / f"sentinel{i}"
                d.mkdir(parents=True, exist_ok=True)
                port = free_port()
                conf = d / "sentinel.conf"  # sentinel rewrites it: one each
                listen = f"port {port}\n"
                if self.tls:  # the same options as the servers', in a config file's form
                    opts = tls_options(self.tls, self.tls_clients)
                    listen = f"port 0\ntls-port {port}\n" + "".join(
                        f"{opts[k][2:]} {opts[k + 1]}\n" for k in range(0, len(opts), 2))
                conf.write_text(
                    listen + f"bind 127.0.0.1\ndir {d}\nlogfile {d / 'sentinel.log'}\n"
                    f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                    f"sentinel down-after-milliseconds {self.SERVICE} {self.down_after}\n"
                    f"sentinel failover-timeout {self.SERVICE} 10000\n"
                    f"sentinel parallel-syncs {self.SERVICE} 1\n"
                    + (f"sentinel auth-pass {self.SERVICE} {self.password}\n"
                       if self.password else "")
                    + (f"requirepass {self.sentinel_password}\n"
                       f"sentinel sentinel-pass {self.sentinel_password}\n"
                       if self.sentinel_password else ""))
                self.sentinels.append(subprocess.Popen(
                    [redis_binary(), str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                self.sentinel_ports.append(port)
            self._wait_settled(20)
        except BaseException:
            self.stop()
            raise
        return self

    def sentinel(self, *args: str, index: int = 0) -> str:
        """One command to a sentinel through redis-cli."""
        argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.sentinel_ports[index])]
        if self.sentinel_password:
            argv += ["--no-auth-warning", "-a", self.sentinel_password]
        if self.tls:
            argv += ["--tls", "--cacert", str(self.tls / "ca.crt")]
            if self.tls_clients:
                argv += ["--cert", str(self.tls / "client.crt"),
                         "--key", str(self.tls / "client.key")]
        return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    def primary_port(self) -> int | None:
        """The port the sentinels name as the primary's now (None: no answer yet)."""
        try:
            got = self.sentinel("sentinel", "get-master-addr-by-name", self.SERVICE).split()
        except subprocess.SubprocessError:
            return None
        return int(got[1]) if len(got) == 2 else None

    def _wait_settled(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._settled():
            if time.monotonic() > deadline:
                raise RuntimeError("the sentinels did not see the primary and its replicas")
            time.sleep(0.05)

    def _settled(self) -> bool:
        try:
            if self.primary.command("info", "replication").count("state=online") < \
                    len(self.replicas):
                return False
            return all(self._sentinel_sees_all(i) for i in range(len(self.sentinels)))
        except subprocess.SubprocessError:
            return False

    def _sentinel_sees_all(self, index: int) -> bool:
        seen = self.sentinel("sentinel", "replicas", self.SERVICE, index=index)
        others = self.sentinel("sentinel", "sentinels", self.SERVICE, index=index)
        return seen.count("flags\nslave\n") >= len(self.replicas) and \
            others.count("flags\nsentinel\n") >= len(self.sentinels) - 1

    def stop(self) -> None:
        """End every sentinel and server by its PID."""
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.sentinels.clear()
        for server in self.servers:
            server.stop()


@contextlib.contextmanager
def sentinel_group(directory: Path, **kw: Any) -> Iterator[SentinelGroup]:
    group = SentinelGroup(directory, **kw).start()
    try:
        yield group
    finally:
        group.stop()
