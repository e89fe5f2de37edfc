"""Random interleavings of the lifecycle from several threads (tests/fuzz_lifecycle.py).

Runs in a child process under a poisoning allocator: a use after free crashes it, a hang
times it out; either fails this test. The child checks after every example that nothing is
mounted, no thread is left and no fd leaked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from pyfuse3.testing import abort_connection, lazy_unmount

from .test_edges import POISON, ROOT, _fuse_mounted

pytestmark = pytest.mark.fuse


def test_lifecycle_fuzz() -> None:
    mountpoint = tempfile.mkdtemp(prefix="pyfuse3-fuzz-")
    examples = os.environ.get("PYFUSE3_FUZZ_EXAMPLES", "150")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tests.fuzz_lifecycle", mountpoint, examples],
            cwd=ROOT, env={**os.environ, **POISON}, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-20000:]
        assert f"fuzz examples={examples} ok=True" in proc.stdout
    finally:
        if _fuse_mounted(mountpoint):
            abort_connection(mountpoint)
            lazy_unmount(mountpoint)
        os.rmdir(mountpoint)
