"""The FUSE wire format for the harness: struct layouts from the FUSE protocol header,
requests sent and notifications received."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from pyfuse3 import _backends
from pyfuse3._wire import CONSTANTS, FIELDS, STRUCTS

__all__ = ["CONSTANTS", "IN_HEADER", "OUT_HEADER", "STRUCTS", "Layout", "Notification",
           "Request", "layout"]


class Layout:
    """One struct of the FUSE protocol header this build compiled (libfuse's fuse_kernel.h,
    else <linux/fuse.h>): ``pack(**fields)`` and ``unpack(data, offset)``. LookupError names a
    struct that header lacks (fuse_statx_in before protocol 7.39)."""

    def __init__(self, name: str) -> None:
        if name not in STRUCTS:
            raise LookupError(f"{name}: not in this build's FUSE protocol header (7."
                              f"{CONSTANTS['FUSE_KERNEL_MINOR_VERSION']})")
        self.name = name
        self.size = STRUCTS[name]
        self.fields = FIELDS[name]

    def pack(self, **values: Any) -> bytes:
        """The struct's bytes; fields not given are zero. TypeError for unknown fields."""
        buf = bytearray(self.size)
        names = {f[0] for f in self.fields}
        unknown = set(values) - names
        if unknown:
            raise TypeError(f"{self.name} has no field {sorted(unknown)}")
        for name, offset, size, signed, nested in self.fields:
            value = values.get(name)
            if value is None:
                continue
            if nested is not None:
                buf[offset:offset + size] = layout(nested).pack(**value)
            else:
                buf[offset:offset + size] = int(value).to_bytes(size, sys.byteorder,
                                                                signed=signed)
        return bytes(buf)

    def unpack(self, data: bytes, offset: int = 0) -> SimpleNamespace:
        """The fields at ``offset`` of ``data`` (nested structs as nested namespaces)."""
        if len(data) - offset < self.size:
            raise ValueError(f"{self.name} needs {self.size} bytes, got {len(data) - offset}")
        out: dict[str, Any] = {}
        for name, off, size, signed, nested in self.fields:
            if nested is not None:
                out[name] = layout(nested).unpack(data, offset + off)
            else:
                out[name] = int.from_bytes(data[offset + off:offset + off + size],
                                           sys.byteorder, signed=signed)
        return SimpleNamespace(**out)


_layouts: dict[str, Layout] = {}


def layout(name: str) -> Layout:
    """The Layout of ``struct name`` (e.g. ``"fuse_entry_out"``)."""
    if name not in _layouts:
        _layouts[name] = Layout(name)
    return _layouts[name]


IN_HEADER, OUT_HEADER = layout("fuse_in_header"), layout("fuse_out_header")


@dataclass
class Notification:
    """A message the file system sent on its own: ``kind`` is poll, inval_inode, inval_entry,
    store, retrieve or delete; ``fields`` the struct; ``data`` what follows it (a name, the
    stored bytes)."""

    kind: str
    fields: SimpleNamespace
    data: bytes


@dataclass
class Request:
    """A request sent and not necessarily answered yet; ``await req.reply()`` gives its body
    or raises OSError with the file system's errno."""

    unique: int
    opcode: int
    pid: int = 0  # the caller's (the harness's ``pid`` when it was sent)
    _result: tuple[int, bytes] | None = None
    _waiter: Callable[[tuple[int, bytes]], None] | None = field(default=None, repr=False)

    def _deliver(self, result: tuple[int, bytes]) -> None:
        self._result = result
        if self._waiter is not None:
            self._waiter(result)

    @property
    def answered(self) -> bool:
        return self._result is not None

    async def reply(self) -> bytes:
        result = self._result
        if result is None:
            def wait(deliver: Callable[[tuple[int, bytes]], None]) -> None:
                self._waiter = deliver

            result = await _backends.current().wait_for_callback(wait)
        err, body = result
        if err:
            raise OSError(-err, os.strerror(-err))
        return body
