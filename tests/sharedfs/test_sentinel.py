"""sharedfs behind Redis Sentinel: a primary, a replica and three sentinels (real processes on
127.0.0.1 ports). The primary is killed while two mounts write; the mounts follow the failover,
and with ``--wait-replicas 1`` no write they acknowledged is lost."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

# (conftest puts examples/sharedfs on sys.path)
from redis_server import RedisServer, SentinelGroup, free_port, sentinel_group, tls_files
from store import Store, StoreError

from sharedfs import connect, parse_sentinel_url

from .conftest import SHAREDFS, require_redis, sharedfs

pytestmark = pytest.mark.fuse

FILE_SIZE = 256 * 1024


def test_sentinel_url_parsing() -> None:
    sentinels, service, password = parse_sentinel_url(
        "redis+sentinel://:s%40cret@127.0.0.1:26379,[::1]:26380,host:1/my%20svc")
    assert [(s.host, s.port) for s in sentinels] == [("127.0.0.1", 26379), ("::1", 26380),
                                                     ("host", 1)]
    assert service == "my svc"
    assert password == "s@cret"
    assert parse_sentinel_url("redis+sentinel://h:1/svc")[2] is None
    for bad, says in [("redis+sentinel://h:1", "name the service"),
                      ("redis+sentinel://h:1/", "name the service"),
                      ("redis+sentinel://h:1/a/b", "name the service"),
                      ("redis+sentinel://h/svc", "'h' is not HOST:PORT"),
                      ("redis+sentinel://h:1,:2/svc", "':2' is not HOST:PORT"),
                      ("redis+sentinel://h:x/svc", "'h:x' is not HOST:PORT")]:
        with pytest.raises(ValueError, match=says):
            parse_sentinel_url(bad)


def test_a_bad_sentinel_url_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SHAREDFS), str(tmp_path), "--redis",
                           "redis+sentinel://127.0.0.1:26379"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "name the service after the sentinels (redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE)")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_a_demoted_primary_answers_eio_then_the_store_reconnects(tmp_path: Path,
                                                                 backend: str) -> None:
    """A primary turned into a replica while the store's connections stay open (a failover
    seen from the wrong side of a partition) refuses changes: EIO that says so, and the
    next call opens new connections, which reach whatever the address serves then."""
    require_redis()
    primary = RedisServer(tmp_path / "p", port=free_port()).start()
    try:
        replica = RedisServer(tmp_path / "r", port=free_port(),
                              replica_of=primary.port).start()
        try:
            async def main() -> None:
                async with connect(primary.url) as client:
                    store = Store(client, "demoted")
                    await store.init(0, 0)
                    await store.mknod(1, b"before", 0o100644, 0, 0, 0)
                    wait_for("the replica's copy", lambda: replica.command(
                        "hexists", "{demoted}:d:1", "before") == "1", 30)
                    replica.command("replicaof", "no", "one")  # the failover
                    primary.command("replicaof", "127.0.0.1", str(replica.port))
                    with pytest.raises(StoreError) as e:
                        await store.mknod(1, b"refused", 0o100644, 0, 0, 0)
                    assert e.value.errno == errno.EIO and e.value.passing
                    assert "answered as a replica" in str(e.value)
                    wait_for("the old primary's copy", lambda: "master_link_status:up" in
                             primary.command("info", "replication"), 30)
                    primary.command("replicaof", "no", "one")  # back as it was
                    await store.mknod(1, b"after", 0o100644, 0, 0, 0)
                    assert sorted(n for n, _ in await store.listdir(1))[2:] == \
                        [b"after", b"before"]

            anyio.run(main, backend=backend)
        finally:
            replica.stop()
    finally:
        primary.stop()


class Writer(threading.Thread):
    """Writes FILE_SIZE files into one mount until stopped; ``acked`` holds every file whose
    open, write and close all succeeded (name -> digest), ``failed`` counts the others."""

    def __init__(self, mnt: Path, tag: str) -> None:
        super().__init__(daemon=True)
        self.mnt, self.tag = mnt, tag
        self.acked: dict[str, str] = {}
        self.acked_bytes = 0
        self.failed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            name = f"{self.tag}-{i}"
            data = (name.encode() + b".") * (FILE_SIZE // (len(name) + 1) + 1)
            data = data[:FILE_SIZE]
            try:
                with open(self.mnt / name, "wb") as fh:
                    fh.write(data)
            except OSError:
                self.failed += 1
                time.sleep(0.01)
                continue
            self.acked[name] = hashlib.sha1(data).hexdigest()
            self.acked_bytes += len(data)


def wait_for(what: str, cond: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@contextlib.contextmanager
def writers(*mounts: Path) -> Iterator[list[Writer]]:
    ws = [Writer(m, f"w{i}") for i, m in enumerate(mounts)]
    for w in ws:
        w.start()
    try:
        yield ws
    finally:
        for w in ws:
            w.stop.set()
        for w in ws:
            w.join(60)


def lost_after_failover(tmp_path: Path, prefix: str, *extra: str) -> tuple[int, int]:
    """Two mounts write; the replica falls behind (stopped: the primary keeps what it cannot
    send in its buffers); the primary is killed; the sentinels promote a replica; the mounts
    go on writing through it. Return (writes acknowledged, those a mount started afterwards
    finds missing or wrong)."""
    require_redis()
    # two replicas: after the failover one is left to acknowledge (WAIT) the writes
    with sentinel_group(tmp_path / "redis", replicas=2) as group:
        procs = [r.proc for r in group.replicas]
        with sharedfs(group, prefix, *extra) as a, sharedfs(group, prefix, *extra) as b, \
                writers(a, b) as ws:
            wait_for("writes", lambda: all(len(w.acked) >= 5 for w in ws), 30)
            before = sum(w.acked_bytes for w in ws)
            for proc in procs:  # both fall behind: whichever is promoted lacks the writes
                assert proc is not None
                proc.send_signal(signal.SIGSTOP)
            try:
                # more than the sockets between them hold, or (writes waiting for the
                # replica) long enough for several to time out
                with contextlib.suppress(AssertionError):
                    wait_for("writes the replica misses",
                             lambda: sum(w.acked_bytes for w in ws) - before > 32 << 20, 4)
                group.primary.stop(signal.SIGKILL)
            finally:
                for proc in procs:
                    assert proc is not None
                    proc.send_signal(signal.SIGCONT)
            ports = {r.port for r in group.replicas}
            wait_for("the failover", lambda: group.primary_port() in ports, 60)
            counts = [len(w.acked) for w in ws]
            wait_for("writes through the new primary",
                     lambda: all(len(w.acked) >= n + 3 for w, n in zip(ws, counts, strict=True)),
                     60)
        acked = {k: v for w in ws for k, v in w.acked.items()}
        lost = 0
        with sharedfs(group, prefix) as c:
            for name, digest in acked.items():
                try:
                    got = hashlib.sha1((c / name).read_bytes()).hexdigest()
                except OSError:
                    got = ""
                lost += got != digest
    return len(acked), lost


def test_failover_loses_no_acknowledged_write_with_wait(tmp_path: Path, prefix: str) -> None:
    acked, lost = lost_after_failover(tmp_path, prefix, "--wait-replicas", "1")
    assert acked > 10
    assert lost == 0, f"{lost} of {acked} acknowledged writes lost"


def test_failover_without_wait_loses_acknowledged_writes(tmp_path: Path, prefix: str) -> None:
    """The control: the same failover without --wait-replicas loses writes the mounts
    acknowledged (so the test above would see a loss)."""
    acked, lost = lost_after_failover(tmp_path, prefix)
    assert lost > 0, f"none of {acked} acknowledged writes lost: the replica did not lag"


def test_sentinels_and_servers_with_passwords(tmp_path: Path, prefix: str) -> None:
    """Sentinels that require a password of their own (SHAREDFS_SENTINEL_PASSWORD) in front of
    servers that require another (SHAREDFS_REDIS_PASSWORD): a mount works, and goes on
    working through a failover; without the sentinels' password it does not start and says
    why in one line."""
    require_redis()
    passwords = {"SHAREDFS_REDIS_PASSWORD": "data-secret",
                 "SHAREDFS_SENTINEL_PASSWORD": "sentinel-secret"}
    with sentinel_group(tmp_path / "group", replicas=2, password="data-secret",
                        sentinel_password="sentinel-secret") as group:  # (one left to WAIT for)
        with sharedfs(group, prefix, "--wait-replicas", "1", env=passwords) as m:
            writes_through_a_failover(group, m)
        proc = subprocess.run(
            [sys.executable, str(SHAREDFS), str(tmp_path), "--redis", group.url],
            env={**os.environ, "SHAREDFS_REDIS_PASSWORD": "data-secret",
                 "SHAREDFS_SENTINEL_PASSWORD": ""},
            capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].endswith(
            "(the password: SHAREDFS_REDIS_PASSWORD; the sentinels' own: "
            "SHAREDFS_SENTINEL_PASSWORD)"), proc.stderr


def writes_through_a_failover(group: SentinelGroup, m: Path) -> None:
    """A file written through ``m`` (with --wait-replicas 1), the primary killed, a write
    through the new primary, and both files read back."""
    (m / "before").write_bytes(b"kept")  # on a replica too (WAIT)
    old = group.primary.port
    group.primary.stop(signal.SIGKILL)
    wait_for("a new primary", lambda: group.primary_port() not in (None, old), 60)

    def write_after() -> bool:
        try:
            (m / "after").write_bytes(b"new")
        except OSError:
            return False
        return True

    wait_for("a write through the new primary", write_after, 60)
    assert (m / "before").read_bytes() == b"kept"
    assert (m / "after").read_bytes() == b"new"


def test_a_server_over_tls(tmp_path: Path, prefix: str) -> None:
    """rediss:// trusting the CA named by SHAREDFS_REDIS_CA (the server's port speaks TLS
    only): a mount works."""
    require_redis()
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (it makes the test's certificates)")
    tls = tls_files(tmp_path / "tls")
    server = RedisServer(tmp_path / "server", port=free_port(), tls=tls).start()
    try:
        with sharedfs(server, prefix, env={"SHAREDFS_REDIS_CA": str(tls / "ca.crt")}) as m:
            (m / "f").write_bytes(b"over TLS")
            assert (m / "f").read_bytes() == b"over TLS"
        assert server.command("exists", f"{{{prefix}}}:i:2") == "1"
    finally:
        server.stop()


def test_a_server_that_wants_client_certificates(tmp_path: Path, prefix: str) -> None:
    """Mutual TLS (the server's tls-auth-clients yes): with the client certificate and key
    named by SHAREDFS_REDIS_CERT and SHAREDFS_REDIS_KEY a mount works; without them, or with
    a key that cannot be read, it does not start and says why in one line."""
    require_redis()
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (it makes the test's certificates)")
    tls = tls_files(tmp_path / "tls")
    server = RedisServer(tmp_path / "server", port=free_port(), tls=tls,
                         tls_clients=True).start()
    ca = {"SHAREDFS_REDIS_CA": str(tls / "ca.crt")}
    try:
        with sharedfs(server, prefix, env={**ca, "SHAREDFS_REDIS_CERT": str(tls / "client.crt"),
                                           "SHAREDFS_REDIS_KEY": str(tls / "client.key")}) as m:
            (m / "f").write_bytes(b"mutual")
            assert (m / "f").read_bytes() == b"mutual"
        assert server.command("exists", f"{{{prefix}}}:i:2") == "1"

        def refused(env: dict[str, str]) -> str:
            proc = subprocess.run(
                [sys.executable, str(SHAREDFS), str(tmp_path), "--redis", server.url,
                 "--prefix", prefix], env={**os.environ, **env}, capture_output=True,
                text=True, timeout=60)
            assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            return proc.stderr

        said = refused(ca)
        assert "certificate" in said and "SHAREDFS_REDIS_CERT" in said, said
        said = refused({**ca, "SHAREDFS_REDIS_CERT": str(tls / "client.crt"),
                        "SHAREDFS_REDIS_KEY": str(tls / "missing.key")})
        assert "SHAREDFS_REDIS_KEY" in said and "missing.key" in said, said
    finally:
        server.stop()


@pytest.mark.parametrize("mutual", [False, True])
def test_sentinels_and_servers_over_tls(tmp_path: Path, prefix: str, mutual: bool) -> None:
    """rediss+sentinel://: TLS to the sentinels and to the servers, whose ports speak TLS
    only, trusting the CA named by SHAREDFS_REDIS_CA: a mount works, also through a
    failover; without that CA it does not start and says why in one line. ``mutual``: every
    port wants a client certificate, SHAREDFS_REDIS_CERT and SHAREDFS_REDIS_KEY give it."""
    require_redis()
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (it makes the test's certificates)")
    tls = tls_files(tmp_path / "tls")
    env = {"SHAREDFS_REDIS_CA": str(tls / "ca.crt")}
    if mutual:
        env |= {"SHAREDFS_REDIS_CERT": str(tls / "client.crt"),
                "SHAREDFS_REDIS_KEY": str(tls / "client.key")}
    with sentinel_group(tmp_path / "group", replicas=2, tls=tls, tls_clients=mutual) as group:
        assert group.url.startswith("rediss+sentinel://")
        with sharedfs(group, prefix, "--wait-replicas", "1", env=env) as m:
            writes_through_a_failover(group, m)
        proc = subprocess.run(
            [sys.executable, str(SHAREDFS), str(tmp_path), "--redis", group.url],
            env={**os.environ, **env, "SHAREDFS_REDIS_CA": ""}, capture_output=True,
            text=True, timeout=60)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        assert "certificate" in proc.stderr.strip().splitlines()[-1], proc.stderr
