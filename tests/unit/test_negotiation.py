"""INIT negotiation as pure functions: what is asked for, without a kernel."""

from __future__ import annotations

from typing import Any

import pytest

import pyfuse3
from pyfuse3._negotiation import (
    default_want,
    names,
    negotiate,
    passthrough_unavailable,
    undelivered,
)

CAPS = pyfuse3.CAPABILITIES
ALL = 0
for _bit in CAPS.values():
    ALL |= _bit


def bits(*wanted: str) -> int:
    out = 0
    for name in wanted:
        out |= CAPS[name]
    return out


class Locking(pyfuse3.Operations):
    enable_writeback_cache = True

    async def flock(self, *args: Any) -> None: ...
    async def getlk(self, *args: Any) -> Any: ...
    async def setlk(self, *args: Any) -> None: ...


def test_defaults_of_a_plain_operations() -> None:
    libfuse_default = bits("readdirplus_auto", "splice_read", "flock_locks", "posix_locks",
                           "async_read")
    want = default_want(pyfuse3.Operations(), ALL, libfuse_default, "yes", CAPS)
    # Operations.supports_dot_lookup is True by default (as upstream): export_support
    assert names(want, CAPS) == {"readdirplus", "splice_write", "async_read", "export_support"}


@pytest.mark.parametrize(("option", "expected"), [
    ("yes", {"readdirplus"}), ("no", set()), ("auto", {"readdirplus", "readdirplus_auto"})])
def test_the_readdirplus_option(option: str, expected: set[str]) -> None:
    want = default_want(pyfuse3.Operations(), 0, bits("readdirplus_auto"), option, CAPS)
    assert names(want, CAPS) == expected


def test_lock_handlers_and_attributes_ask_for_what_the_kernel_offers() -> None:
    want = default_want(Locking(), ALL, bits("flock_locks", "posix_locks"), "no", CAPS)
    assert {"flock_locks", "posix_locks", "writeback_cache"} <= names(want, CAPS)
    offered = ALL & ~CAPS["writeback_cache"]
    assert "writeback_cache" not in names(default_want(Locking(), offered, 0, "no", CAPS), CAPS)


def test_parallel_dirops_is_asked_for_by_its_attribute_only() -> None:
    class Parallel(pyfuse3.Operations):
        enable_parallel_dirops = True

    # (libfuse 3.14 has it in its default want; 3.18 not)
    for default in (0, bits("parallel_dirops")):
        assert "parallel_dirops" in names(default_want(Parallel(), ALL, default, "no", CAPS),
                                          CAPS)
        assert "parallel_dirops" not in names(
            default_want(pyfuse3.Operations(), ALL, default, "no", CAPS), CAPS)
    offered = ALL & ~CAPS["parallel_dirops"]
    assert "parallel_dirops" not in names(default_want(Parallel(), offered, 0, "no", CAPS), CAPS)


def _info(proto_minor: int = 39, **kw: Any) -> pyfuse3.ConnectionInfo:
    return pyfuse3.ConnectionInfo(7, proto_minor, frozenset({"readdirplus", "posix_acl"}),
                                  {"readdirplus"}, 1 << 20, 0, 1 << 17, 12, 9, 1, **kw)


class Edits(pyfuse3.Operations):
    def __init__(self, **edits: Any) -> None:
        self.edits = edits

    def init_connection(self, info: pyfuse3.ConnectionInfo) -> None:
        for k, v in self.edits.items():
            setattr(info, k, v)


def test_negotiate_returns_the_edited_wants_and_limits() -> None:
    want, limits = negotiate(Edits(want={"posix_acl"}, max_background=64), _info(), CAPS)
    assert want == CAPS["posix_acl"]
    assert limits == [1 << 20, 1 << 17, 64, 9, 1, 0, 0]


def test_request_timeout_from_the_mount_option_can_be_changed_or_dropped() -> None:
    _, limits = negotiate(Edits(), _info(proto_minor=43, request_timeout=30), CAPS)
    assert limits[5] == 30
    _, limits = negotiate(Edits(request_timeout=5), _info(proto_minor=45), CAPS)
    assert limits[5] == 5
    # dropped: fine whatever the kernel and libfuse
    _, limits = negotiate(Edits(request_timeout=0), _info(request_timeout=30), CAPS,
                          request_timeouts=False)
    assert limits[5] == 0


@pytest.mark.parametrize(("minor", "have", "text"), [
    (42, True, "the kernel lacks request timeouts (FUSE protocol 7.43, Linux 6.14; it speaks "
               "7.42)"),
    (45, False, "request_timeout needs libfuse 3.18 or newer"),
])
def test_a_request_timeout_that_cannot_be_had_says_why(minor: int, have: bool,
                                                        text: str) -> None:
    with pytest.raises(ValueError) as info:
        negotiate(Edits(), _info(proto_minor=minor, request_timeout=30), CAPS,
                  request_timeouts=have)
    assert text in str(info.value)


@pytest.mark.parametrize(("edits", "error", "text"), [
    ({"want": "posix_acl"}, TypeError, "must be a set of capability names"),
    ({"want": {"telepathy"}}, ValueError, "unknown capabilities ['telepathy']"),
    ({"want": {"writeback_cache"}}, ValueError, "does not offer ['writeback_cache']"),
    ({"max_background": -1}, ValueError, "max_background must be an int from 0"),
    ({"time_gran": True}, ValueError, "time_gran must be an int"),
    ({"max_read": 4096}, ValueError, "max_read= mount option only"),
    ({"max_write": 3}, ValueError, "max_write"),
    ({"request_timeout": 65536}, ValueError, "request_timeout must be an int from 0 to 65535"),
    ({"max_backing_stack_depth": 2}, ValueError, "max_backing_stack_depth must be an int from 0 "
                                                 "to 1"),
    ({"max_backing_stack_depth": 1}, ValueError, "applies to passthrough only"),
])
def test_a_bad_edit_raises(edits: dict[str, Any], error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        negotiate(Edits(**edits), _info(), CAPS)
    assert text in str(info.value)


@pytest.mark.parametrize("version, dropped", [
    ("3.14.0", {"parallel_dirops"}), ("3.16.2", {"parallel_dirops"}), ("3.17.1-rc0", set()),
    ("3.18.3", set()), ("4.0.0", set()),
])
def test_what_an_older_libfuse_never_sends_to_the_kernel(version: str, dropped: set[str]) -> None:
    assert set(undelivered(version)) == dropped


def test_a_capability_libfuse_would_drop_is_refused_with_the_reason() -> None:
    unsent = undelivered("3.14.0")

    def info() -> pyfuse3.ConnectionInfo:
        return pyfuse3.ConnectionInfo(7, 38, frozenset({"async_read"}), {"async_read"})
    with pytest.raises(ValueError, match=r"parallel_dirops: libfuse 3\.14\.0 never passes it"):
        negotiate(Edits(want={"parallel_dirops"}), info(), CAPS, unsent=unsent)
    assert names(negotiate(Edits(), info(), CAPS, unsent=unsent)[0], CAPS) == {"async_read"}


def test_passthrough_and_the_writeback_cache_exclude_each_other() -> None:
    caps = {**CAPS, "passthrough": 1 << 29, "writeback_cache": 1 << 16}
    info = pyfuse3.ConnectionInfo(7, 45, frozenset({"passthrough", "writeback_cache"}),
                                  {"passthrough", "writeback_cache"})
    with pytest.raises(ValueError, match="passthrough and writeback_cache exclude each other"):
        negotiate(Edits(), info, caps)


def test_passthrough_and_handle_killpriv_exclude_each_other() -> None:
    caps = {**CAPS, "passthrough": 1 << 29}
    info = pyfuse3.ConnectionInfo(7, 45, frozenset({"passthrough", "handle_killpriv"}),
                                  {"passthrough", "handle_killpriv"})
    with pytest.raises(ValueError, match="passthrough and handle_killpriv exclude each other"):
        negotiate(Edits(), info, caps)
    info.want = {"handle_killpriv"}  # alone, the file system clears the bits in write()
    assert names(negotiate(Edits(), info, caps)[0], caps) == {"handle_killpriv"}


@pytest.mark.parametrize(("args", "text"), [
    ((False, True, False), "it needs libfuse 3.18; this pyfuse3 was built against libfuse 3.14"),
    ((True, False, False), "the kernel does not offer it (Linux 6.9"),
    ((True, True, False), "Operations.enable_passthrough is False"),
    ((True, True, True), ""),
])
def test_why_passthrough_is_not_in_use(args: tuple[bool, bool, bool], text: str) -> None:
    reason = passthrough_unavailable(pyfuse3.Operations(), *args, "3.14")
    assert reason.startswith(text) and (reason == "") == (text == "")


def test_passthrough_left_out_by_init_connection_is_named() -> None:
    class Wants(pyfuse3.Operations):
        enable_passthrough = True

    assert "init_connection() left it out" in passthrough_unavailable(
        Wants(), True, True, False, "3.18")
