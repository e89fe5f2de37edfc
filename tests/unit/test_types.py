"""Data classes: defaults, exact nanosecond times, range checks, pickling and copying."""

from __future__ import annotations

import copy
import errno
import os
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyfuse3
from pyfuse3 import EntryAttributes, FileInfo, FUSEError, StatvfsData

NS = pyfuse3._NANOS_PER_SEC
TIME_NS = st.integers(min_value=-(2**62), max_value=2**62)
U32 = st.integers(min_value=0, max_value=2**32 - 1)
U64 = st.integers(min_value=0, max_value=2**64 - 1)
I64 = st.integers(min_value=0, max_value=2**63 - 1)


def test_entry_defaults() -> None:
    a = EntryAttributes()
    assert (a.entry_timeout, a.attr_timeout, a.st_blksize, a.st_nlink) == (300, 300, 4096, 1)
    assert a.st_mode == 0o100000 and a.st_ino == 0 and a.generation == 0


def test_time_rounding_of_long_intervals() -> None:
    a = EntryAttributes()
    val = 67 * 365 * 24 * 3600 * NS + 999 * NS + 999_999_999
    a.st_mtime_ns = val
    assert a.st_mtime_ns == val


def test_time_accepts_float() -> None:
    a = EntryAttributes()
    a.st_atime_ns = 1000.2735 * 1e9
    assert a.st_atime_ns / 1e9 == pytest.approx(1000.2735)


@given(TIME_NS, TIME_NS, TIME_NS)
def test_times_round_trip_exactly(atime: int, mtime: int, ctime: int) -> None:
    a = EntryAttributes()
    a.st_atime_ns, a.st_mtime_ns, a.st_ctime_ns = atime, mtime, ctime
    assert (a.st_atime_ns, a.st_mtime_ns, a.st_ctime_ns) == (atime, mtime, ctime)


@given(ino=U64, gen=U64, mode=U32, nlink=U32, uid=U32, gid=U32, rdev=U32, size=I64,
       blocks=I64, blksize=U32, t=TIME_NS, timeout=st.floats(0, 1e9))
def test_entry_attributes_pickle_and_copy(ino: int, gen: int, mode: int, nlink: int, uid: int,
                                          gid: int, rdev: int, size: int, blocks: int,
                                          blksize: int, t: int, timeout: float) -> None:
    a = EntryAttributes()
    a.st_ino, a.generation, a.st_mode, a.st_nlink = ino, gen, mode, nlink
    a.st_uid, a.st_gid, a.st_rdev, a.st_size = uid, gid, rdev, size
    a.st_blocks, a.st_blksize, a.st_mtime_ns = blocks, blksize, t
    a.entry_timeout = a.attr_timeout = timeout
    for b in (copy.copy(a), pickle.loads(pickle.dumps(a))):
        assert b.__getstate__() == a.__getstate__()
    assert a.__getstate__()["st_mtime_ns"] == t and a.st_ino == ino


@pytest.mark.parametrize(("field", "value"), [
    ("st_ino", -1), ("st_ino", 2**64), ("st_mode", 2**32), ("st_uid", -1), ("st_gid", 2**32),
    ("st_size", -1), ("st_size", 2**63), ("st_nlink", -5), ("generation", 2**64),
    ("st_atime_ns", 2**63), ("st_blocks", -1),
])
def test_out_of_range_values_are_refused(field: str, value: int) -> None:
    a = EntryAttributes()
    with pytest.raises(OverflowError):
        setattr(a, field, value)


@pytest.mark.parametrize(("field", "value"), [
    ("st_nlink", 2**32), ("st_blksize", 2**32), ("st_blksize", -1), ("st_rdev", 2**32),
    ("st_rdev", os.makedev(4096, 0)), ("st_rdev", os.makedev(0, 2**20)), ("st_rdev", -1),
])
def test_values_the_kernel_would_cut_to_32_bits_are_refused(field: str, value: int) -> None:
    """struct fuse_attr keeps nlink, blksize and rdev in 32 bits: libfuse cut larger values
    silently (2**32 links became 0)."""
    a = EntryAttributes()
    with pytest.raises(OverflowError, match=f"^{field} must be" if value >= 0 else None):
        setattr(a, field, value)
    setattr(a, field, 2**32 - 1 if field != "st_rdev" else os.makedev(4095, 2**20 - 1))


@pytest.mark.parametrize("value", [-1.0, float("nan")])
def test_bad_timeouts_are_refused(value: float) -> None:
    with pytest.raises(ValueError):
        EntryAttributes().entry_timeout = value


def test_wrong_types_are_refused() -> None:
    a = EntryAttributes()
    with pytest.raises(TypeError):
        a.st_size = "12"  # type: ignore[assignment]
    with pytest.raises(TypeError):
        a.st_mtime_ns = "now"  # type: ignore[assignment]


def test_file_info() -> None:
    fi = FileInfo()
    assert (fi.fh, fi.direct_io, fi.keep_cache, fi.nonseekable) == (0, False, True, False)
    fi = FileInfo(fh=7, direct_io=True, keep_cache=False, nonseekable=True)
    assert (fi.fh, fi.direct_io, fi.keep_cache, fi.nonseekable) == (7, True, False, True)
    with pytest.raises(OverflowError):
        FileInfo(fh=-1)
    assert pickle.loads(pickle.dumps(fi)).fh == 7


@given(st.lists(st.integers(0, 2**64 - 1), min_size=9, max_size=9))
def test_statvfs_pickle(values: list[int]) -> None:
    s = StatvfsData()
    fields = ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree",
              "f_favail", "f_namemax")
    for f, v in zip(fields, values, strict=True):
        setattr(s, f, v)
    assert pickle.loads(pickle.dumps(s)).__getstate__() == dict(zip(fields, values, strict=True))
    with pytest.raises(OverflowError):
        s.f_blocks = -1


def test_context_and_fields_cannot_be_copied() -> None:
    for obj in (pyfuse3.RequestContext(), pyfuse3.SetattrFields()):
        with pytest.raises(pickle.PicklingError):
            copy.copy(obj)
        with pytest.raises(pickle.PicklingError):
            pickle.dumps(obj)
    ctx = pyfuse3.RequestContext()
    assert (ctx.uid, ctx.gid, ctx.pid, ctx.umask) == (0, 0, 0, 0)
    f = pyfuse3.SetattrFields()
    assert not any(getattr(f, "update_" + n) for n in
                   ("atime", "mtime", "ctime", "mode", "uid", "gid", "size"))


def test_fuse_error() -> None:
    e = FUSEError(errno.ENOENT)
    assert e.errno == errno.ENOENT and e.errno_ == errno.ENOENT
    assert str(e) == "No such file or directory"
    assert isinstance(e, Exception)
    assert copy.copy(e).errno == errno.ENOENT
    assert pickle.loads(pickle.dumps(e)).errno == errno.ENOENT


def test_internal_objects_cannot_be_built() -> None:
    with pytest.raises(TypeError):
        pyfuse3.ReaddirToken()


def test_readdir_reply_checks_arguments() -> None:
    with pytest.raises(TypeError):
        pyfuse3.readdir_reply(None, b"x", EntryAttributes(), 1)  # type: ignore[arg-type]


def test_file_info_backing_fd() -> None:
    import pickle

    info = pyfuse3.FileInfo(7, backing_fd=3)
    assert info.backing_fd == 3 and pyfuse3.FileInfo().backing_fd == -1
    assert "backing_fd=3" in repr(info)
    assert pickle.loads(pickle.dumps(info)).backing_fd == 3
    with pytest.raises(ValueError, match="backing_fd must be an open file descriptor"):
        pyfuse3.FileInfo(backing_fd=-2)
    with pytest.raises(TypeError, match="an integer is required"):  # not "'<' not supported"
        pyfuse3.FileInfo(backing_fd="3")  # type: ignore[arg-type]


def test_birth_time_is_unset_until_set_and_survives_copies() -> None:
    """st_birthtime_ns reads 0 until set (upstream's value on Linux); once set it is kept
    (statx() replies carry it) through copy and pickle, and unset stays unset."""
    a = pyfuse3.EntryAttributes()
    assert a.st_birthtime_ns == 0 and "st_birthtime_ns" not in a.__getstate__()
    assert "st_birthtime_ns" not in pickle.loads(pickle.dumps(a)).__getstate__()
    a.st_birthtime_ns = -1_500_000_001  # before the epoch: floor division splits it
    for b in (copy.copy(a), pickle.loads(pickle.dumps(a))):
        assert b.st_birthtime_ns == -1_500_000_001
    with pytest.raises(TypeError):
        a.st_birthtime_ns = "yesterday"
    with pytest.raises(OverflowError):
        a.st_birthtime_ns = 1 << 70
