"""The hello examples, started as a user would, in a subprocess on a temporary mountpoint."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyfuse3._sysutil import mount_of
from pyfuse3.testing import serving_process

pytestmark = pytest.mark.fuse
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def mountpoint() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="pyfuse3-example-")
    try:
        yield path
    finally:
        os.rmdir(path)


@pytest.mark.parametrize("script", ["hello.py", "hello_asyncio.py"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_hello(script: str, signum: int, mountpoint: str) -> None:
    with serving_process([sys.executable, str(EXAMPLES / script), mountpoint], mountpoint,
                         stop_signal=signum) as proc:
        assert os.listdir(mountpoint) == ["message"]
        with open(os.path.join(mountpoint, "message"), "rb") as fh:
            assert fh.read() == b"hello, world\n"
        with pytest.raises(OSError):
            open(os.path.join(mountpoint, "message"), "wb")
    assert proc.returncode == 0
    assert mount_of(mountpoint) is None  # the example unmounted itself
