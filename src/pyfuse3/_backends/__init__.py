"""The only package that knows trio from asyncio: one Backend object per async library.

``current()`` is the backend of the library running the caller; ``BACKENDS`` is the registry
(pyfuse3.testing mounts through it too). A backend's ``event_loop()`` is what one serve()
reads /dev/fuse with; its other methods (to_thread, sleep, wait_for_callback, wait_readable,
task_group, run, call_from_thread) serve the rest of pyfuse3.
"""

from __future__ import annotations

import sniffio

from ._protocol import Backend, Closed, EventLoop, Pending, Scope, TaskGroup
from .asyncio import ASYNCIO
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
