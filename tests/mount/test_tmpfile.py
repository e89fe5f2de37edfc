"""O_TMPFILE through a real mount (libfuse 3.18, Linux 6.1): the tmpfile() operation."""

from __future__ import annotations

import ctypes
import errno
import os
import stat
import sys
from pathlib import Path

import pytest

import pyfuse3
from pyfuse3._opcodes import OPERATIONS
from pyfuse3.testing import mounted

from ..memfs import MemFS
from ..util import eventually

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from tmpfs import TmpFS

pytestmark = pytest.mark.fuse
AT_FDCWD, AT_EMPTY_PATH = -100, 0x1000
_libc = ctypes.CDLL(None, use_errno=True)
IN_LIBFUSE = any(o.name == "tmpfile" and o.lowlevel for o in OPERATIONS)


@pytest.mark.skipif(not IN_LIBFUSE, reason=f"built against libfuse {pyfuse3.LIBFUSE_VERSION}")
def test_o_tmpfile_makes_a_nameless_file_that_linkat_can_name(backend: str) -> None:
    with mounted(TmpFS(), backend=backend) as fs:
        fd = os.open(fs.mountpoint, os.O_TMPFILE | os.O_RDWR, 0o640)
        try:
            os.write(fd, b"no name yet")
            st = os.fstat(fd)
            assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
            assert st.st_nlink == 0 and os.listdir(fs.mountpoint) == []
            # linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) (root: CAP_DAC_READ_SEARCH). (Through
            # /proc/self/fd/N the kernel answers EXDEV for a FUSE O_TMPFILE file here.)
            if _libc.linkat(fd, b"", AT_FDCWD, os.fsencode(fs.path("named")),
                            AT_EMPTY_PATH) != 0:
                raise OSError(ctypes.get_errno(), "linkat")
            assert os.fstat(fd).st_nlink == 1
        finally:
            os.close(fd)
        with open(fs.path("named"), "rb") as fh:
            assert fh.read() == b"no name yet"


def test_without_tmpfile_the_kernel_answers_eopnotsupp(backend: str) -> None:
    """The default (ENOSYS; or a libfuse without the operation): O_TMPFILE fails cleanly, and
    the file system keeps serving."""
    with mounted(MemFS(), backend=backend) as fs:
        for _ in range(2):  # the kernel remembers; the second call does not reach us
            with pytest.raises(OSError) as info:
                os.open(fs.mountpoint, os.O_TMPFILE | os.O_RDWR, 0o600)
            assert info.value.errno == errno.EOPNOTSUPP
        assert os.listdir(fs.mountpoint) == []


@pytest.mark.skipif(not IN_LIBFUSE, reason=f"built against libfuse {pyfuse3.LIBFUSE_VERSION}")
def test_a_tmpfile_never_named_is_freed_after_its_close(backend: str) -> None:
    ops = TmpFS()
    with mounted(ops, backend=backend) as fs:
        before = len(ops.inodes)
        fd = os.open(fs.mountpoint, os.O_TMPFILE | os.O_RDWR, 0o600)
        os.write(fd, b"x" * 10000)
        assert len(ops.inodes) == before + 1
        os.close(fd)
        assert eventually(lambda: len(ops.inodes) == before)  # release, then forget
