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
