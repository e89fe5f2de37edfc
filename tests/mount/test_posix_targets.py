"""pyfuse3.testing.posix on passthroughfs and on a plain directory (the control: what Linux
does without FUSE). tmpfs and sharedfs run it in their own modules."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyfuse3.testing import posix, serving_process

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _reachable_tmpdir(prefix: str) -> Path:
    """A directory right under /tmp that other users can enter (pytest's tmp_path cannot)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def plain() -> Iterator[Path]:
    path = _reachable_tmpdir("pyfuse3-plain-")
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture(scope="module")
def passthrough() -> Iterator[Path]:
    """passthroughfs over a source directory, as root, with allow_other and the kernel's
    permission checks (default_permissions)."""
    source, mountpoint = _reachable_tmpdir("pyfuse3-ptsrc-"), _reachable_tmpdir("pyfuse3-ptmnt-")
    try:
        with serving_process([sys.executable, str(EXAMPLES / "passthroughfs.py"), str(source),
                              str(mountpoint), "-o", "allow_other,default_permissions"],
                             str(mountpoint)):
            yield mountpoint
    finally:
        mountpoint.rmdir()
        shutil.rmtree(source)


@pytest.mark.parametrize("check", posix.CHECKS.values(), ids=list(posix.CHECKS))
def test_plain_directory(check: Callable[[Path], None], plain: Path,
                         request: pytest.FixtureRequest) -> None:
    if check.__name__.removeprefix("check_") in posix.NEEDS_ROOT and os.geteuid() != 0:
        pytest.skip("the check needs root (it switches users or makes a device node)")
    check(posix.fresh_directory(plain, request.node.name))


@pytest.mark.fuse
@pytest.mark.parametrize("check", posix.CHECKS.values(), ids=list(posix.CHECKS))
def test_passthroughfs(check: Callable[[Path], None], passthrough: Path,
                       request: pytest.FixtureRequest) -> None:
    check(posix.fresh_directory(passthrough, request.node.name))


def test_a_check_fails_where_posix_is_not_kept(plain: Path) -> None:
    """The checks are not vacuous: a directory whose link count is not what the check's own
    steps make it (here: a subdirectory made behind its back) fails link_counts."""
    d = posix.fresh_directory(plain, "not-posix")
    (d / "extra").mkdir()
    with pytest.raises(AssertionError):
        posix.CHECKS["link_counts"](d)
