"""Helpers for file system code: listing, syncing, xattrs and group lookup on the host."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import subprocess

_libc = ctypes.CDLL(None, use_errno=True)
_NAMESPACES = ("system", "user")


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


def get_sup_groups(pid: int) -> set[int]:
    """Supplementary group ids of a process, read from /proc/PID/status."""
    with open(f"/proc/{int(pid)}/status") as fh:
        for line in fh:
            if line.startswith("Groups:"):
                return {int(g) for g in line.split()[1:]}
    raise RuntimeError(f"no Groups: line in /proc/{pid}/status")


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
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            if _unescape(fields[4]) == path:
                fstype = fields[fields.index("-") + 1]
                found = (fields[2], fstype)
    return found


def abort_connection(mountpoint: str) -> bool:
    """Abort the FUSE connection of a mount: every waiting caller gets ENOTCONN at once.

    Needs the fusectl file system (mounted here if missing, which needs root) and write
    access to the connection's ``abort`` file (root, or the user who mounted).
    """
    mount = mount_of(mountpoint)
    if mount is None or not mount[1].startswith("fuse"):
        return False
    minor = mount[0].split(":")[1]
    if not os.path.isdir(os.path.join(FUSECTL, minor)):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["mount", "-t", "fusectl", "none", FUSECTL], check=False,
                           capture_output=True, timeout=10)
    try:
        with open(os.path.join(FUSECTL, minor, "abort"), "w") as fh:
            fh.write("1")
    except OSError:
        return False
    return True


def lazy_unmount(mountpoint: str) -> None:
    """``fusermount3 -u -z``: detach a FUSE mount even if it is busy or dead."""
    mount = mount_of(mountpoint)
    if mount is not None and mount[1].startswith("fuse"):
        subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False,
                       capture_output=True, timeout=30)
