"""The pytest plugin of pyfuse3, loaded by pytest wherever pyfuse3 is installed.

- Marker ``fuse``: the test needs a usable FUSE (/dev/fuse, fusermount3). Where there is none
  it is skipped with the reason; with ``PYFUSE3_REQUIRE_FUSE=1`` in the environment it fails
  instead (for CI that must run it). Tests using ``fuse_mount`` count as marked.
- Fixtures: ``pyfuse3_backend`` (each of trio, asyncio, uvloop); ``fuse_mount``, a function
  ``fuse_mount(ops, options=None)`` that mounts ``ops`` under that backend for the rest of the
  test and returns the ``MountedFS`` (call it again to mount more file systems at once; the
  first is the one the module-level calls such as ``pyfuse3.invalidate_inode()`` act
  on); ``fuse_harness``, a function ``fuse_harness(ops, check,
  **harness_options)`` that runs ``await check(h)`` with a kernel-free ``Harness`` serving
  ``ops`` under that backend (no FUSE needed).
- A test fails when the ``pyfuse3`` logger recorded an ERROR while it ran (a handler failed,
  an invalidation went wrong...), unless it is marked ``fuse_errors_expected``. The ini option
  ``pyfuse3_fail_on_error_log = false`` turns that off.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import pytest

from ._harness import Harness
from ._mounted import BACKENDS, MountedFS, fuse_available, mounted, run

REQUIRE_ENV = "PYFUSE3_REQUIRE_FUSE"
_reason: list[str | None] = []


def _fuse_reason() -> str | None:
    if not _reason:
        _reason.append(fuse_available())
    return _reason[0]


def require_fuse() -> None:
    """Skip the running test (or fail it, with PYFUSE3_REQUIRE_FUSE=1) if FUSE is unusable."""
    reason = _fuse_reason()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"FUSE is required ({REQUIRE_ENV} is set) but not usable here: {reason}",
                    pytrace=False)
    pytest.skip(f"FUSE not usable here: {reason}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("pyfuse3_fail_on_error_log", "fail a test during which the pyfuse3 logger "
                  "recorded an ERROR (unless marked fuse_errors_expected)", type="bool",
                  default=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fuse: the test needs a usable FUSE (skipped without; "
                            f"failed without if {REQUIRE_ENV}=1)")
    config.addinivalue_line("markers", "fuse_errors_expected: the pyfuse3 logger may record "
                            "errors during this test")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # before -m selects: a test that mounts with fuse_mount needs FUSE as if marked
    for item in items:
        if "fuse_mount" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.fuse)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("fuse") is not None:
        require_fuse()


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    if not item.config.getini("pyfuse3_fail_on_error_log") or \
            item.get_closest_marker("fuse_errors_expected") is not None:
        return (yield)
    errors = _Errors()
    logger = logging.getLogger("pyfuse3")
    logger.addHandler(errors)
    try:
        result = yield
    finally:
        logger.removeHandler(errors)
    if errors.records:
        lines = "\n".join(f"  {r.levelname} {r.getMessage()}" for r in errors.records[:5])
        pytest.fail(f"the pyfuse3 logger recorded {len(errors.records)} error(s) during the "
                    f"test (mark it fuse_errors_expected if that is intended):\n{lines}",
                    pytrace=False)
    return result


@pytest.fixture(params=BACKENDS)
def pyfuse3_backend(request: pytest.FixtureRequest) -> str:
    """trio, asyncio and uvloop in turn (override this fixture to choose fewer); the uvloop
    run is skipped, with the reason, where uvloop is not installed."""
    if request.param == "uvloop" and importlib.util.find_spec("uvloop") is None:
        pytest.skip("uvloop is not installed (pip install uvloop, or the [test] extra)")
    return str(request.param)


@pytest.fixture
def fuse_mount(pyfuse3_backend: str) -> Iterator[Callable[..., MountedFS]]:
    """``fuse_mount(ops, options=None)``: mount ``ops`` for the rest of the test, served by
    ``pyfuse3_backend`` on a background thread; unmounted at teardown, also on failure. Call
    it several times for several file systems (each ``MountedFS.mount`` is its Mount)."""
    require_fuse()
    with contextlib.ExitStack() as stack:
        def mount(ops: Any, options: Iterable[str] | None = None) -> MountedFS:
            return stack.enter_context(mounted(ops, backend=pyfuse3_backend, options=options))

        yield mount


@pytest.fixture
def fuse_harness(pyfuse3_backend: str) -> Callable[..., Any]:
    """``fuse_harness(ops, check, **options)``: ``await check(h)`` with a ``Harness(ops,
    **options)`` under ``pyfuse3_backend``; returns what check returned. No kernel needed."""

    def run_check(ops: Any, check: Callable[[Harness], Any], **options: Any) -> Any:
        async def main() -> Any:
            async with Harness(ops, **options) as h:
                return await check(h)

        return run(pyfuse3_backend, main)

    return run_check
