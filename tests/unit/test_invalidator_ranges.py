"""The byte ranges an Invalidator queues per inode (no kernel needed)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyfuse3
from pyfuse3.cache import _merge_range

END = 1 << 20  # stands for "to the end of the file" when turned into a set of bytes
ranges = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 60)), max_size=20)


def covered(rs: list[tuple[int, int | None]]) -> set[int]:
    return {b for s, e in rs for b in range(s, END if e is None else e)}


@given(ranges)
def test_merged_ranges_are_the_union_when_few(added: list[tuple[int, int]]) -> None:
    merged: list[tuple[int, int | None]] = []
    for off, length in added:
        merged = _merge_range(merged, off, off + length if length else None, 1000)
    assert covered(merged) == covered([(o, o + n if n else None) for o, n in added])
    assert merged == sorted(merged)
    # disjoint and not adjacent: nothing left to join
    assert all(e is not None and e < s2 for (_, e), (s2, _) in pairwise(merged))


@given(ranges, st.integers(1, 4))
def test_over_the_limit_one_range_covers_everything(added: list[tuple[int, int]],
                                                    limit: int) -> None:
    merged: list[tuple[int, int | None]] = []
    for off, length in added:
        merged = _merge_range(merged, off, off + length if length else None, limit)
        assert len(merged) <= limit
    assert covered(merged) >= covered([(o, o + n if n else None) for o, n in added])


def test_queueing_rules() -> None:
    inv = pyfuse3.cache.Invalidator()
    inv.inode(5, attr_only=True)
    inv.inode(5, attr_only=True)
    assert inv._inodes == {5: None}
    inv.inode(5, offset=10, length=5)  # data absorbs attributes-only
    inv.inode(5, attr_only=True)  # and stays data
    assert inv._inodes == {5: [(10, 15)]}
    inv.inode(5, offset=100)  # length 0: to the end of the file
    inv.inode(5, offset=15, length=10)
    assert inv._inodes == {5: [(10, 25), (100, None)]}
    inv.inode(5)
    assert inv._inodes == {5: [(0, None)]} and inv.pending() == 1
    assert (inv.statistics().requested, inv.statistics().coalesced) == (7, 6)
    with pytest.raises(ValueError, match="negative"):
        inv.inode(5, offset=-1)
