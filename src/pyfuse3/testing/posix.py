"""POSIX behaviour checks for any file system, run through its mount with plain ``os`` calls.

Each check takes a fresh, world-writable directory inside the file system under test and
raises AssertionError (or OSError) when the behaviour differs from POSIX as Linux implements
it; a plain directory on a local disk passes them all (the control). Checks that switch users
(``as_user``) need root and the file system mounted with ``allow_other`` and
``default_permissions`` (or equivalent checks of its own); the mountpoint's parents must be
reachable by other users.

    import pytest
    from pyfuse3.testing import posix

    @pytest.mark.parametrize("check", posix.CHECKS.values(), ids=list(posix.CHECKS))
    def test_posix(check, my_mount, request):
        check(posix.fresh_directory(my_mount, request.node.name))
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import hashlib
import os
import pickle
import select
import signal
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

__all__ = ["ALICE", "BOB", "CHECKS", "NEEDS_ROOT", "as_user", "check", "errno_name",
           "fresh_directory"]

ALICE, BOB = 1000, 1001  # two unprivileged users (uid = gid); they need not exist
MIB = 1 << 20
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
_libc = ctypes.CDLL(None, use_errno=True)

#: name -> check, in definition order.
CHECKS: dict[str, Callable[[Path], None]] = {}
#: The checks that need root: they switch users (as_user) or make a device node.
NEEDS_ROOT = frozenset({"permissions", "created_files_belong_to_the_caller",
                        "chown_and_writes_clear_setid_bits", "setgid_directory_inheritance",
                        "sticky_directory", "symlinks_and_special_files"})


def check(fn: Callable[[Path], None]) -> Callable[[Path], None]:
    """Register ``fn`` in CHECKS under its name without the ``check_`` prefix."""
    CHECKS[fn.__name__.removeprefix("check_")] = fn
    return fn


def fresh_directory(root: Path | str, name: str) -> Path:
    """A new world-writable directory ``root/name`` (``[``, ``]`` and ``/`` in ``name``
    replaced), for one check."""
    path = Path(root) / name.replace("[", "_").replace("]", "").replace("/", "_")
    path.mkdir()
    path.chmod(0o777)
    return path


def errno_name(fn: Callable[[], object]) -> str | None:
    """Call ``fn``; the errno name of the OSError it raised (``"ENOENT"``), or None."""
    try:
        fn()
    except OSError as e:
        return errno.errorcode[e.errno or 0]
    return None


def as_user(uid: int, fn: Callable[[], object], timeout: float = 10) -> object:
    """Run ``fn`` in a child process as ``uid`` (gid = uid, no supplementary groups); return
    its (picklable) result, or the errno name of the OSError it raised. Needs root.
    TimeoutError (and the child killed) after ``timeout`` seconds."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        # The child only makes system calls and exits; the kill on timeout covers the rest.
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            try:
                result: object = fn()
            except OSError as e:
                result = errno.errorcode[e.errno or 0]
            os.write(w, pickle.dumps(result))
        finally:
            os._exit(0)
    os.close(w)
    try:
        if not select.select([r], [], [], timeout)[0]:
            os.kill(pid, signal.SIGKILL)
            raise TimeoutError(f"the child running as uid {uid} did not answer in {timeout} s")
        return pickle.loads(os.read(r, 1 << 20))
    finally:
        os.close(r)
        os.waitpid(pid, 0)


def _renameat2(src: Path, dst: Path, flags: int) -> None:
    if _libc.renameat2(-100, bytes(src), -100, bytes(dst), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


# -- permissions (as root, with two other users) ------------------------------------------

@check
def check_permissions(d: Path) -> None:
    """Mode bits decide who reads, writes, lists; only the owner changes them."""
    secret = d / "secret"
    secret.write_bytes(b"s")
    secret.chmod(0o600)
    assert as_user(ALICE, secret.read_bytes) == "EACCES"
    assert as_user(ALICE, lambda: secret.chmod(0o777)) == "EPERM"  # not the owner
    assert as_user(ALICE, lambda: os.chown(secret, ALICE, ALICE)) == "EPERM"
    secret.chmod(0o644)
    assert as_user(ALICE, secret.read_bytes) == b"s"
    assert as_user(ALICE, lambda: secret.write_bytes(b"x")) == "EACCES"
    private = d / "private"
    private.mkdir(0o700)
    assert as_user(ALICE, lambda: os.listdir(private)) == "EACCES"


@check
def check_created_files_belong_to_the_caller(d: Path) -> None:
    """A new file gets the caller's uid and gid and the mode after its umask."""
    def create() -> tuple[int, int, int]:
        old = os.umask(0o027)
        try:
            (d / "mine").write_bytes(b"")
        finally:
            os.umask(old)
        st = os.stat(d / "mine")
        return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)

    assert as_user(ALICE, create) == (ALICE, ALICE, 0o640)


@check
def check_chown_and_writes_clear_setid_bits(d: Path) -> None:
    f = d / "prog"
    f.write_bytes(b"#!")
    f.chmod(0o6755)
    assert stat.S_IMODE(f.stat().st_mode) == 0o6755
    os.chown(f, ALICE, ALICE)
    assert stat.S_IMODE(f.stat().st_mode) == 0o755  # changing the owner drops set-id bits
    f.chmod(0o4777)
    assert as_user(ALICE, lambda: f.write_bytes(b"changed")) == 7
    assert stat.S_IMODE(f.stat().st_mode) & stat.S_ISUID == 0  # a write by a user drops suid


@check
def check_setgid_directory_inheritance(d: Path) -> None:
    shared = d / "shared"
    shared.mkdir()
    os.chown(shared, 0, 4242)
    shared.chmod(0o2777)
    assert as_user(ALICE, lambda: (shared / "f").write_bytes(b"")) == 0
    assert (shared / "f").stat().st_gid == 4242
    (shared / "sub").mkdir()
    assert (shared / "sub").stat().st_mode & stat.S_ISGID


@check
def check_sticky_directory(d: Path) -> None:
    d.chmod(0o1777)
    assert as_user(ALICE, lambda: (d / "alices").write_bytes(b"a")) == 1
    assert as_user(BOB, lambda: os.unlink(d / "alices")) == "EPERM"
    assert as_user(BOB, lambda: os.rename(d / "alices", d / "bobs")) == "EPERM"
    assert as_user(ALICE, lambda: os.unlink(d / "alices")) is None


# -- names and links ----------------------------------------------------------------------

@check
def check_rename_rules(d: Path) -> None:
    """rename(2) and renameat2's NOREPLACE and EXCHANGE, with their errors."""
    (d / "a").write_bytes(b"A")
    (d / "b").write_bytes(b"B")
    (d / "dir").mkdir()
    (d / "full").mkdir()
    (d / "full" / "x").write_bytes(b"")
    (d / "empty").mkdir()
    assert errno_name(lambda: _renameat2(d / "a", d / "b", RENAME_NOREPLACE)) == "EEXIST"
    _renameat2(d / "a", d / "b", RENAME_EXCHANGE)
    assert ((d / "a").read_bytes(), (d / "b").read_bytes()) == (b"B", b"A")
    assert errno_name(lambda: _renameat2(d / "a", d / "nothing", RENAME_EXCHANGE)) == "ENOENT"
    assert errno_name(lambda: os.rename(d / "a", d / "dir")) == "EISDIR"
    assert errno_name(lambda: os.rename(d / "dir", d / "a")) == "ENOTDIR"
    assert errno_name(lambda: os.rename(d / "dir", d / "full")) == "ENOTEMPTY"
    assert errno_name(lambda: os.rename(d / "dir", d / "dir" / "inside")) == "EINVAL"
    os.rename(d / "dir", d / "empty")  # replaces an empty directory
    assert not (d / "dir").exists() and (d / "empty").is_dir()
    os.rename(d / "a", d / "b")  # replaces a file
    assert (d / "b").read_bytes() == b"B" and not (d / "a").exists()
    os.rename(d / "empty", d / "full" / "moved")
    assert (d / "full" / "moved" / "..").resolve() == (d / "full").resolve()


@check
def check_link_counts(d: Path) -> None:
    (d / "f").write_bytes(b"x")
    os.link(d / "f", d / "g")
    os.link(d / "f", d / "h")
    assert (d / "f").stat().st_nlink == 3
    os.unlink(d / "g")
    assert (d / "h").stat().st_nlink == 2
    assert d.stat().st_nlink == 2
    (d / "s1").mkdir()
    (d / "s2").mkdir()
    assert d.stat().st_nlink == 4  # ".", its entry in the parent, two ".." of subdirectories
    os.rename(d / "s2", d / "s1" / "s2")
    assert (d.stat().st_nlink, (d / "s1").stat().st_nlink) == (3, 3)
    os.rmdir(d / "s1" / "s2")
    assert (d / "s1").stat().st_nlink == 2
    assert errno_name(lambda: os.link(d / "s1", d / "s3")) == "EPERM"  # no links to dirs


@check
def check_symlinks_and_special_files(d: Path) -> None:
    os.symlink("../target/x", d / "l")
    assert os.readlink(d / "l") == "../target/x"
    assert os.lstat(d / "l").st_size == len("../target/x")
    os.mkfifo(d / "fifo")
    os.mknod(d / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert stat.S_ISFIFO((d / "fifo").stat().st_mode)
    assert (d / "null").stat().st_rdev == os.makedev(1, 3)


@check
def check_names_longer_than_255_bytes(d: Path) -> None:
    """Every call taking a name answers ENAMETOOLONG past 255 bytes; 255 is allowed."""
    (d / "f").write_bytes(b"")
    ok, long = d / ("n" * 255), d / ("n" * 256)
    ok.write_bytes(b"")
    calls: dict[str, Callable[[], object]] = {
        "lookup": lambda: os.stat(long),
        "create": lambda: open(long, "w").close(),
        "mkdir": lambda: os.mkdir(long),
        "mknod": lambda: os.mkfifo(long),
        "symlink": lambda: os.symlink("f", long),
        "link": lambda: os.link(d / "f", long),
        "rename to": lambda: os.rename(d / "f", long),
        "rename from": lambda: os.rename(long, d / "g"),
    }
    got = {name: errno_name(fn) for name, fn in calls.items()}
    assert got == dict.fromkeys(calls, "ENAMETOOLONG")
    assert sorted(os.listdir(d)) == sorted(["f", ok.name])


@check
def check_xattrs(d: Path) -> None:
    f = d / "f"
    f.write_bytes(b"")
    os.setxattr(f, "user.a", b"1")
    assert errno_name(lambda: os.setxattr(f, "user.a", b"2", os.XATTR_CREATE)) == "EEXIST"
    os.setxattr(f, "user.a", b"3", os.XATTR_REPLACE)
    assert os.getxattr(f, "user.a") == b"3"
    assert os.listxattr(f) == ["user.a"]
    os.removexattr(f, "user.a")
    assert errno_name(lambda: os.removexattr(f, "user.a")) == "ENODATA"


@check
def check_large_directory(d: Path) -> None:
    """10,000 entries are all listed, each once."""
    names = {f"entry-{i:05d}" for i in range(10_000)}
    for name in names:
        os.mknod(d / name)
    listed = os.listdir(d)
    assert len(listed) == 10_000 and set(listed) == names


# -- times and data -----------------------------------------------------------------------

@check
def check_timestamps(d: Path) -> None:
    """Nanosecond times (also before 1970) are kept; chmod changes ctime, a write mtime, a new
    entry its directory's mtime."""
    f = d / "f"
    f.write_bytes(b"1")
    os.utime(f, ns=(-123_456_789_012, 1_700_000_000_123_456_789))
    st = f.stat()
    assert (st.st_atime_ns, st.st_mtime_ns) == (-123_456_789_012, 1_700_000_000_123_456_789)
    before = f.stat()
    time.sleep(0.01)
    f.chmod(0o600)
    after = f.stat()
    assert after.st_ctime_ns > before.st_ctime_ns and after.st_mtime_ns == before.st_mtime_ns
    time.sleep(0.01)
    with open(f, "ab") as fh:
        fh.write(b"2")
    assert f.stat().st_mtime_ns > after.st_mtime_ns
    dir_before = d.stat().st_mtime_ns
    time.sleep(0.01)
    (d / "new").write_bytes(b"")
    assert d.stat().st_mtime_ns > dir_before


@check
def check_holes_truncate_extend(d: Path) -> None:
    f = d / "sparse"
    with open(f, "wb") as fh:
        fh.seek(MIB)
        fh.write(b"end")
    data = f.read_bytes()
    assert len(data) == MIB + 3 and data[:MIB] == bytes(MIB) and data[MIB:] == b"end"
    os.truncate(f, 10)
    assert f.read_bytes() == bytes(10)
    os.truncate(f, 20)
    assert f.read_bytes() == bytes(20)


@check
def check_open_unlinked_file_stays_usable(d: Path) -> None:
    fd = os.open(d / "tmp", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.write(fd, b"still here")
        os.unlink(d / "tmp")
        assert not (d / "tmp").exists()
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, 100, 0) == b"still here"
        os.pwrite(fd, b"STILL", 0)
        assert os.pread(fd, 100, 0) == b"STILL here"
    finally:
        os.close(fd)


@check
def check_large_file_checksum(d: Path) -> None:
    """100 MiB written and read back in large blocks, byte for byte."""
    f = d / "big"
    digest = hashlib.sha256()
    chunk = os.urandom(MIB)
    with open(f, "wb") as fh:
        for i in range(100):
            block = chunk[i:] + chunk[:i]
            digest.update(block)
            fh.write(block)
    assert f.stat().st_size == 100 * MIB
    again = hashlib.sha256()
    with open(f, "rb") as fh:
        for block in iter(functools.partial(fh.read, 4 * MIB), b""):
            again.update(block)
    assert again.hexdigest() == digest.hexdigest()
    f.unlink()


_RANGE_LOCKER = """
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
for spec in sys.argv[2:]:
    kind, start, length = spec.split(":")
    if kind == "get":
        res = fcntl.fcntl(fd, fcntl.F_GETLK,
                          struct.pack("hhqqi", fcntl.F_WRLCK, 0, int(start), int(length), 0))
        typ, _, s, n, pid = struct.unpack("hhqqi", res)
        print("get", typ, s, n, pid, flush=True)
        continue
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, int(length), int(start))
        print("locked", flush=True)
    except OSError:
        print("busy", flush=True)
sys.stdin.read()  # hold the locks until told to go
"""


@check
def check_record_locks_cover_byte_ranges(d: Path) -> None:
    """fcntl locks of two processes: ranges conflict only where they overlap, F_GETLK names
    the holder, and a process's exit releases its locks."""
    f = d / "f"
    f.write_bytes(b"x" * 300)

    def locker(*specs: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", _RANGE_LOCKER, str(f), *specs],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    holder = locker("lock:0:100")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        other = locker("lock:100:100", "lock:50:100", "get:0:300")
        out, _ = other.communicate("", timeout=30)
        lines = out.split("\n")
        assert lines[:2] == ["locked", "busy"]
        assert lines[2].split() == ["get", str(fcntl.F_WRLCK), "0", "100", str(holder.pid)]
    finally:
        holder.kill()
        holder.wait(10)
    after = locker("lock:0:300")
    out, _ = after.communicate("", timeout=30)
    assert out.strip() == "locked"  # the holder's exit released its range
