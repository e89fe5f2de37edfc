"""Background tasks under whichever async library runs the caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pyfuse3._backends import current


class TaskGroup:
    """Background tasks: ``start_soon(fn)``; ``cancel()`` ends those still running; leaving
    ``async with`` waits for all of them (the first failure is raised). A trio nursery or a
    set of asyncio tasks, whichever library runs the caller."""

    def __init__(self) -> None:
        self._group = current().task_group()

    async def __aenter__(self) -> TaskGroup:
        await self._group.__aenter__()
        return self

    def start_soon(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Start ``await fn()`` as a task of the group."""
        self._group.start_soon(fn)

    def cancel(self) -> None:
        """Cancel the tasks still running."""
        self._group.cancel()

    async def __aexit__(self, *exc: Any) -> bool | None:
        return await self._group.__aexit__(*exc)
