"""Mount a file system in a background thread for the duration of a ``with`` block."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyfuse3

FUSECTL = "/sys/fs/fuse/connections"
T = TypeVar("T")


def fuse_available() -> str | None:
    """None if this process can mount FUSE file systems, else the reason it cannot."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse does not exist"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian package fuse3)"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "no permission to open /dev/fuse"
    return None


@dataclass
class MountedFS:
    """A file system being served: its mountpoint, and the error main() ended with, if any."""

    mountpoint: str
    ops: Any
    backend: str = "trio"
    error: BaseException | None = None
    thread: threading.Thread | None = field(default=None, repr=False)
    loop: Any = field(default=None, repr=False)
    started: threading.Event = field(default_factory=threading.Event, repr=False)

    def path(self, *parts: str) -> str:
        """A path inside the mount."""
        return os.path.join(self.mountpoint, *parts)

    def call(self, afn: Callable[..., Coroutine[Any, Any, T]], *args: Any,
             timeout: float = 10) -> T:
        """Run ``await afn(*args)`` as a background task of the file system's event loop."""
        if not self.started.wait(timeout):
            raise TimeoutError("the file system's event loop did not start")
        if self.backend == "trio":
            import trio

            return trio.from_thread.run(afn, *args, trio_token=self.loop)
        return asyncio.run_coroutine_threadsafe(afn(*args), self.loop).result(timeout)


BACKENDS = ("trio", "asyncio", "uvloop")


def run(backend: str, afn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """``await afn(*args)`` in a new event loop: trio, asyncio, or asyncio on uvloop's loop."""
    if backend == "trio":
        import trio

        return trio.run(afn, *args)
    if backend == "asyncio":
        return asyncio.run(afn(*args))
    if backend == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise RuntimeError("backend 'uvloop' needs the uvloop package") from None
        return uvloop.run(afn(*args))
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")


def _serve(fs: MountedFS, backend: str) -> None:
    async def main() -> None:
        if backend == "trio":
            import trio

            fs.loop = trio.lowlevel.current_trio_token()
        else:
            fs.loop = asyncio.get_running_loop()
        fs.started.set()
        await pyfuse3.main()

    try:
        run(backend, main)
    except BaseException as e:
        fs.error = e


def _connection_of(mountpoint: str) -> str | None:
    # From /proc/self/mountinfo, not stat(): stat() of a hung mount would hang too.
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            if fields[4] == mountpoint and " - fuse" in line:
                return fields[2].split(":")[1]
    return None


def abort_connection(mountpoint: str) -> bool:
    """Abort the FUSE connection of a mount: every waiting caller gets ENOTCONN at once."""
    minor = _connection_of(mountpoint)
    if minor is None:
        return False
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
    """``fusermount3 -u -z``: detach the mount even if it is busy or dead."""
    if _connection_of(mountpoint) is not None:
        subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False,
                       capture_output=True, timeout=30)


@contextlib.contextmanager
def mounted(ops: Any, *, backend: str = "trio", options: Iterable[str] | None = None,
            timeout: float = 10.0) -> Iterator[MountedFS]:
    """Serve ``ops`` on a fresh temporary mountpoint until the block ends.

    ``backend`` is "trio", "asyncio" or "uvloop" (asyncio on uvloop's event loop).

    On exit the file system is terminated and unmounted; if it does not stop within
    ``timeout`` seconds its connection is aborted and the mount lazily detached. Raises
    RuntimeError if main() failed while the block ran.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    mountpoint = tempfile.mkdtemp(prefix="pyfuse3-test-")
    opts = set(pyfuse3.default_options if options is None else options)
    opts.add("fsname=pyfuse3-test")
    pyfuse3.init(ops, mountpoint, opts)
    fs = MountedFS(mountpoint, ops, backend)
    fs.thread = threading.Thread(target=_serve, args=(fs, backend), name="pyfuse3-test-fs",
                                 daemon=True)
    fs.thread.start()
    try:
        yield fs
    finally:
        _stop(fs, timeout)
    if fs.error is not None:
        raise RuntimeError(f"pyfuse3.main() failed: {fs.error!r}") from fs.error


def _stop(fs: MountedFS, timeout: float) -> None:
    assert fs.thread is not None
    try:
        # terminate() twice: first gracefully, then cancelling handlers that do not finish.
        for _ in range(2):
            if fs.thread.is_alive():
                with contextlib.suppress(RuntimeError):
                    pyfuse3.terminate()
                fs.thread.join(timeout / 2)
        if fs.thread.is_alive():
            abort_connection(fs.mountpoint)
            fs.thread.join(timeout)
            fs.error = fs.error or TimeoutError(f"file system did not stop within {timeout}s")
    finally:
        try:
            if not fs.thread.is_alive():
                pyfuse3.close(unmount=True)
        finally:
            lazy_unmount(fs.mountpoint)
            with contextlib.suppress(OSError):
                os.rmdir(fs.mountpoint)
