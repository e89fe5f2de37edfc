"""Helpers for file system code: listing, syncing, xattrs and group lookup on the host."""

from __future__ import annotations

import contextlib
import ctypes
import operator
import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from types import FrameType

_libc = ctypes.CDLL(None, use_errno=True)
_NAMESPACES = ("system", "user")


#: libfuse 3.14 reads requests into a buffer of this many pages (FUSE_MAX_MAX_PAGES), so a
#: WRITE may carry at most that much: a larger max_write makes the kernel refuse every read of
#: /dev/fuse (EINVAL), and below one page it does too.
LIBFUSE_MAX_PAGES = 256


def max_write_range() -> tuple[int, int]:
    """The smallest and largest ``max_write`` a mount can serve with."""
    page = os.sysconf("SC_PAGESIZE")
    return page, LIBFUSE_MAX_PAGES * page


def check_max_write(value: object, where: str) -> int:
    """``value`` as a max_write, or ValueError naming ``where`` and the limits."""
    low, high = max_write_range()
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{where}: max_write must be an int from {low} (a page) to {high} "
                         f"({LIBFUSE_MAX_PAGES} pages, what libfuse reads at once), "
                         f"got {value!r}")
    return value


def _check_path(path: object, what: str = "path") -> None:
    if not isinstance(path, str):
        raise TypeError(f"{what} must be str, not {type(path).__name__}")


def listdir(path: str) -> list[str]:
    """Names in a directory, without ``.`` and ``..`` (undecodable bytes surrogate-escaped)."""
    _check_path(path)
    return os.listdir(path)


def syncfs(path: str) -> None:
    """Write all dirty data of the file system holding ``path`` to disk (GIL released)."""
    _check_path(path)
    fd = os.open(path, os.O_DIRECTORY | os.O_RDONLY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


def _check_xattr_args(path: object, name: object, namespace: object) -> None:
    _check_path(path)
    _check_path(name, "name")
    if namespace not in _NAMESPACES:
        raise ValueError(f"namespace must be 'system' or 'user', not {namespace!r}")


def setxattr(path: str, name: str, value: bytes, namespace: str = "user") -> None:
    """Set extended attribute ``name`` (the full name; namespace is for BSD only) of a path."""
    _check_xattr_args(path, name, namespace)
    if not isinstance(value, bytes):
        raise TypeError(f"value must be bytes, not {type(value).__name__}")
    os.setxattr(path, name, value, follow_symlinks=True)


def getxattr(path: str, name: str, size_guess: int = 128, namespace: str = "user") -> bytes:
    """Value of extended attribute ``name`` of a path; retries with the right buffer size."""
    _check_xattr_args(path, name, namespace)
    if not isinstance(size_guess, int) or size_guess < 0:
        raise ValueError(f"size_guess must be a non-negative int, not {size_guess!r}")
    return os.getxattr(path, name, follow_symlinks=True)


def _status(pid: int) -> str:
    # The text of /proc/PID/status: a process's, or a thread's (/proc has every thread's
    # entry, and a request's pid is its caller's thread id).
    with open(f"/proc/{pid}/status") as fh:  # no loop inside: docs/design.md
        return fh.read()


def get_sup_groups(pid: int) -> set[int]:
    """Supplementary group ids of a process, read from /proc/PID/status (TypeError unless
    ``pid`` is an int; FileNotFoundError when no such process exists)."""
    for line in _status(operator.index(pid)).splitlines():
        if line.startswith("Groups:"):
            return {int(g) for g in line.split()[1:]}
    raise RuntimeError(f"no Groups: line in /proc/{pid}/status")


#: Signals whose default action does not end a process (stop, continue, ignore).
_SPARED_BY_DEFAULT = sum(1 << (sig - 1) for sig in (
    signal.SIGCHLD, signal.SIGCONT, signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN,
    signal.SIGTTOU, signal.SIGURG, signal.SIGWINCH))


def dies_of_pending_signal(status: str) -> bool:
    """Whether the process or thread whose /proc/PID/status text is ``status`` has a signal
    pending that ends it: SIGKILL (the kernel adds it to every thread of a process a fatal
    signal ends), or one neither blocked, caught nor ignored whose default action ends it
    (a core dump's signal is not turned into SIGKILL)."""
    masks = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt"):
            masks[key] = int(value, 16)
    if len(masks) != 5:
        raise ValueError("not the text of a /proc/PID/status file")
    pending = masks["SigPnd"] | masks["ShdPnd"]
    kill = 1 << (signal.SIGKILL - 1)
    fatal = pending & ~(masks["SigBlk"] | masks["SigIgn"] | masks["SigCgt"] | _SPARED_BY_DEFAULT)
    return bool(pending & kill or fatal)


def caller_dying(pid: int) -> bool:
    """Whether the thread ``pid`` (a request's caller) is being killed, read from /proc.

    True also when that cannot be told (pid 0: a caller outside the mount's pid namespace;
    no such /proc entry, or one this kernel writes otherwise): the interrupt is then
    honoured, as for a dying caller."""
    if pid <= 0:
        return True
    try:
        return dies_of_pending_signal(_status(pid))
    except (OSError, ValueError):
        return True


# -- mounts: read from /proc/self/mountinfo, never stat() (a hung FUSE mount hangs stat) -----

FUSECTL = "/sys/fs/fuse/connections"


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_of(path: str) -> tuple[str, str] | None:
    """(device "major:minor", file system type) of the mount whose mount point is ``path``.

    The topmost one if several are stacked there; None if ``path`` is not a mount point.
    """
    found = None
    with open("/proc/self/mountinfo") as fh:  # no loop inside: docs/design.md
        lines = fh.readlines()
    for line in lines:
        fields = line.split()
        if _unescape(fields[4]) == path:
            fstype = fields[fields.index("-") + 1]
            found = (fields[2], fstype)
    return found


def is_mounted(device: str) -> bool:
    """Whether a mount of device ``device`` ("major:minor") is in this mount namespace."""
    with open("/proc/self/mountinfo") as fh:
        return any(line.split()[2] == device for line in fh)


def abort_connection(mountpoint: str) -> bool:
    """Abort the FUSE connection of the (topmost) mount at ``mountpoint``: every waiting
    caller gets ENOTCONN at once.

    Needs the fusectl file system (mounted here if missing, which needs root) and write
    access to the connection's ``abort`` file (root, or the user who mounted).
    """
    mount = mount_of(mountpoint)
    if mount is None or not mount[1].startswith("fuse"):
        return False
    return abort_device(mount[0])


def abort_device(device: str) -> bool:
    """Abort the FUSE connection of device ``device`` ("major:minor"), wherever it is
    mounted and whatever is stacked on it."""
    major, minor = device.split(":")
    # fusectl names a connection by the kernel's dev_t: the minor for FUSE's anonymous
    # devices (major 0), major << 20 | minor for a block device (fuseblk, option blkdev)
    number = str(int(major) << 20 | int(minor))
    if not os.path.isdir(os.path.join(FUSECTL, number)):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["mount", "-t", "fusectl", "none", FUSECTL], check=False,
                           capture_output=True, timeout=10)
    try:
        with open(os.path.join(FUSECTL, number, "abort"), "w") as fh:
            fh.write("1")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT on the main thread, under any handler written in Python) while the
    block runs, then hand each one held to that handler, in order, with the frame it
    interrupted, once the block is done: Python's own raises KeyboardInterrupt (chained to
    an error of the block, which it replaces), asyncio.run's first cancels its main task and
    its second raises, trio's sees the protected frame it came in and waits for a checkpoint.
    Work that must not stop halfway (a close() interrupted mid-teardown left its mount
    behind) finishes first. Another thread, or SIG_IGN/SIG_DFL: nothing changes."""
    handler = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(handler):
        yield
        return
    held: list[FrameType | None] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        for frame in held:  # a KeyboardInterrupt raised here wins over an error of the block
            handler(signal.SIGINT, frame)


def lazy_unmount(mountpoint: str) -> None:
    """``fusermount3 -u -z``: detach a FUSE mount even if it is busy or dead."""
    mount = mount_of(mountpoint)
    if mount is not None and mount[1].startswith("fuse"):
        subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False,
                       capture_output=True, timeout=30)

