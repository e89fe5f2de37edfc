"""FUSE over io_uring is not served yet: whatever asks libfuse 3.18 for its rings, requests keep
coming through /dev/fuse to the event loop (libfuse's ring threads would call the handlers off
the event loop: the mount hung, measured before this guard)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyfuse3
from pyfuse3.testing import mounted

from ..memfs import MemFS
from ..util import run_with_timeout

pytestmark = pytest.mark.fuse
ENABLE_URING = Path("/sys/module/fuse/parameters/enable_uring")


@pytest.fixture
def uring_enabled() -> Iterator[None]:
    """The fuse module's enable_uring on (the kernel then offers io_uring at INIT), restored
    afterwards."""
    if not ENABLE_URING.exists():
        pytest.skip("the kernel has no FUSE over io_uring (CONFIG_FUSE_IO_URING)")
    before = ENABLE_URING.read_text().strip()
    try:
        ENABLE_URING.write_text("Y")
    except OSError as e:
        pytest.skip(f"cannot switch enable_uring on: {e}")
    try:
        yield
    finally:
        ENABLE_URING.write_text(before)


def ring_threads() -> list[str]:
    names = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:
            pass  # a thread that ended
    return [n for n in names if n.startswith("fuse-ring-")]


@pytest.mark.skipif(not pyfuse3.LIBFUSE_VERSION.startswith("3.18"),
                    reason=f"libfuse {pyfuse3.LIBFUSE_VERSION} has no io_uring")
def test_libfuse_rings_stay_off_when_the_environment_asks(
        backend: str, uring_enabled: None, monkeypatch: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("FUSE_URING_ENABLE", "1")  # libfuse reads it in fuse_session_new
    with caplog.at_level(logging.WARNING, logger="pyfuse3"), \
            mounted(MemFS(), backend=backend) as fs:
        run_with_timeout(lambda: Path(fs.path("f")).write_bytes(b"through /dev/fuse"))
        assert run_with_timeout(lambda: os.listdir(fs.mountpoint)) == ["f"]
        assert ring_threads() == []
    warnings = [r.getMessage() for r in caplog.records if "FUSE_URING_ENABLE" in r.getMessage()]
    assert len(warnings) == 1, warnings  # also proves the kernel offered the rings


def test_the_io_uring_option_is_refused_with_the_reason(backend: str) -> None:
    with pytest.raises(ValueError, match="FUSE over io_uring is not supported yet"):
        with mounted(MemFS(), backend=backend, options=["io_uring"]):
            pass  # pragma: no cover
