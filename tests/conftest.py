"""Shared fixtures: a mounted MemFS under each async library, the tmpfs example.

FUSE availability (the ``fuse`` marker), the backends and the check that no test logs an
unexpected pyfuse3 ERROR come from pyfuse3's pytest plugin (pyfuse3.testing.pytest_plugin).
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from pyfuse3.testing import MountedFS, mounted, serving_process

from .memfs import MemFS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Every run (a newcomer's make test and CI alike) draws the same examples, and no example has
# a deadline: a test never depends on the speed or load of the machine. `pytest
# --hypothesis-profile=explore` draws new examples each run.
settings.register_profile("default", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile("default")

# Started in the background by a shell without job control (`make test &` in a script, CI
# runners that do so), the tests inherit SIGINT ignored, and Python leaves it ignored: the
# Ctrl-C tests, and the clients they interrupt (children reset a handled signal at exec), would
# never see one. Run them as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def backend(pyfuse3_backend: str) -> str:
    """Each mount test runs under trio, asyncio and asyncio on uvloop's loop."""
    return pyfuse3_backend


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
    try:
        with serving_process([sys.executable, str(EXAMPLES / "tmpfs.py"), str(mountpoint),
                              "-o", "allow_other"], str(mountpoint)) as proc:
            os.chmod(mountpoint, 0o755)
            yield mountpoint
        assert proc.returncode == 0
    finally:
        mountpoint.rmdir()
