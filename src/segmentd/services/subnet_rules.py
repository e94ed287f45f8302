"""Address rules for subnets, with the standard ``ipaddress`` module only.

Pure functions, no database: each follows what Neutron does and says where.
Neutron uses netaddr; the behaviour is reproduced here with ``ipaddress``.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from segmentd import errors

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Pool:
    """An inclusive address range, Neutron's ``{"start": ..., "end": ...}``."""

    start: IPAddress
    end: IPAddress

    def __str__(self) -> str:
        # netaddr's IPRange format, as in Neutron's error messages.
        return f"{self.start}-{self.end}"


def _invalid(message: str) -> errors.InvalidInput:
    return errors.InvalidInput(error_message=message)


def parse_cidr(cidr: str, ip_version: int) -> IPNetwork:
    """A well-formed CIDR of ``ip_version``, host bits cleared.

    Host bits follow Neutron: neutron_lib's ``validate_subnet`` accepts
    ``192.168.1.5/24`` ("IPv4 with non-zero masked bits is ok" in its tests)
    and ``db_base_plugin_v2._create_subnet_precommit`` then normalises it
    ("turn the CIDR into a proper subnet": ``'%s/%s' % (net.network,
    net.prefixlen)``), so ``192.168.1.5/24`` is stored as ``192.168.1.0/24``.
    A CIDR without a prefix length (``10.0.0.0``) is refused, as neutron_lib
    refuses it ("isn't a recognized IP subnet cidr").
    """
    if "/" not in cidr or "%" in cidr or cidr != cidr.strip():
        raise _invalid(f"'{cidr}' isn't a recognized IP subnet cidr")
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise _invalid(f"'{cidr}' is not a valid IP subnet") from None
    if network.version != ip_version:
        # Neutron's _validate_ip_version wording.
        raise _invalid(f"cidr '{cidr}' does not match the ip_version '{ip_version}'")
    if network.prefixlen == 0:
        # ipam_backend_mixin._validate_subnet_cidr (bug 1362651).
        raise _invalid("0 is not allowed as CIDR prefix length")
    return network


def parse_ip(value: str, ip_version: int, attribute: str) -> IPAddress:
    if value != value.strip() or "%" in value:
        raise _invalid(f"'{value}' is not a valid IP address")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise _invalid(f"'{value}' is not a valid IP address") from None
    if address.version != ip_version:
        raise _invalid(f"{attribute} '{value}' does not match the ip_version '{ip_version}'")
    return address


def _broadcast(network: IPNetwork) -> IPAddress | None:
    return network.broadcast_address if network.version == 4 else None


def check_gateway(network: IPNetwork, gateway: IPAddress) -> None:
    """The gateway lies inside the CIDR and is not its network or IPv4 broadcast address.

    Neutron's ``ipam.utils.check_gateway_invalid_in_subnet`` refuses the
    network and broadcast addresses for IPv4 only (IPv6 may use the
    subnet-router anycast address).  Neutron accepts a gateway outside the
    CIDR (since ``force_gateway_on_subnet`` went away); segmentd requires it
    inside, as issue 5 asks: an off-subnet gateway cannot be reached on the
    segment's layer 2 without extra host routes, which segmentd does not model.
    """
    if gateway not in network:
        raise _invalid(f"Gateway ip {gateway} is not inside subnet cidr {network}")
    if network.version == 4 and gateway in (network.network_address, _broadcast(network)):
        raise _invalid("Gateway is not valid on subnet")


def default_gateway(network: IPNetwork) -> IPAddress | None:
    """The first address after the network address (Neutron's ``net.first + 1``).

    Where that address is not a valid gateway (IPv4 /31 and /32, IPv6 /128)
    there is no default gateway rather than an invalid one.
    """
    candidate = network.network_address + 1
    if candidate not in network or candidate == _broadcast(network):
        return None
    return candidate


def _usable(network: IPNetwork) -> tuple[IPAddress, IPAddress]:
    """First and last addresses a pool may hold: not the network address, nor IPv4 broadcast."""
    first = network.network_address + 1
    last = network.broadcast_address - 1 if network.version == 4 else network.broadcast_address
    return first, last


def default_pools(network: IPNetwork, gateway: IPAddress | None) -> list[Pool]:
    """Neutron's ``ipam.utils.generate_pools``: the usable range minus the gateway.

    A single-address subnet (/32, /128) is its own pool; a /31 (or IPv6 /127)
    has no usable range and so no pool.
    """
    if network.num_addresses == 1:
        return [Pool(network.network_address, network.network_address)]
    first, last = _usable(network)
    if int(first) >= int(last):
        return []
    if gateway is None or not int(first) <= int(gateway) <= int(last):
        return [Pool(first, last)]
    pools = []
    if int(gateway) > int(first):
        pools.append(Pool(first, gateway - 1))
    if int(gateway) < int(last):
        pools.append(Pool(gateway + 1, last))
    return pools


def parse_pools(raw: Iterable[tuple[str, str]], ip_version: int) -> list[Pool]:
    """Neutron's ``pools_to_ip_range``: malformed or reversed ranges are invalid pools."""
    pools = []
    for start, end in raw:
        try:
            first = parse_ip(start, ip_version, "allocation_pools")
            last = parse_ip(end, ip_version, "allocation_pools")
        except errors.InvalidInput:
            raise errors.InvalidAllocationPool(pool=f"{start}-{end}") from None
        if int(first) > int(last):
            raise errors.InvalidAllocationPool(pool=f"{start}-{end}")
        pools.append(Pool(first, last))
    return pools


def check_pools(network: IPNetwork, pools: Sequence[Pool], gateway: IPAddress | None) -> None:
    """Neutron's ``validate_allocation_pools`` and ``_validate_gw_out_of_pools``.

    Pools lie within the usable range (out of bounds: 400), do not overlap
    each other (409) and do not hold the gateway (409).
    """
    first, last = _usable(network)
    for pool in pools:
        if int(pool.start) < int(first) or int(pool.end) > int(last):
            raise errors.OutOfBoundsAllocationPool(pool=str(pool), subnet_cidr=str(network))
    ordered = sorted(pools, key=lambda p: (int(p.start), int(p.end)))
    for left, right in itertools.pairwise(ordered):
        if int(right.start) <= int(left.end):
            raise errors.OverlappingAllocationPools(
                pool_1=str(left), pool_2=str(right), subnet_cidr=str(network)
            )
    if gateway is not None:
        for pool in ordered:
            if int(pool.start) <= int(gateway) <= int(pool.end):
                raise errors.GatewayConflictWithAllocationPools(
                    ip_address=str(gateway), pool=str(pool)
                )


def check_dhcp(network: IPNetwork) -> None:
    """Neutron's ``_validate_subnet`` when DHCP is (being) enabled.

    DHCP needs room for the DHCP port: IPv4 prefixes longer than /30 and IPv6
    longer than /126 are refused, as are multicast, loopback and link-local
    ranges.  With ``enable_dhcp: false`` a /31 or /32 is accepted.
    """
    if (network.version == 4 and network.prefixlen > 30) or (
        network.version == 6 and network.prefixlen > 126
    ):
        raise _invalid("Subnet has a prefix length that is incompatible with DHCP service enabled")
    for kind, flag in (
        ("Multicast", network.is_multicast),
        ("Loopback", network.is_loopback),
        ("Link-local", network.is_link_local),
    ):
        if flag:
            raise _invalid(f"{kind} IP subnet is not supported if enable_dhcp is True")


def overlaps(network: IPNetwork, others: Iterable[str]) -> bool:
    """Whether ``network`` shares an address with any of the stored CIDRs ``others``."""
    for cidr in others:
        other = ipaddress.ip_network(cidr)
        if other.version == network.version and network.overlaps(other):
            return True
    return False
