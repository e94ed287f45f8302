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


def invalid(message: str) -> errors.InvalidInput:
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
        raise invalid(f"'{cidr}' isn't a recognized IP subnet cidr")
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise invalid(f"'{cidr}' is not a valid IP subnet") from None
    if network.version != ip_version:
        # Neutron's _validate_ip_version wording.
        raise invalid(f"cidr '{cidr}' does not match the ip_version '{ip_version}'")
    if network.prefixlen == 0:
        # ipam_backend_mixin._validate_subnet_cidr (bug 1362651).
        raise invalid("0 is not allowed as CIDR prefix length")
    return network


def parse_ip(value: str, ip_version: int, attribute: str) -> IPAddress:
    if value != value.strip() or "%" in value:
        raise invalid(f"'{value}' is not a valid IP address")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise invalid(f"'{value}' is not a valid IP address") from None
    if address.version != ip_version:
        raise invalid(f"{attribute} '{value}' does not match the ip_version '{ip_version}'")
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
        raise invalid(f"Gateway ip {gateway} is not inside subnet cidr {network}")
    if network.version == 4 and gateway in (network.network_address, _broadcast(network)):
        raise invalid("Gateway is not valid on subnet")


def default_gateway(network: IPNetwork) -> IPAddress | None:
    """Neutron's ``ipam_backend_mixin._gateway_ip_str``: the first address
    after the network address for IPv4, the network address itself (the
    subnet-router anycast address) for IPv6.

    Where the IPv4 candidate is not a valid gateway (/31 and /32) there is no
    default gateway rather than an invalid one.
    """
    if network.version == 6:
        return network.network_address
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

    A single-address subnet (/32, /128) is its own pool; an IPv4 /31 has no
    usable range and so no pool; an IPv6 /127 has one address after the
    gateway.
    """
    if network.num_addresses == 1:
        return [Pool(network.network_address, network.network_address)]
    first, last = _usable(network)
    if int(first) > int(last):
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
        raise invalid("Subnet has a prefix length that is incompatible with DHCP service enabled")
    for kind, flag in (
        ("Multicast", network.is_multicast),
        ("Loopback", network.is_loopback),
        ("Link-local", network.is_link_local),
    ):
        if flag:
            raise invalid(f"{kind} IP subnet is not supported if enable_dhcp is True")


def overlaps(network: IPNetwork, others: Iterable[str]) -> bool:
    """Whether ``network`` shares an address with any of the stored CIDRs ``others``."""
    for cidr in others:
        other = ipaddress.ip_network(cidr)
        if other.version == network.version and network.overlaps(other):
            return True
    return False


# DNS servers, host routes, service types, IPv6 modes ---------------------------------
# neutron/db/db_base_plugin_v2.py ``_validate_subnet``, ``_validate_host_route``
# and ``_validate_ipv6_attributes``; neutron_lib/api/validators ``validate_nameservers``,
# ``validate_hostroutes``, ``validate_route_cidr``, ``validate_subnet_service_types``.

IPV6_AUTO_ADDRESS = ("slaac", "dhcpv6-stateless")
SERVICE_TYPE_PREFIXES = ("network:", "neutron:", "compute:")


def check_dns_nameservers(
    servers: Sequence[str], ip_version: int, maximum: int, subnet_id: str
) -> None:
    """Addresses and duplicates first (the API validator), then the count and
    the IP version (the plugin), as Neutron orders them."""
    seen: set[str] = set()
    for server in servers:
        try:
            if server != server.strip() or "%" in server:
                raise ValueError(server)
            ipaddress.ip_address(server)
        except ValueError:
            raise invalid(
                f"'{server}' is not a valid nameserver. '{server}' is not a valid IP address"
            ) from None
        if server in seen:
            raise invalid(f"Duplicate nameserver '{server}'")
        seen.add(server)
    if len(servers) > maximum:
        raise errors.DNSNameServersExhausted(subnet_id=subnet_id, quota=maximum)
    for server in servers:
        if ipaddress.ip_address(server).version != ip_version:
            raise invalid(f"dns_nameserver '{server}' does not match the ip_version '{ip_version}'")


def _route_cidr(destination: str) -> IPNetwork:
    try:
        network = ipaddress.ip_network(destination, strict=True)
    except ValueError:
        raise invalid(f"'{destination}' is not a valid CIDR") from None
    if "/" not in destination or destination != destination.strip():
        raise invalid(f"'{destination}' is not a valid CIDR")
    if network.is_loopback:
        raise invalid(f"'{destination}' is not a routable CIDR")
    return network


def check_host_routes(
    routes: Sequence[tuple[str, str]], ip_version: int, maximum: int, subnet_id: str
) -> None:
    """Shape and duplicates first (the API validator), then the count and
    each route's IP version (the plugin), as Neutron orders them."""
    seen: set[tuple[str, str]] = set()
    for destination, nexthop in routes:
        _route_cidr(destination)
        if nexthop != nexthop.strip() or "%" in nexthop:
            raise invalid(f"'{nexthop}' is not a valid IP address")
        try:
            ipaddress.ip_address(nexthop)
        except ValueError:
            raise invalid(f"'{nexthop}' is not a valid IP address") from None
        if (destination, nexthop) in seen:
            route = {"destination": destination, "nexthop": nexthop}
            raise invalid(f"Duplicate hostroute '{route}'")
        seen.add((destination, nexthop))
    if len(routes) > maximum:
        raise errors.HostRoutesExhausted(subnet_id=subnet_id, quota=maximum)
    for destination, nexthop in routes:
        if ipaddress.ip_address(nexthop).version != ip_version:
            raise invalid(f"nexthop '{nexthop}' does not match the ip_version '{ip_version}'")
        if ipaddress.ip_network(destination).version != ip_version:
            raise invalid(
                f"destination '{destination}' does not match the ip_version '{ip_version}'"
            )


def check_service_types(service_types: Sequence[str]) -> None:
    """Each names a device owner prefix (``network:``, ``neutron:``, ``compute:``).

    Neutron adds ``"compute:"`` to its prefix list character by character
    (``list += str``), so it also accepts any string starting with one of
    ``c o m p u t e :``; segmentd checks the prefixes as meant.
    """
    for service_type in service_types:
        if not service_type.startswith(SERVICE_TYPE_PREFIXES):
            raise errors.InvalidSubnetServiceType(service_type=service_type)
    if len(set(service_types)) != len(service_types):
        raise invalid("Duplicate service type")


def check_ipv6_modes(
    network: IPNetwork, ra_mode: str | None, address_mode: str | None, enable_dhcp: bool
) -> None:
    """Neutron's valid combinations, at create (the modes cannot be updated)."""
    if network.version == 4:
        if ra_mode is not None:
            raise invalid("ipv6_ra_mode is not valid when ip_version is 4")
        if address_mode is not None:
            raise invalid("ipv6_address_mode is not valid when ip_version is 4")
        return
    if (ra_mode is not None or address_mode is not None) and not enable_dhcp:
        raise invalid(
            "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False"
        )
    if ra_mode is not None and address_mode is not None and ra_mode != address_mode:
        raise invalid(
            f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to "
            f"'{address_mode}' is not valid. If both attributes are set, they must be "
            "the same value"
        )
    automatic = address_mode in IPV6_AUTO_ADDRESS or (
        address_mode is None and ra_mode in IPV6_AUTO_ADDRESS
    )
    if automatic and network.prefixlen != 64:
        raise invalid(
            f"Invalid CIDR {network} for IPv6 address mode. OpenStack uses the EUI-64 "
            "address format, which requires the prefix to be /64"
        )
