"""Kernel passthrough (libfuse 3.18, Linux 6.9, CAP_SYS_ADMIN): open() and create() name a
backing file and the kernel reads and writes it itself; examples/passthroughfs.py uses it."""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

import pyfuse3
from pyfuse3.testing import MountedFS, mounted

from ..util import eventually

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from passthroughfs import PassthroughFS

pytestmark = pytest.mark.fuse
MIB = 1 << 20


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "data").write_bytes(os.urandom(4 * MIB))
    return src


def _backing(fs: MountedFS) -> object:
    assert fs.mount is not None
    return fs.mount.session.fills.backing


def _require_passthrough(fs: MountedFS) -> None:
    os.stat(fs.mountpoint)  # INIT is answered
    backing = _backing(fs)
    if not backing.enabled:  # type: ignore[attr-defined]
        pytest.skip(f"passthrough unavailable: {backing.unavailable}")  # type: ignore[attr-defined]


def test_reads_and_writes_never_reach_the_file_system(backend: str, tmp_path: Path) -> None:
    src = _source(tmp_path)
    ops = PassthroughFS(str(src))
    with mounted(ops, backend=backend) as fs:
        _require_passthrough(fs)
        mnt = Path(fs.mountpoint)
        assert (mnt / "data").read_bytes() == (src / "data").read_bytes()
        with open(mnt / "data", "r+b") as fh:  # a second open of the inode, read-write
            fh.seek(MIB)
            fh.write(b"W" * MIB)
        assert (src / "data").read_bytes()[MIB:2 * MIB] == b"W" * MIB
        (mnt / "new").write_bytes(b"created" * 1000)  # create() with a backing file
        assert (src / "new").read_bytes() == b"created" * 1000
        with open(mnt / "data", "rb", buffering=0) as fh:
            (src / "data").write_bytes(b"changed in the source")
            # the kernel reads the source file itself: no stale page cache of its own
            assert fh.read(100) == b"changed in the source"
        assert ops.calls["read"] == 0 and ops.calls["write"] == 0
        assert eventually(lambda: _backing(fs).registered == {})  # type: ignore[attr-defined]


def test_opens_of_one_inode_share_its_backing_file(backend: str, tmp_path: Path) -> None:
    """The kernel takes one backing file per inode; each open still gets its own access mode
    (the read-write open writes although the first open was read-only)."""
    src = _source(tmp_path)
    ops = PassthroughFS(str(src))
    with mounted(ops, backend=backend) as fs:
        _require_passthrough(fs)
        mnt = Path(fs.mountpoint)
        ino = os.stat(mnt / "data").st_ino
        with open(mnt / "data", "rb") as reader, open(mnt / "data", "r+b") as writer:
            assert _backing(fs).registered == {ino: 2}  # type: ignore[attr-defined]
            writer.write(b"both")
            writer.flush()
            assert reader.read(4) == b"both"
        assert eventually(lambda: _backing(fs).registered == {})  # type: ignore[attr-defined]
        assert ops.calls["read"] == 0 and ops.calls["write"] == 0


def test_without_passthrough_reads_reach_the_file_system(backend: str, tmp_path: Path) -> None:
    """The control: the same reads, served by read()."""
    src = _source(tmp_path)
    ops = PassthroughFS(str(src), passthrough=False)
    with mounted(ops, backend=backend) as fs:
        assert (Path(fs.mountpoint) / "data").read_bytes() == (src / "data").read_bytes()
        assert ops.calls["read"] > 0
        assert not _backing(fs).enabled  # type: ignore[attr-defined]


class AskingAnyway(PassthroughFS):
    """Returns a backing_fd although the mount did not ask for passthrough."""

    def _backing(self, fd: int) -> int:
        return fd


def test_a_backing_fd_without_passthrough_is_a_plain_open_logged_once(
        backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = _source(tmp_path)
    ops = AskingAnyway(str(src), passthrough=False)
    with caplog.at_level(logging.WARNING, logger="pyfuse3"), \
            mounted(ops, backend=backend) as fs:
        for _ in range(3):
            assert (Path(fs.mountpoint) / "data").read_bytes()[:10] == \
                (src / "data").read_bytes()[:10]
        assert ops.calls["read"] > 0
    lines = [r.getMessage() for r in caplog.records if "backing_fd" in r.getMessage()]
    assert len(lines) == 1
    assert "not in use on this mount (Operations.enable_passthrough is False)" in lines[0]


class Flags(PassthroughFS):
    """open() asks for flags the kernel refuses with passthrough."""

    def __init__(self, source: str, **flags: bool) -> None:
        super().__init__(source)
        self.flags = flags

    async def open(self, inode: Any, flags: Any, ctx: Any) -> pyfuse3.FileInfo:
        info = await super().open(inode, flags, ctx)
        for name, value in self.flags.items():
            setattr(info, name, value)
        return info


def test_keep_cache_is_dropped_for_a_passthrough_open(backend: str, tmp_path: Path) -> None:
    """The kernel refuses passthrough with keep_cache (EIO for the caller): pyfuse3 drops it."""
    src = _source(tmp_path)
    ops = Flags(str(src), keep_cache=True)
    with mounted(ops, backend=backend) as fs:
        _require_passthrough(fs)
        assert (Path(fs.mountpoint) / "data").read_bytes() == (src / "data").read_bytes()
        assert ops.calls["read"] == 0


@pytest.mark.fuse_errors_expected
def test_nonseekable_with_a_backing_fd_is_refused_clearly(
        backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = _source(tmp_path)
    ops = Flags(str(src), nonseekable=True)
    with mounted(ops, backend=backend) as fs:
        _require_passthrough(fs)
        with pytest.raises(OSError) as info:
            (Path(fs.mountpoint) / "data").read_bytes()
        assert info.value.errno == errno.EIO
        assert os.listdir(fs.mountpoint) == ["data"]  # still serving
    failures = [r for r in caplog.records
                if r.exc_info and "cannot name a backing_fd" in str(r.exc_info[1])]
    assert len(failures) == 1 and failures[0].getMessage().startswith("open() handler failed")


@pytest.mark.parametrize("passthrough", [True, False])
def test_o_direct_reads_and_writes(backend: str, tmp_path: Path, passthrough: bool) -> None:
    """O_DIRECT through passthroughfs: its own descriptor is opened without O_DIRECT (its read()
    and write() use unaligned buffers, which O_DIRECT refused with EINVAL)."""
    src = _source(tmp_path)
    ops = PassthroughFS(str(src), passthrough=passthrough)
    with mounted(ops, backend=backend) as fs:
        buf = mmap.mmap(-1, MIB)
        buf.write(b"D" * MIB)
        fd = os.open(Path(fs.mountpoint) / "data", os.O_RDWR | os.O_DIRECT)
        try:
            assert os.pwritev(fd, [buf], MIB) == MIB
            assert os.preadv(fd, [buf], 0) == MIB
        finally:
            os.close(fd)
        assert buf[:] == (src / "data").read_bytes()[:MIB]
        assert (src / "data").read_bytes()[MIB:2 * MIB] == b"D" * MIB


CAP_SYS_ADMIN = 21
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _drop_effective_cap_of_this_thread(cap: int) -> None:
    """Clear ``cap`` from the calling thread's effective capabilities (capset(2) acts on one
    thread; the permitted set keeps it, so nothing else in the process loses it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # 2 x {effective, permitted, inheritable}
    if libc.syscall(125, header, data) != 0:  # capget
        raise OSError(ctypes.get_errno(), "capget")
    data[0] &= ~(1 << cap)
    if libc.syscall(126, header, data) != 0:  # capset
        raise OSError(ctypes.get_errno(), "capset")


class WithoutSysAdmin(PassthroughFS):
    """Serves without CAP_SYS_ADMIN: dropped on the serving thread at INIT, before any open
    tries to register a backing file."""

    def init(self) -> None:
        _drop_effective_cap_of_this_thread(CAP_SYS_ADMIN)
        super().init()


def test_without_cap_sys_admin_files_are_served_by_read_with_one_warning(
        backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The kernel registers a backing file only for a server with CAP_SYS_ADMIN: without it,
    opens are answered as plain ones (served by read()), and the reason is logged once."""
    src = _source(tmp_path)
    ops = WithoutSysAdmin(str(src))
    with caplog.at_level(logging.WARNING, logger="pyfuse3"), \
            mounted(ops, backend=backend) as fs:
        _require_passthrough(fs)  # negotiated: the capability is checked at registration
        for _ in range(3):
            assert (Path(fs.mountpoint) / "data").read_bytes() == (src / "data").read_bytes()
        assert ops.calls["read"] > 0 and _backing(fs).registered == {}  # type: ignore[attr-defined]
    lines = [r.getMessage() for r in caplog.records if "backing_fd" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "Operation not permitted (it needs CAP_SYS_ADMIN)" in lines[0]


class Stacking(PassthroughFS):
    """passthroughfs that allows backing files on a stacking file system (or not)."""

    def __init__(self, source: str, depth: int) -> None:
        super().__init__(source)
        self.depth = depth

    def init_connection(self, conn: pyfuse3.ConnectionInfo) -> None:
        conn.max_backing_stack_depth = self.depth


@pytest.mark.parametrize("depth", [0, 1])
def test_backing_files_on_a_passthrough_mount_need_max_backing_stack_depth(
        backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, depth: int) -> None:
    """passthroughfs over another passthroughfs mount: its backing files lie on a stacking
    file system, which the kernel refuses (ELOOP) unless max_backing_stack_depth is 1; the
    refusal is served by read() with one warning that names the setting."""
    src = _source(tmp_path)
    lower_ops = PassthroughFS(str(src))
    with mounted(lower_ops, backend="trio") as lower:
        _require_passthrough(lower)
        ops = Stacking(lower.mountpoint, depth)
        with caplog.at_level(logging.WARNING, logger="pyfuse3"), \
                mounted(ops, backend=backend) as upper:
            _require_passthrough(upper)
            for _ in range(2):
                assert (Path(upper.mountpoint) / "data").read_bytes() == \
                    (src / "data").read_bytes()
            warnings = [r.getMessage() for r in caplog.records
                        if "backing_fd" in r.getMessage()]
            if depth:
                assert ops.calls["read"] == 0 and warnings == []
            else:
                assert ops.calls["read"] > 0 and len(warnings) == 1, warnings
                assert "max_backing_stack_depth = 1 allows that" in warnings[0]
        assert lower_ops.calls["read"] == 0  # the upper one's reads went to the lower's file


@pytest.mark.parametrize("passthrough", [True, False])
def test_a_write_by_another_user_clears_setuid_and_setgid(backend: str, tmp_path: Path,
                                                          passthrough: bool) -> None:
    """A user without CAP_FSETID who writes a setuid/setgid file makes it a plain one: the
    kernel asks the file system to clear the bits (SETATTR) also when the write itself went
    to the backing file."""
    from ..util import ALICE, as_user

    src = _source(tmp_path)
    tmp_path.chmod(0o755)
    src.chmod(0o755)
    (src / "data").chmod(0o6777)
    ops = PassthroughFS(str(src), passthrough=passthrough)
    with mounted(ops, backend=backend, options=[*pyfuse3.default_options, "allow_other"]) as fs:
        if passthrough:
            _require_passthrough(fs)
        Path(fs.mountpoint).chmod(0o755)

        def append() -> None:
            with open(Path(fs.mountpoint) / "data", "ab") as fh:
                fh.write(b"alice was here")

        assert as_user(ALICE, append) is None
        assert ops.calls["write"] == (0 if passthrough else 1)
        assert stat.S_IMODE((src / "data").stat().st_mode) == 0o777
        assert (src / "data").read_bytes().endswith(b"alice was here")


class KillingPrivileges(PassthroughFS):
    """passthroughfs asking for handle_killpriv too (where the kernel offers it)."""

    asked = False

    def init_connection(self, conn: pyfuse3.ConnectionInfo) -> None:
        if "handle_killpriv" in conn.capable:
            conn.want.add("handle_killpriv")
        self.asked = {"passthrough", "handle_killpriv"} <= conn.want


def test_passthrough_with_handle_killpriv_fails_main(backend: str, tmp_path: Path) -> None:
    """With handle_killpriv the kernel would leave the bits to the file system, which never
    sees a passthrough write: a setuid file written by anyone would stay setuid (checked by
    hand: -rwsrwxrwx after another user's write). main() refuses the combination."""
    ops = KillingPrivileges(str(_source(tmp_path)))
    with pytest.raises((RuntimeError, ValueError)) as info:
        with mounted(ops, backend=backend) as fs:
            os.listdir(fs.mountpoint)
            assert not ops.asked, "served with passthrough and handle_killpriv"
            pytest.skip("the kernel offers no handle_killpriv, or passthrough is unavailable "
                        f"({_backing(fs).unavailable})")  # type: ignore[attr-defined]
    chain = [info.value, info.value.__cause__]
    assert any("passthrough and handle_killpriv exclude each other" in str(e)
               for e in chain if e is not None), chain


@pytest.mark.parametrize("xattrs", [True, False], ids=["xattrs", "no-xattrs"])
def test_without_xattrs_writes_are_not_preceded_by_a_getxattr(backend: str, tmp_path: Path,
                                                              xattrs: bool) -> None:
    """passthroughfs --no-xattrs: the kernel asks for security.capability before every write
    (whether or not passthrough is used) unless the file system answered ENOSYS once. With
    xattrs kept, that is the control: one GETXATTR per write."""
    src = _source(tmp_path)
    ops = PassthroughFS(str(src), xattrs=xattrs)
    with mounted(ops, backend=backend) as fs:
        data = Path(fs.mountpoint) / "data"
        fd = os.open(data, os.O_WRONLY)
        try:
            for i in range(8):
                os.pwrite(fd, b"%d" % i * 4096, i * 4096)
        finally:
            os.close(fd)
        if xattrs:
            assert ops.calls["getxattr"] >= 8
            os.setxattr(data, "user.kept", b"1")
            assert os.getxattr(data, "user.kept") == b"1"
            return
        assert ops.calls["getxattr"] <= 1
        for call in (lambda: os.getxattr(data, "user.x"), lambda: os.listxattr(data),
                     lambda: os.setxattr(data, "user.x", b"1"),
                     lambda: os.removexattr(data, "user.x")):
            with pytest.raises(OSError) as info:
                call()
            assert info.value.errno == errno.EOPNOTSUPP
    assert (src / "data").read_bytes()[:8 * 4096] == b"".join(b"%d" % i * 4096
                                                               for i in range(8))
    assert "user.x" not in os.listxattr(src / "data")
