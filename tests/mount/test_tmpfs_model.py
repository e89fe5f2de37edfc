"""A model-checked random run against examples/tmpfs.py (fsx style).

Two files are changed through a real mount by write, mmap, truncate, every fallocate mode and
copy_file_range, in a seeded random order; an in-memory model predicts every byte, the size and
what SEEK_DATA/SEEK_HOLE find, and each read, mmap read and seek is compared with it. The run
length is ``MODEL_OPS`` (default 50000), the seed ``MODEL_SEED`` (default: random, printed).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import random
from pathlib import Path

import pytest

from ..sparse_model import FALLOCATE_MODES, PAGE, Model

pytestmark = pytest.mark.fuse
MAX_SIZE = 192 * 1024
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def fallocate(fd: int, mode: int, off: int, length: int) -> None:
    if _libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def seek(fd: int, off: int, data: bool) -> int | None:
    try:
        return os.lseek(fd, off, os.SEEK_DATA if data else os.SEEK_HOLE)
    except OSError as e:
        if e.errno != errno.ENXIO:
            raise
        return None


class Run:
    def __init__(self, d: Path, seed: int) -> None:
        self.rng = random.Random(seed)
        self.models = [Model(), Model()]
        self.fds = [os.open(d / name, os.O_RDWR | os.O_CREAT, 0o644) for name in ("a", "b")]
        self.counts: dict[str, int] = {}

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)

    def span(self, limit: int) -> tuple[int, int]:
        r = self.rng
        off = r.randrange(limit) if limit else 0
        if r.random() < 0.3:
            off -= off % PAGE  # page-aligned ranges reach the whole-page paths
        length = r.choice((r.randrange(1, 64), r.randrange(1, PAGE * 3), r.randrange(1, 65536)))
        return off, max(1, min(length, MAX_SIZE - off))

    def step(self, n: int) -> None:
        r = self.rng
        k = r.randrange(2)
        fd, m = self.fds[k], self.models[k]
        op = r.choice(("write", "write", "read", "mapwrite", "mapread", "truncate",
                       "fallocate", "fallocate", "seek", "seek", "copy"))
        self.counts[op] = self.counts.get(op, 0) + 1
        where = f"op {n} {op} on {'ab'[k]}"
        if op == "write":
            off, length = self.span(MAX_SIZE - 1)
            buf = r.randbytes(length)
            assert os.pwrite(fd, buf, off) == length, where
            m.write(off, buf)
        elif op == "read":
            off, length = self.span(MAX_SIZE)
            assert os.pread(fd, length, off) == bytes(m.data[off:off + length]), where
        elif op in ("mapwrite", "mapread"):
            if m.size == 0:
                return
            off, length = self.span(m.size)
            length = min(length, m.size - off)
            with mmap.mmap(fd, m.size) as mm:
                if op == "mapread":
                    assert mm[off:off + length] == bytes(m.data[off:off + length]), where
                else:
                    buf = r.randbytes(length)
                    mm[off:off + length] = buf
                    mm.flush()
                    m.write(off, buf)
        elif op == "truncate":
            size = r.choice((0, r.randrange(MAX_SIZE), r.randrange(MAX_SIZE) & ~(PAGE - 1)))
            os.ftruncate(fd, size)
            m.truncate(size)
        elif op == "fallocate":
            mode = r.choice(FALLOCATE_MODES)
            off, length = self.span(MAX_SIZE - 1)
            fallocate(fd, mode, off, length)
            m.fallocate(mode, off, length)
        elif op == "seek":
            off = r.randrange(MAX_SIZE)
            for data in (True, False):
                assert seek(fd, off, data) == m.seek(off, data), f"{where} {off} data={data}"
        else:
            src, dst = self.models[k], self.models[1 - k]
            off_in, length = self.span(MAX_SIZE)
            off_out = r.randrange(MAX_SIZE - length + 1)
            done = os.copy_file_range(fd, self.fds[1 - k], length, off_in, off_out)
            assert done == max(0, min(length, src.size - off_in)), where
            src.copy_to(dst, off_in, off_out, done)
        if n % 250 == 0:
            self.check(where)

    def check(self, where: str) -> None:
        for fd, m in zip(self.fds, self.models, strict=True):
            assert os.fstat(fd).st_size == m.size, where
            assert os.pread(fd, MAX_SIZE + PAGE, 0) == bytes(m.data), where


def test_random_operations_match_the_model(mnt: Path, tmp_path: Path) -> None:
    ops = int(os.environ.get("MODEL_OPS", "50000"))
    seed = int(os.environ.get("MODEL_SEED", str(random.randrange(2**32))))
    d = mnt / f"model-{seed}"
    d.mkdir()
    run = Run(d, seed)
    print(f"model run: {ops} operations, MODEL_SEED={seed}")
    try:
        for n in range(1, ops + 1):
            run.step(n)
        run.check("the end")
    finally:
        run.close()
    print("operations:", dict(sorted(run.counts.items())))
    assert all(run.counts.get(op, 0) > ops // 50 for op in (
        "write", "read", "mapwrite", "mapread", "truncate", "fallocate", "seek", "copy"))
