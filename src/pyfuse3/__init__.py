"""pyfuse3: Python bindings for the libfuse 3 low-level API, under trio or asyncio.

Subclass :class:`Operations`, then ``init(ops, mountpoint)``, ``await main()`` and ``close()``.
This module only re-exports; the implementation lives in the private modules it names.
"""

from __future__ import annotations

import errno as _errno
import logging as _logging
from typing import Any

import trio

from . import _install_check, _module_api, cache  # noqa: F401  (_install_check first: before any other can fail)
from ._connection import CAPABILITIES, LIBFUSE_VERSION
from ._entry_worker import InvalidationHandle
from ._module_api import (
    close,
    default_options,
    expire_entry,
    init,
    invalidate_all,
    invalidate_entry,
    invalidate_entry_async,
    invalidate_inode,
    main,
    notify_store,
    terminate,
)
from ._mount import Mount
from ._notify import PollHandle
from ._pyfuse3 import (
    ConnectionInfo,
    FileHandleT,
    FileLock,
    FileNameT,
    FlagT,
    InodeT,
    ModeT,
    Operations,
    XAttrNameT,
    errors_as_fuse,
    interruptible,
    uninterruptible,
)
from ._readdir import ReaddirToken, readdir_reply
from ._sysutil import get_sup_groups, getxattr, listdir, setxattr, syncfs
from ._types import (
    _NANOS_PER_SEC,
    EntryAttributes,
    FileInfo,
    FileRange,
    FUSEError,
    RequestContext,
    SetattrFields,
    StatvfsData,
)
from ._version import UPSTREAM_API, __version__

ROOT_INODE: InodeT = 1
ENOATTR: int = _errno.ENODATA
RENAME_NOREPLACE: FlagT = FlagT(1)
RENAME_EXCHANGE: FlagT = FlagT(2)
#: statx(2) mask bits a statx() handler sees: the birth time; everything stat(2) reports
STATX_BTIME: int = 0x800
STATX_BASIC_STATS: int = 0x7FF



def __getattr__(name: str) -> Any:
    # trio_token: while main() runs, trio's TrioToken or the string 'asyncio'; None otherwise
    if name == "trio_token":
        return _module_api.trio_token()
    raise AttributeError(f"module 'pyfuse3' has no attribute {name!r}")

log = _logging.getLogger("pyfuse3")

__all__ = [
    "CAPABILITIES",
    "ENOATTR",
    "LIBFUSE_VERSION",
    "RENAME_EXCHANGE",
    "RENAME_NOREPLACE",
    "ROOT_INODE",
    "STATX_BASIC_STATS",
    "STATX_BTIME",
    "UPSTREAM_API",
    "_NANOS_PER_SEC",
    "ConnectionInfo",
    "EntryAttributes",
    "FUSEError",
    "FileHandleT",
    "FileInfo",
    "FileLock",
    "FileNameT",
    "FileRange",
    "FlagT",
    "InodeT",
    "InvalidationHandle",
    "ModeT",
    "Mount",
    "Operations",
    "PollHandle",
    "ReaddirToken",
    "RequestContext",
    "SetattrFields",
    "StatvfsData",
    "XAttrNameT",
    "__version__",
    "cache",
    "close",
    "default_options",
    "errors_as_fuse",
    "expire_entry",
    "get_sup_groups",
    "getxattr",
    "init",
    "interruptible",
    "invalidate_all",
    "invalidate_entry",
    "invalidate_entry_async",
    "invalidate_inode",
    "listdir",
    "main",
    "notify_store",
    "readdir_reply",
    "setxattr",
    "syncfs",
    "terminate",
    "trio",
    "trio_token",
    "uninterruptible",
]


def __dir__() -> list[str]:
    # the public API only (not the helper modules imported above)
    return sorted({*__all__, "log"})
