"""The quick start of the manual (docs/quickstart.md), run as it tells the reader to."""

import errno
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from pyfuse3.testing import serving_process

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


@pytest.mark.fuse
def test_quickstart_mounts_serves_and_unmounts_on_sigterm(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with serving_process([sys.executable, str(EXAMPLE), str(mnt)], str(mnt),
                         stop_signal=signal.SIGTERM) as proc:
        assert os.listdir(mnt) == ["greeting"]
        st = os.stat(mnt / "greeting")
        assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o444
        assert (mnt / "greeting").read_bytes() == b"Hello from Python!\n"
        with pytest.raises(OSError) as err:
            os.open(mnt / "missing", os.O_RDONLY)
        assert err.value.errno == errno.ENOENT
        with pytest.raises(PermissionError):
            os.open(mnt / "greeting", os.O_WRONLY)
    assert proc.returncode == 0
    assert not os.path.ismount(mnt)  # close() unmounted it
