"""Subnets: address validation, routed-network rules, ownership and listing.

Routed-network rules follow Neutron's ``ipam_backend_mixin._validate_segment``:
a subnet's segment belongs to the subnet's network; on one network either
every subnet has a segment or none does; a subnet's segment is set at most
once, from null, and only while the network has a single segment.

Every write that reads the network's other subnets first locks the network
row (``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` already serializes writers),
so two concurrent creates cannot both pass the all-or-none check or both
claim overlapping CIDRs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy import delete as sql_delete
from sqlalchemy import insert as sql_insert
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session, joinedload, selectinload

from segmentd import errors
from segmentd.authz import Permission, Principal, Scope
from segmentd.db.base import Page, utcnow
from segmentd.db.models import (
    Network,
    Segment,
    Subnet,
    SubnetAllocationPool,
    SubnetDnsNameserver,
    SubnetRoute,
    SubnetServiceType,
    SubnetTag,
)
from segmentd.services import host_mapping, quotas, standard
from segmentd.services import subnet_rules as rules
from segmentd.services.query import (
    Filter,
    ListQuery,
    QuerySpec,
    TagTable,
    list_page,
    parse_bool,
    parse_int,
    parse_uuid,
)


def _network_flag(column: Any) -> ColumnElement[bool]:
    """One boolean of the subnet's network (shared, router:external)."""
    flag: ColumnElement[bool] = (
        select(column).where(Network.id == Subnet.network_id).scalar_subquery()
    )
    return flag


LIST_SPEC = QuerySpec(
    filters={
        "id": Filter(Subnet.id, parse_uuid),
        "network_id": Filter(Subnet.network_id, parse_uuid),
        "segment_id": Filter(Subnet.segment_id, parse_uuid, Permission.GET_SUBNET_SEGMENT_ID),
        "name": Filter(Subnet.name),
        "description": Filter(Subnet.description),
        "cidr": Filter(Subnet.cidr),
        "ip_version": Filter(Subnet.ip_version, parse_int),
        "gateway_ip": Filter(Subnet.gateway_ip),
        "enable_dhcp": Filter(Subnet.enable_dhcp, parse_bool),
        "project_id": Filter(Subnet.project_id),
        "tenant_id": Filter(Subnet.project_id),
        "revision_number": Filter(Subnet.revision_number, parse_int),
        "ipv6_ra_mode": Filter(Subnet.ipv6_ra_mode),
        "ipv6_address_mode": Filter(Subnet.ipv6_address_mode),
        "router:external": Filter(_network_flag(Network.router_external), parse_bool),
    },
    sorts={
        "id": Subnet.id,
        "network_id": Subnet.network_id,
        "name": Subnet.name,
        "description": Subnet.description,
        "cidr": Subnet.cidr,
        "ip_version": Subnet.ip_version,
        "gateway_ip": func.coalesce(Subnet.gateway_ip, ""),
        "enable_dhcp": Subnet.enable_dhcp,
        "project_id": Subnet.project_id,
        "tenant_id": Subnet.project_id,
        "created_at": Subnet.created_at,
        "updated_at": Subnet.updated_at,
        "revision_number": Subnet.revision_number,
    },
    tags=TagTable(SubnetTag, SubnetTag.subnet_id, Subnet.id),
    missing=lambda m: errors.SubnetNotFound(subnet_id=m),
)

_LOAD = (
    selectinload(Subnet.allocation_pools),
    selectinload(Subnet.tags),
    selectinload(Subnet.dns_nameservers),
    selectinload(Subnet.host_routes),
    selectinload(Subnet.service_types),
    joinedload(Subnet.network, innerjoin=True).load_only(
        Network.project_id, Network.shared, Network.router_external
    ),
)


@dataclass(frozen=True, slots=True)
class SubnetSpec:
    network_id: str
    cidr: str
    ip_version: int
    name: str = ""
    description: str = ""
    # gateway_given False: the default gateway; True with None: no gateway.
    gateway_ip: str | None = None
    gateway_given: bool = False
    allocation_pools: list[tuple[str, str]] | None = None
    enable_dhcp: bool = True
    segment_id: str | None = None
    project_id: str | None = None
    tags: list[str] = field(default_factory=list)
    dns_nameservers: list[str] = field(default_factory=list)
    host_routes: list[tuple[str, str]] = field(default_factory=list)
    service_types: list[str] = field(default_factory=list)
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Neutron's ``max_dns_nameservers`` and ``max_subnet_host_routes``."""

    dns_nameservers: int = 5
    host_routes: int = 20


@dataclass(frozen=True, slots=True)
class SubnetUpdate:
    name: str | None = None
    description: str | None = None
    gateway_ip: str | None = None
    allocation_pools: list[tuple[str, str]] | None = None
    enable_dhcp: bool | None = None
    segment_id: str | None = None
    tags: list[str] | None = None
    dns_nameservers: list[str] | None = None
    host_routes: list[tuple[str, str]] | None = None
    service_types: list[str] | None = None
    fields_set: frozenset[str] = frozenset()


# Reading ----------------------------------------------------------------------------


def _scoped(scope: Scope) -> Select[Subnet]:
    """Neutron's get_subnet: admin, the subnet's project, or a shared or external network."""
    return select(Subnet).where(
        scope.where(
            Subnet.project_id,
            _network_flag(Network.shared),
            _network_flag(Network.router_external),
        )
    )


def _reload(session: Session, subnet_id: str, lock: bool = False) -> Subnet:
    stmt = select(Subnet).options(*_LOAD).where(Subnet.id == subnet_id)
    if lock:
        stmt = stmt.with_for_update(of=Subnet)
    subnet: Subnet = session.scalars(stmt.execution_options(populate_existing=True)).one()
    return subnet


reload = _reload  # the current row, for services that change it by statement (tags)


def target(subnet: Subnet) -> dict[str, object]:
    """What policy rules about a subnet may read, its network's owner included
    (Neutron's ``network:tenant_id``)."""
    network = subnet.network
    return {
        "id": subnet.id,
        "project_id": subnet.project_id,
        "tenant_id": subnet.project_id,
        "network_id": subnet.network_id,
        "segment_id": subnet.segment_id,
        "shared": network.shared,
        "router:external": network.router_external,
        "network:project_id": network.project_id,
        "network:tenant_id": network.project_id,
    }


def get(session: Session, scope: Scope, subnet_id: str, lock: bool = False) -> Subnet:
    """The subnet ``scope`` sees, or a 404.

    ``lock``: for a change.  Locks are taken in one order everywhere, the
    network row and then its children, so the subnet is found, its network
    locked, and the subnet read again under its own lock: the revision
    compared and incremented is the committed one.
    """
    stmt = _scoped(scope).options(*_LOAD).where(Subnet.id == subnet_id)
    subnet = session.scalars(stmt).first()
    if subnet is None or not scope.allows(target(subnet)):
        raise errors.SubnetNotFound(subnet_id=subnet_id)
    if lock:
        session.execute(select(Network.id).where(Network.id == subnet.network_id).with_for_update())
        subnet = _reload(session, subnet.id, lock=True)
    return subnet


def list_(session: Session, scope: Scope, query: ListQuery, *conditions: Any) -> Page:
    """A page of the subnets ``scope`` sees; ``conditions`` narrow it."""
    scoped = _scoped(scope).where(*conditions)
    return list_page(session, scope.principal, scoped, LIST_SPEC, query, Subnet.id, _LOAD)


def on_network(network_id: str) -> ColumnElement[bool]:
    """Subnets of one network."""
    return Subnet.network_id == network_id


def on_segment(segment_id: str) -> ColumnElement[bool]:
    """Subnets bound to one segment: the address ranges reachable on it."""
    return Subnet.segment_id == segment_id


def on_host(host: str) -> ColumnElement[bool]:
    """Subnets a port on ``host`` can use: those bound to segments mapped to it
    (the operator's view the incumbent lacks)."""
    return Subnet.segment_id.in_(host_mapping.reachable_segments(host))


# Writing ----------------------------------------------------------------------------


def _lock_network(session: Session, principal: Principal, network_id: str) -> Network:
    """The network, if the caller may see it, row-locked until commit
    (FOR UPDATE is a no-op on SQLite): a cross-entity rule, the parent's
    own visibility."""
    seen = Scope(principal, Permission.GET_NETWORK)
    stmt = (
        select(Network)
        .where(
            Network.id == network_id,
            seen.where(Network.project_id, Network.shared, Network.router_external),
        )
        .with_for_update()
    )
    network = session.scalars(stmt).first()
    if network is None or not seen.allows(target_of_network(network)):
        raise errors.NetworkNotFound(net_id=network_id)
    return network


def target_of_network(network: Network) -> dict[str, object]:
    return {
        "project_id": network.project_id,
        "tenant_id": network.project_id,
        "shared": network.shared,
        "router:external": network.router_external,
    }


@dataclass(frozen=True, slots=True)
class _Addressing:
    network: rules.IPNetwork
    gateway: rules.IPAddress | None
    pools: list[rules.Pool]


def _addressing(spec: SubnetSpec) -> _Addressing:
    network = rules.parse_cidr(spec.cidr, spec.ip_version)
    if spec.gateway_given:
        gateway = (
            None
            if spec.gateway_ip is None
            else rules.parse_ip(spec.gateway_ip, spec.ip_version, "gateway_ip")
        )
    else:
        gateway = rules.default_gateway(network)
    if spec.enable_dhcp:
        rules.check_dhcp(network)
    if gateway is not None:
        rules.check_gateway(network, gateway)
    if spec.allocation_pools is None:
        pools = rules.default_pools(network, gateway)
    else:
        pools = rules.parse_pools(spec.allocation_pools, spec.ip_version)
        rules.check_pools(network, pools, gateway)
    return _Addressing(network, gateway, pools)


def _check_cidr_free(session: Session, network_id: str, network: rules.IPNetwork) -> None:
    """Neutron's ``_validate_subnet_cidr``: 400 naming neither the other subnet nor its CIDR."""
    others = session.scalars(select(Subnet.cidr).where(Subnet.network_id == network_id))
    if rules.overlaps(network, others):
        raise errors.InvalidInput(
            error_message=(
                f"Requested subnet with cidr: {network} for network: {network_id} "
                "overlaps with another subnet"
            )
        )


def _check_segment(session: Session, network_id: str, segment_id: str) -> None:
    owner = session.scalar(select(Segment.network_id).where(Segment.id == segment_id))
    if owner is None:
        raise errors.SegmentNotFound(segment_id=segment_id)
    if owner != network_id:
        raise errors.NetworkIdsDontMatch(subnet_network=network_id, segment_id=segment_id)


def _check_all_or_none(session: Session, network_id: str, routed: bool) -> None:
    """Adding a subnet (with a segment iff ``routed``) keeps the network all-or-none."""
    odd_one = Subnet.segment_id.is_(None) if routed else Subnet.segment_id.is_not(None)
    clash = session.scalar(
        select(Subnet.id).where(Subnet.network_id == network_id, odd_one).limit(1)
    )
    if clash is None:
        return
    reason = (
        "the network has subnets without a segment; a subnet with a segment cannot be added"
        if routed
        else "the network has subnets associated with segments; a subnet without segment "
        "cannot be added"
    )
    raise errors.SubnetsNotAllAssociatedWithSegments(network_id=network_id, reason=reason)


def _store_pools(session: Session, subnet_id: str, pools: list[rules.Pool]) -> None:
    session.execute(
        sql_delete(SubnetAllocationPool).where(SubnetAllocationPool.subnet_id == subnet_id)
    )
    if pools:
        rows = [
            {"subnet_id": subnet_id, "first_ip": str(p.start), "last_ip": str(p.end)} for p in pools
        ]
        session.execute(sql_insert(SubnetAllocationPool), rows)


def _store_details(
    session: Session,
    subnet_id: str,
    dns: list[str] | None,
    routes: list[tuple[str, str]] | None,
    service_types: list[str] | None,
) -> None:
    """Replace the lists given (None: leave that one as it is)."""
    if dns is not None:
        rows = [{"address": a, "position": i} for i, a in enumerate(dns)]
        standard.replace_rows(session, SubnetDnsNameserver, "subnet_id", subnet_id, rows)
    if routes is not None:
        rows = [{"destination": d, "nexthop": n} for d, n in routes]
        standard.replace_rows(session, SubnetRoute, "subnet_id", subnet_id, rows)
    if service_types is not None:
        rows = [{"service_type": t} for t in service_types]
        standard.replace_rows(session, SubnetServiceType, "subnet_id", subnet_id, rows)


def _check_details(
    ip_version: int,
    limits: Limits,
    subnet_id: str,
    dns: list[str] | None,
    routes: list[tuple[str, str]] | None,
    service_types: list[str] | None,
) -> None:
    if dns is not None:
        rules.check_dns_nameservers(dns, ip_version, limits.dns_nameservers, subnet_id)
    if routes is not None:
        rules.check_host_routes(routes, ip_version, limits.host_routes, subnet_id)
    if service_types is not None:
        rules.check_service_types(service_types)


def _create_target(
    principal: Principal, spec: SubnetSpec, network_project: str
) -> dict[str, object]:
    project = spec.project_id or principal.project_id
    return {
        "project_id": project,
        "tenant_id": project,
        "network_id": spec.network_id,
        "segment_id": spec.segment_id,
        "network:project_id": network_project,
        "network:tenant_id": network_project,
    }


def create(
    session: Session,
    scope: Scope,
    spec: SubnetSpec,
    quota: Mapping[str, int],
    limits: Limits = Limits(),
) -> Subnet:
    """Neutron's create_subnet rule reads the network's owner: a project adds
    subnets only to its own networks, shared or not (admins to any)."""
    principal = scope.principal
    if not (spec.project_id or principal.project_id):  # system or domain scope: name the owner
        raise errors.ProjectRequired()
    # Decided first as if the network were the caller's own, so a caller who
    # may not create such a subnet at all gets 403, never whether a network
    # exists; then on the network found.

    def check(network_project: str) -> None:
        resource = _create_target(principal, spec, network_project)
        scope.require(resource)
        if spec.segment_id is not None:
            scope.require_attribute("segment_id", resource)

    check(principal.project_id)
    network = _lock_network(session, principal, spec.network_id)
    check(network.project_id)
    quotas.check(session, quota, spec.project_id or principal.project_id, {"subnet": 1})
    addressing = _addressing(spec)
    _check_details(
        spec.ip_version,
        limits,
        "new subnet",
        spec.dns_nameservers,
        spec.host_routes,
        spec.service_types,
    )
    rules.check_ipv6_modes(
        addressing.network, spec.ipv6_ra_mode, spec.ipv6_address_mode, spec.enable_dhcp
    )
    _check_cidr_free(session, network.id, addressing.network)
    if spec.segment_id is not None:
        _check_segment(session, network.id, spec.segment_id)
    _check_all_or_none(session, network.id, routed=spec.segment_id is not None)
    subnet = Subnet(
        # Neutron 29 answers a new subnet with revision 0 (a new network with
        # 1: its segment's creation bumped it).
        revision_number=0,
        network_id=network.id,
        segment_id=spec.segment_id,
        project_id=spec.project_id or principal.project_id,
        name=spec.name,
        description=spec.description,
        cidr=str(addressing.network),
        ip_version=spec.ip_version,
        gateway_ip=None if addressing.gateway is None else str(addressing.gateway),
        enable_dhcp=spec.enable_dhcp,
        ipv6_ra_mode=spec.ipv6_ra_mode,
        ipv6_address_mode=spec.ipv6_address_mode,
    )
    session.add(subnet)
    session.flush()
    _store_pools(session, subnet.id, addressing.pools)
    _bump_network(session, network.id)
    _store_details(session, subnet.id, spec.dns_nameservers, spec.host_routes, spec.service_types)
    standard.set_tags(session, SubnetTag, "subnet_id", subnet.id, spec.tags)
    session.flush()
    return _reload(session, subnet.id)


def _change_segment(session: Session, subnet: Subnet, segment_id: str | None) -> None:
    """Set once, from null, on the network's only subnet, when it has one segment."""
    if segment_id == subnet.segment_id:
        return
    if subnet.segment_id is not None:
        raise errors.SubnetSegmentAssociationChangeNotAllowed()
    assert segment_id is not None  # noqa: S101 - from null to null returned above
    others = session.scalar(
        select(Subnet.id)
        .where(Subnet.network_id == subnet.network_id, Subnet.id != subnet.id)
        .limit(1)
    )
    if others is not None:
        raise errors.SubnetsNotAllAssociatedWithSegments(
            network_id=subnet.network_id,
            reason="a segment can be set on an existing subnet only when it is the network's only subnet",
        )
    segment_count = session.scalar(
        select(func.count()).select_from(Segment).where(Segment.network_id == subnet.network_id)
    )
    if (segment_count or 0) > 1:
        raise errors.NoUpdateSubnetWhenMultipleSegmentsOnNetwork(network_id=subnet.network_id)
    _check_segment(session, subnet.network_id, segment_id)
    subnet.segment_id = segment_id


def update(
    session: Session,
    scope: Scope,
    subnet: Subnet,
    changes: SubnetUpdate,
    if_revision: int | None,
    limits: Limits = Limits(),
) -> Subnet:
    """Apply ``changes`` to ``subnet``, as loaded (locked) by ``get``."""
    given = changes.fields_set
    if "segment_id" in given:
        scope.require_attribute("segment_id", target(subnet))
    standard.check_revision(subnet, if_revision)
    network = ipaddress.ip_network(subnet.cidr)
    gateway = (
        rules.parse_ip(subnet.gateway_ip, subnet.ip_version, "gateway_ip")
        if subnet.gateway_ip
        else None
    )
    if "gateway_ip" in given:
        gateway = (
            None
            if changes.gateway_ip is None
            else rules.parse_ip(changes.gateway_ip, subnet.ip_version, "gateway_ip")
        )
        if gateway is not None:
            rules.check_gateway(network, gateway)
    _check_details(
        subnet.ip_version,
        limits,
        subnet.id,
        changes.dns_nameservers,
        changes.host_routes,
        changes.service_types,
    )
    if changes.enable_dhcp is False and (subnet.ipv6_ra_mode or subnet.ipv6_address_mode):
        # Neutron's _validate_ipv6_update_dhcp.
        raise rules.invalid("Cannot disable enable_dhcp with ipv6 attributes set")
    if changes.enable_dhcp and not subnet.enable_dhcp:
        # As Neutron: checked only when DHCP is being turned on.
        rules.check_dhcp(network)
    new_pools = None
    if changes.allocation_pools is not None:
        new_pools = rules.parse_pools(changes.allocation_pools, subnet.ip_version)
        rules.check_pools(network, new_pools, gateway)
    elif "gateway_ip" in given:
        # A new gateway must stay out of the existing pools (Neutron's update_subnet).
        current = [
            rules.Pool(ipaddress.ip_address(p.first_ip), ipaddress.ip_address(p.last_ip))
            for p in subnet.allocation_pools
        ]
        rules.check_pools(network, current, gateway)
    if "segment_id" in given:
        _change_segment(session, subnet, changes.segment_id)
    if changes.name is not None:
        subnet.name = changes.name
    if changes.description is not None:
        subnet.description = changes.description
    if changes.enable_dhcp is not None:
        subnet.enable_dhcp = changes.enable_dhcp
    if "gateway_ip" in given:
        subnet.gateway_ip = None if gateway is None else str(gateway)
    if new_pools is not None:
        _store_pools(session, subnet.id, new_pools)
    if changes.tags is not None:
        standard.set_tags(session, SubnetTag, "subnet_id", subnet.id, changes.tags)
    _store_details(
        session, subnet.id, changes.dns_nameservers, changes.host_routes, changes.service_types
    )
    standard.bump(subnet)
    session.flush()
    return _reload(session, subnet.id)


def delete(session: Session, subnet: Subnet, if_revision: int | None) -> None:
    """Delete ``subnet``, as loaded (locked) by ``get``."""
    standard.check_revision(subnet, if_revision)
    # Pools and tags go with it through ON DELETE CASCADE.
    session.execute(sql_delete(Subnet).where(Subnet.id == subnet.id))
    _bump_network(session, subnet.network_id)


def _bump_network(session: Session, network_id: str) -> None:
    """A subnet added or removed changes its network's ``subnets``: Neutron's
    revision plugin bumps the network's revision (its row is locked already)."""
    session.execute(
        sql_update(Network)
        .where(Network.id == network_id)
        .values(revision_number=Network.revision_number + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
