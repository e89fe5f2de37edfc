"""passthroughfs and coherentfs, started as a user would, exercised through the mount."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyfuse3.testing import serving_process

from ..util import eventually

pytestmark = pytest.mark.fuse
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STALENESS_LIMIT = 1.0  # seconds; generous for CI, the benchmark reports the real p99


class Example:
    """A running example file system over a source directory."""

    def __init__(self, script: str, source: Path, mountpoint: Path, *args: str,
                 **popen_kwargs: Any) -> None:
        self.source, self.mountpoint = source, mountpoint
        self._running = serving_process(
            [sys.executable, str(EXAMPLES / script), str(source), str(mountpoint), *args],
            str(mountpoint), stop_signal=signal.SIGTERM, **popen_kwargs)
        self.proc = self._running.__enter__()

    def stop(self) -> None:
        self._running.__exit__(None, None, None)

    def stats(self) -> dict[str, dict[str, int]]:
        return dict(json.loads(os.getxattr(self.mountpoint, "user.coherentfs.stats")))


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "src").mkdir()
    (tmp_path / "mnt").mkdir()
    return tmp_path / "src", tmp_path / "mnt"


@pytest.fixture
def passthrough(dirs: tuple[Path, Path]) -> Iterator[Example]:
    fs = Example("passthroughfs.py", *dirs)
    try:
        yield fs
    finally:
        fs.stop()


def start_coherent(dirs: tuple[Path, Path], *args: str) -> Example:
    return Example("coherentfs.py", *dirs, *args)


@pytest.fixture
def coherent(dirs: tuple[Path, Path]) -> Iterator[Example]:
    fs = start_coherent(dirs)
    try:
        yield fs
    finally:
        fs.stop()


def outcome(fn: Callable[[], object]) -> object:
    try:
        return fn()
    except OSError as e:
        return errno.errorcode[e.errno or 0]


def posix_script(root: Path) -> list[object]:
    """A series of operations and what each returned (or its errno name)."""
    steps: list[Callable[[], object]] = [
        lambda: (root / "f").write_bytes(b"hello"),
        lambda: (root / "f").read_bytes(),
        lambda: os.mkdir(root / "d", 0o750),
        lambda: stat.S_IMODE(os.stat(root / "d").st_mode),
        lambda: os.symlink("f", root / "l"),
        lambda: os.readlink(root / "l"),
        lambda: os.link(root / "f", root / "h"),
        lambda: os.stat(root / "f").st_nlink,
        lambda: os.rename(root / "h", root / "d" / "h2"),
        lambda: sorted(os.listdir(root)),
        lambda: os.rmdir(root / "d"),
        lambda: os.unlink(root / "missing"),
        lambda: os.truncate(root / "f", 2),
        lambda: (root / "f").read_bytes(),
        lambda: os.chmod(root / "f", 0o600),
        lambda: stat.S_IMODE(os.stat(root / "f").st_mode),
        lambda: os.setxattr(root / "f", "user.k", b"v"),
        lambda: os.getxattr(root / "f", "user.k"),
        lambda: os.listxattr(root / "f"),
        lambda: os.mkfifo(root / "p"),
        lambda: stat.S_ISFIFO(os.stat(root / "p").st_mode),
        lambda: os.utime(root / "f", ns=(1, 2_000_000_123)),
        lambda: os.stat(root / "f").st_mtime_ns,
        lambda: (root / "d" / "h2").read_bytes(),  # a hard link to the truncated f
    ]
    return [outcome(step) for step in steps]


def test_passthrough_matches_the_source(passthrough: Example, tmp_path: Path) -> None:
    """The same operations on the mount and on a plain directory give the same results."""
    plain = tmp_path / "plain"
    plain.mkdir()
    expected = posix_script(plain)
    assert "ENOTEMPTY" in expected and "ENOENT" in expected  # errors are compared too
    assert posix_script(passthrough.mountpoint) == expected


def test_passthrough_sees_source_changes_at_once(passthrough: Example) -> None:
    (passthrough.source / "f").write_bytes(b"one")
    assert (passthrough.mountpoint / "f").read_bytes() == b"one"
    (passthrough.source / "f").write_bytes(b"two")
    assert (passthrough.mountpoint / "f").read_bytes() == b"two"


def test_passthrough_no_xattrs_option(dirs: tuple[Path, Path]) -> None:
    src, mnt = dirs
    (src / "f").write_bytes(b"x")
    os.setxattr(src / "f", "user.a", b"1")
    fs = Example("passthroughfs.py", src, mnt, "--no-xattrs")
    try:
        assert (mnt / "f").read_bytes() == b"x"
        with pytest.raises(OSError) as info:
            os.getxattr(mnt / "f", "user.a")
        assert info.value.errno == errno.EOPNOTSUPP
    finally:
        fs.stop()


def wait_for(check: Callable[[], bool]) -> float:
    start = time.monotonic()
    assert eventually(check, timeout=STALENESS_LIMIT), "the mount stayed stale"
    return time.monotonic() - start


def settle(fs: Example, directory: str) -> None:
    """Wait until coherentfs has handled every change to the source so far: inotify reports
    them in order, and a name created now shows in the mount, whose kernel cached its absence,
    only once its event is handled."""
    marker = f".settled-{time.monotonic_ns()}"
    assert not (fs.mountpoint / directory / marker).exists()  # cached: a negative entry
    (fs.source / directory / marker).write_bytes(b"")
    wait_for(lambda: (fs.mountpoint / directory / marker).exists())


def test_coherent_external_changes(coherent: Example) -> None:
    src, mnt = coherent.source, coherent.mountpoint
    (src / "a").write_bytes(b"version 1")
    (src / "d").mkdir()
    settle(coherent, "d")  # the events of this setup pass before the kernel caches
    assert (mnt / "a").read_bytes() == b"version 1"
    assert not (mnt / "new").exists()  # a negative entry the kernel may cache
    reads = coherent.stats()["calls"].get("read", 0)
    assert (mnt / "a").read_bytes() == b"version 1"
    assert coherent.stats()["calls"].get("read", 0) == reads  # served from the kernel cache
    (src / "a").write_bytes(b"version 2")  # write
    wait_for(lambda: (mnt / "a").read_bytes() == b"version 2")
    os.chmod(src / "a", 0o600)  # attributes
    wait_for(lambda: stat.S_IMODE(os.stat(mnt / "a").st_mode) == 0o600)
    (src / "new").write_bytes(b"n")  # create
    wait_for(lambda: (mnt / "new").exists())
    os.rename(src / "new", src / "d" / "moved")  # rename across directories
    wait_for(lambda: not (mnt / "new").exists() and (mnt / "d" / "moved").exists())
    os.unlink(src / "a")  # delete
    wait_for(lambda: not (mnt / "a").exists())
    assert sorted(os.listdir(mnt)) == ["d"]
    assert coherent.stats()["invalidations"]["errors"] == 0


def test_coherent_fails_without_invalidation(dirs: tuple[Path, Path]) -> None:
    """The control: the same change stays invisible when invalidation is switched off."""
    fs = start_coherent(dirs, "--no-invalidation")
    try:
        (fs.source / "gone").write_bytes(b"x")
        assert (fs.mountpoint / "gone").exists()
        assert not (fs.mountpoint / "new").exists()
        (fs.source / "new").write_bytes(b"n")
        os.unlink(fs.source / "gone")
        time.sleep(STALENESS_LIMIT)
        assert not (fs.mountpoint / "new").exists()  # stale negative entry
        assert (fs.mountpoint / "gone").exists()  # stale positive entry
    finally:
        fs.stop()


def test_coherent_survives_a_renamed_directory_losing_a_file(coherent: Example,
                                                             dirs: tuple[Path, Path]) -> None:
    """A directory seen through the mount, renamed in the source, then a file inside deleted:
    a FUSEError escaped the inotify watcher and the mount went away."""
    src, mnt = dirs
    (src / "d").mkdir()
    (src / "d" / "f").write_bytes(b"x")
    assert os.listdir(mnt / "d") == ["f"] and (mnt / "d" / "f").read_bytes() == b"x"
    os.rename(src / "d", src / "e")
    (src / "e" / "f").unlink()
    (src / "e" / "g").write_bytes(b"y")
    assert eventually(lambda: outcome(lambda: sorted(os.listdir(mnt))) == ["e"], 5)
    assert eventually(lambda: outcome(lambda: os.listdir(mnt / "e")) == ["g"], 5)
    assert coherent.proc.poll() is None  # still serving
    assert (mnt / "e" / "g").read_bytes() == b"y"


@pytest.fixture
def shared_dirs() -> Iterator[tuple[Path, Path]]:
    """A source and a mountpoint other users can reach (under /tmp itself)."""
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="pyfuse3-shared-"))
    try:
        top.chmod(0o755)
        (top / "src").mkdir(mode=0o755)
        (top / "mnt").mkdir(mode=0o755)
        (top / "src").chmod(0o1777)  # like /tmp: anybody may create here
        yield top / "src", top / "mnt"
    finally:
        shutil.rmtree(top)


def test_passthrough_gives_new_files_to_their_creator(shared_dirs: tuple[Path, Path]) -> None:
    """With allow_other every file another user created belonged to root (the server)."""
    from ..util import ALICE, as_user

    src, mnt = shared_dirs
    fs = Example("passthroughfs.py", src, mnt, "-o", "allow_other")
    try:
        def make() -> list[tuple[int, int]]:
            (mnt / "f").write_bytes(b"x")
            os.mkdir(mnt / "d")
            os.symlink("f", mnt / "l")
            os.mkfifo(mnt / "p")
            return [(st.st_uid, st.st_gid) for st in
                    (os.lstat(mnt / n) for n in ("f", "d", "l", "p"))]

        assert as_user(ALICE, make) == [(ALICE, ALICE)] * 4  # as the kernel reports it
        assert [(os.lstat(src / n).st_uid, os.lstat(src / n).st_gid)
                for n in ("f", "d", "l", "p")] == [(ALICE, ALICE)] * 4  # and in the source
    finally:
        fs.stop()


def test_passthrough_follows_inodes_not_paths(shared_dirs: tuple[Path, Path]) -> None:
    """passthroughfs kept the path a file was looked up by: after its directory was renamed
    and a symlink put at the old name, reopening the file read (and wrote) whatever the old
    path led to now, as root: with allow_other another user read a file only root may."""
    from ..util import ALICE, as_user

    src, mnt = shared_dirs
    os.mkdir(src / "secret", 0o700)
    (src / "secret" / "f").write_bytes(b"root only")
    fs = Example("passthroughfs.py", src, mnt, "-o", "allow_other")
    try:
        def escape() -> list[object]:
            os.mkdir(mnt / "d")
            (mnt / "d" / "f").write_bytes(b"mine")
            fd = os.open(mnt / "d" / "f", os.O_RDONLY)  # the kernel keeps this inode
            try:
                os.rename(mnt / "d", mnt / "d2")
                os.symlink(str(src / "secret"), mnt / "d")  # the old path leads elsewhere
                again = f"/proc/self/fd/{fd}"  # reopens the inode: no lookup by name
                with open(again, "rb") as fh:
                    read = fh.read()
                with open(again, "r+b") as fh:
                    fh.write(b"MINE")
                return [read, outcome(lambda: (mnt / "d" / "f").read_bytes()),
                        (mnt / "d2" / "f").read_bytes()]
            finally:
                os.close(fd)

        assert as_user(ALICE, escape) == [b"mine", "EACCES", b"MINE"]
        assert (src / "secret" / "f").read_bytes() == b"root only"
        assert (src / "d2" / "f").read_bytes() == b"MINE"
    finally:
        fs.stop()


def test_passthrough_lets_go_of_what_the_kernel_forgets(passthrough: Example) -> None:
    """Each inode the kernel knows is a descriptor held by the server: forgotten inodes
    must close theirs (listing counts a lookup only with READDIRPLUS)."""
    fds = Path(f"/proc/{passthrough.proc.pid}/fd")
    baseline = len(os.listdir(fds))
    for i in range(200):
        (passthrough.source / f"f{i}").write_bytes(b"x")
    assert len(os.listdir(passthrough.mountpoint)) == 200
    for i in range(200):
        os.stat(passthrough.mountpoint / f"f{i}")
    assert len(os.listdir(fds)) >= baseline + 200  # held while the kernel knows them
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("2")
    assert eventually(lambda: len(os.listdir(fds)) <= baseline + 5), len(os.listdir(fds))


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_limit(soft: int, hard: int) -> Callable[[], None]:
    """A preexec_fn that starts the file system with these RLIMIT_NOFILE limits."""
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def tree(src: Path, dirs: int, files: int) -> int:
    for d in range(dirs):
        (src / f"d{d}").mkdir()
        for i in range(files):
            (src / f"d{d}" / f"f{i}").write_bytes(b"%d" % i)
    return 1 + dirs * (1 + files)


def test_passthrough_walks_a_tree_larger_than_its_descriptor_limit(
        dirs: tuple[Path, Path]) -> None:
    """Each inode the kernel knows holds a descriptor in passthroughfs: `find` over a tree
    with more inodes than RLIMIT_NOFILE failed with EMFILE ("Too many open files") once the
    limit was reached. Now the soft limit is raised to the hard one and, past its budget,
    passthroughfs asks the kernel to forget the entries looked up longest ago."""
    src, mnt = dirs
    names = tree(src, 3, 600)  # 1,804 inodes for a limit of 1,200
    fs = Example("passthroughfs.py", src, mnt, preexec_fn=fd_limit(1100, 1200))
    try:
        with open(f"/proc/{fs.proc.pid}/limits") as fh:
            assert [line.split()[3:5] for line in fh if line.startswith("Max open files")] \
                == [["1200", "1200"]]  # the soft limit raised to the hard one
        with open(mnt / "d0" / "f7", "rb") as held:  # in use: the kernel keeps it
            walk = subprocess.run(["find", str(mnt)], capture_output=True, timeout=60)
            assert walk.stderr == b""
            assert len(walk.stdout.splitlines()) == names
            assert eventually(lambda: descriptors(fs.proc.pid) < 300), \
                descriptors(fs.proc.pid)  # the budget is 176 inodes
            assert held.read() == b"7"
        assert (mnt / "d2" / "f599").read_bytes() == b"599"
    finally:
        fs.stop()
    fs = Example("passthroughfs.py", src, mnt)  # control: a budget larger than the tree
    try:
        subprocess.run(["find", str(mnt)], capture_output=True, timeout=60, check=True)
        assert descriptors(fs.proc.pid) > names  # the kernel kept every inode it was sent
    finally:
        fs.stop()


def test_passthrough_out_of_descriptors_says_so_once(dirs: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    """More files held open than the limit allows: opens fail with EMFILE, the log says why
    once, and the file system serves again once they are closed."""
    src, mnt = dirs
    tree(src, 1, 1200)
    with open(tmp_path / "log", "wb") as log:
        fs = Example("passthroughfs.py", src, mnt, preexec_fn=fd_limit(1100, 1100),
                     stderr=log)
    held, failed = [], 0
    try:
        for i in range(1200):
            try:
                held.append(open(mnt / "d0" / f"f{i}", "rb"))
            except OSError as e:
                assert e.errno == errno.EMFILE
                failed += 1
        assert failed > 0
        for fh in held:
            fh.close()
        assert (mnt / "d0" / "f1199").read_bytes() == b"1199"
    finally:
        for fh in held:
            fh.close()
        fs.stop()
    warnings = [line for line in (tmp_path / "log").read_text().splitlines()
                if "out of file descriptors" in line]
    assert len(warnings) == 1, warnings
    assert "RLIMIT_NOFILE 1100" in warnings[0] and "EMFILE" in warnings[0]


def test_passthrough_open_directories_hold_no_descriptor(dirs: tuple[Path, Path]) -> None:
    """An open directory held a descriptor in passthroughfs besides its inode's, so 700 open
    directories needed 1,400 and failed under a limit of 1,100 (stress-ng's chdir stressor,
    which holds 16,384, failed under 20,000). Now the listing is read when asked for."""
    src, mnt = dirs
    for i in range(700):
        (src / f"d{i}").mkdir()
        (src / f"d{i}" / "f").write_bytes(b"")
    fs = Example("passthroughfs.py", src, mnt, preexec_fn=fd_limit(1100, 1100))
    held: list[int] = []
    try:
        for i in range(700):
            held.append(os.open(mnt / f"d{i}", os.O_RDONLY | os.O_DIRECTORY))
        for fd in held:
            assert os.listdir(fd) == ["f"]
            os.fsync(fd)  # fsyncdir()
        assert os.listdir(held[0]) == ["f"]  # listed again from its start
    finally:
        for fd in held:
            os.close(fd)
        fs.stop()


def inotify_watches(pid: int) -> int:
    """How many inotify watches process ``pid`` holds (from /proc/PID/fdinfo)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify":
                with open(f"/proc/{pid}/fdinfo/{fd}") as fh:
                    count += sum(line.startswith("inotify wd:") for line in fh)
    return count


def test_coherent_lets_go_of_watches_the_kernel_no_longer_needs(coherent: Example) -> None:
    """coherentfs watches every directory the kernel has seen; once the kernel forgets one,
    it has nothing cached below it, so the watch goes too. Kept, the watches grew with every
    directory ever seen until inotify's max_user_watches made lookups fail with ENOSPC."""
    src, mnt = coherent.source, coherent.mountpoint
    for i in range(50):
        (src / f"d{i}").mkdir()

    def look_up_all() -> bool:  # (again while invalidations of their creation still land)
        for i in range(50):
            os.stat(mnt / f"d{i}")
        return inotify_watches(coherent.proc.pid) == 51  # the root's and one per directory
    assert eventually(look_up_all), inotify_watches(coherent.proc.pid)
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("2")
    assert eventually(lambda: inotify_watches(coherent.proc.pid) == 1), \
        inotify_watches(coherent.proc.pid)
    (src / "d3" / "new").write_bytes(b"x")  # looked up again: watched again, and coherent
    assert os.listdir(mnt / "d3") == ["new"]
    assert inotify_watches(coherent.proc.pid) == 2
    (src / "d3" / "new").unlink()
    wait_for(lambda: os.listdir(mnt / "d3") == [])
