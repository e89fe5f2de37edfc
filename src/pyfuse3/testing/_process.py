"""Run a file-system script as a subprocess for the duration of a ``with`` block."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pyfuse3._sysutil import lazy_unmount, mount_of

__all__ = ["serving_process", "wait_mounted"]


def wait_mounted(mountpoint: str, proc: subprocess.Popen[Any] | None = None,
                 timeout: float = 20.0) -> None:
    """Wait until ``mountpoint`` is a mount point (read from /proc/self/mountinfo, so a file
    system that hangs cannot hang the wait). RuntimeError if ``proc`` exits first,
    TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    path = os.path.abspath(mountpoint)
    while mount_of(path) is None:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with status {proc.returncode} before "
                               f"mounting {path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing was mounted at {path} within {timeout} s")
        time.sleep(0.01)


@contextlib.contextmanager
def serving_process(argv: Sequence[str], mountpoint: str, *, timeout: float = 20.0,
                    stop_signal: int = signal.SIGINT, env: Mapping[str, str] | None = None,
                    **popen_kwargs: Any) -> Iterator[subprocess.Popen[Any]]:
    """Start ``argv`` (a file system that mounts itself at ``mountpoint``), wait for the mount,
    and yield the process.

    At the end of the block the process gets ``stop_signal`` and ``timeout`` seconds to unmount
    and exit; then it is killed by its PID and the mount lazily detached. Its exit status is in
    ``returncode`` afterwards (negative: killed by a signal).
    """
    proc = subprocess.Popen(list(argv), env=None if env is None else dict(env), **popen_kwargs)
    try:
        wait_mounted(mountpoint, proc, timeout)
        yield proc
        if proc.poll() is None:
            proc.send_signal(stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout)
        if mount_of(os.path.abspath(mountpoint)) is not None:
            lazy_unmount(mountpoint)
