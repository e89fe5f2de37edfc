#!/usr/bin/env python3
"""`make stress`: stress-ng's file-system and I/O stressors against the example file systems.

    python bench/stress_ng.py [--fs tmpfs,passthroughfs,sharedfs] [--seconds 5] [--workers 2]
                              [--stressors access,chmod,...]

Each file system is mounted once (tmpfs, passthroughfs over a temporary directory, sharedfs on
a redis-server of its own on a unix socket) and every stressor runs against it in a directory
of its own (``--temp-path``), one after another. A stressor passes when stress-ng exits 0;
exit 3 (resources unavailable), 4 (not implemented there) and a stressor that says it is
skipping (e.g. no FIEMAP on FUSE) count as skipped, with stress-ng's reason. A failure whose
every failing call ended with EINTR is counted apart and does not fail the run: pyfuse3
cancels a waiting handler when its caller gets any signal, and stress-ng's own SIGALRM hits
setup and cleanup calls of sharedfs that wait for Redis (a known limitation; see
docs/operations.md). Independently of stress-ng's verdict the run fails if the file system
process died, logged an error or a traceback, or if the mount stopped answering. What a
stressor left in its directory is shown, not counted as a failure (its cleanup interrupted
the same way).

stress-ng comes from Debian (``apt-get install stress-ng``; make stress installs it). Exit
status: 0 when every stressor passed or was skipped. Found before it existed: passthroughfs
running out of descriptors (the kernel keeps every inode it was sent), opendir() holding a
second descriptor, and sharedfs answering EINTR for changes it had made.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from pyfuse3.testing import serving_process  # noqa: E402
from tests.sharedfs.conftest import redis_server, sharedfs  # noqa: E402

EXAMPLES = ROOT / "examples"

#: Those of stress-ng's file-system and I/O classes that work in --temp-path (the others stress
#: /dev, /proc, mount namespaces or raw devices, not the file system under test). Not io-uring:
#: Debian 12's stress-ng 0.15.06 fails it on this kernel's own ext4 and tmpfs as well
#: (IORING_OP_STATX answers ENOENT); --stressors io-uring runs it anyway.
STRESSORS = (
    "access chattr chdir chmod chown copy-file dentry dir dirdeep dirmany dnotify fallocate "
    "fanotify fcntl fiemap file-ioctl filename flock fpunch fsize getdent hdd inode-flags "
    "inotify iomix lease link locka lockf lockofd mknod open rename symlink sync-file touch "
    "utime xattr aio aiol readahead revio seek").split()
SKIPPED = {3: "resources unavailable", 4: "not implemented here"}


@contextlib.contextmanager
def mounted(kind: str, work: Path) -> Iterator[tuple[Path, subprocess.Popen[bytes], Path]]:
    """Mount ``kind`` under ``work``: yields (mountpoint, its process, its log)."""
    mnt, log = work / f"{kind}-mnt", work / f"{kind}.log"
    mnt.mkdir()
    with open(log, "wb") as err:
        if kind == "sharedfs":
            procs: list[subprocess.Popen[bytes]] = []
            (work / "redis").mkdir()
            with redis_server(work / "redis") as redis, \
                    sharedfs(redis, "stress", procs=procs, log=log) as path:
                yield path, procs[0], log
            return
        argv = [sys.executable, str(EXAMPLES / f"{kind}.py")]
        if kind == "passthroughfs":
            (work / "source").mkdir()
            argv.append(str(work / "source"))
        with serving_process([*argv, str(mnt)], str(mnt), stop_signal=signal.SIGTERM,
                             stderr=err) as proc:
            yield mnt, proc, log


def run_stressor(name: str, path: Path, seconds: float, workers: int) -> tuple[int, list[str]]:
    """Run one stressor in ``path``; (exit status, the lines stress-ng flagged)."""
    path.mkdir()
    argv = ["stress-ng", f"--{name}", str(workers), "--timeout", f"{seconds}s",
            "--temp-path", str(path)]
    try:
        # cwd: some stressors (open) also make files in the current directory
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds * 4 + 120,
                              cwd=path)
    except subprocess.TimeoutExpired as e:
        return -1, [f"did not end within {e.timeout:.0f} s"]
    flagged = [line.split("] ", 1)[-1] for line in (done.stdout + done.stderr).splitlines()
               if any(w in line for w in ("fail", "error", "skipping", "not implemented",
                                          "unavailable"))]
    return done.returncode, flagged


def verdict(rc: int, flagged: list[str], trouble: list[str]) -> tuple[str, str]:
    """("ok" | "skip" | "eintr" | "FAIL", why) for one stressor's run."""
    if trouble:
        return "FAIL", "; ".join(trouble[:3])
    skipping = [line for line in flagged if "skipping" in line]
    if rc in SKIPPED or (rc == 0 and skipping):
        return "skip", skipping[0] if skipping else SKIPPED[rc]
    if rc == 0:
        return "ok", ""
    failures = [line for line in flagged if line.startswith("fail:")]
    if failures and all("errno=4 " in line for line in failures):
        return "eintr", failures[0]
    return "FAIL", f"stress-ng exit {rc}: " + " | ".join(flagged[-4:])


def problems_in(log: Path, start: int) -> list[str]:
    text = log.read_text(errors="replace")[start:]
    return [line for line in text.splitlines()  # the examples log "... name ERROR: ..."
            if "Traceback" in line or " ERROR:" in line or " CRITICAL:" in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fs", default="tmpfs,passthroughfs,sharedfs")
    parser.add_argument("--seconds", type=float, default=5.0, help="per stressor")
    parser.add_argument("--workers", type=int, default=2, help="instances of each stressor")
    parser.add_argument("--stressors", default=",".join(STRESSORS))
    args = parser.parse_args()
    if shutil.which("stress-ng") is None:
        sys.exit("stress-ng is not installed (apt-get install stress-ng; make stress does)")
    failed = 0
    for kind in args.fs.split(","):
        with tempfile.TemporaryDirectory(prefix="pyfuse3-stress-") as tmp, \
                mounted(kind, Path(tmp)) as (mnt, proc, log):
            print(f"== {kind}: {args.seconds:g} s per stressor, {args.workers} workers ==",
                  flush=True)
            counts = dict.fromkeys(("ok", "skip", "eintr", "FAIL"), 0)
            for name in args.stressors.split(","):
                offset = log.stat().st_size
                began = time.monotonic()
                rc, flagged = run_stressor(name, mnt / name, args.seconds, args.workers)
                trouble = problems_in(log, offset)
                left: list[str] = []
                if proc.poll() is not None:
                    trouble.append(f"the file system exited ({proc.returncode})")
                else:
                    try:
                        left = sorted(os.listdir(mnt / name))
                    except OSError as e:
                        trouble.append(f"the mount stopped answering: {e}")
                kind_of, why = verdict(rc, flagged, trouble)
                counts[kind_of] += 1
                note = f" (left behind: {len(left)})" if left else ""
                print(f"  {kind_of:5} {name} {time.monotonic() - began:.0f} s{note}"
                      + (f": {why}" if why else ""), flush=True)
                if proc.poll() is not None:
                    break
            failed += counts["FAIL"]
            print(f"{kind}: {counts['ok']} passed, {counts['skip']} skipped, {counts['eintr']} "
                  f"failed with EINTR only, {counts['FAIL']} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
