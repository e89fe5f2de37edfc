"""Mount options sorted by who takes them (_mount.parse_options), without a kernel."""

from __future__ import annotations

import pytest

from pyfuse3._mount import MountOptions, parse_options


def test_options_are_sorted_by_who_takes_them() -> None:
    opts = parse_options(["fsname=x", "allow_stacked_mount", "readdirplus=auto",
                          "max_read=65536", "default_permissions", "request_timeout=30"], {})
    assert opts == MountOptions(("default_permissions", "fsname=x", "max_read=65536"),
                                readdirplus="auto", max_read=65536, stacked=True,
                                request_timeout=30)
    assert parse_options([], {}) == MountOptions((), "yes", 0, False)


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
    ("io_uring_q_depth=8", ValueError, "io_uring_q_depth= needs the option io_uring"),
    ("io_uring_q_depth=0", ValueError, "a number from 1 to 1024"),
    ("io_uring_q_depth=1025", ValueError, "a number from 1 to 1024"),
    ("io_uring_q_depth=x", ValueError, "a number from 1 to 1024"),
])
def test_malformed_options_name_themselves(option: object, error: type[Exception],
                                          text: str) -> None:
    with pytest.raises(error) as info:
        parse_options([option], {})  # type: ignore[list-item]
    assert text in str(info.value)
    if isinstance(option, str):
        assert option.partition("=")[0] in str(info.value)


@pytest.mark.parametrize(("options", "text"), [
    ("default_permissions", "not str 'default_permissions'"),  # was: options d, e, f, ...
    (b"ro", "not bytes b'ro'"),
    (None, "not NoneType None"),
    (7, "not int 7"),
])
def test_options_that_are_not_a_collection_of_str(options: object, text: str) -> None:
    with pytest.raises(TypeError) as info:
        parse_options(options, {})  # type: ignore[arg-type]
    assert str(info.value).startswith("mount options must be a collection of str such as")
    assert text in str(info.value)


def test_options_may_be_any_iterable_of_str() -> None:
    expected = parse_options(["ro", "fsname=x"], {})
    assert parse_options(("fsname=x", "ro"), {}) == expected
    assert parse_options(iter(["ro", "fsname=x", "ro"]), {}) == expected
    assert parse_options({"ro": 1, "fsname=x": 2}, {}) == expected


def test_io_uring_takes_a_depth_per_cpu_queue() -> None:
    assert parse_options(["io_uring"], {}).io_uring == 8  # libfuse's default too
    opts = parse_options(["io_uring", "io_uring_q_depth=32"], {})
    assert (opts.io_uring, opts.libfuse, opts.io_uring_from_env) == (32, (), False)
    assert parse_options([], {}).io_uring == 0


@pytest.mark.parametrize(("environ", "depth"), [
    ({"FUSE_URING_ENABLE": "1"}, 8),
    ({"FUSE_URING_ENABLE": "1", "FUSE_URING_QUEUE_DEPTH": "3"}, 3),
    ({"FUSE_URING_ENABLE": "0", "FUSE_URING_QUEUE_DEPTH": "3"}, 0),
    ({"FUSE_URING_ENABLE": ""}, 0),
    ({"FUSE_URING_QUEUE_DEPTH": "3"}, 0),
])
def test_libfuse_environment_switch(environ: dict[str, str], depth: int) -> None:
    """FUSE_URING_ENABLE / FUSE_URING_QUEUE_DEPTH, as libfuse reads them for its examples."""
    opts = parse_options([], environ)
    assert (opts.io_uring, opts.io_uring_from_env) == (depth, bool(depth))
    # the option wins over the environment, and its depth too
    assert parse_options(["io_uring", "io_uring_q_depth=5"], environ).io_uring == 5
    assert not parse_options(["io_uring"], environ).io_uring_from_env


def test_a_malformed_depth_in_the_environment_names_it() -> None:
    with pytest.raises(ValueError, match="FUSE_URING_QUEUE_DEPTH"):
        parse_options([], {"FUSE_URING_ENABLE": "1", "FUSE_URING_QUEUE_DEPTH": "lots"})
