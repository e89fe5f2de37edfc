"""Request timeouts (libfuse 3.18, Linux 6.14): the kernel aborts a connection whose request
stays unanswered, so a hung handler no longer hangs its callers for ever."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import pyfuse3
from pyfuse3._backends import current
from pyfuse3._negotiation import REQUEST_TIMEOUT_MINOR
from pyfuse3._notify import HAVE_EPOCH
from pyfuse3._sysutil import mount_of
from pyfuse3.testing import BACKENDS, lazy_unmount, mounted, run

from ..memfs import MemFS

pytestmark = pytest.mark.fuse
HAVE_REQUEST_TIMEOUT = HAVE_EPOCH  # both come with libfuse 3.18
needs_318 = pytest.mark.skipif(not HAVE_REQUEST_TIMEOUT,
                               reason=f"built against libfuse {pyfuse3.LIBFUSE_VERSION}")


class HangFS(MemFS):
    """Never answers a lookup of ``hang``; records what init_connection() saw."""

    def __init__(self, set_timeout: int | None = None) -> None:
        super().__init__()
        self.set_timeout = set_timeout
        self.seen: list[tuple[int, int]] = []

    def init_connection(self, conn: pyfuse3.ConnectionInfo) -> None:
        self.seen.append((conn.proto_minor, conn.request_timeout))
        if self.set_timeout is not None:
            conn.request_timeout = self.set_timeout

    async def lookup(self, parent_inode: Any, name: Any, ctx: Any) -> pyfuse3.EntryAttributes:
        if name == b"hang":
            await current().sleep(3600)
        return await super().lookup(parent_inode, name, ctx)


@needs_318
def test_init_connection_sees_and_changes_the_request_timeout(backend: str) -> None:
    ops = HangFS(set_timeout=600)
    with mounted(ops, backend=backend, options=["fsname=t", "request_timeout=30"]) as fs:
        os.stat(fs.mountpoint)
        assert fs.mount is not None
        minor, seen = ops.seen[0]
        if minor < REQUEST_TIMEOUT_MINOR:
            pytest.skip(f"the kernel speaks FUSE 7.{minor}: no request timeouts")
        assert seen == 30
        assert fs.mount.session.request_timeout == 600  # what the kernel was told


@pytest.mark.skipif(HAVE_REQUEST_TIMEOUT, reason="libfuse 3.18 has request timeouts")
def test_without_libfuse_318_the_option_says_what_is_missing() -> None:
    with tempfile.TemporaryDirectory() as mnt, pytest.raises(OSError) as info:
        pyfuse3.Mount(HangFS(), mnt, ["request_timeout=5"])
    assert info.value.errno == errno.ENOSYS and "needs libfuse 3.18" in str(info.value)


class Serving:
    """``HangFS`` served with ``request_timeout`` in a thread; ``outcome`` holds what serve()
    raised."""

    def __init__(self, backend: str, timeout: int) -> None:
        self.mnt = tempfile.mkdtemp(prefix="pyfuse3-timeout-")
        self.mount = pyfuse3.Mount(HangFS(), self.mnt,
                                   ["fsname=pyfuse3-test", f"request_timeout={timeout}"])
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, args=(backend,), daemon=True)
        self.thread.start()

    def _serve(self, backend: str) -> None:
        try:
            run(backend, self.mount.serve)
        except BaseException as e:
            self.error = e

    def close(self) -> None:
        if self.thread.is_alive():
            self.mount.terminate()
            self.thread.join(10)
        if not self.thread.is_alive():
            self.mount.close()
        lazy_unmount(self.mnt)
        os.rmdir(self.mnt)


@contextmanager
def _serving(backend: str, timeout: int) -> Iterator[Serving]:
    serving = Serving(backend, timeout)
    try:
        yield serving
    finally:
        serving.close()


@needs_318
@pytest.mark.slow
def test_a_handler_that_never_answers_ends_serving_after_the_timeout() -> None:
    """One mount per backend, all at once (the kernel checks timeouts every 15 s or so): a
    caller of the hung lookup gets ECONNABORTED instead of hanging in D state, serve() raises
    ConnectionAbortedError naming the timeout, and the dead mount is detached."""
    with _serving(BACKENDS[0], 1) as a, _serving(BACKENDS[1], 1) as b, \
            _serving(BACKENDS[2], 1) as c:
        clients = [subprocess.Popen(
            [sys.executable, "-c", "import os, sys\ntry:\n    os.stat(sys.argv[1])\n"
             "except OSError as e:\n    print(e.errno)", os.path.join(s.mnt, "hang")],
            stdout=subprocess.PIPE, text=True) for s in (a, b, c)]
        try:
            answers = [client.communicate(timeout=120)[0].strip() for client in clients]
        finally:
            for client in clients:
                client.kill()
                client.wait(10)
        assert answers == [str(errno.ECONNABORTED)] * 3
        for s in (a, b, c):
            s.thread.join(30)
            assert not s.thread.is_alive(), "serve() did not end"
            assert isinstance(s.error, ConnectionAbortedError), s.error
            assert "request_timeout=1 s" in str(s.error) and s.mnt in str(s.error)
            assert mount_of(s.mnt) is None  # detached, not left dead (ENOTCONN) for others
