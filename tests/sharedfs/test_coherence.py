"""Two and more sharedfs mounts (separate processes, one Redis): a change made through any of
them shows in every other within moments although each kernel caches for an hour; with
--no-invalidation the same change stays invisible (the control)."""

from __future__ import annotations

import errno
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ..util import eventually
from .conftest import SHAREDFS, RedisServer, redis_server, require_redis, sharedfs
from .test_faults import errno_of

pytestmark = pytest.mark.fuse


def read(p: Path) -> bytes:
    with open(p, "rb") as fh:
        return fh.read()


def write(p: Path, data: bytes, mode: str = "wb") -> None:
    with open(p, mode) as fh:
        fh.write(data)


def exists(p: Path) -> bool:
    return os.path.lexists(p)


# Each case: prepare (through A), observe (through B: what B sees, and caches),
# change (through A), and what B must see afterwards.
Case = tuple[Callable[[Path], None], Callable[[Path], object], Callable[[Path], None], object]
CASES: dict[str, Case] = {
    "content": (lambda a: write(a / "f", b"old data"), lambda b: read(b / "f"),
                lambda a: write(a / "f", b"NEW", "r+b"), b"NEW data"),
    "size and mtime": (lambda a: write(a / "f", b"1"),
                       lambda b: (os.stat(b / "f").st_size, os.stat(b / "f").st_mtime_ns),
                       lambda a: (write(a / "f", b"23", "ab"),
                                  os.utime(a / "f", ns=(1, 1_700_000_000_000_000_000))),
                       (3, 1_700_000_000_000_000_000)),
    "create": (lambda a: None, lambda b: (exists(b / "new"), sorted(os.listdir(b))),
               lambda a: write(a / "new", b"n"), (True, ["new"])),
    "unlink": (lambda a: write(a / "f", b"x"), lambda b: exists(b / "f"),
               lambda a: os.unlink(a / "f"), False),
    "rename across directories": (
        lambda a: (os.mkdir(a / "d1"), os.mkdir(a / "d2"), write(a / "d1" / "x", b"moved")),
        lambda b: (exists(b / "d1" / "x"), exists(b / "d2" / "y"),
                   os.stat(b / "d1").st_nlink, os.stat(b / "d2").st_mtime_ns > 0),
        lambda a: os.rename(a / "d1" / "x", a / "d2" / "y"),
        (False, True, 2, True)),
    "hard link": (lambda a: write(a / "f", b"x"),
                  lambda b: (os.stat(b / "f").st_nlink, exists(b / "g")),
                  lambda a: os.link(a / "f", a / "g"), (2, True)),
    "symlink": (lambda a: None, lambda b: exists(b / "l") and os.readlink(b / "l"),
                lambda a: os.symlink("target/of/link", a / "l"), "target/of/link"),
    "xattr": (lambda a: write(a / "f", b"x"),
              lambda b: os.listxattr(b / "f"),
              lambda a: os.setxattr(a / "f", "user.k", b"v"), ["user.k"]),
    "chmod": (lambda a: write(a / "f", b"x"), lambda b: os.stat(b / "f").st_mode & 0o777,
              lambda a: os.chmod(a / "f", 0o600), 0o600),
    "delete and recreate": (
        lambda a: write(a / "f", b"first"),
        lambda b: (os.stat(b / "f").st_ino, read(b / "f")),
        lambda a: (os.unlink(a / "f"), write(a / "f", b"second")),
        "new inode"),
    "truncate": (lambda a: write(a / "f", b"x" * 10000), lambda b: read(b / "f"),
                 lambda a: os.truncate(a / "f", 10), b"x" * 10),
}


def test_every_kind_of_change_shows_in_the_other_mount(redis: RedisServer, prefix: str) -> None:
    """A serves under trio, B under asyncio: one Redis client library for both."""
    with sharedfs(redis, prefix) as a, sharedfs(redis, prefix, "--backend", "asyncio") as b:
        for name, (prepare, observe, change, expected) in CASES.items():
            da, db = a / name, b / name
            os.mkdir(da)
            prepare(da)
            before = observe(db)
            assert observe(db) == before  # cached (or simply unchanged)
            change(da)
            if expected == "new inode":
                assert eventually(lambda o=observe, p=db, b=before: o(p)[0] != b[0]), name
                assert observe(db)[1] == b"second", name  # type: ignore[index]
            else:
                assert eventually(lambda o=observe, p=db, w=expected: o(p) == w), \
                    (name, observe(db), expected)


def test_mounts_following_the_log_are_registered_while_they_serve(redis: RedisServer,
                                                                  prefix: str) -> None:
    """Each mount that follows the log registers for its bell (a mount that does not follow
    would only be rung for nothing), and leaves no registration behind when it exits."""
    def followers() -> list[str]:
        return redis.command("SMEMBERS", "{" + prefix + "}:followers").split()

    with sharedfs(redis, prefix) as a, sharedfs(redis, prefix, "--no-invalidation") as b, \
            sharedfs(redis, prefix, "--backend", "asyncio") as c:
        assert eventually(lambda: len(followers()) == 2), followers()
        (a / "f").write_bytes(b"1")
        assert (b / "f").read_bytes() == (c / "f").read_bytes() == b"1"
        assert len(followers()) == 2
    assert followers() == []


def test_without_invalidation_the_other_mount_stays_stale(redis: RedisServer,
                                                         prefix: str) -> None:
    """The control: the same changes, B caching for an hour and not following the log. W,
    which follows it, shows when the change has reached the other mounts."""
    with sharedfs(redis, prefix) as a, \
            sharedfs(redis, prefix, "--no-invalidation", "--no-close-to-open") as b, \
            sharedfs(redis, prefix) as w:
        stale = []
        for name in ("content", "size and mtime", "unlink", "hard link", "chmod",
                     "delete and recreate", "truncate"):
            prepare, observe, change, _ = CASES[name]
            if name == "delete and recreate":  # B would fail to open the inode it caches
                observe = lambda b: os.stat(b / "f").st_ino  # noqa: E731
            elif name == "hard link":  # the new name is not cached: only the link count is
                observe = lambda b: os.stat(b / "f").st_nlink  # noqa: E731
            da, db, dw = a / name, b / name, w / name
            os.mkdir(da)
            prepare(da)
            observe(db)
            before = observe(db)  # the first read leaves the atime to fetch: now all cached
            observe(dw)
            assert observe(dw) == before
            change(da)
            assert eventually(lambda o=observe, p=dw, x=before: o(p) != x), name
            if observe(db) == before:
                stale.append(name)
        assert stale == ["content", "size and mtime", "unlink", "hard link", "chmod",
                         "delete and recreate", "truncate"]


def test_close_to_open_holds_at_every_delay(redis: RedisServer, prefix: str) -> None:
    """A writes and closes, then B opens and reads at once. B follows no notifications, so
    only close-to-open stands between it and its hour-long cache; C, without it, is the
    control that shows the cache hot."""
    def read(path: Path) -> bytes:  # no fstat(): after a page fill it would refresh attributes
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.read(fd, 4096)
        finally:
            os.close(fd)

    with sharedfs(redis, prefix) as a, sharedfs(redis, prefix, "--no-invalidation") as b, \
            sharedfs(redis, prefix, "--no-invalidation", "--no-close-to-open") as c:
        (a / "f").write_bytes(b"%010d" % 0)
        assert read(b / "f") == read(c / "f") == b"%010d" % 0
        stale_b = stale_c = 0
        for i in range(1, 51):
            data = b"%010d" % i  # same size: only the content tells
            with open(a / "f", "r+b") as fh:
                fh.write(data)
            stale_b += read(b / "f") != data
            stale_c += read(c / "f") != data
        assert (stale_b, stale_c) == (0, 50)


def test_concurrent_writers_on_several_mounts(redis: RedisServer, prefix: str) -> None:
    """Three mounts write their own files at once; every mount ends with the model's bytes."""
    with sharedfs(redis, prefix) as m0, sharedfs(redis, prefix) as m1, \
            sharedfs(redis, prefix) as m2:
        mounts = [m0, m1, m2]
        models: dict[str, bytearray] = {}
        errors: list[BaseException] = []

        def writer(k: int) -> None:
            rng = random.Random(k)
            try:
                for j in range(3):
                    name = f"w{k}-{j}"
                    models[name] = bytearray()
                with open(mounts[k] / "w.lock", "ab"):
                    pass
                fds = {f"w{k}-{j}": os.open(mounts[k] / f"w{k}-{j}", os.O_CREAT | os.O_RDWR)
                       for j in range(3)}
                for _ in range(150):
                    name = rng.choice(sorted(fds))
                    off, data = rng.randrange(0, 40000), rng.randbytes(rng.randrange(1, 9000))
                    os.pwrite(fds[name], data, off)
                    m = models[name]
                    m.extend(bytes(max(0, off + len(data) - len(m))))
                    m[off:off + len(data)] = data
                for fd in fds.values():
                    os.fsync(fd)
                    os.close(fd)
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        for m in mounts:
            for name, model in models.items():
                assert eventually(lambda m=m, name=name, model=model:
                                  read(m / name) == bytes(model)), (m, name)


@pytest.mark.parametrize("writers", [1, 4])
def test_appends_from_two_mounts_all_land_at_the_end(redis: RedisServer, prefix: str,
                                                     writers: int) -> None:
    """O_APPEND on two mounts at once, by one or several writers (threads with descriptors of
    their own) on each: the kernel put each append at the size it had cached, so the mounts
    overwrote each other's lines (600 acknowledged lines left 300). Every append lands at the
    end of the file as the store has it, and both mounts show them all, each writer's lines in
    the order it wrote them."""
    with sharedfs(redis, prefix) as a, sharedfs(redis, prefix) as b:
        write(a / "log", b"")
        assert eventually(lambda: exists(b / "log"))
        lines = 300 // writers
        tags = [(m, f"{name}{w}") for m, name in ((a, "a"), (b, "b")) for w in range(writers)]
        barrier = threading.Barrier(len(tags))
        errors: list[BaseException] = []

        def appender(mnt: Path, tag: str) -> None:
            try:
                fd = os.open(mnt / "log", os.O_WRONLY | os.O_APPEND)
                try:
                    barrier.wait(10)
                    for i in range(lines):
                        line = f"{tag}{i:04d}\n".encode()
                        assert os.write(fd, line) == len(line)
                finally:
                    os.close(fd)
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=appender, args=(m, tag)) for m, tag in tags]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        size = sum(lines * (len(tag) + 5) for _, tag in tags)
        for mnt in (a, b):
            assert eventually(lambda mnt=mnt: len(read(mnt / "log")) == size), mnt
            got = read(mnt / "log").splitlines()
            for _, tag in tags:
                assert [x for x in got if x[:len(tag)] == tag.encode()] == \
                    [f"{tag}{i:04d}".encode() for i in range(lines)], (mnt, tag)


def test_racing_creates_of_one_name_on_two_mounts(redis: RedisServer, prefix: str) -> None:
    """open(O_CREAT) on two mounts at once: both open the one file (the loser's kernel asked
    to create a name the other mount had just created); with O_EXCL exactly one succeeds."""
    with sharedfs(redis, prefix) as a, sharedfs(redis, prefix) as b:
        rounds = 60
        barrier = threading.Barrier(2)
        results: dict[int, list[object]] = {0: [], 1: []}

        def opener(k: int, mnt: Path) -> None:
            for i in range(rounds):
                for excl in (False, True):
                    barrier.wait(10)
                    flags = os.O_CREAT | os.O_WRONLY | (os.O_EXCL if excl else 0)
                    try:
                        fd = os.open(mnt / f"{'x' if excl else 'n'}{i}", flags, 0o644)
                    except OSError as e:
                        results[k].append(("error", e.errno))
                        continue
                    results[k].append(("inode", os.fstat(fd).st_ino))
                    os.close(fd)

        threads = [threading.Thread(target=opener, args=(k, m)) for k, m in enumerate((a, b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        import errno

        for i in range(rounds):
            plain = [results[k][2 * i] for k in (0, 1)]
            excl = sorted(results[k][2 * i + 1][0] for k in (0, 1))
            assert plain[0] == plain[1] and plain[0][0] == "inode", (i, plain)  # both opened it
            assert excl == ["error", "inode"], (i, excl)
            assert ("error", errno.EEXIST) in (results[0][2 * i + 1], results[1][2 * i + 1])


def test_prefixes_keep_file_systems_apart_and_passwords_come_from_the_environment(
        tmp_path: Path) -> None:
    require_redis()
    env = {"SHAREDFS_REDIS_PASSWORD": "s3cret"}
    with redis_server(tmp_path, password="s3cret") as redis, \
            sharedfs(redis, "one", env=env) as one, sharedfs(redis, "two", env=env) as two:
        write(one / "f", b"in one")
        os.mkdir(two / "d")
        assert os.listdir(one) == ["f"] and os.listdir(two) == ["d"]
        # without the password: one line naming the problem, no mount
        proc = subprocess.run([sys.executable, str(SHAREDFS), str(tmp_path), "--redis",
                               redis.url, "--prefix", "one"], capture_output=True, text=True,
                              timeout=30, env={k: v for k, v in os.environ.items()
                                               if k != "SHAREDFS_REDIS_PASSWORD"})
        assert proc.returncode == 1
        assert proc.stderr.strip().startswith("sharedfs: cannot reach Redis at"), proc.stderr
        assert "Traceback" not in proc.stderr


def script_calls(redis: RedisServer) -> int:
    """Calls of the store's function (or of any script) so far (each a round trip of some
    mount)."""
    stats = redis.command("INFO", "commandstats")
    return sum(int(line.split("calls=")[1].split(",")[0]) for line in stats.splitlines()
               if line.startswith(("cmdstat_fcall:", "cmdstat_evalsha", "cmdstat_eval:")))


@pytest.mark.parametrize("backend", ["trio", "asyncio", "uvloop"])
def test_a_directory_changed_here_answers_without_redis(redis: RedisServer, prefix: str,
                                                        backend: str) -> None:
    """The kernel asks a directory's attributes again after each create or unlink in it (its
    permission check needs the mode): the change's own reply answers, so a create costs two
    round trips (the lookup of the new name, the create), not three, and an unlink two (the
    unlink, the release of this mount's hold), not three. What the mount shows of the
    directory is what Redis holds, and another mount's chmod of it shows."""
    n = 30
    procs: list[subprocess.Popen[bytes]] = []
    with sharedfs(redis, prefix, "--backend", backend, procs=procs) as a, \
            sharedfs(redis, prefix) as b:
        with open(f"/proc/{procs[0].pid}/maps") as maps:  # uvloop's event loop, or none
            assert ("uvloop/loop." in maps.read()) == (backend == "uvloop")
        os.mkdir(a / "d")
        before, t = script_calls(redis), time.monotonic()
        for i in range(n):
            os.close(os.open(a / "d" / f"f{i}", os.O_CREAT | os.O_WRONLY, 0o644))
        creates, create_s = script_calls(redis) - before, time.monotonic() - t
        before, t = script_calls(redis), time.monotonic()
        for i in range(n):
            os.unlink(a / "d" / f"f{i}")
        unlinks, unlink_s = script_calls(redis) - before, time.monotonic() - t
        # An unlink also gives up this mount's idle hold of the file (one more call). Besides,
        # housekeeping makes at most one call every 0.5 s (idle holds) and a sweep now and
        # then: allowed for by the time taken, so a slow machine cannot fail this.
        def slack(seconds: float) -> int:
            return 2 * int(seconds + 1) + 2

        assert creates <= 2 * n + slack(create_s) and unlinks <= 2 * n + slack(unlink_s), \
            (creates, create_s, unlinks, unlink_s)
        os.mkdir(a / "d" / "sub")
        shown = os.stat(a / "d")
        with sharedfs(redis, prefix) as fresh:  # a kernel that never saw d
            truth = os.stat(fresh / "d")
        assert (shown.st_nlink, shown.st_mtime_ns, shown.st_ctime_ns, shown.st_mode) == \
            (truth.st_nlink, truth.st_mtime_ns, truth.st_ctime_ns, truth.st_mode) and \
            shown.st_nlink == 3
        os.chmod(b / "d", 0o700)
        assert eventually(lambda: stat.S_IMODE(os.stat(a / "d").st_mode) == 0o700)
        os.close(os.open(a / "d" / "g", os.O_CREAT | os.O_WRONLY, 0o644))
        os.chmod(b / "d", 0o750)
        assert eventually(lambda: stat.S_IMODE(os.stat(a / "d").st_mode) == 0o750)


def waits_for_an_answer(tid: int) -> bool:
    """Whether a thread of this process sleeps on a FUSE request it sent (not, say, on the
    lock of a directory)."""
    with open(f"/proc/self/task/{tid}/wchan") as fh:
        return fh.read() == "request_wait_answer"


def test_lookups_in_one_directory_wait_for_redis_together(redis: RedisServer,
                                                          prefix: str) -> None:
    """sharedfs wants parallel_dirops: with Redis stopped, the lookups of four names in one
    directory that a mount has not seen all wait for their answers at once. (Without it the
    kernel sends one, and the others wait for the directory meanwhile.)"""
    with sharedfs(redis, prefix) as a:
        os.mkdir(a / "d")
        for i in range(4):
            write(a / "d" / f"f{i}", b"")
        with sharedfs(redis, prefix) as b:
            os.stat(b / "d")
            tids: list[int] = []
            results: list[int] = []

            def look(i: int) -> None:
                tids.append(threading.get_native_id())
                results.append(os.stat(b / "d" / f"f{i}").st_size)

            assert redis.proc is not None
            redis.proc.send_signal(signal.SIGSTOP)  # (for less than sharedfs's 5 s timeout)
            threads = [threading.Thread(target=look, args=(i,)) for i in range(4)]
            try:
                for t in threads:
                    t.start()
                together = eventually(lambda: len(tids) == 4 and all(
                    waits_for_an_answer(tid) for tid in tids), timeout=3)
            finally:
                redis.proc.send_signal(signal.SIGCONT)
                for t in threads:
                    t.join(30)
            assert together
            assert results == [0, 0, 0, 0]


def test_files_without_xattrs_answer_without_redis(redis: RedisServer, prefix: str) -> None:
    """A file the store says has no extended attributes answers without a round trip, until
    one is set here or on another mount; ACLs and security labels are not kept at all
    (EOPNOTSUPP, which also ends ls -l's two questions per file)."""
    def scripts() -> int:
        return script_calls(redis)

    with sharedfs(redis, prefix) as a, sharedfs(redis, prefix) as b:
        write(a / "f", b"x")
        write(a / "m", b"")
        os.stat(b / "f")
        os.stat(b / "m")  # cached by b's kernel
        # A barrier: once b shows m's new mode, b's follower has applied every record of a
        # before it (the log is in order), so none arrives late to count in the loop below.
        os.chmod(a / "m", 0o600)
        assert eventually(lambda: stat.S_IMODE(os.stat(b / "m").st_mode) == 0o600)
        before = scripts()
        for _ in range(50):
            with pytest.raises(OSError) as e:
                os.getxattr(b / "f", "user.absent")
            assert e.value.errno == errno.ENODATA
            assert os.listxattr(b / "f") == []
            for name in ("security.selinux", "security.capability", "system.posix_acl_access"):
                with pytest.raises(OSError) as e:
                    os.getxattr(b / "f", name)
                assert e.value.errno == errno.EOPNOTSUPP
        # 250 questions; a round trip each would be 250 calls. Housekeeping of either mount
        # (the sweep every heartbeat/3, an idle hold's release) may add one meanwhile (a
        # make test run had 1).
        assert scripts() - before <= 2
        for name in ("security.selinux", "system.posix_acl_access"):
            assert errno_of(lambda n=name: os.setxattr(a / "f", n, b"\x02\0\0\0")) == \
                errno.EOPNOTSUPP, name
            assert errno_of(lambda n=name: os.removexattr(a / "f", n)) == errno.EOPNOTSUPP, name
        os.setxattr(a / "f", "user.k", b"v")  # on the other mount
        assert eventually(lambda: os.listxattr(b / "f") == ["user.k"])
        assert os.getxattr(b / "f", "user.k") == b"v"
        os.removexattr(b / "f", "user.k")  # and back to none, here
        assert os.listxattr(a / "f") == [] and os.listxattr(b / "f") == []


@pytest.mark.parametrize("backend", ["trio", "asyncio", "uvloop"])
def test_close_to_open_for_names(redis: RedisServer, prefix: str, backend: str) -> None:
    """A name another mount replaced (rename over it), removed, or renamed away, or one of
    two hard links removed, is not opened through this kernel's cached entry, with
    notifications off so that only open() can tell: the name no longer names the inode,
    open answers ESTALE, and the kernel looks the path up again."""
    with sharedfs(redis, prefix) as a, \
            sharedfs(redis, prefix, "--no-invalidation", "--backend", backend) as b:
        for i in range(20):
            write(a / "target", b"old%d" % i)
            assert read(b / "target") == b"old%d" % i  # b's kernel caches the name
            write(a / "tmp", b"new%d" % i)
            os.rename(a / "tmp", a / "target")  # the atomic save of editors and tools
            assert read(b / "target") == b"new%d" % i
        write(a / "gone", b"x")
        assert read(b / "gone") == b"x"  # (b holds the inode: it outlives its name)
        os.unlink(a / "gone")
        assert errno_of(lambda: read(b / "gone")) == errno.ENOENT
        # renamed away: the inode keeps a name, just not this one
        write(a / "before", b"moved")
        assert read(b / "before") == b"moved"
        os.rename(a / "before", a / "after")
        assert errno_of(lambda: read(b / "before")) == errno.ENOENT
        assert read(b / "after") == b"moved"
        # one of two hard links removed: the other still opens, the removed one does not
        write(a / "h1", b"linked")
        os.link(a / "h1", a / "h2")
        assert read(b / "h1") == read(b / "h2") == b"linked"
        os.unlink(a / "h1")
        assert errno_of(lambda: read(b / "h1")) == errno.ENOENT
        assert read(b / "h2") == b"linked"
        # a file open here that a renamed away is still reopened through /proc/self/fd
        fd = os.open(b / "h2", os.O_RDONLY)
        try:
            os.rename(a / "h2", a / "h4")
            assert read(Path(f"/proc/self/fd/{fd}")) == b"linked"
        finally:
            os.close(fd)
        os.rename(a / "h4", a / "h2")
        # renames through b itself move b's own entry: no name of b's goes stale
        os.rename(b / "h2", b / "h3")
        assert read(b / "h3") == b"linked" and errno_of(lambda: read(b / "h2")) == errno.ENOENT
        # an unlinked file open here is still reopened through /proc/self/fd
        write(b / "kept", b"k")
        fd = os.open(b / "kept", os.O_RDONLY)
        try:
            os.unlink(b / "kept")
            assert read(Path(f"/proc/self/fd/{fd}")) == b"k"
        finally:
            os.close(fd)


def test_a_large_truncate_through_a_mount(redis: RedisServer, prefix: str) -> None:
    """A 136 MiB file truncated through mount A to 66 MiB and 100 bytes (more pages to drop
    than one script call takes): Redis saw the drop in parts; mount B, which had read the
    file, shows the new size and the kept bytes, and zeros once A grows the file again."""
    from .test_faults import check_store

    mib = 1 << 20
    chunk = random.Random(7).randbytes(mib)

    def block(k: int) -> bytes:
        return k.to_bytes(8, "little") + chunk[8:]

    with sharedfs(redis, prefix) as a, sharedfs(redis, prefix) as b:
        with open(a / "big", "wb") as fh:
            for k in range(136):
                fh.write(block(k))
        assert eventually(lambda: os.stat(b / "big").st_size == 136 * mib)
        with open(b / "big", "rb") as fh:  # B caches both ends
            fh.seek(60 * mib)
            assert fh.read(mib) == block(60)
            fh.seek(135 * mib)
            assert fh.read(mib) == block(135)
        redis.command("CONFIG", "SET", "slowlog-log-slower-than", "0")
        redis.command("CONFIG", "SET", "slowlog-max-len", "100000")
        redis.command("SLOWLOG", "RESET")
        new = 66 * mib + 100
        os.truncate(a / "big", new)
        calls = subprocess.run(["redis-cli", "-s", str(redis.socket), "SLOWLOG", "GET",
                                "100000"], capture_output=True, timeout=10).stdout.split()
        redis.command("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        assert calls.count(b"drop") >= 2  # in parts (more than 16,384 pages to keep and to drop)
        assert eventually(lambda: os.stat(b / "big").st_size == new)
        with open(b / "big", "rb") as fh:
            fh.seek(60 * mib)
            assert fh.read(mib) == block(60)
            fh.seek(66 * mib)
            assert fh.read() == block(66)[:100]
        os.truncate(a / "big", 136 * mib)
        assert eventually(lambda: os.stat(b / "big").st_size == 136 * mib)
        with open(b / "big", "rb") as fh:
            fh.seek(66 * mib)
            assert fh.read(mib) == block(66)[:100] + bytes(mib - 100)
            fh.seek(135 * mib)
            assert fh.read(mib) == bytes(mib)
    assert check_store(redis, prefix) == []
