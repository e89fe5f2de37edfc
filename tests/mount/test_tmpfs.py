"""POSIX behaviour of examples/tmpfs.py, through a real mount, as root and as other users."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import pyfuse3

from ..util import ALICE, BOB, as_user, eventually

pytestmark = pytest.mark.fuse
MIB = 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)


@pytest.fixture
def d(mnt: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh world-writable directory per test."""
    path = mnt / request.node.name.replace("[", "_").replace("]", "")
    path.mkdir()
    path.chmod(0o777)
    return path


def err(fn: Callable[[], object]) -> str | None:
    try:
        fn()
    except OSError as e:
        return errno.errorcode[e.errno or 0]
    return None


def renameat2(src: Path, dst: Path, flags: int) -> None:
    if _libc.renameat2(-100, bytes(src), -100, bytes(dst), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def inode_count(mnt: Path) -> int:
    st = os.statvfs(mnt)
    return st.f_files - st.f_ffree


# ---------------------------------------------------------------- permissions

def test_permissions_enforced_by_the_kernel(d: Path) -> None:
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


def test_created_files_belong_to_the_caller(d: Path) -> None:
    def create() -> tuple[int, int, int]:
        old = os.umask(0o027)
        try:
            (d / "mine").write_bytes(b"")
        finally:
            os.umask(old)
        st = os.stat(d / "mine")
        return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)

    assert as_user(ALICE, create) == (ALICE, ALICE, 0o640)


def test_chmod_chown_clear_setid_bits(d: Path) -> None:
    f = d / "prog"
    f.write_bytes(b"#!")
    f.chmod(0o6755)
    assert stat.S_IMODE(f.stat().st_mode) == 0o6755
    os.chown(f, ALICE, ALICE)
    assert stat.S_IMODE(f.stat().st_mode) == 0o755  # changing the owner drops set-id bits
    f.chmod(0o4777)
    assert as_user(ALICE, lambda: f.write_bytes(b"changed")) == 7
    assert stat.S_IMODE(f.stat().st_mode) & stat.S_ISUID == 0  # a write by a user drops suid


def test_setgid_directory_inheritance(d: Path) -> None:
    shared = d / "shared"
    shared.mkdir()
    os.chown(shared, 0, 4242)
    shared.chmod(0o2777)
    assert as_user(ALICE, lambda: (shared / "f").write_bytes(b"")) == 0
    assert (shared / "f").stat().st_gid == 4242
    (shared / "sub").mkdir()
    assert (shared / "sub").stat().st_mode & stat.S_ISGID


def test_sticky_directory(d: Path) -> None:
    d.chmod(0o1777)
    assert as_user(ALICE, lambda: (d / "alices").write_bytes(b"a")) == 1
    assert as_user(BOB, lambda: os.unlink(d / "alices")) == "EPERM"
    assert as_user(BOB, lambda: os.rename(d / "alices", d / "bobs")) == "EPERM"
    assert as_user(ALICE, lambda: os.unlink(d / "alices")) is None


# ---------------------------------------------------------------- names and links

def test_rename_rules(d: Path) -> None:
    (d / "a").write_bytes(b"A")
    (d / "b").write_bytes(b"B")
    (d / "dir").mkdir()
    (d / "full").mkdir()
    (d / "full" / "x").write_bytes(b"")
    (d / "empty").mkdir()
    assert err(lambda: renameat2(d / "a", d / "b", pyfuse3.RENAME_NOREPLACE)) == "EEXIST"
    renameat2(d / "a", d / "b", pyfuse3.RENAME_EXCHANGE)
    assert ((d / "a").read_bytes(), (d / "b").read_bytes()) == (b"B", b"A")
    assert err(lambda: renameat2(d / "a", d / "nothing", pyfuse3.RENAME_EXCHANGE)) == "ENOENT"
    assert err(lambda: os.rename(d / "a", d / "dir")) == "EISDIR"
    assert err(lambda: os.rename(d / "dir", d / "a")) == "ENOTDIR"
    assert err(lambda: os.rename(d / "dir", d / "full")) == "ENOTEMPTY"
    assert err(lambda: os.rename(d / "dir", d / "dir" / "inside")) == "EINVAL"
    os.rename(d / "dir", d / "empty")  # replaces an empty directory
    assert not (d / "dir").exists() and (d / "empty").is_dir()
    os.rename(d / "a", d / "b")  # replaces a file
    assert (d / "b").read_bytes() == b"B" and not (d / "a").exists()
    os.rename(d / "empty", d / "full" / "moved")
    assert (d / "full" / "moved" / "..").resolve() == (d / "full").resolve()


def test_link_counts(d: Path) -> None:
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
    assert err(lambda: os.link(d / "s1", d / "s3")) == "EPERM"  # no hard links to directories


def test_symlinks_and_special_files(d: Path) -> None:
    os.symlink("../target/x", d / "l")
    assert os.readlink(d / "l") == "../target/x"
    assert os.lstat(d / "l").st_size == len("../target/x")
    os.mkfifo(d / "fifo")
    os.mknod(d / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    assert stat.S_ISFIFO((d / "fifo").stat().st_mode)
    assert (d / "null").stat().st_rdev == os.makedev(1, 3)
    assert err(lambda: open(d / "null", "wb")) == "EACCES"  # FUSE mounts are nodev


def test_xattrs_and_statfs(d: Path, mnt: Path) -> None:
    f = d / "f"
    f.write_bytes(b"")
    os.setxattr(f, "user.a", b"1")
    assert err(lambda: os.setxattr(f, "user.a", b"2", os.XATTR_CREATE)) == "EEXIST"
    os.setxattr(f, "user.a", b"3", os.XATTR_REPLACE)
    assert os.getxattr(f, "user.a") == b"3"
    assert os.listxattr(f) == ["user.a"]
    os.removexattr(f, "user.a")
    assert err(lambda: os.removexattr(f, "user.a")) == "ENODATA"
    st = os.statvfs(mnt)
    assert st.f_namemax == 255 and st.f_bsize == 4096 and st.f_bfree > 0


# ---------------------------------------------------------------- times

def test_timestamps(d: Path) -> None:
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
    assert d.stat().st_mtime_ns > dir_before  # creating an entry changes the directory


# ---------------------------------------------------------------- data

def test_holes_truncate_extend(d: Path) -> None:
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


def test_open_unlinked_file_stays_usable(d: Path, mnt: Path) -> None:
    count = inode_count(mnt)
    fd = os.open(d / "tmp", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.write(fd, b"still here")
        os.unlink(d / "tmp")
        assert not (d / "tmp").exists()
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, 100, 0) == b"still here"
        os.pwrite(fd, b"STILL", 0)
        assert os.pread(fd, 100, 0) == b"STILL here"
        assert inode_count(mnt) == count + 1  # not freed while open
    finally:
        os.close(fd)
    assert eventually(lambda: inode_count(mnt) == count)  # freed after release and forget


def test_lookup_counts_reach_zero_after_forget(d: Path, mnt: Path) -> None:
    count = inode_count(mnt)
    for i in range(50):
        (d / f"f{i}").write_bytes(b"x")
    os.listdir(d)
    for i in range(50):
        os.unlink(d / f"f{i}")
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("2")  # the kernel forgets everything unused
    assert eventually(lambda: inode_count(mnt) == count)


def test_large_directory(d: Path) -> None:
    names = {f"entry-{i:05d}" for i in range(10_000)}
    for name in names:
        os.mknod(d / name)
    listed = os.listdir(d)
    assert len(listed) == 10_000 and set(listed) == names


def test_large_file_checksum(d: Path) -> None:
    f = d / "big"
    digest = hashlib.sha256()
    chunk = os.urandom(MIB)
    with open(f, "wb") as fh:
        for i in range(100):
            block = chunk[i:] + chunk[:i]
            digest.update(block)
            fh.write(block)
    assert f.stat().st_size == 100 * MIB
    check = hashlib.sha256()
    with open(f, "rb") as fh:
        while block := fh.read(4 * MIB):
            check.update(block)
    assert check.hexdigest() == digest.hexdigest()
    f.unlink()


# ---------------------------------------------------------------- limits, sparse files, locks

def test_names_longer_than_255_bytes_get_enametoolong(d: Path) -> None:
    (d / "f").write_bytes(b"")
    ok, long = d / ("n" * 255), d / ("n" * 256)
    ok.write_bytes(b"")  # 255 bytes is allowed
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
    assert {name: err(fn) for name, fn in calls.items()} == dict.fromkeys(calls, "ENAMETOOLONG")
    assert sorted(os.listdir(d)) == sorted(["f", ok.name])


def _rss_kib(mnt: Path) -> int:
    """Resident memory of the file-system script serving ``mnt`` (found by its command line)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if any(a.endswith(b".py") for a in cmdline) and os.fsencode(mnt) in cmdline:
                status = Path(f"/proc/{pid}/status").read_text()
                return int(status.split("VmRSS:")[1].split()[0])
        except (OSError, IndexError):
            continue
    raise AssertionError(f"no file-system process serves {mnt}")


def test_a_petabyte_truncate_is_a_sparse_file(d: Path, mnt: Path) -> None:
    size = 999_999_999_999_999
    f = d / "huge"
    f.write_bytes(b"start")
    rss = _rss_kib(mnt)
    os.truncate(f, size)
    st = f.stat()
    assert st.st_size == size and st.st_blocks == 8  # only the page written holds memory
    fd = os.open(f, os.O_RDWR)
    try:
        assert os.pread(fd, 8, 0) == b"start\0\0\0"
        assert os.pread(fd, 65536, size // 2) == bytes(65536)
        os.pwrite(fd, b"end", size - 3)
        assert os.pread(fd, 10, size - 3) == b"end"
        assert os.lseek(fd, 4096, os.SEEK_DATA) == (size - 3) // 4096 * 4096
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 4096
    finally:
        os.close(fd)
    assert f.stat().st_blocks == 16
    assert _rss_kib(mnt) - rss < 32 * 1024
    f.unlink()


def test_fallocate_punches_real_holes_and_copy_keeps_them(d: Path) -> None:
    src, dst = d / "src", d / "dst"
    src.write_bytes(b"a" * 4096 * 4)
    fd = os.open(src, os.O_RDWR)
    out = os.open(dst, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert _libc.fallocate(fd, 0x01 | 0x02, 4096, 8192) == 0  # KEEP_SIZE | PUNCH_HOLE
        assert os.fstat(fd).st_blocks == 16 and os.fstat(fd).st_size == 4096 * 4
        assert os.pread(fd, 4096 * 4, 0) == b"a" * 4096 + bytes(8192) + b"a" * 4096
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 4096
        assert os.lseek(fd, 4096, os.SEEK_DATA) == 4096 * 3
        assert _libc.fallocate(fd, 0x10, 4096 * 4, 4096) == 0  # ZERO_RANGE extends the file
        assert os.fstat(fd).st_size == 4096 * 5
        assert os.copy_file_range(fd, out, 4096 * 5, 0, 0) == 4096 * 5
        assert os.pread(out, 4096 * 5, 0) == os.pread(fd, 4096 * 5, 0)
        assert os.fstat(out).st_blocks == 16  # the holes were copied as holes
    finally:
        os.close(fd)
        os.close(out)


RANGE_LOCKER = """
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
    except OSError as e:
        print("busy", flush=True)
time.sleep(float(os.environ.get("HOLD", "0")))
"""


def test_record_locks_cover_byte_ranges(d: Path) -> None:
    import subprocess
    import sys

    f = d / "f"
    f.write_bytes(b"x" * 300)
    holder = subprocess.Popen([sys.executable, "-c", RANGE_LOCKER, str(f), "lock:0:100"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "HOLD": "30"})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        other = subprocess.run([sys.executable, "-c", RANGE_LOCKER, str(f), "lock:100:100",
                                "lock:50:100", "get:0:300"], capture_output=True, text=True,
                               timeout=30)
        lines = other.stdout.split("\n")
        assert lines[:2] == ["locked", "busy"]
        import fcntl
        assert lines[2].split() == ["get", str(fcntl.F_WRLCK), "0", "100", str(holder.pid)]
    finally:
        holder.kill()
        holder.wait(10)
    after = subprocess.run([sys.executable, "-c", RANGE_LOCKER, str(f), "lock:0:300"],
                           capture_output=True, text=True, timeout=30)
    assert after.stdout.strip() == "locked"  # the holder's exit released its range
