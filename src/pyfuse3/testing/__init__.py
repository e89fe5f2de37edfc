"""Helpers for testing file systems built on pyfuse3 against the real kernel.

``mounted(ops)`` serves ``ops`` on a temporary mountpoint from a background thread, so the test
can use plain ``os`` calls on the mount, and always unmounts: on success, on failure and when
the file system hangs (then the FUSE connection is aborted, so no caller stays blocked).
"""

from ._mount import (
    BACKENDS,
    MountedFS,
    abort_connection,
    fuse_available,
    lazy_unmount,
    mounted,
    run,
)

__all__ = ["BACKENDS", "MountedFS", "abort_connection", "fuse_available", "lazy_unmount",
           "mounted", "run"]
