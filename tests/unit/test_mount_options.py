"""Mount options sorted by who takes them (_mount.parse_options), without a kernel."""

from __future__ import annotations

import pytest

from pyfuse3._mount import MountOptions, parse_options


def test_options_are_sorted_by_who_takes_them() -> None:
    opts = parse_options(["fsname=x", "allow_stacked_mount", "readdirplus=auto",
                          "max_read=65536", "default_permissions", "request_timeout=30"])
    assert opts == MountOptions(("default_permissions", "fsname=x", "max_read=65536"),
                                readdirplus="auto", max_read=65536, stacked=True,
                                request_timeout=30)
    assert parse_options([]) == MountOptions((), "yes", 0, False)


@pytest.mark.parametrize(("option", "error", "text"), [
    (b"ro", TypeError, "mount options must be str, got b'ro'"),
    ("readdirplus=maybe", ValueError, "readdirplus must be yes, no or auto"),
    ("max_read=lots", ValueError, "max_read must be a number of bytes"),
    ("max_read=-1", ValueError, "max_read must be a number of bytes"),
    ("max_read=4294967296", ValueError, "max_read must be a number of bytes"),
    ("max_write=3", ValueError, "max_write must be an int from 4096"),
    ("max_write=big", ValueError, "got 'big'"),
    ("request_timeout=0", ValueError, "request_timeout must be a number of seconds from 1"),
    ("request_timeout=65536", ValueError, "from 1 to 65535"),
    ("request_timeout=1.5", ValueError, "request_timeout must be a number of seconds"),
    ("io_uring", ValueError, "FUSE over io_uring is not supported yet"),
    ("io_uring_q_depth=8", ValueError, "FUSE over io_uring is not supported yet"),
])
def test_malformed_options_name_themselves(option: object, error: type[Exception],
                                          text: str) -> None:
    with pytest.raises(error) as info:
        parse_options([option])  # type: ignore[list-item]
    assert text in str(info.value)
    if isinstance(option, str):
        assert option in str(info.value)
