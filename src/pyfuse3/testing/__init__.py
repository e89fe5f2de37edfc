"""Helpers for testing file systems built on pyfuse3 against the real kernel.

``mounted(ops)`` serves ``ops`` on a temporary mountpoint from a background thread, so the test
can use plain ``os`` calls on the mount, and always unmounts: on success, on failure and when
the file system hangs (then the FUSE connection is aborted, so no caller stays blocked).
``serving_process(argv, mountpoint)`` does the same for a file-system script run as a
subprocess. The pytest plugin (``pytest_plugin``, loaded automatically) adds the ``fuse``
marker, the ``fuse_mount`` fixture and the check for unexpected pyfuse3 errors.
"""

import pyfuse3 as _package

from .._install_check import clash_error

if not hasattr(_package, "Mount"):  # upstream pyfuse3's __init__ was installed over ours
    raise clash_error()

from . import posix
from ._harness import Harness, Notification, Request
from ._messages import Layout, layout
from ._mounted import (
    BACKENDS,
    MountedFS,
    abort_connection,
    fuse_available,
    lazy_unmount,
    mounted,
    run,
)
from ._process import serving_process, wait_mounted

__all__ = [
    "BACKENDS",
    "Harness",
    "Layout",
    "MountedFS",
    "Notification",
    "Request",
    "abort_connection",
    "fuse_available",
    "layout",
    "lazy_unmount",
    "mounted",
    "posix",
    "run",
    "serving_process",
    "wait_mounted",
]
