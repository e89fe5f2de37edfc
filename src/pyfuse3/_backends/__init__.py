"""The only package that knows trio from asyncio: one Backend object per async library.

``current()`` is the backend of the library running the caller; ``BACKENDS`` is the registry
(pyfuse3.testing mounts through it too). A backend's ``event_loop()`` is what one serve()
reads /dev/fuse with; its other methods (to_thread, sleep, wait_for_callback, wait_readable,
task_group, run, call_from_thread) serve the rest of pyfuse3.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import sniffio

from .. import _sysutil
from ._protocol import Backend, Closed, EventLoop, Pending, Scope, TaskGroup
from .asyncio import ASYNCIO, cancelled_by_ctrl_c
from .trio import TRIO, interrupt_at_checkpoints

__all__ = [
    "BACKENDS",
    "Backend",
    "Closed",
    "EventLoop",
    "Pending",
    "Scope",
    "TaskGroup",
    "current",
    "ended_by_ctrl_c",
    "finished_before_interrupt",
    "interrupt_at_checkpoints",
]

#: Backend by sniffio's library name.
BACKENDS: dict[str, Backend] = {"trio": TRIO, "asyncio": ASYNCIO}


def current() -> Backend:
    """The backend of the async library running the caller; RuntimeError under any other."""
    library = sniffio.current_async_library()
    backend = BACKENDS.get(library)
    if backend is None:
        raise RuntimeError(f"pyfuse3 runs under trio or asyncio, not {library}")
    return backend


F = TypeVar("F", bound=Callable[..., Any])


def ended_by_ctrl_c(fn: F) -> F:
    """For serve(): a Ctrl-C ends it as a whole, never between its state change and its
    ``finally``. Under trio, ``interrupt_at_checkpoints``. Under asyncio with Python's own
    SIGINT handler (Python 3.10's asyncio.run, uvloop.run, ``loop.run_until_complete``), a
    Ctrl-C while it is the only serve() cancels it and it raises KeyboardInterrupt once
    unwound (asyncio.CtrlC); 3.11+'s asyncio.run cancels it itself."""
    protected = interrupt_at_checkpoints(fn)

    @functools.wraps(fn)
    async def run(*args: Any, **kwargs: Any) -> Any:
        if sniffio.current_async_library() == "asyncio":
            return await cancelled_by_ctrl_c(protected, *args, **kwargs)
        return await protected(*args, **kwargs)
    return run  # type: ignore[return-value]


def finished_before_interrupt(fn: F) -> F:
    """``fn`` runs to its end before a Ctrl-C that arrives meanwhile takes effect: held, then
    handed to the SIGINT handler installed once ``fn`` is done (Python's own raises
    KeyboardInterrupt, also over an error of ``fn``, chained; asyncio.run's cancels, then
    raises; trio's waits for the next checkpoint). For work that must not stop halfway (a
    close() interrupted mid-teardown left its mount behind). On another thread nothing is
    held (signals reach the main thread only)."""
    protected = interrupt_at_checkpoints(fn)

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _sysutil.interrupts_held():
            return protected(*args, **kwargs)
    return run  # type: ignore[return-value]
