"""pyfuse3's system helpers without a kernel: fusectl is a temporary directory here."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType
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


def test_interrupts_held_raises_ctrl_c_once_the_block_is_done() -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with _sysutil.interrupts_held():
            signal.raise_signal(signal.SIGINT)
            signal.raise_signal(signal.SIGINT)
            finished.append(True)
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with _sysutil.interrupts_held():  # none came: nothing raised
        pass


def test_interrupts_held_keeps_ctrl_c_over_an_error_of_the_block() -> None:
    with pytest.raises(KeyboardInterrupt) as raised:
        with _sysutil.interrupts_held():
            signal.raise_signal(signal.SIGINT)
            raise ValueError("the block's own error")
    assert isinstance(raised.value.__context__, ValueError)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(ValueError):  # no Ctrl-C: the error as it was
        with _sysutil.interrupts_held():
            raise ValueError("the block's own error")


def test_interrupts_held_hands_them_to_another_handler_in_order_once_done() -> None:
    """asyncio.run's handler cancels at the first Ctrl-C and raises at the second: both wait
    for the block, in order; the handler gets the frame each one interrupted."""
    seen: list[tuple[int, str]] = []

    def like_asyncio_run(signum: int, frame: FrameType | None) -> None:
        seen.append((signum, frame.f_code.co_name if frame else ""))
        if len(seen) == 2:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, like_asyncio_run)
    try:
        with pytest.raises(KeyboardInterrupt):
            with _sysutil.interrupts_held():
                signal.raise_signal(signal.SIGINT)
                signal.raise_signal(signal.SIGINT)
                assert seen == []  # held while the block runs
        here = sys._getframe().f_code.co_name
        assert seen == [(signal.SIGINT, here), (signal.SIGINT, here)]
        assert signal.getsignal(signal.SIGINT) is like_asyncio_run
    finally:
        signal.signal(signal.SIGINT, previous)


def test_interrupts_held_leaves_ignored_ctrl_c_and_other_threads_alone() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _sysutil.interrupts_held():
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)  # ignored, as without the block
    finally:
        signal.signal(signal.SIGINT, previous)
    handlers: list[object] = []

    def in_thread() -> None:
        with _sysutil.interrupts_held():
            handlers.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert handlers == [signal.default_int_handler]


def test_get_sup_groups_wants_a_pid() -> None:
    """A str pid was turned into a number by int() ('12' read process 12's groups, 'x' said
    "invalid literal for int() with base 10")."""
    import os

    import pyfuse3

    assert pyfuse3.get_sup_groups(os.getpid()) == set(os.getgroups())
    for pid in ("12", 1.0, None):
        with pytest.raises(TypeError, match="cannot be interpreted as an integer"):
            pyfuse3.get_sup_groups(pid)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        pyfuse3.get_sup_groups(-1)


def _status(pending: int = 0, shared: int = 0, blocked: int = 0, ignored: int = 0,
            caught: int = 0) -> str:
    """The signal lines of a /proc/PID/status file (bit n-1: signal n)."""
    return "".join(f"{key}:\t{mask:016x}\n" for key, mask in (
        ("Name", 0), ("SigQ", 0), ("SigPnd", pending), ("ShdPnd", shared), ("SigBlk", blocked),
        ("SigIgn", ignored), ("SigCgt", caught))).replace("Name:\t0000000000000000", "Name:\tx")


def _bit(sig: int) -> int:
    return 1 << (sig - 1)


@pytest.mark.parametrize(("status", "dying"), [
    (_status(), False),
    (_status(pending=_bit(signal.SIGKILL)), True),       # every thread of a killed process
    (_status(shared=_bit(signal.SIGKILL)), True),
    (_status(shared=_bit(signal.SIGTERM)), True),        # not handled: it ends the process
    (_status(pending=_bit(signal.SIGQUIT)), True),       # a core dump's: never made SIGKILL
    (_status(shared=_bit(signal.SIGTERM), caught=_bit(signal.SIGTERM)), False),  # handled
    (_status(shared=_bit(signal.SIGINT), blocked=_bit(signal.SIGINT)), False),
    (_status(shared=_bit(signal.SIGURG)), False),        # Go's preemption: ignored by default
    (_status(shared=_bit(signal.SIGCHLD) | _bit(signal.SIGWINCH)), False),
    (_status(shared=_bit(signal.SIGTSTP)), False),       # stops, does not end
    (_status(shared=_bit(signal.SIGRTMIN + 1)), True),   # real-time: ends by default
], ids=["none", "kill", "kill-shared", "term", "quit", "term-handled", "int-blocked", "urg",
        "chld-winch", "tstp", "rt"])
def test_a_caller_is_dying_when_a_signal_pending_ends_it(status: str, dying: bool) -> None:
    assert _sysutil.dies_of_pending_signal(status) is dying


def test_caller_dying_reads_the_thread_and_honours_what_it_cannot_tell() -> None:
    with pytest.raises(ValueError, match="status"):
        _sysutil.dies_of_pending_signal("Name:\tx\n")
    assert _sysutil.caller_dying(0) is True  # outside the mount's pid namespace
    # a child with SIGTERM blocked and pending: alive, not dying, until SIGKILL
    child = subprocess.Popen([sys.executable, "-c",
                              "import signal, sys\n"
                              "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})\n"
                              "print('ready', flush=True)\nsys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        assert _sysutil.caller_dying(child.pid) is False
        child.send_signal(signal.SIGTERM)
        with open(f"/proc/{child.pid}/status") as fh:
            assert f"ShdPnd:\t{_bit(signal.SIGTERM):016x}\n" in fh.read()  # pending
        assert _sysutil.caller_dying(child.pid) is False
        threading_id = threading.get_native_id()
        assert _sysutil.caller_dying(threading_id) is False  # this thread, by its own id
    finally:
        child.kill()
        child.wait(10)
        for f in (child.stdin, child.stdout):
            assert f is not None
            f.close()
    assert _sysutil.caller_dying(child.pid) is True  # reaped: no /proc entry
