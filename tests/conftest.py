"""Shared fixtures: FUSE availability, and a mounted MemFS under each async library."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pyfuse3.testing import MountedFS, fuse_available, mounted

from .memfs import MemFS

_reason = fuse_available()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _reason is not None and item.get_closest_marker("fuse"):
            item.add_marker(pytest.mark.skip(reason=f"FUSE not usable here: {_reason}"))


@pytest.fixture(params=["trio", "asyncio"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each mount test runs under both async libraries."""
    return str(request.param)


@pytest.fixture
def memfs(backend: str) -> Iterator[MountedFS]:
    """MemFS mounted without default_permissions (so access() is called)."""
    with mounted(MemFS(), backend=backend, options=[]) as fs:
        yield fs
