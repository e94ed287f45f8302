"""Networks: the container of segments, with Neutron's provider attributes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Select, exists, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from segmentd import errors
from segmentd.authz import Permission, Scope
from segmentd.db.base import Page
from segmentd.db.models import Network, NetworkTag, Segment, Subnet
from segmentd.services import host_events, quotas, standard
from segmentd.services import segments as segment_service
from segmentd.services.allocation import SegmentSpec, TypeDriver
from segmentd.services.query import (
    CustomFilter,
    Filter,
    ListQuery,
    QuerySpec,
    TagTable,
    list_page,
    parse_bool,
    parse_int,
    parse_str,
    parse_uuid,
)
from segmentd.services.segments import MtuPolicy


def _segment_filter(column: object) -> CustomFilter:
    def build(values: list[object]) -> ColumnElement[bool]:
        return exists(
            select(1).where(Segment.network_id == Network.id, column.in_(values))  # type: ignore[attr-defined]
        )

    parse = parse_int if column is Segment.segmentation_id else parse_str
    name = f"get_network:provider:{column.key}"  # type: ignore[attr-defined]
    return CustomFilter(build, parse, Permission(name))


PROVIDER_FILTERS = {
    "provider:network_type": _segment_filter(Segment.network_type),
    "provider:physical_network": _segment_filter(Segment.physical_network),
    "provider:segmentation_id": _segment_filter(Segment.segmentation_id),
}


LIST_SPEC = QuerySpec(
    filters={
        "id": Filter(Network.id, parse_uuid),
        "name": Filter(Network.name),
        "description": Filter(Network.description),
        "project_id": Filter(Network.project_id),
        "tenant_id": Filter(Network.project_id),
        "shared": Filter(Network.shared, parse_bool),
        "admin_state_up": Filter(Network.admin_state_up, parse_bool),
        "status": Filter(Network.status),
        "mtu": Filter(Network.mtu, parse_int),
        "revision_number": Filter(Network.revision_number, parse_int),
        "router:external": Filter(Network.router_external, parse_bool),
        **PROVIDER_FILTERS,
    },
    sorts={
        "id": Network.id,
        "name": Network.name,
        "description": Network.description,
        "project_id": Network.project_id,
        "tenant_id": Network.project_id,
        "shared": Network.shared,
        "admin_state_up": Network.admin_state_up,
        "status": Network.status,
        "mtu": Network.mtu,
        "created_at": Network.created_at,
        "updated_at": Network.updated_at,
        "revision_number": Network.revision_number,
        "router:external": Network.router_external,
    },
    tags=TagTable(NetworkTag, NetworkTag.network_id, Network.id),
    missing=lambda m: errors.NetworkNotFound(net_id=m),
)

_LOAD = (
    selectinload(Network.segments),
    selectinload(Network.tags),
    selectinload(Network.subnets).load_only(Subnet.id, Subnet.segment_id),
)


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    name: str = ""
    description: str = ""
    admin_state_up: bool = True
    shared: bool = False
    router_external: bool = False
    project_id: str | None = None
    mtu: int | None = None
    tags: list[str] = field(default_factory=list)
    # None: the configured tenant type.  One entry: provider:* attributes.
    segments: list[SegmentSpec] | None = None
    # Wire names of the attributes the caller set to a non-default value;
    # each one with a ``create_network:<name>`` rule is checked (Neutron).
    attributes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class NetworkUpdate:
    name: str | None = None
    description: str | None = None
    admin_state_up: bool | None = None
    shared: bool | None = None
    mtu: int | None = None
    tags: list[str] | None = None
    router_external: bool | None = None
    # provider:* as given (None: absent); only a VLAN ID can change (ML2).
    network_type: str | None = None
    physical_network: str | None = None
    segmentation_id: int | None = None


def reach(network: Network) -> host_events.Reach:
    """Its segments, as the segment-host mapping sees them (loaded with it)."""
    return host_events.Reach(
        segments=tuple((s.id, s.physical_network, s.network_type) for s in network.segments)
    )


def target(network: Network) -> dict[str, object]:
    """What policy rules about an existing network may refer to."""
    return {
        "id": network.id,
        "project_id": network.project_id,
        "tenant_id": network.project_id,
        "shared": network.shared,
        "router:external": network.router_external,
    }


def _check_create_policy(scope: Scope, spec: NetworkSpec) -> None:
    project = spec.project_id or scope.principal.project_id
    if not project:  # a system- or domain-scoped caller must name the owner
        raise errors.ProjectRequired()
    resource = {
        "project_id": project,
        "tenant_id": project,
        "shared": spec.shared,
        "router:external": spec.router_external,
    }
    scope.require(resource)
    attributes = set(spec.attributes)
    if spec.shared:
        attributes.add("shared")
    if spec.segments is not None and not attributes & {"segments", "provider:network_type"}:
        attributes.add("segments")  # fail safe for callers that do not name them
    for name in sorted(attributes):
        scope.require_attribute(name, resource)


def create(
    session: Session,
    scope: Scope,
    spec: NetworkSpec,
    drivers: dict[str, TypeDriver],
    tenant_types: list[str],
    retries: int,
    quota: Mapping[str, int],
    mtus: MtuPolicy = MtuPolicy(),  # noqa: B008 - frozen
) -> Network:
    _check_create_policy(scope, spec)
    principal = scope.principal
    project = spec.project_id or principal.project_id
    adding = {"network": 1, "segment": len(spec.segments or [None])}
    quotas.check(session, quota, project, adding)
    network = Network(
        project_id=spec.project_id or principal.project_id,
        name=spec.name,
        description=spec.description,
        admin_state_up=spec.admin_state_up,
        shared=spec.shared,
        router_external=spec.router_external,
        tags=standard.new_tags(NetworkTag, spec.tags),
    )
    if spec.segments is not None:  # types known up front: the MTU goes in with the INSERT
        network.mtu = mtus.check(spec.mtu, segment_service.mtu_segments(spec.segments))
    session.add(network)
    session.flush()
    if spec.segments is None:
        created = [_tenant_segment(session, network, drivers, tenant_types, retries)]
        network.mtu = mtus.check(spec.mtu, segment_service.mtu_segments(created))
        session.flush()
    else:
        limited = not principal.is_admin
        created = [
            segment_service.add_to_network(
                session, network, s, drivers, retries, limited_to_pools=limited, index=i
            )
            for i, s in enumerate(spec.segments)
        ]
    # A new network's collections are known: fill them rather than read them back.
    set_committed_value(network, "segments", created)
    set_committed_value(network, "subnets", [])
    return network


def _tenant_segment(
    session: Session,
    network: Network,
    drivers: dict[str, TypeDriver],
    tenant_types: list[str],
    retries: int,
) -> Segment:
    """Neutron's behaviour: try each tenant network type in order."""
    failure: errors.SegmentdError = errors.NoNetworkAvailable(network_type="tenant")
    for network_type in tenant_types:
        try:
            return segment_service.add_to_network(
                session, network, SegmentSpec(network_type), drivers, retries, index=0
            )
        except errors.NoNetworkAvailable as exc:
            failure = exc
    raise failure


def _reload(session: Session, network_id: str) -> Network:
    stmt = select(Network).options(*_LOAD).where(Network.id == network_id)
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


reload = _reload  # the current row, for services that change it by statement (tags)


def _scoped(scope: Scope) -> Select[Network]:
    return select(Network).where(
        scope.where(Network.project_id, Network.shared, Network.router_external)
    )


def get(session: Session, scope: Scope, network_id: str, lock: bool = False) -> Network:
    """The network ``scope`` sees, or a 404.

    ``lock``: for a change, the row locked until the transaction ends, so
    concurrent writers serialise and each compares and increments the
    committed revision (FOR UPDATE; SQLite's writers are serial anyway).
    """
    stmt = _scoped(scope).options(*_LOAD).where(Network.id == network_id)
    if lock:
        stmt = stmt.with_for_update(of=Network)
    network = session.scalars(stmt).first()
    if network is None or not scope.allows(target(network)):
        raise errors.NetworkNotFound(net_id=network_id)
    return network


def list_(session: Session, scope: Scope, query: ListQuery) -> Page:
    # A caller who may read only shared networks still lists those:
    # the scope decides, in SQL.
    return list_page(session, scope.principal, _scoped(scope), LIST_SPEC, query, Network.id, _LOAD)


def update(
    session: Session,
    scope: Scope,
    network: Network,
    changes: NetworkUpdate,
    if_revision: int | None,
    mtus: MtuPolicy = MtuPolicy(),  # noqa: B008 - frozen
    drivers: dict[str, TypeDriver] | None = None,
) -> Network:
    """Apply ``changes`` to ``network``, as loaded (locked) by ``get``; the
    pipeline has required ``scope``'s permission on it, this requires the
    attribute rules (``update_network:shared``)."""
    if changes.shared is not None and changes.shared != network.shared:
        scope.require_attribute("shared", target(network))
    external = changes.router_external
    if external is not None and external != network.router_external:
        scope.require_attribute("router:external", target(network))
    standard.check_revision(network, if_revision)
    _update_provider(session, scope, network, changes, drivers or {})
    if changes.mtu is not None:
        mtus.check(changes.mtu, segment_service.mtu_segments(network.segments))
    if external is not None:
        network.router_external = external
    for attr in ("name", "description", "admin_state_up", "shared", "mtu"):
        value = getattr(changes, attr)
        if value is not None:
            setattr(network, attr, value)
    if changes.tags is not None:
        standard.set_tags(session, NetworkTag, "network_id", network.id, changes.tags)
    standard.bump(network)
    session.flush()
    return _reload(session, network.id)


def _update_provider(
    session: Session,
    scope: Scope,
    network: Network,
    changes: NetworkUpdate,
    drivers: dict[str, TypeDriver],
) -> None:
    """neutron/plugins/ml2/plugin.py ``_update_provider_network_attributes``:
    provider:network_type and provider:physical_network may only be repeated;
    provider:segmentation_id changes on a single-segment VLAN network."""
    given = {
        "provider:network_type": changes.network_type,
        "provider:physical_network": changes.physical_network,
        "provider:segmentation_id": changes.segmentation_id,
    }
    for name, value in given.items():
        if value is not None:  # asked whatever the value: an equal one would reveal it
            scope.require_attribute(name, target(network))
    segments = network.segments
    current = segments[0] if len(segments) == 1 else None
    same_type = changes.network_type is None or (
        current is not None and changes.network_type == current.network_type
    )
    same_physnet = changes.physical_network is None or (
        current is not None and changes.physical_network == current.physical_network
    )
    if not (same_type and same_physnet):
        raise errors.InvalidInput(
            error_message="Plugin does not support updating the following provider "
            "network attributes: provider:network_type, provider:physical_network"
        )
    if changes.segmentation_id is None:
        return
    if current is None:
        raise errors.InvalidInput(
            error_message="Provider network attributes can be updated only in provider "
            "networks with a single segment."
        )
    segment_service.change_vlan_id(session, current, changes.segmentation_id, drivers)


def delete(session: Session, network: Network, if_revision: int | None) -> None:
    """Delete ``network``, as loaded (locked) by ``get``."""
    standard.check_revision(network, if_revision)
    # ``network`` was loaded locked: the network row before its children.
    # Subnets first: their segment foreign key is ON DELETE RESTRICT.  Then
    # segments, tags (and subnet pools and tags) go through ON DELETE CASCADE.
    session.execute(sql_delete(Subnet).where(Subnet.network_id == network.id))
    session.execute(sql_delete(Network).where(Network.id == network.id))
