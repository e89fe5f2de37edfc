"""Fixtures for the sharedfs example: a real redis-server, sharedfs mounts in child processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyfuse3.testing import serving_process

SHAREDFS = Path(__file__).resolve().parents[2] / "examples" / "sharedfs" / "sharedfs.py"
sys.path.insert(0, str(SHAREDFS.parent))
from redis_server import RedisServer, SentinelGroup, redis_binary, redis_server  # noqa: E402


def require_redis() -> None:
    """Fail with the reason where redis-server is missing (make test installs it; a run
    without it would pass while testing nothing)."""
    try:
        redis_binary()
    except FileNotFoundError as e:
        pytest.fail(f"{e} (make test installs it: apt-get install redis-server)")


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server (no persistence) for this test."""
    require_redis()
    with redis_server(tmp_path) as server:
        yield server


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:8]


@contextlib.contextmanager
def sharedfs(redis: RedisServer | SentinelGroup, prefix: str, *extra: str,
             env: dict[str, str] | None = None,
             procs: list[subprocess.Popen[bytes]] | None = None, log: Path | None = None,
             returncode: int | None = 0, script: Path = SHAREDFS) -> Iterator[Path]:
    """sharedfs mounted in a child process (ended by its PID and unmounted afterwards).

    ``procs`` receives the process; ``log`` its stderr; ``returncode`` is what it must exit
    with (None: anything, e.g. when the test kills it); ``script`` runs instead of
    sharedfs.py (a variant taking the same arguments).
    """
    mnt = Path(tempfile.mkdtemp(prefix="pyfuse3-sharedfs-"))
    try:
        argv = [sys.executable, str(script), str(mnt), "--redis", redis.url, "--prefix",
                prefix, "-o", "allow_other", *extra]
        with contextlib.ExitStack() as stack:
            stderr = stack.enter_context(open(log, "ab")) if log else None
            proc = stack.enter_context(serving_process(
                argv, str(mnt), env={**os.environ, **(env or {})}, stderr=stderr))
            if procs is not None:
                procs.append(proc)
            os.chmod(mnt, 0o755)
            yield mnt
        if returncode is not None:
            assert proc.returncode == returncode, f"sharedfs exited with {proc.returncode}"
    finally:
        with contextlib.suppress(OSError):
            mnt.rmdir()
