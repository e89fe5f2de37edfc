"""XATTR_CREATE / XATTR_REPLACE for setxattr handlers, which take no flags (as upstream)."""

from __future__ import annotations

import errno
import os
from typing import Any

from ._types import FUSEError

_KNOWN_FLAGS = os.XATTR_CREATE | os.XATTR_REPLACE


async def setxattr_with_flags(ops: Any, inode: int, name: bytes, value: bytes, flags: int,
                              ctx: Any) -> None:
    """Honour the flags with a getxattr() probe, then call ops.setxattr(). Not atomic."""
    if flags & ~_KNOWN_FLAGS:
        raise FUSEError(errno.EINVAL)
    try:
        await ops.getxattr(inode, name, ctx)
        exists = True
    except FUSEError as e:
        if e.errno != errno.ENODATA:  # pyfuse3.ENOATTR
            raise
        exists = False
    if flags & os.XATTR_CREATE and exists:
        raise FUSEError(errno.EEXIST)
    if flags & os.XATTR_REPLACE and not exists:
        raise FUSEError(errno.ENODATA)
    await ops.setxattr(inode, name, value, ctx)
