"""The byte ranges an Invalidator queues per inode (no kernel needed)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyfuse3
from pyfuse3.cache import _merge_range

END = 1 << 20  # stands for "to the end of the file"
ranges = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 60)), max_size=20)


class covered:
    """The bytes a list of ranges covers, as sorted disjoint intervals (no set of bytes: the
    test's cost must not depend on the offsets)."""

    def __init__(self, rs: list[tuple[int, int | None]]) -> None:
        self.spans: list[tuple[int, int]] = []
        for s, e in sorted((s, END if e is None else e) for s, e in rs):
            if s >= e:
                continue
            if self.spans and s <= self.spans[-1][1]:
                self.spans[-1] = (self.spans[-1][0], max(self.spans[-1][1], e))
            else:
                self.spans.append((s, e))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, covered) and self.spans == other.spans

    def __ge__(self, other: covered) -> bool:
        return all(any(s <= os_ and oe <= e for s, e in self.spans) for os_, oe in other.spans)

    def __repr__(self) -> str:
        return f"covered({self.spans})"


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
    with pytest.raises(ValueError, match="offset must be between 0"):
        inv.inode(5, offset=-1)


OFF_MAX = (1 << 63) - 1


def test_ranges_past_the_largest_offset_mean_to_the_end() -> None:
    """Two ranges valid alone used to merge past 2**63-1 (OverflowError at flush)."""
    inv = pyfuse3.cache.Invalidator()
    inv.inode(5, offset=0, length=OFF_MAX)
    inv.inode(5, offset=OFF_MAX - 1, length=100)
    assert inv._inodes == {5: [(0, None)]}
    inv.inode(6, offset=OFF_MAX, length=1)
    assert inv._inodes[6] == [(OFF_MAX, None)]


@pytest.mark.parametrize(("args", "kwargs", "error", "match"), [
    ((5,), {"offset": 1 << 63}, ValueError, "offset must be between 0 and 2"),
    ((5,), {"length": 1 << 63}, ValueError, "length must be between 0 and 2"),
    ((5,), {"offset": -1}, ValueError, "offset"),
    ((1 << 64,), {}, ValueError, "inode must be between 1 and 2"),
    ((0,), {}, ValueError, "inode must be"),
    (("5",), {}, TypeError, "inode must be an int, not str"),
    ((5,), {"offset": 1.5}, TypeError, "offset must be an int, not float"),
])
def test_invalid_inode_requests_are_refused_when_queued(args: tuple[object, ...],
                                                        kwargs: dict[str, object],
                                                        error: type[Exception],
                                                        match: str) -> None:
    inv = pyfuse3.cache.Invalidator()
    with pytest.raises(error, match=match):
        inv.inode(*args, **kwargs)  # type: ignore[arg-type]
    assert inv.pending() == 0 and inv.statistics().requested == 0


class Index:
    """An integer type of another library (numpy's, say)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


def test_integers_of_other_types_are_taken_as_ints() -> None:
    """As the direct calls take them (numpy's integers among them); a bool is refused."""
    inv = pyfuse3.cache.Invalidator()
    inv.inode(Index(5), offset=Index(0), length=Index(10))  # type: ignore[arg-type]
    inv.inode(5, offset=10, length=5)
    assert inv._inodes == {5: [(0, 15)]} and type(next(iter(inv._inodes))) is int
    inv.entry(Index(1), b"x", Index(0))  # type: ignore[arg-type]
    inv.entry(1, b"x", Index(7))  # type: ignore[arg-type]
    assert inv._entries == {(1, b"x"): 7}
    with pytest.raises(TypeError, match="inode must be an int, not bool"):
        inv.inode(True)


@pytest.mark.parametrize(("args", "error"), [
    ((1 << 64, b"x"), ValueError), ((1, b""), ValueError), ((1, b"a/b"), ValueError),
    ((1, b"a\0"), ValueError), ((1, b"x" * 256), ValueError), ((1, "x"), TypeError),
    ((1, b"x", 1 << 64), ValueError),
])
def test_invalid_entry_requests_are_refused_when_queued(args: tuple[object, ...],
                                                        error: type[Exception]) -> None:
    inv = pyfuse3.cache.Invalidator()
    with pytest.raises(error):
        inv.entry(*args)  # type: ignore[arg-type]
    assert inv.pending() == 0
