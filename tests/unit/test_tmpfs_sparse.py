"""examples/tmpfs.py's SparseData against the model, without a mount (fast, many operations)."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

from ..sparse_model import FALLOCATE_MODES, PAGE, Model

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import pyfuse3
from tmpfs import COPY_STEP, SparseData


def _seek(data: SparseData, off: int, whence: int) -> int | None:
    try:
        return data.seek(off, whence)
    except pyfuse3.FUSEError:
        return None


@pytest.mark.parametrize("seed", range(4))
def test_sparse_data_matches_the_model(seed: int) -> None:
    r = random.Random(seed)
    a, b = SparseData(), SparseData()
    ma, mb = Model(), Model()
    for n in range(5000):
        (d, m), (d2, m2) = r.sample([(a, ma), (b, mb)], 2)
        off = r.randrange(20 * PAGE)
        length = r.choice((r.randrange(1, 50), r.randrange(1, 4 * PAGE)))
        op = r.randrange(5)
        if op == 0:
            buf = r.randbytes(length)
            d.write(off, buf)
            m.write(off, buf)
        elif op == 1:
            size = r.randrange(24 * PAGE)
            d.truncate(size)
            m.truncate(size)
        elif op == 2:
            mode = r.choice(FALLOCATE_MODES)
            d.fallocate(mode, off, length)
            m.fallocate(mode, off, length)
        elif op == 3:
            off_out = r.randrange(20 * PAGE)
            done = d2.copy_from(d, off, off_out, length)
            assert done == max(0, min(length, m.size - off))
            m.copy_to(m2, off, off_out, done)
        else:
            for whence, data in ((os.SEEK_DATA, True), (os.SEEK_HOLE, False)):
                assert _seek(d, off, whence) == m.seek(off, data), n
        for x, mx in ((a, ma), (b, mb)):
            assert x.size == mx.size and x.read(0, x.size) == bytes(mx.data), n
            assert set(x.pages) == mx.pages, n


class CountingPages(dict):  # type: ignore[type-arg]
    """A page table that counts lookups of single pages."""

    lookups = 0

    def __contains__(self, key: object) -> bool:
        CountingPages.lookups += 1
        return super().__contains__(key)

    def get(self, key: object, default: object = None) -> object:
        CountingPages.lookups += 1
        return super().get(key, default)


def test_copying_a_hole_costs_nothing_per_page() -> None:
    """copy_file_range over a 4 GiB hole looked at each of its million pages, holding the
    event loop for seconds: a hole is walked as one range."""
    src, dst = SparseData(), SparseData()
    src.pages, dst.pages = CountingPages(), CountingPages()
    src.write(0, b"a" * PAGE)
    src.write(4 << 30, b"z" * PAGE)
    dst.write(PAGE, b"d" * 3 * PAGE)  # inside the copied hole: freed
    CountingPages.lookups = 0
    assert dst.copy_from(src, 0, 0, src.size) == src.size
    assert CountingPages.lookups < 20
    assert list(SparseData().copy_steps(src, 0, 0, src.size)) == [src.size]  # one step
    assert sorted(dst.pages) == [0, (4 << 30) // PAGE] and dst.size == src.size
    assert dst.read((4 << 30) - 1, 2) == b"\0z" and dst.read(PAGE, 3) == bytes(3)


def test_a_long_copy_yields_every_few_pages() -> None:
    src, dst = SparseData(), SparseData()
    pages = 10 * COPY_STEP + 3
    src.write(0, os.urandom(pages * PAGE))
    steps = list(dst.copy_steps(src, 0, 100, src.size))
    assert steps == [n * COPY_STEP * PAGE for n in range(1, 11)] + [src.size]
    assert dst.read(100, src.size) == src.read(0, src.size)
