"""Shared fixtures: FUSE availability, and a mounted MemFS under each async library."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from pyfuse3.testing import BACKENDS, MountedFS, fuse_available, lazy_unmount, mounted

from .memfs import MemFS
from .util import eventually

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

_reason = fuse_available()

# CI runs the same examples every time; local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _reason is not None and item.get_closest_marker("fuse"):
            item.add_marker(pytest.mark.skip(reason=f"FUSE not usable here: {_reason}"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each mount test runs under trio, asyncio and asyncio on uvloop's loop."""
    return str(request.param)


@pytest.fixture
def memfs(backend: str) -> Iterator[MountedFS]:
    """MemFS mounted without default_permissions (so access() is called)."""
    with mounted(MemFS(), backend=backend, options=[]) as fs:
        yield fs


@pytest.fixture(scope="module")
def mnt() -> Iterator[Path]:
    """The tmpfs example, mounted with allow_other, once per test module."""
    # Under /tmp itself: other users must be able to reach the mountpoint.
    mountpoint = Path(tempfile.mkdtemp(prefix="pyfuse3-tmpfs-"))
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "tmpfs.py"), str(mountpoint),
                             "-o", "allow_other"])
    try:
        assert eventually(lambda: os.path.ismount(mountpoint), timeout=20)
        os.chmod(mountpoint, 0o755)
        yield mountpoint
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        lazy_unmount(str(mountpoint))
        mountpoint.rmdir()
