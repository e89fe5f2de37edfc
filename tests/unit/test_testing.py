"""pyfuse3.testing.run: one entry point for every supported event loop."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
import sniffio

import pyfuse3
from pyfuse3.testing import BACKENDS, fuse_available, mounted, run

from ..util import ALICE, as_user


async def _which(x: int) -> tuple[str, str, int]:
    loop = "" if sniffio.current_async_library() == "trio" else type(
        asyncio.get_running_loop()).__module__
    return sniffio.current_async_library(), loop, x


@pytest.mark.parametrize("backend", BACKENDS)
def test_run_uses_the_named_event_loop(backend: str) -> None:
    library, loop, x = run(backend, _which, 7)
    assert x == 7
    assert library == ("trio" if backend == "trio" else "asyncio")
    assert loop.startswith("uvloop") == (backend == "uvloop")


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend must be one of trio, asyncio, uvloop"):
        run("curio", _which, 1)
    with pytest.raises(ValueError, match="backend must be one of"):
        with mounted(object(), backend="curio"):
            pass  # pragma: no cover


def test_fuse_available_checks_the_device(tmp_path: Path) -> None:
    assert "No such file" in str(fuse_available(str(tmp_path / "missing")))
    regular = tmp_path / "fuse"
    regular.write_bytes(b"")
    assert "is not the FUSE device" in str(fuse_available(str(regular)))
    assert "is not the FUSE device" in str(fuse_available("/dev/null"))
    if os.geteuid() == 0:  # the FUSE device, but one this user may not open
        node = tmp_path / "fuse-node"
        os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(10, 229))
        reason = as_user(ALICE, lambda: fuse_available(str(node)))
        assert "Permission denied" in str(reason)  # cannot be reached or opened


@pytest.mark.parametrize("option, error", [("max_write=bogus", ValueError),
                                           ("no_such_option", RuntimeError)])
def test_mounted_removes_its_mountpoint_when_mounting_fails(option: str,
                                                            error: type[Exception]) -> None:
    import glob
    import tempfile

    pattern = os.path.join(tempfile.gettempdir(), "pyfuse3-test-*")
    before = set(glob.glob(pattern))
    with pytest.raises(error):
        with mounted(pyfuse3.Operations(), options={option}):
            pass  # pragma: no cover
    assert set(glob.glob(pattern)) == before


def test_needs_root_names_exactly_the_posix_checks_that_need_root() -> None:
    import inspect

    from pyfuse3.testing import posix

    def needs_root(source: str) -> bool:  # switches users, or makes a device node
        return "as_user(" in source or "S_IFCHR" in source

    found = {name for name, fn in posix.CHECKS.items() if needs_root(inspect.getsource(fn))}
    assert found == posix.NEEDS_ROOT


@pytest.mark.parametrize("minor", [0, -1, 10_000])
def test_harness_protocol_minor_out_of_range_names_the_range(minor: int) -> None:
    from pyfuse3.testing import Harness
    from pyfuse3.testing._harness import K

    newest = K["FUSE_KERNEL_MINOR_VERSION"]
    with pytest.raises(ValueError, match=f"protocol_minor must be 1 to {newest} .* got {minor}"):
        Harness(pyfuse3.Operations(), protocol_minor=minor)
