"""Compatibility with upstream's ``pyfuse3.asyncio``: asyncio now works without it.

main() detects the running async library, so ``enable()`` and ``disable()`` are no longer
needed; they remain so code written for upstream runs unchanged.
"""

from __future__ import annotations

import sys

import trio

__all__ = ["disable", "enable"]


def enable() -> None:
    """Accepted for compatibility; asyncio is detected automatically."""
    pkg = sys.modules["pyfuse3"]
    pkg.trio = sys.modules[__name__]  # type: ignore[attr-defined]


def disable() -> None:
    """Accepted for compatibility; undoes enable()."""
    pkg = sys.modules["pyfuse3"]
    pkg.trio = trio  # type: ignore[attr-defined]
