"""Per-type rules of the type drivers, without HTTP or a database."""

from __future__ import annotations

import pytest

from segmentd import errors
from segmentd.config import Settings
from segmentd.services.allocation import SegmentSpec, build_drivers

DRIVERS = build_drivers(
    Settings(network_vlan_ranges="physnet1:10:20,physnet2", flat_networks="physnet2")
)


@pytest.mark.parametrize(
    "spec",
    [
        SegmentSpec("flat", "physnet2"),
        SegmentSpec("vlan", "physnet1", 4094),
        SegmentSpec("vlan", "physnet2"),
        SegmentSpec("vlan"),
        SegmentSpec("vxlan", None, 16777215),
        SegmentSpec("geneve"),
        SegmentSpec("gre", None, 4294967295),
        SegmentSpec("local"),
    ],
)
def test_valid(spec: SegmentSpec) -> None:
    DRIVERS[spec.network_type].validate(spec)


@pytest.mark.parametrize(
    "spec",
    [
        SegmentSpec("flat", "physnet1"),  # not in flat_networks
        SegmentSpec("flat"),
        SegmentSpec("flat", "physnet2", 3),
        SegmentSpec("vlan", "physnet3", 5),
        SegmentSpec("vlan", "physnet1", 4095),
        SegmentSpec("vlan", None, 5),
        SegmentSpec("vxlan", "physnet1"),
        SegmentSpec("vxlan", None, 2**24),
        SegmentSpec("gre", None, 2**32),
        SegmentSpec("local", "physnet1"),
        SegmentSpec("local", None, 1),
    ],
)
def test_invalid(spec: SegmentSpec) -> None:
    with pytest.raises(errors.InvalidInput):
        DRIVERS[spec.network_type].validate(spec)


def test_allocation_needs() -> None:
    vlan = DRIVERS["vlan"]
    assert vlan.needs_allocation(SegmentSpec("vlan", "physnet1"))
    assert not vlan.needs_allocation(SegmentSpec("vlan", "physnet1", 12))
    assert DRIVERS["gre"].needs_allocation(SegmentSpec("gre"))
    assert not DRIVERS["local"].needs_allocation(SegmentSpec("local"))
    assert not DRIVERS["flat"].needs_allocation(SegmentSpec("flat", "physnet2"))
