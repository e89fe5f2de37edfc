"""pyfuse3's system helpers without a kernel: fusectl is a temporary directory here."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pyfuse3 import _sysutil


class FakeFusectl:
    """A stand-in for /sys/fs/fuse/connections; attempts to mount fusectl are recorded."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mounts: list[list[str]] = []

    def connection(self, number: int) -> Path:
        (self.root / str(number)).mkdir()
        abort = self.root / str(number) / "abort"
        abort.write_text("")
        return abort

    def run(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.mounts.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def fusectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeFusectl:
    fake = FakeFusectl(tmp_path)
    monkeypatch.setattr(_sysutil, "FUSECTL", str(tmp_path))
    monkeypatch.setattr(subprocess, "run", fake.run)  # as _sysutil calls it
    return fake


@pytest.mark.parametrize(("device", "number"), [
    ("0:23", 23),  # FUSE's anonymous devices: the minor
    ("7:0", 7 << 20),  # fuseblk on /dev/loop0: the kernel's dev_t, major << 20 | minor
    ("259:3", 259 << 20 | 3),
])
def test_abort_device_writes_the_abort_file_fusectl_names_it_by(
        fusectl: FakeFusectl, device: str, number: int) -> None:
    abort = fusectl.connection(number)
    other = fusectl.connection(int(device.split(":")[1]) + 1)
    assert _sysutil.abort_device(device) is True
    assert abort.read_text() == "1"
    assert other.read_text() == ""
    assert fusectl.mounts == []  # listed: fusectl is mounted


def test_abort_device_mounts_fusectl_and_reports_a_connection_it_cannot_find(
        fusectl: FakeFusectl) -> None:
    other = fusectl.connection(23)
    assert _sysutil.abort_device("7:23") is False
    assert other.read_text() == ""
    assert fusectl.mounts == [["mount", "-t", "fusectl", "none", str(fusectl.root)]]
