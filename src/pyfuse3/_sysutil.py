"""Helpers for file system code: listing, syncing, xattrs and group lookup on the host."""

from __future__ import annotations

import ctypes
import os

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
