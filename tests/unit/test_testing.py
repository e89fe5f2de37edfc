"""pyfuse3.testing.run: one entry point for every supported event loop."""

from __future__ import annotations

import asyncio

import pytest
import sniffio

from pyfuse3.testing import BACKENDS, mounted, run


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
