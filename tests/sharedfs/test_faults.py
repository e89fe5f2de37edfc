"""sharedfs under faults: Redis down and back, a gap in the change log, crashes of a mount and
of Redis, corrupt data. It keeps serving and loses nothing it acknowledged."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest

# (conftest puts examples/sharedfs on sys.path)
from store import fsck

from sharedfs import connect

from ..util import eventually
from .conftest import SHAREDFS, RedisServer, redis_server, require_redis, sharedfs

pytestmark = pytest.mark.fuse


def read(p: Path) -> bytes:
    with open(p, "rb") as fh:
        return fh.read()


def write(p: Path, data: bytes) -> None:
    with open(p, "wb") as fh:
        fh.write(data)


def errno_of(fn: object) -> int | None:
    try:
        fn()  # type: ignore[operator]
    except OSError as e:
        return e.errno
    return None


def check_store(redis: RedisServer, prefix: str) -> list[str]:
    async def run() -> list[str]:
        async with connect(redis.url) as client:
            return await fsck(client, prefix)

    return anyio.run(run)


def stopped(pid: int) -> bool:
    """Whether every thread of process ``pid`` is stopped (state T in /proc)."""
    tasks = Path(f"/proc/{pid}/task")
    return all((t / "stat").read_text().rpartition(")")[2].split()[0] == "T"
               for t in tasks.iterdir())


def test_outage_answers_eio_then_the_mounts_recover(tmp_path: Path, prefix: str) -> None:
    require_redis()
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    (tmp_path / "redis").mkdir()
    with redis_server(tmp_path / "redis", persistent=True) as redis, \
            sharedfs(redis, prefix, log=log_a) as a, sharedfs(redis, prefix, log=log_b) as b:
        write(a / "f", b"v1")
        write(a / "g", b"never opened by B")
        assert read(b / "f") == b"v1"
        fd = os.open(b / "f", os.O_RDONLY)
        os.stat(b / "f")  # (a read leaves the atime to be fetched: fetch it now)
        os.stat(b / "g")
        redis.stop()  # a clean shutdown: the append-only file keeps everything
        assert errno_of(lambda: os.stat(a / "not-cached")) == errno.EIO
        assert errno_of(lambda: write(a / "new", b"x")) == errno.EIO
        assert errno_of(lambda: os.listdir(a)) == errno.EIO
        assert errno_of(lambda: read(b / "g")) == errno.EIO  # a first open reaches the store
        # what the kernel cached is still served: attributes, and pages of an open file
        assert os.stat(b / "f").st_size == 2
        assert os.pread(fd, 10, 0) == b"v1"
        os.close(fd)
        time.sleep(1.5)  # the followers retry meanwhile
        redis.start()
        write(a / "f", b"v2")  # the mount reconnected by itself
        assert eventually(lambda: read(b / "f") == b"v2")  # and so did the other's follower
        assert sorted(os.listdir(b)) == ["f", "g"]
        # a second outage is reported again: the first one ended when Redis answered
        redis.stop()
        assert errno_of(lambda: os.stat(a / "not-cached-either")) == errno.EIO
        redis.start()
        write(a / "f", b"v3")
    for log in (log_a, log_b):
        text = log.read_text()
        assert "Traceback" not in text, text
    text = log_a.read_text()
    # once per outage, no flood; and each end said once
    assert text.count("Redis unreachable") == 2, text
    assert text.count("Redis answers again") == 2, text


def kill_follower_connection(redis: RedisServer, pid: int) -> None:
    """Drop the follower's blocking connection of the sharedfs process ``pid``."""
    for line in redis.command("CLIENT", "LIST").splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if fields.get("name") == f"sharedfs-{pid}-follower":
            redis.command("CLIENT", "KILL", "ID", fields["id"])
            return
    raise AssertionError(f"no follower connection of {pid}")


def test_a_gap_in_the_log_invalidates_everything(redis: RedisServer, prefix: str) -> None:
    """Records a mount missed were trimmed: it cannot know what changed, so it invalidates
    everything its kernel holds from the store."""
    procs: list[subprocess.Popen[bytes]] = []
    with sharedfs(redis, prefix) as a, sharedfs(redis, prefix, procs=procs) as b:
        os.mkdir(a / "d")
        write(a / "d" / "f", b"old")
        for _ in range(2):
            assert read(b / "d" / "f") == b"old"  # cached in B's kernel
            assert os.path.exists(b / "d" / "f")
        b_pid = procs[0].pid
        os.kill(b_pid, signal.SIGSTOP)
        try:
            kill_follower_connection(redis, b_pid)  # B reads nothing more until it reconnects
            with open(a / "d" / "f", "r+b") as fh:
                fh.write(b"NEW")
            os.rename(a / "d" / "f", a / "d" / "g")
            redis.command("XTRIM", "{" + prefix + "}:log", "MAXLEN", "0")  # lost for B
            write(a / "other", b"x")  # the next record B will see: its sequence has a gap
        finally:
            os.kill(b_pid, signal.SIGCONT)
        assert eventually(lambda: not os.path.exists(b / "d" / "f"))
        assert read(b / "d" / "g") == b"NEW"


def test_a_store_restored_from_a_backup_is_shown_as_it_is(tmp_path: Path, prefix: str) -> None:
    """Redis comes back with an older state (a backup restored): the sequence number went back,
    so each mount invalidates everything and shows the restored files, not its cache."""
    require_redis()
    data = tmp_path / "redis"
    data.mkdir()
    redis = RedisServer(data, persistent=True).start()
    try:
        with sharedfs(redis, prefix) as a, sharedfs(redis, prefix) as b:
            write(a / "f", b"backed up")
            assert read(b / "f") == b"backed up"
            redis.stop()
            shutil.copytree(data / "appendonlydir", tmp_path / "backup")
            redis.start()
            write(a / "f", b"after the backup")
            write(a / "g", b"new")
            assert eventually(lambda: read(b / "f") == b"after the backup")
            time.sleep(0.5)  # B's follower has applied A's records: what B caches now stays
            os.stat(b / "g")
            os.stat(b / "f")  # (a read leaves the atime to be fetched: fetch it now)
            redis.stop()
            shutil.rmtree(data / "appendonlydir")
            shutil.copytree(tmp_path / "backup", data / "appendonlydir")
            redis.start()
            # B's kernel cached g and f's new size for an hour: only invalidation shows this
            assert eventually(lambda: not os.path.exists(b / "g"))
            assert eventually(lambda: os.stat(b / "f").st_size == len(b"backed up"))
            assert read(b / "f") == b"backed up"
    finally:
        redis.stop()


def test_a_restored_store_never_gives_an_open_file_another_files_data(tmp_path: Path,
                                                                     prefix: str) -> None:
    """Redis goes back to a backup taken before g existed; the next file created gets g's
    inode number. A descriptor B kept open on g must not read or write that new file: ESTALE,
    and one log line saying why."""
    require_redis()
    data = tmp_path / "redis"
    data.mkdir()
    log = tmp_path / "b.log"
    redis = RedisServer(data, persistent=True).start()
    try:
        with sharedfs(redis, prefix) as a, sharedfs(redis, prefix, log=log) as b:
            write(a / "f", b"backed up")
            redis.stop()
            shutil.copytree(data / "appendonlydir", tmp_path / "backup")
            redis.start()
            write(a / "g", b"g's data")
            g_ino = os.stat(a / "g").st_ino
            fd = os.open(b / "g", os.O_RDWR | os.O_DIRECT)  # (O_DIRECT: every read asks)
            try:
                redis.stop()
                shutil.rmtree(data / "appendonlydir")
                shutil.copytree(tmp_path / "backup", data / "appendonlydir")
                redis.start()
                assert eventually(lambda: errno_of(lambda: write(a / "h", b"h's data")) is None)
                assert os.stat(a / "h").st_ino == g_ino  # the number was given again
                buf = bytearray(4096)
                assert errno_of(lambda: os.preadv(fd, [buf], 0)) == errno.ESTALE
                assert errno_of(lambda: os.pwrite(fd, b"x" * 4096, 0)) == errno.ESTALE
            finally:
                os.close(fd)
            assert read(a / "h") == b"h's data" and read(b / "h") == b"h's data"
    finally:
        redis.stop()
    text = log.read_text()
    assert text.count("the store went back") == 1 and "Traceback" not in text


def test_acknowledged_writes_survive_crashes(tmp_path: Path, prefix: str) -> None:
    """write() returns once Redis applied the change; with appendfsync always that survives a
    SIGKILL of the mount and then of Redis itself."""
    require_redis()
    (tmp_path / "redis").mkdir()
    redis = RedisServer(tmp_path / "redis", persistent=True).start()
    try:
        procs: list[subprocess.Popen[bytes]] = []
        with sharedfs(redis, prefix, procs=procs, returncode=None) as a:
            fd = os.open(a / "synced", os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(fd, b"fsynced and closed")
            os.fsync(fd)
            os.close(fd)
            fd = os.open(a / "open", os.O_CREAT | os.O_WRONLY, 0o644)
            os.write(fd, b"written, still open")  # no fsync, never closed
            procs[0].kill()
            procs[0].wait(10)
            with contextlib.suppress(OSError):
                os.close(fd)  # ENOTCONN: the mount is gone
        assert procs[0].returncode == -signal.SIGKILL
        redis.stop(signal.SIGKILL)  # a crash: nothing but the append-only file remains
        redis.start()
        with sharedfs(redis, prefix) as c:
            assert read(c / "synced") == b"fsynced and closed"
            assert read(c / "open") == b"written, still open"
        assert check_store(redis, prefix) == []
    finally:
        redis.stop()


def test_a_killed_mount_leaves_the_others_serving_and_the_store_consistent(
        redis: RedisServer, prefix: str) -> None:
    procs: list[subprocess.Popen[bytes]] = []
    with sharedfs(redis, prefix, "--heartbeat", "1") as b, \
            sharedfs(redis, prefix, "--heartbeat", "1", procs=procs, returncode=None) as a:
        stop = threading.Event()
        done: dict[int, int] = {}  # thread -> the iterations it began
        progress = [0, 0, 0]  # thread -> the iterations it finished so far

        def busy(k: int) -> None:  # creates, writes, renames and unlinks through A
            i = 0
            try:
                while not stop.is_set():
                    p = a / f"w{k}-{i}"
                    write(p, os.urandom(5000))
                    os.rename(p, a / f"r{k}-{i}")
                    if i % 2:
                        os.unlink(a / f"r{k}-{i}")
                    i += 1
                    progress[k] = i
            except OSError:
                pass  # the mount died under us
            done[k] = i

        fd = os.open(a / "held", os.O_CREAT | os.O_RDWR, 0o644)
        os.unlink(a / "held")  # unlinked, open: an orphan that A holds
        threads = [threading.Thread(target=busy, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        assert eventually(lambda: min(progress) > 5, timeout=30), progress
        procs[0].kill()
        for t in threads:
            t.join(30)
        stop.set()
        with contextlib.suppress(OSError):
            os.close(fd)  # ENOTCONN: A is gone
        assert len(done) == 3 and min(done.values()) > 5
        # sharedfs started again on A's dead mountpoint: one line naming the fix
        proc = subprocess.run([sys.executable, str(SHAREDFS), str(a), "--redis", redis.url,
                               "--prefix", prefix], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert f"fusermount3 -u {a}" in proc.stderr
        # B keeps serving, and sees everything A finished
        write(b / "after", b"fine")
        assert read(b / "after") == b"fine"
        names = set(os.listdir(b))
        assert {f"r0-{i}" for i in range(0, done[0] - 1, 2)} <= names
        # A's heartbeat expires, B's sweep frees the orphan A held; nothing half-done
        assert eventually(lambda: check_store(redis, prefix) == [], timeout=10), \
            check_store(redis, prefix)
        # and forgets A's follower: B alone is rung
        followers = "{" + prefix + "}:followers"
        assert eventually(lambda: redis.command("SCARD", followers) == "1", timeout=10)



def test_a_mount_killed_mid_truncate_leaves_its_pages_to_another(redis: RedisServer,
                                                                   prefix: str) -> None:
    """Mount A truncates a 136 MiB file to 66 MiB (too much for one script: the size is set
    and the pages past it marked, then dropped in parts) and is stopped, then killed, between
    the parts. fsck names the pages left and A; once A's heartbeat expires B's sweep drops
    them, B's stat shows st_blocks without them, and the store is consistent."""
    mib = 1 << 20
    procs: list[subprocess.Popen[bytes]] = []
    key = f"{{{prefix}}}:i:"
    with sharedfs(redis, prefix, "--heartbeat", "1") as b, \
            sharedfs(redis, prefix, "--heartbeat", "1", procs=procs, returncode=None) as a:
        with open(a / "big", "wb") as fh:
            for _ in range(136):
                fh.write(b"x" * mib)
        ino = os.stat(a / "big").st_ino
        marked = threading.Event()

        def watch() -> None:  # A stopped as soon as Redis holds the mark
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(redis.socket))
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    s.sendall(f"HEXISTS {key}{ino} g\r\n".encode())
                    if s.recv(16) == b":1\r\n":
                        procs[0].send_signal(signal.SIGSTOP)
                        marked.set()
                        return

        def cut() -> None:
            with contextlib.suppress(OSError):  # ENOTCONN once A is killed
                os.truncate(a / "big", 66 * mib)

        threads = [threading.Thread(target=watch), threading.Thread(target=cut)]
        for t in threads:
            t.start()
        try:
            assert marked.wait(60)
            assert eventually(lambda: stopped(procs[0].pid), timeout=10)
            problems = check_store(redis, prefix)
            assert len(problems) == 1 and f"inode {ino}: " in problems[0] and \
                "not dropped yet (a large truncate by mount" in problems[0], problems
        finally:
            procs[0].kill()
            procs[0].send_signal(signal.SIGCONT)
            for t in threads:
                t.join(30)
        assert eventually(lambda: os.stat(b / "big").st_blocks == 66 * mib // 512,
                          timeout=15), (os.stat(b / "big"), check_store(redis, prefix))
        assert os.stat(b / "big").st_size == 66 * mib
        assert check_store(redis, prefix) == []
        with open(b / "big", "rb") as fh:
            fh.seek(66 * mib - 3)
            assert fh.read() == b"xxx"



def test_a_large_truncate_interrupted_halfway_still_drops_its_pages(redis: RedisServer,
                                                                    prefix: str) -> None:
    """The process truncating a 136 MiB file to 66 MiB is killed once the size is set and the
    drop of the pages past it began (the kernel sends INTERRUPT, and waits for the answer):
    the mount finishes the drop before it answers, so once the process is gone nothing is
    left for a sweep, and the file reads right."""
    mib = 1 << 20
    key = f"{{{prefix}}}:i:"
    with sharedfs(redis, prefix) as a:
        with open(a / "big", "wb") as fh:
            for _ in range(136):
                fh.write(b"x" * mib)
        ino = os.stat(a / "big").st_ino
        client = subprocess.Popen([sys.executable, "-c",
                                   f"import os; os.truncate({str(a / 'big')!r}, {66 * mib})"])
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(redis.socket))
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and client.poll() is None:
                    s.sendall(f"HEXISTS {key}{ino} g\r\n".encode())
                    if s.recv(16) == b":1\r\n":
                        client.kill()
                        break
                else:
                    pytest.fail("the truncate ended before its pages were marked")
        finally:
            client.kill()
            client.wait(30)
        assert check_store(redis, prefix) == []
        st = os.stat(a / "big")
        assert st.st_size == 66 * mib and st.st_blocks == 66 * mib // 512


def test_bad_input_gets_an_errno_and_the_mount_keeps_serving(tmp_path: Path, redis: RedisServer,
                                                             prefix: str) -> None:
    log = tmp_path / "fs.log"
    with sharedfs(redis, prefix, "--timeout", "0", log=log) as a:
        write(a / "f", b"x")
        fd = os.open(a / "f", os.O_RDWR)
        try:
            assert errno_of(lambda: os.pwrite(fd, b"x", 1 << 50)) == errno.EFBIG
            assert errno_of(lambda: os.truncate(a / "f", (1 << 50) + 1)) == errno.EFBIG
        finally:
            os.close(fd)
        assert errno_of(lambda: os.setxattr(a / "f", "user." + "n" * 251, b"v")) == errno.ERANGE
        assert errno_of(lambda: os.setxattr(a / "f", "user.big", b"v" * 70000)) == errno.E2BIG
        ino = os.stat(a / "f").st_ino
        redis.command("HSET", "{" + prefix + "}:i:" + str(ino), "size", "garbage")
        assert errno_of(lambda: os.stat(a / "f")) == errno.EIO  # (timeout 0: asks each time)
        assert errno_of(lambda: os.stat(a / "f")) == errno.EIO
        write(a / "g", b"still serving")
        assert read(a / "g") == b"still serving"
    text = log.read_text()
    # one line per request that met the corrupt inode (a stat may be a revalidating lookup,
    # which lists the entry with placeholder attributes, and a getattr, which answers EIO)
    assert "Traceback" not in text and 2 <= text.count("bad field size") <= 6, text


def test_memory_limits(tmp_path: Path, redis: RedisServer, prefix: str) -> None:
    """An evicting Redis is refused at startup (it deletes keys of files when full); a full
    Redis answers ENOSPC and the mount keeps serving; statfs shows Redis's memory."""
    redis.command("CONFIG", "SET", "maxmemory", str(64 << 20))
    redis.command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    proc = subprocess.run([sys.executable, str(SHAREDFS), str(tmp_path), "--redis", redis.url,
                           "--prefix", prefix], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("sharedfs: Redis at") and \
        "maxmemory-policy allkeys-lru" in proc.stderr and len(proc.stderr.splitlines()) == 1
    redis.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
    used = int(redis.command("INFO", "memory").split("used_memory:")[1].split()[0])
    limit = used + (4 << 20)
    redis.command("CONFIG", "SET", "maxmemory", str(limit))
    with sharedfs(redis, prefix) as m:
        st = os.statvfs(m)
        assert st.f_blocks * st.f_frsize == limit // 4096 * 4096
        assert 0 < st.f_bavail * st.f_frsize <= 4 << 20
        written = 0
        with open(m / "big", "wb", buffering=0) as fh:
            with pytest.raises(OSError) as e:
                for _ in range(64):  # 64 MiB would be far past the limit
                    written += fh.write(b"x" * (1 << 20))
        assert e.value.errno == errno.ENOSPC
        assert 0 < written < 8 << 20
        assert os.stat(m / "big").st_size == written  # acknowledged is what is there
        assert read(m / "big")[:10] == b"x" * 10 and os.listdir(m) == ["big"]
        # statfs tells Redis's memory: nearly full now (Redis shrinks the connections' query
        # buffers of the last writes on its own schedule: what is free moves by about 1 MiB)
        free = os.statvfs(m).f_bavail * 4096
        used = int(redis.command("INFO", "memory").split("used_memory:")[1].split()[0])
        assert free < 2 << 20 and abs(free - max(0, limit - used)) < 512 << 10
    assert check_store(redis, prefix) == []


def test_a_corrupt_record_leaves_its_directory_listable_and_the_file_removable(
        tmp_path: Path, redis: RedisServer, prefix: str) -> None:
    log = tmp_path / "fs.log"
    with sharedfs(redis, prefix) as a:
        os.mkdir(a / "d")
        for name in ("a", "bad", "c"):
            write(a / "d" / name, b"x")
        ino = os.stat(a / "d" / "bad").st_ino
        for field in ("size", "mode", "nlink"):  # every field a listing and unlink use
            redis.command("HSET", "{" + prefix + "}:i:" + str(ino), field, "garbage")
        with sharedfs(redis, prefix, log=log) as b:  # a mount that never saw the files
            assert sorted(os.listdir(b / "d")) == ["a", "bad", "c"]
            assert os.stat(b / "d" / "a").st_size == 1
            assert errno_of(lambda: os.stat(b / "d" / "bad")) == errno.EIO  # not made up
            os.unlink(b / "d" / "bad")
            assert sorted(os.listdir(b / "d")) == ["a", "c"]
            assert sorted(os.listdir(a / "d")) == ["a", "c"]
    text = log.read_text()
    assert "Traceback" not in text and "bad field mode (listed with placeholder" in text
    assert check_store(redis, prefix) == []


def test_a_redis_restarted_empty_says_so(tmp_path: Path, redis: RedisServer,
                                         prefix: str) -> None:
    """Not ENOENT on the root as if every file were deleted: EIO and one line saying why,
    also after the outage of the restart was reported (its own line, not in place of it)."""
    log = tmp_path / "fs.log"
    with sharedfs(redis, prefix, log=log) as m:
        write(m / "f", b"x")
        redis.stop()
        assert errno_of(lambda: os.stat(m / "during-the-outage")) == errno.EIO
        redis.start()  # no persistence: empty
        assert eventually(lambda: errno_of(lambda: os.listdir(m)) == errno.EIO)
        assert errno_of(lambda: write(m / "g", b"y")) == errno.EIO
        assert errno_of(lambda: os.stat(m / "h")) == errno.EIO
    text = log.read_text()
    assert text.count("holds no file system") == 1 and "Traceback" not in text
    assert text.count("Redis unreachable") == 1


def test_another_store_behind_the_same_url_is_told_apart(tmp_path: Path, redis: RedisServer,
                                                         prefix: str) -> None:
    """Redis emptied and a new file system made under the same prefix (its own inode 2, another
    file): the mount answers EIO with one line saying so, never the other file system's
    names or data, also through a file it holds open."""
    log = tmp_path / "fs.log"
    with sharedfs(redis, prefix, log=log) as m:
        write(m / "mine", b"my data")
        mine = os.stat(m / "mine").st_ino
        fh = open(m / "mine", "rb")
        try:
            redis.command("FLUSHALL")
            with sharedfs(redis, prefix) as other:  # mkfs of another file system
                write(other / "theirs", b"their data")
                assert os.stat(other / "theirs").st_ino == mine  # the number names theirs now
            assert eventually(lambda: errno_of(lambda: os.listdir(m)) == errno.EIO)
            assert errno_of(lambda: os.stat(m / "theirs")) == errno.EIO
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            try:
                got = os.pread(fh.fileno(), 100, 0)
            except OSError as e:
                assert e.errno == errno.EIO
            else:
                assert got == b"my data"  # what this kernel cached, never theirs
            assert errno_of(lambda: write(m / "new", b"z")) == errno.EIO
        finally:
            fh.close()
    text = log.read_text()
    assert text.count("another file system answers") == 1 and "Traceback" not in text


def test_a_write_that_answered_eio_is_never_applied_later(tmp_path: Path, redis: RedisServer,
                                                         prefix: str) -> None:
    """Redis stalls (here a script that runs 7 s) past the call timeout: the write answers
    EIO, and when Redis gets to the queued call it refuses it instead of applying it."""
    redis.command("CONFIG", "SET", "busy-reply-threshold", "20000")  # others wait, no BUSY
    with sharedfs(redis, prefix) as m:
        write(m / "f", b"before")
        fd = os.open(m / "f", os.O_WRONLY)
        try:
            stall = threading.Thread(target=redis.command, args=(
                "EVAL", "local s = tonumber(redis.call('TIME')[1]) "
                "while tonumber(redis.call('TIME')[1]) < s + 7 do end return 1", "0"))
            stall.start()
            time.sleep(0.3)  # Redis is asleep: it reads nothing until it wakes
            started = time.monotonic()
            assert errno_of(lambda: os.pwrite(fd, b"during", 0)) == errno.EIO
            waited = time.monotonic() - started
            stall.join(30)
        finally:
            os.close(fd)
        assert 4.0 <= waited  # (REDIS_TIMEOUT: 5 s)
        time.sleep(0.5)  # Redis has run what was queued
        assert read(m / "f") == b"before"
        write(m / "f", b"after")  # and the mount serves on
        assert read(m / "f") == b"after"


SIGNALLED_MKDIRS = r"""
import ctypes, errno, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
signals = 0
def count(*_):
    global signals
    signals += 1
signal.signal(signal.SIGALRM, count)
signal.siginterrupt(signal.SIGALRM, True)  # a signal ends the call with EINTR: no restart
signal.setitimer(signal.ITIMER_REAL, 0.0003, 0.0003)
failed = made = 0
for i in range(3000):
    path = os.path.join(sys.argv[1], f"d{i}").encode()
    if libc.mkdir(path, 0o755) != 0:
        failed += 1
        print(errno.errorcode[ctypes.get_errno()], os.path.exists(path), file=sys.stderr)
signal.setitimer(signal.ITIMER_REAL, 0)
print(signals, failed, len(os.listdir(sys.argv[1])))
"""


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_a_signalled_change_is_answered_as_it_happened(redis: RedisServer, prefix: str,
                                                       backend: str) -> None:
    """mkdir under a storm of signals its caller handles: 2,075 of 3,000 returned EINTR and
    386 of those had made the directory all the same (the store's script ran, the handler
    was cancelled after). Now only a caller being killed has its handler cancelled: every
    mkdir answers what happened."""
    with sharedfs(redis, prefix, "--backend", backend) as mnt:
        out = subprocess.run([sys.executable, "-c", SIGNALLED_MKDIRS, str(mnt)],
                             capture_output=True, text=True, timeout=120, check=True)
        signals, failed, listed = map(int, out.stdout.split())
        assert signals > 1000, "few signals came: the interleaving was not driven"
        assert (failed, listed) == (0, 3000), out.stderr[:2000]
