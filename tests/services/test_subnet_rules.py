"""Address rules for subnets, as pure functions: no database, no HTTP."""

from __future__ import annotations

import ipaddress

import pytest

from segmentd import errors
from segmentd.services import subnet_rules as rules


def net(cidr: str) -> rules.IPNetwork:
    return ipaddress.ip_network(cidr)


def ip(address: str) -> rules.IPAddress:
    return ipaddress.ip_address(address)


def pools(*pairs: tuple[str, str]) -> list[rules.Pool]:
    return [rules.Pool(ip(a), ip(b)) for a, b in pairs]


@pytest.mark.parametrize(
    ("cidr", "version", "expected"),
    [
        ("10.0.0.0/24", 4, "10.0.0.0/24"),
        ("10.0.0.77/24", 4, "10.0.0.0/24"),  # host bits cleared, as Neutron does
        ("192.168.1.1/32", 4, "192.168.1.1/32"),
        ("2001:db8::1/64", 6, "2001:db8::/64"),
        ("2001:0DB8:0:0::/48", 6, "2001:db8::/48"),
    ],
)
def test_parse_cidr_normalises(cidr: str, version: int, expected: str) -> None:
    assert str(rules.parse_cidr(cidr, version)) == expected


@pytest.mark.parametrize(
    ("cidr", "version", "needle"),
    [
        ("10.0.0.0", 4, "recognized"),
        ("10/8", 4, "not a valid"),
        ("10.0.0.0/33", 4, "not a valid"),
        ("300.0.0.0/8", 4, "not a valid"),
        ("banana/8", 4, "not a valid"),
        (" 10.0.0.0/8", 4, "recognized"),
        ("fe80::%eth0/64", 6, "recognized"),
        ("10.0.0.0/8", 6, "ip_version"),
        ("2001:db8::/64", 4, "ip_version"),
        ("0.0.0.0/0", 4, "0 is not allowed"),
        ("::/0", 6, "0 is not allowed"),
    ],
)
def test_parse_cidr_rejects(cidr: str, version: int, needle: str) -> None:
    with pytest.raises(errors.InvalidInput) as raised:
        rules.parse_cidr(cidr, version)
    assert needle in raised.value.msg


@pytest.mark.parametrize(
    ("cidr", "gateway"),
    [
        ("10.0.0.0/24", "10.0.0.1"),
        ("10.0.0.0/30", "10.0.0.1"),
        ("10.0.0.0/31", None),
        ("10.0.0.5/32", None),
        # IPv6: the subnet-router anycast address (ipam_backend_mixin._gateway_ip_str).
        ("2001:db8::/64", "2001:db8::"),
        ("2001:db8::/127", "2001:db8::"),
        ("2001:db8::5/128", "2001:db8::5"),
    ],
)
def test_default_gateway(cidr: str, gateway: str | None) -> None:
    found = rules.default_gateway(net(cidr))
    assert (None if found is None else str(found)) == gateway


@pytest.mark.parametrize(
    ("cidr", "gateway", "expected"),
    [
        ("10.0.0.0/24", "10.0.0.1", [("10.0.0.2", "10.0.0.254")]),
        ("10.0.0.0/24", None, [("10.0.0.1", "10.0.0.254")]),
        ("10.0.0.0/24", "10.0.0.100", [("10.0.0.1", "10.0.0.99"), ("10.0.0.101", "10.0.0.254")]),
        ("10.0.0.0/24", "10.0.0.254", [("10.0.0.1", "10.0.0.253")]),
        ("10.0.0.0/30", "10.0.0.1", [("10.0.0.2", "10.0.0.2")]),
        ("10.0.0.0/31", None, []),
        ("10.0.0.5/32", None, [("10.0.0.5", "10.0.0.5")]),
        # IPv6 has no broadcast: the last address is usable.
        ("2001:db8::/64", "2001:db8::1", [("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")]),
        ("2001:db8::/127", "2001:db8::1", []),
        ("2001:db8::/64", "2001:db8::", [("2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff")]),
        ("2001:db8::/127", "2001:db8::", [("2001:db8::1", "2001:db8::1")]),
    ],
)
def test_default_pools(cidr: str, gateway: str | None, expected: list[tuple[str, str]]) -> None:
    got = rules.default_pools(net(cidr), None if gateway is None else ip(gateway))
    assert [(str(p.start), str(p.end)) for p in got] == expected


@pytest.mark.parametrize(
    ("cidr", "gateway", "ok"),
    [
        ("10.0.0.0/24", "10.0.0.1", True),
        ("10.0.0.0/24", "10.0.0.254", True),
        ("10.0.0.0/24", "10.0.0.0", False),  # network address
        ("10.0.0.0/24", "10.0.0.255", False),  # broadcast
        ("10.0.0.0/24", "10.0.1.1", False),  # outside the CIDR
        ("2001:db8::/64", "2001:db8::", True),  # subnet-router anycast is allowed in IPv6
        ("2001:db8::/64", "2001:db8:1::1", False),
    ],
)
def test_check_gateway(cidr: str, gateway: str, ok: bool) -> None:
    if ok:
        rules.check_gateway(net(cidr), ip(gateway))
    else:
        with pytest.raises(errors.InvalidInput):
            rules.check_gateway(net(cidr), ip(gateway))


def test_parse_pools() -> None:
    assert rules.parse_pools([("10.0.0.2", "10.0.0.9")], 4) == pools(("10.0.0.2", "10.0.0.9"))
    for bad in [("10.0.0.9", "10.0.0.2"), ("10.0.0.x", "10.0.0.9"), ("2001:db8::1", "2001:db8::2")]:
        with pytest.raises(errors.InvalidAllocationPool):
            rules.parse_pools([bad], 4)


@pytest.mark.parametrize(
    ("given", "gateway", "error"),
    [
        ([("10.0.0.2", "10.0.0.9"), ("10.0.0.20", "10.0.0.254")], "10.0.0.1", None),
        ([("10.0.0.0", "10.0.0.9")], None, errors.OutOfBoundsAllocationPool),
        ([("10.0.0.2", "10.0.0.255")], None, errors.OutOfBoundsAllocationPool),
        ([("10.0.0.2", "10.0.1.5")], None, errors.OutOfBoundsAllocationPool),
        (
            [("10.0.0.2", "10.0.0.9"), ("10.0.0.9", "10.0.0.20")],
            None,
            errors.OverlappingAllocationPools,
        ),
        (
            [("10.0.0.50", "10.0.0.60"), ("10.0.0.2", "10.0.0.55")],
            None,
            errors.OverlappingAllocationPools,
        ),
        ([("10.0.0.2", "10.0.0.9")], "10.0.0.5", errors.GatewayConflictWithAllocationPools),
        ([("10.0.0.2", "10.0.0.9")], "10.0.0.9", errors.GatewayConflictWithAllocationPools),
    ],
)
def test_check_pools(
    given: list[tuple[str, str]], gateway: str | None, error: type[Exception] | None
) -> None:
    args = (net("10.0.0.0/24"), pools(*given), None if gateway is None else ip(gateway))
    if error is None:
        rules.check_pools(*args)
    else:
        with pytest.raises(error):
            rules.check_pools(*args)


def test_error_categories_are_neutrons() -> None:
    assert issubclass(errors.OutOfBoundsAllocationPool, errors.BadRequest)
    assert issubclass(errors.InvalidAllocationPool, errors.BadRequest)
    assert issubclass(errors.OverlappingAllocationPools, errors.Conflict)
    assert issubclass(errors.GatewayConflictWithAllocationPools, errors.Conflict)


@pytest.mark.parametrize(
    ("cidr", "ok"),
    [
        ("10.0.0.0/30", True),
        ("10.0.0.0/31", False),
        ("10.0.0.0/32", False),
        ("2001:db8::/126", True),
        ("2001:db8::/127", False),
        ("224.0.0.0/24", False),
        ("127.0.0.0/8", False),
        ("169.254.0.0/16", False),
        ("fe80::/64", False),
    ],
)
def test_check_dhcp(cidr: str, ok: bool) -> None:
    if ok:
        rules.check_dhcp(net(cidr))
    else:
        with pytest.raises(errors.InvalidInput):
            rules.check_dhcp(net(cidr))


def test_overlaps_same_version_only() -> None:
    stored = ["10.0.0.0/24", "2001:db8::/64"]
    assert rules.overlaps(net("10.0.0.128/25"), stored)
    assert rules.overlaps(net("10.0.0.0/16"), stored)
    assert rules.overlaps(net("2001:db8::/48"), stored)
    assert not rules.overlaps(net("10.0.1.0/24"), stored)
    assert not rules.overlaps(net("2001:db8:1::/64"), stored)
