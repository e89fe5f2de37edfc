"""The programs of docs/recipes.md, run as printed: mounted, used, stopped with a signal."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyfuse3._sysutil import mount_of
from pyfuse3.testing import serving_process, wait_mounted

from ..util import eventually

pytestmark = pytest.mark.fuse
RECIPES = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"


def recipe(n: int, tmp_path: Path, change: tuple[str, str] | None = None) -> Path:
    """Program ``n`` of recipes.md as a script, with ``change`` (old, new) made in it (for a
    control: the program without the line that matters)."""
    text = re.findall(r"```python\n(.*?)```", RECIPES.read_text(), re.S)[n]
    if change is not None:
        assert change[0] in text
        text = text.replace(*change)
    script = tmp_path / f"recipe{n}.py"
    script.write_text(text)
    return script


@contextlib.contextmanager
def served(script: Path, stop: int) -> Iterator[tuple[Path, subprocess.Popen[Any]]]:
    """``script`` run on a fresh mountpoint beside it: (mountpoint, process) once mounted;
    stopped with ``stop`` when the block ends."""
    mnt = script.parent / "mnt"
    mnt.mkdir()
    with serving_process([sys.executable, str(script), str(mnt)], str(mnt),
                         stop_signal=stop) as proc:
        yield mnt, proc


def test_several_mounts_under_asyncio(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    with serving_process([sys.executable, str(recipe(0, tmp_path)), str(a), str(b)],
                         str(a), stop_signal=signal.SIGINT) as proc:
        wait_mounted(str(b), proc)
        assert os.listdir(a) == [] and os.listdir(b) == []
    assert proc.returncode == 0  # the first Ctrl-C ended serving; both were unmounted
    assert mount_of(str(a)) is None and mount_of(str(b)) is None


def test_a_background_task_keeps_the_cache_right_under_trio(tmp_path: Path) -> None:
    with served(recipe(1, tmp_path), signal.SIGTERM) as (mnt, proc):
        first = int((mnt / "count").read_text())
        # cached for an hour, yet each read sees the counter move on: the ticks invalidate
        assert eventually(lambda: int((mnt / "count").read_text()) > first + 2)
        assert proc.poll() is None
    assert proc.returncode == 0
    assert mount_of(str(mnt)) is None


def test_without_the_invalidations_the_cache_would_stay(tmp_path: Path) -> None:
    """The control: the same program with the invalidation taken out keeps the first value."""
    script = recipe(1, tmp_path, ("            invalidator.inode(FILE)", "            pass"))
    with served(script, signal.SIGTERM) as (mnt, _):
        first = (mnt / "count").read_text()
        assert not eventually(lambda: (mnt / "count").read_text() != first, 1.0)


def test_a_file_made_when_it_is_read(tmp_path: Path) -> None:
    with served(recipe(2, tmp_path), signal.SIGINT) as (mnt, proc):
        assert (mnt / "report").stat().st_size == 0
        assert (mnt / "report").read_text() == "opened 1 times\n"
        with open(mnt / "report", "rb", buffering=0) as fh:  # in pieces, as one open made it
            assert fh.read(3) + fh.read(100) + fh.read(100) == b"opened 2 times\n"
        assert (mnt / "report").read_text() == "opened 3 times\n"  # never cached
    assert proc.returncode == 0
    assert mount_of(str(mnt)) is None


def test_without_direct_io_a_file_of_size_0_reads_empty(tmp_path: Path) -> None:
    """The control: the kernel reads no further than st_size."""
    script = recipe(2, tmp_path, ("FileInfo(fh=fh, direct_io=True)", "FileInfo(fh=fh)"))
    with served(script, signal.SIGINT) as (mnt, proc):
        assert (mnt / "report").read_text() == ""
    assert proc.returncode == 0
