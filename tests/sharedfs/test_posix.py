"""The POSIX tests of the tmpfs example (tests/mount/test_tmpfs.py), run on sharedfs: one
mount, its whole state in a real Redis."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..mount.test_tmpfs import *  # noqa: F403  (the tests themselves)
from .conftest import redis_server, require_redis, sharedfs

pytestmark = pytest.mark.fuse


@pytest.fixture(scope="module")
def mnt() -> Iterator[Path]:
    """sharedfs on its own redis-server, mounted with allow_other, once for this module."""
    require_redis()
    with tempfile.TemporaryDirectory(prefix="pyfuse3-redis-") as tmp, \
            redis_server(Path(tmp)) as redis, sharedfs(redis, "posix") as mountpoint:
        yield mountpoint
