"""Mount a file system in a background thread for the duration of a ``with`` block."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

import pyfuse3
from pyfuse3 import _backends
from pyfuse3._backends import Backend
from pyfuse3._module_api import init_if_free
from pyfuse3._sysutil import FUSECTL, abort_connection, lazy_unmount, mount_of

uvloop: ModuleType | None
try:
    import uvloop
except ImportError:  # optional: only the "uvloop" backend needs it
    uvloop = None

__all__ = ["FUSECTL", "abort_connection", "lazy_unmount"]  # re-exported for tests

T = TypeVar("T")


FUSE_DEVICE = (10, 229)  # major, minor of /dev/fuse (Linux devices.txt)


def fuse_available(device: str = "/dev/fuse") -> str | None:
    """None if this process can mount FUSE file systems, else the reason it cannot.

    ``device`` must exist, be the FUSE character device (10, 229) and open for reading and
    writing; ``fusermount3`` must be installed.
    """
    try:
        st = os.stat(device)
    except OSError as e:
        return f"{device} cannot be used: {e.strerror}"
    if not stat.S_ISCHR(st.st_mode) or (os.major(st.st_rdev), os.minor(st.st_rdev)) != FUSE_DEVICE:
        return f"{device} is not the FUSE device (character device 10,229)"
    try:
        os.close(os.open(device, os.O_RDWR))
    except OSError as e:
        return f"{device} cannot be opened: {e.strerror}"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is not installed (Debian package fuse3)"
    return None


@dataclass
class MountedFS:
    """A file system being served: its mountpoint, its ``pyfuse3.Mount``, and the error
    serving ended with, if any. The first one mounted while no ``pyfuse3.init()`` file system
    exists is that file system, so the module-level calls (``pyfuse3.invalidate_inode()``...)
    act on it; use ``mount`` for the others."""

    mountpoint: str
    ops: Any
    backend: str = "trio"
    error: BaseException | None = None
    thread: threading.Thread | None = field(default=None, repr=False)
    loop: Any = field(default=None, repr=False)
    started: threading.Event = field(default_factory=threading.Event, repr=False)
    device: str | None = field(default=None, repr=False)  # this connection's "major:minor"
    mount: pyfuse3.Mount | None = field(default=None, repr=False)
    is_default: bool = field(default=False, repr=False)  # the file system of pyfuse3.init()
    max_tasks: int = field(default=99, repr=False)

    def path(self, *parts: str) -> str:
        """A path inside the mount."""
        return os.path.join(self.mountpoint, *parts)

    def call(self, afn: Callable[..., Coroutine[Any, Any, T]], *args: Any,
             timeout: float = 10) -> T:
        """Run ``await afn(*args)`` as a background task of the file system's event loop."""
        if not self.started.wait(timeout):
            raise TimeoutError("the file system's event loop did not start")
        return _library(self.backend).call_from_thread(self.loop, afn, *args, timeout=timeout)


#: The backends a file system can be served with: uvloop is asyncio on uvloop's event loop.
BACKENDS = ("trio", "asyncio", "uvloop")


def _library(backend: str) -> Backend:
    return _backends.BACKENDS["trio" if backend == "trio" else "asyncio"]


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "uvloop" and uvloop is None:
        raise RuntimeError("backend 'uvloop' needs the uvloop package")


def run(backend: str, afn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """``await afn(*args)`` in a new event loop: trio, asyncio, or asyncio on uvloop's loop."""
    _check_backend(backend)
    if backend == "uvloop" and uvloop is not None:  # (its absence checked above)
        result: T = uvloop.run(afn(*args))
        return result
    return _library(backend).run(afn, *args)


def _serve(fs: MountedFS, backend: str) -> None:
    async def main() -> None:
        fs.loop = _library(backend).loop_handle()
        fs.started.set()
        if fs.is_default:
            # also sets pyfuse3.trio_token, as upstream's main() does
            await pyfuse3.main(max_tasks=fs.max_tasks)
        else:
            assert fs.mount is not None
            await fs.mount.serve(max_tasks=fs.max_tasks)

    try:
        run(backend, main)
    except BaseException as e:
        fs.error = e


@contextlib.contextmanager
def mounted(ops: Any, *, backend: str = "trio", options: Iterable[str] | None = None,
            timeout: float = 10.0, max_tasks: int = 99) -> Iterator[MountedFS]:
    """Serve ``ops`` on a fresh temporary mountpoint until the block ends.

    ``backend`` is "trio", "asyncio" or "uvloop" (asyncio on uvloop's event loop).
    ``max_tasks``: as for ``Mount.serve()``.

    Several may be mounted at once, in any backends (each serves in a thread of its own).
    The block starts once the file system has answered the kernel's INIT; if serving fails
    before that (a missing package, libfuse refusing INIT), RuntimeError is raised instead
    and nothing stays mounted. On exit the file system is terminated and unmounted; if it
    does not stop within ``timeout`` seconds its connection is aborted and the mount lazily
    detached. Raises RuntimeError if main() failed while the block ran.
    """
    _check_backend(backend)
    mountpoint = os.path.realpath(tempfile.mkdtemp(prefix="pyfuse3-test-"))
    opts = set(pyfuse3.default_options if options is None else options)
    if not any(o.startswith("fsname=") for o in opts):
        opts.add("fsname=pyfuse3-test")
    try:
        mount = init_if_free(ops, mountpoint, opts)
        is_default = mount is not None
        if mount is None:
            mount = pyfuse3.Mount(ops, mountpoint, opts)
    except BaseException:
        os.rmdir(mountpoint)
        raise
    fs = MountedFS(mountpoint, ops, backend, mount=mount, is_default=is_default,
                   max_tasks=max_tasks)
    found = mount_of(mountpoint)
    fs.device = found[0] if found is not None else None
    fs.thread = threading.Thread(target=_serve, args=(fs, backend), name="pyfuse3-test-fs",
                                 daemon=True)
    fs.thread.start()
    try:
        _wait_serving(fs, timeout)
        yield fs
    finally:
        _stop(fs, timeout)
    if fs.error is not None:
        raise RuntimeError(f"pyfuse3.main() failed: {fs.error!r}") from fs.error


def _wait_serving(fs: MountedFS, timeout: float) -> None:
    """Return once INIT is answered; raise if main() ended first or never got there."""
    assert fs.thread is not None and fs.mount is not None
    session = fs.mount.session
    deadline = time.monotonic() + timeout
    while not session.initialized:
        if not fs.thread.is_alive():
            error, fs.error = fs.error, None  # raised here, not again at the end
            raise RuntimeError(f"the file system stopped before serving: {error!r}") from error
        if time.monotonic() > deadline:
            raise TimeoutError(f"the file system did not answer the kernel's INIT within "
                               f"{timeout}s")
        time.sleep(0.002)


def _terminate(fs: MountedFS, wait: float) -> None:
    assert fs.thread is not None and fs.mount is not None
    if fs.thread.is_alive():
        with contextlib.suppress(RuntimeError):
            fs.mount.terminate()
        fs.thread.join(wait)


def _stop(fs: MountedFS, timeout: float) -> None:
    assert fs.thread is not None and fs.mount is not None
    try:
        _terminate(fs, timeout / 2)  # gracefully
        _terminate(fs, timeout / 2)  # then cancelling handlers that do not finish
        if fs.thread.is_alive():
            abort_connection(fs.mountpoint)
            fs.thread.join(timeout)
            fs.error = fs.error or TimeoutError(f"file system did not stop within {timeout}s")
    finally:
        try:
            if not fs.thread.is_alive():
                fs.mount.close(unmount=True)
        finally:
            top = mount_of(fs.mountpoint)
            if top is not None and top[0] == fs.device:  # never another file system's mount
                lazy_unmount(fs.mountpoint)
            with contextlib.suppress(OSError):
                os.rmdir(fs.mountpoint)
