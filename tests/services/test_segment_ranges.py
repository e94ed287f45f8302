"""Interval arithmetic behind project allocation pools."""

from __future__ import annotations

import pytest

from segmentd import errors
from segmentd.config import IdRange
from segmentd.services.segment_ranges import check_explicit_id, default_range_id, subtract


@pytest.mark.parametrize(
    ("holes", "expected"),
    [
        ([], [(1, 100)]),
        ([(10, 20)], [(1, 9), (21, 100)]),
        ([(1, 100)], []),
        ([(0, 5), (95, 200)], [(6, 94)]),
        ([(10, 20), (15, 30), (50, 50)], [(1, 9), (31, 49), (51, 100)]),
        ([(200, 300)], [(1, 100)]),
    ],
)
def test_subtract(holes: list[tuple[int, int]], expected: list[tuple[int, int]]) -> None:
    assert subtract(1, 100, holes) == expected


def test_subtract_is_cheap_on_24_bit_ranges() -> None:
    assert subtract(1, 2**24 - 1, [(5, 5)]) == [(1, 4), (6, 2**24 - 1)]


class CountedId(int):
    """An ID that counts every comparison it takes part in (either side)."""

    comparisons = 0

    @staticmethod
    def _count(result: bool) -> bool:
        CountedId.comparisons += 1
        return result

    def __lt__(self, other: int) -> bool:
        return self._count(int(self) < other)

    def __gt__(self, other: int) -> bool:
        return self._count(int(self) > other)

    def __le__(self, other: int) -> bool:
        return self._count(int(self) <= other)

    def __ge__(self, other: int) -> bool:
        return self._count(int(self) >= other)

    def __eq__(self, other: object) -> bool:
        return self._count(int(self) == other)

    __hash__ = int.__hash__


def test_subtract_work_is_linear_in_the_holes() -> None:
    # Every other ID used, as a range listing passes them (sorted): the
    # quadratic version compared each hole with every run found so far
    # (millions of comparisons here; listing 4,100 such IDs took 1.3 s).
    used = 2000
    holes = [(CountedId(2 * i), CountedId(2 * i)) for i in range(1, used + 1)]
    CountedId.comparisons = 0
    runs = subtract(1, 2 * used + 1, holes)
    assert runs == [(2 * i + 1, 2 * i + 1) for i in range(used + 1)]
    assert CountedId.comparisons <= 10 * used


def test_subtract_stops_at_the_limit() -> None:
    holes = [(i, i) for i in range(2, 100, 2)]
    assert subtract(1, 99, holes, limit=3) == [(1, 1), (3, 3), (5, 5)]
    assert subtract(1, 99, holes, limit=100) == subtract(1, 99, holes)
    assert subtract(1, 10, [], limit=1) == [(1, 10)]
    assert subtract(1, 10, [(1, 10)], limit=1) == []


def test_explicit_id_must_be_in_a_pool_of_the_same_physnet() -> None:
    pools = [IdRange("vlan", "physnet1", 10, 20)]
    check_explicit_id(pools, "physnet1", 15)
    for physnet, seg_id in (("physnet1", 21), ("physnet2", 15)):
        with pytest.raises(errors.InvalidInput):
            check_explicit_id(pools, physnet, seg_id)


def test_default_range_ids_are_stable() -> None:
    r = IdRange("vlan", "physnet1", 1, 2)
    assert default_range_id(r) == default_range_id(IdRange("vlan", "physnet1", 1, 2))
    assert default_range_id(r) != default_range_id(IdRange("vlan", "physnet1", 1, 3))
