"""The POSIX tests of the tmpfs example (tests/mount/test_tmpfs.py), run on sharedfs: one
mount, its whole state in a real Redis."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..mount.test_tmpfs import *  # noqa: F403  (the tests themselves)
from ..util import eventually
from .conftest import RedisServer, redis_server, require_redis, sharedfs

pytestmark = pytest.mark.fuse


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[RedisServer, Path]]:
    """sharedfs on its own redis-server, mounted with allow_other, once for this module."""
    require_redis()
    with tempfile.TemporaryDirectory(prefix="pyfuse3-redis-") as tmp, \
            redis_server(Path(tmp)) as redis, sharedfs(redis, "posix") as mountpoint:
        yield redis, mountpoint


@pytest.fixture(scope="module")
def mnt(served: tuple[RedisServer, Path]) -> Path:
    return served[1]


@pytest.fixture(autouse=True)
def nothing_left_to_free(served: tuple[RedisServer, Path]) -> None:
    """Wait until no file an earlier test unlinked while open is still to be freed: sharedfs
    frees it once the last mount holding it lets go, up to HOLD_IDLE after its release, and the
    inode count that tmpfs's tests compare would move under them."""
    redis = served[0]
    assert eventually(lambda: redis.command("SCARD", "{posix}:orphans") == "0")
