"""The hello examples, started as a user would, in a subprocess on a temporary mountpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyfuse3.testing import lazy_unmount

from ..util import eventually

pytestmark = pytest.mark.fuse
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def mountpoint() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="pyfuse3-example-")
    try:
        yield path
    finally:
        lazy_unmount(path)
        os.rmdir(path)


@pytest.mark.parametrize("script", ["hello.py", "hello_asyncio.py"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_hello(script: str, signum: int, mountpoint: str) -> None:
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / script), mountpoint],
                            stderr=subprocess.PIPE, text=True)
    try:
        assert eventually(lambda: os.path.ismount(mountpoint), timeout=20), proc.stderr
        assert os.listdir(mountpoint) == ["message"]
        with open(os.path.join(mountpoint, "message"), "rb") as fh:
            assert fh.read() == b"hello, world\n"
        with pytest.raises(OSError):
            open(os.path.join(mountpoint, "message"), "wb")
        proc.send_signal(signum)
        assert proc.wait(timeout=20) == 0
        assert not os.path.ismount(mountpoint)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()
