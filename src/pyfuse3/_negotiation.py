"""What the kernel is asked for at INIT, as pure functions over libfuse's numbers.

Three layers decide it: pyfuse3's defaults and the ``Operations`` class (``default_want``),
the conn-info mount options (libfuse's ``fuse_apply_conn_info_opts``, applied in between by
``_callbacks._cb_init``), and ``Operations.init_connection()`` (``negotiate``). Capability
bits come in as a name -> bit table (``pyfuse3.CAPABILITIES``), so these run without a kernel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._pyfuse3 import ConnectionInfo, Operations
from ._sysutil import check_max_write

#: The limits init_connection() may change (max_read is a mount option), and their bounds.
LIMITS = {"max_write": 2**32, "max_readahead": 2**32, "max_background": 2**32,
          "congestion_threshold": 2**32, "time_gran": 2**32, "request_timeout": 2**16,
          "max_backing_stack_depth": 2}
#: The FUSE protocol minor version of request timeouts (Linux 6.14).
REQUEST_TIMEOUT_MINOR = 43

#: The readdirplus= mount option: the capabilities asked for (auto: the kernel chooses per
#: call, READDIRPLUS at the start of a listing and after lookups in the directory).
READDIRPLUS_WANT = {"yes": ("readdirplus",), "no": (), "auto": ("readdirplus", "readdirplus_auto")}

#: Capabilities that exclude each other, and why.
EXCLUSIVE = {
    ("passthrough", "writeback_cache"): "the kernel caches no pages of a passthrough file",
    ("passthrough", "handle_killpriv"): "with handle_killpriv the kernel leaves clearing setuid "
    "and setgid bits on write to the file system, and passthrough writes never reach it: a "
    "setuid file written by anyone would stay setuid",
}

#: Capabilities asked for when the Operations attribute is true (and the kernel offers them).
WANTED_BY_ATTRIBUTE = (("export_support", "supports_dot_lookup"),
                       ("writeback_cache", "enable_writeback_cache"),
                       ("posix_acl", "enable_acl"),
                       ("parallel_dirops", "enable_parallel_dirops"),
                       ("passthrough", "enable_passthrough"))


def undelivered(libfuse_version: str) -> dict[str, str]:
    """The capabilities the loaded libfuse accepts in ``want`` but never sends to the kernel,
    and why; they are left out of ``ConnectionInfo.capable`` and ``want``."""
    found = re.match(r"(\d+)\.(\d+)", libfuse_version)
    if found and (int(found[1]), int(found[2])) < (3, 17):
        return {"parallel_dirops": f"libfuse {libfuse_version} never passes it to the kernel "
                "(fixed in libfuse 3.17): lookups and readdirs of one directory stay one at "
                "a time"}
    return {}


def overrides(ops: Any, name: str) -> bool:
    """Whether ``ops`` has its own ``name`` handler (not Operations' default)."""
    return getattr(type(ops), name, None) is not getattr(Operations, name)


def default_want(ops: Any, capable: int, want: int, readdirplus: str,
                 caps: Mapping[str, int]) -> int:
    """libfuse's default ``want`` changed by pyfuse3's defaults and the Operations class:
    READDIRPLUS as the ``readdirplus=`` option says (always, by default, as upstream); splice
    only to write FileRange replies; the capabilities of ``WANTED_BY_ATTRIBUTE``; flock and
    POSIX lock forwarding only when the handlers exist (else the kernel keeps local locks
    instead of answering ENOSYS)."""
    want &= ~(caps["readdirplus"] | caps["readdirplus_auto"] | caps["splice_read"])
    for name in READDIRPLUS_WANT[readdirplus]:
        want |= caps[name]
    if capable & caps["splice_write"]:
        want |= caps["splice_write"]
    for cap, attr in WANTED_BY_ATTRIBUTE:
        bit = caps.get(cap, 0)  # (passthrough: only with libfuse 3.18)
        if getattr(ops, attr, False) and capable & bit:
            want |= bit
        else:
            want &= ~bit
    if not overrides(ops, "flock"):
        want &= ~caps["flock_locks"]
    if not (overrides(ops, "getlk") and overrides(ops, "setlk")):
        want &= ~caps["posix_locks"]
    return want


def names(bits: int, caps: Mapping[str, int]) -> frozenset[str]:
    """The names of the capabilities set in ``bits``."""
    return frozenset([name for name, bit in caps.items() if bits & bit])


def negotiate(ops: Any, info: ConnectionInfo, caps: Mapping[str, int], *,
              request_timeouts: bool = True,
              unsent: Mapping[str, str] | None = None) -> tuple[int, list[int]]:
    """Let ``ops.init_connection()`` edit ``info``; return the named capabilities it wants (as
    bits) and the limits of ``LIMITS`` in order. A bad edit raises (TypeError, ValueError) and
    changes nothing. ``request_timeouts``: whether libfuse can set one (3.18+); ``unsent``:
    ``undelivered()``'s capabilities, refused with their reason."""
    max_write, max_read = info.max_write, info.max_read
    ops.init_connection(info)
    if isinstance(info.want, (str, bytes)) or not all(isinstance(n, str) for n in info.want):
        raise TypeError("init_connection(): ConnectionInfo.want must be a set of capability "
                        f"names, got {info.want!r}")
    unknown = set(info.want) - caps.keys()
    if unknown:
        raise ValueError(f"init_connection(): unknown capabilities {sorted(unknown)} "
                         f"(known: {', '.join(sorted(caps))})")
    unsent = unsent or {}
    refused = sorted(set(info.want) & unsent.keys())
    if refused:
        raise ValueError(f"init_connection(): {refused[0]}: {unsent[refused[0]]}")
    lacking = set(info.want) - info.capable
    if lacking:
        raise ValueError(f"init_connection(): the kernel does not offer {sorted(lacking)}")
    limits = []
    for name, bound in LIMITS.items():
        value = getattr(info, name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < bound:
            raise ValueError(f"init_connection(): ConnectionInfo.{name} must be an int from 0 "
                             f"to {bound - 1}, got {value!r}")
        limits.append(value)
    if info.request_timeout and not request_timeouts:
        raise ValueError("request_timeout needs libfuse 3.18 or newer; this pyfuse3 was built "
                         "against an older one")
    if info.request_timeout and info.proto_minor < REQUEST_TIMEOUT_MINOR:
        raise ValueError(f"request_timeout: the kernel lacks request timeouts (FUSE protocol "
                         f"7.{REQUEST_TIMEOUT_MINOR}, Linux 6.14; it speaks 7.{info.proto_minor})")
    if info.max_write != max_write:  # libfuse's default fits; a changed value may not
        check_max_write(info.max_write, "init_connection(): ConnectionInfo")
    if info.max_read != max_read:
        raise ValueError("init_connection(): max_read is set with the max_read= mount option "
                         "only")
    if info.max_backing_stack_depth and "passthrough" not in info.want:
        raise ValueError("init_connection(): max_backing_stack_depth applies to passthrough "
                         "only, and 'passthrough' is not in ConnectionInfo.want")
    for (one, other), why in EXCLUSIVE.items():
        if {one, other} <= set(info.want):
            raise ValueError(f"init_connection(): {one} and {other} exclude each other ({why})")
    want = 0
    for name in info.want:
        want |= caps[name]
    return want, limits


def passthrough_unavailable(ops: Any, libfuse: bool, offered: bool, wanted: bool,
                            built_against: str) -> str:
    """Why this mount does not use passthrough (for the one log line when an open asks for
    it anyway), or "" if it does."""
    if wanted:
        return ""
    if not libfuse:
        return f"it needs libfuse 3.18; this pyfuse3 was built against libfuse {built_against}"
    if not offered:
        return ("the kernel does not offer it (Linux 6.9 or newer built with "
                "CONFIG_FUSE_PASSTHROUGH)")
    if not getattr(ops, "enable_passthrough", False):
        return "Operations.enable_passthrough is False"
    return "init_connection() left it out of ConnectionInfo.want"
