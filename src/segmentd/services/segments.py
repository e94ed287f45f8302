"""Segments: create with per-type rules and ID allocation, read, rename, delete."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from sqlalchemy import Row, String, any_, bindparam, func, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, with_expression
from sqlalchemy.orm.attributes import set_committed_value

from segmentd import errors
from segmentd.authz import Permission, Principal, Scope
from segmentd.config import IdRange
from segmentd.db import dialect
from segmentd.db.base import Page
from segmentd.db.models import Network, Segment, SegmentTag, Subnet
from segmentd.db.snapshot import PreparedRead, Snapshot
from segmentd.services import host_events, quotas, segment_ranges, standard
from segmentd.services.allocation import SegmentSpec, TypeDriver, claim
from segmentd.services.query import (
    Filter,
    ListQuery,
    QuerySpec,
    TagTable,
    list_page,
    parse_int,
    parse_uuid,
)

LIST_SPEC = QuerySpec(
    filters={
        "id": Filter(Segment.id, parse_uuid),
        "network_id": Filter(Segment.network_id, parse_uuid),
        "name": Filter(Segment.name),
        "description": Filter(Segment.description),
        "network_type": Filter(Segment.network_type),
        "physical_network": Filter(Segment.physical_network),
        "segmentation_id": Filter(Segment.segmentation_id, parse_int),
        "revision_number": Filter(Segment.revision_number, parse_int),
    },
    sorts={
        "id": Segment.id,
        "network_id": Segment.network_id,
        "name": func.coalesce(Segment.name, ""),
        "description": Segment.description,
        "network_type": Segment.network_type,
        "physical_network": func.coalesce(Segment.physical_network, ""),
        "segmentation_id": func.coalesce(Segment.segmentation_id, 0),
        "created_at": Segment.created_at,
        "updated_at": Segment.updated_at,
        "revision_number": Segment.revision_number,
    },
    tags=TagTable(SegmentTag, SegmentTag.segment_id, Segment.id),
    missing=lambda m: errors.SegmentNotFound(segment_id=m),
)

# Encapsulation overhead per tunnel type, on top of the outer IPv4 header:
# neutron/plugins/common/constants.py (VXLAN_ENCAP_OVERHEAD 30,
# GRE_ENCAP_OVERHEAD 22, IP_HEADER_LENGTH[4] 20) and ml2's geneve
# ``max_header_size`` (30, neutron/conf/plugins/ml2/drivers/driver_type.py).
TUNNEL_OVERHEAD = {"vxlan": 30, "geneve": 30, "gre": 22}
IPV4_HEADER = 20


@dataclass(frozen=True)
class MtuPolicy:
    """ML2's MTU computation (neutron/plugins/ml2/plugin.py ``_get_network_mtu``
    and each type driver's ``get_mtu``): flat and VLAN segments get the
    smaller of ``global_physnet_mtu`` and their physnet's MTU; tunnels the
    smaller of ``global_physnet_mtu`` and ``path_mtu``, less the IP header and
    their overhead; local segments have none.  A network's maximum is the
    smallest of its segments' (``global_physnet_mtu`` when none has one)."""

    global_physnet_mtu: int = 1500
    path_mtu: int = 0
    physnet_mtus: Mapping[str, int] = field(default_factory=dict)

    def segment(self, network_type: str, physical_network: str | None) -> int | None:
        if network_type in TUNNEL_OVERHEAD:
            underlay = min(m for m in (self.global_physnet_mtu, self.path_mtu) if m > 0)
            return underlay - IPV4_HEADER - TUNNEL_OVERHEAD[network_type]
        if network_type in ("flat", "vlan"):
            own = self.physnet_mtus.get(physical_network or "")
            return min(self.global_physnet_mtu, own) if own else self.global_physnet_mtu
        return None

    def maximum(self, segments: Iterable[tuple[str, str | None]]) -> int:
        found = [m for t, p in segments if (m := self.segment(t, p))]
        return min(found) if found else self.global_physnet_mtu

    def check(self, requested: int | None, segments: Iterable[tuple[str, str | None]]) -> int:
        """The network's MTU: the requested one if it fits, else the maximum."""
        maximum = self.maximum(segments)
        if requested and requested > maximum:
            raise errors.InvalidInput(
                error_message=f"Requested MTU is too big, maximum is {maximum}"
            )
        return requested or maximum


@dataclass(frozen=True, slots=True)
class SegmentUpdate:
    name: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    fields_set: frozenset[str] = frozenset()


def add_to_network(
    session: Session,
    network: Network,
    spec: SegmentSpec,
    drivers: dict[str, TypeDriver],
    retries: int,
    tags: list[str] | None = None,
    *,
    limited_to_pools: bool = False,
    index: int | None = None,
) -> Segment:
    """Validate ``spec`` for its type and insert it, allocating an ID if needed.

    ``limited_to_pools``: the caller (not an admin) may only use IDs from the
    ranges the network's project may allocate from, even when naming one.
    ``index``: its position on the network; None: after the existing
    segments (a query; a network being created knows the position).
    """
    driver = drivers[spec.network_type]
    driver.validate(spec)
    explicit = spec.segmentation_id is not None
    pools: list[IdRange] = []
    if driver.needs_allocation(spec) or (limited_to_pools and explicit):
        pools = segment_ranges.usable_pools(
            session, spec.network_type, spec.physical_network, network.project_id
        )
    if limited_to_pools and spec.segmentation_id is not None:
        segment_ranges.check_explicit_id(pools, spec.physical_network, spec.segmentation_id)
    if index is None:
        index = session.scalar(
            select(func.coalesce(func.max(Segment.segment_index) + 1, 0)).where(
                Segment.network_id == network.id
            )
        )

    def make(final: SegmentSpec) -> Segment:
        return Segment(
            network_id=network.id,
            name=final.name,
            description=final.description,
            network_type=final.network_type,
            physical_network=final.physical_network,
            segmentation_id=final.segmentation_id,
            segment_index=index,
            # Inserted with the segment, in its savepoint.
            tags=standard.new_tags(SegmentTag, tags),
        )

    # Hosts already reporting the physnet reach it at once: the mapping is derived.
    return claim(session, driver, spec, make, retries, pools)


def change_vlan_id(
    session: Session, segment: Segment, segmentation_id: int, drivers: dict[str, TypeDriver]
) -> None:
    """ML2's ``update_network_segment`` (neutron/plugins/ml2/managers.py): only
    a VLAN segment's ID may change; the new ID is validated and claimed (the
    unique index arbitrates), the old one freed with the row's update."""
    if segment.network_type != "vlan":
        raise errors.InvalidInput(error_message="Only VLAN type networks can be updated.")
    if segmentation_id == segment.segmentation_id:
        return
    spec = SegmentSpec("vlan", segment.physical_network, segmentation_id)
    drivers["vlan"].validate(spec)
    try:
        with session.begin_nested():
            segment.segmentation_id = segmentation_id
            standard.bump(segment)
            session.flush()
    except IntegrityError:
        raise errors.VlanIdInUse(
            vlan_id=segmentation_id, physical_network=segment.physical_network
        ) from None


def mtu_segments(segments: Iterable[Any]) -> list[tuple[str, str | None]]:
    """(type, physnet) of segments or specs: what MTUs are computed from."""
    return [(s.network_type, s.physical_network) for s in segments]


def create(
    session: Session,
    scope: Scope,
    network_id: str,
    spec: SegmentSpec,
    drivers: dict[str, TypeDriver],
    retries: int,
    quota: Mapping[str, int],
    tags: list[str] | None = None,
) -> Segment:
    # Decide before any write, and before telling whether the network exists:
    # a caller refused by policy gets 403 for a missing network too.
    # FOR UPDATE orders segment creations per network; SQLite renders none
    # (its writers are already serialised).  The network must be one the
    # caller may see (a cross-entity rule: the parent's own visibility).
    principal = scope.principal
    seen = Scope(principal, Permission.GET_NETWORK).where(
        Network.project_id, Network.shared, Network.router_external
    )
    stmt = select(Network).where(Network.id == network_id, seen).with_for_update()
    network = session.scalars(stmt).first()
    scope.require(_create_target(principal, network, spec))
    if network is None:
        raise errors.NetworkNotFound(net_id=network_id)
    quotas.check(session, quota, network.project_id, {"segment": 1})
    segment = add_to_network(
        session, network, spec, drivers, retries, tags, limited_to_pools=not principal.is_admin
    )
    session.flush()
    set_committed_value(segment, "network_project", network.project_id)
    return segment  # every attribute, tags included, is current after the flush


def _create_target(
    principal: Principal, network: Network | None, spec: SegmentSpec
) -> dict[str, object]:
    project = network.project_id if network is not None else principal.project_id
    return {
        "project_id": project,
        "tenant_id": project,
        "network_type": spec.network_type,
        "physical_network": spec.physical_network,
        "segmentation_id": spec.segmentation_id,
    }


def project_of(segment: Segment) -> str | None:
    """The project of the segment's network, which owns it (for its change
    events): loaded with the segment by ``get``, kept by ``create``."""
    return segment.network_project


def reach(segment: Segment) -> host_events.Reach:
    """A segment is mapped to the hosts reporting its physnet (``host_mapping``)."""
    return host_events.Reach(
        segments=((segment.id, segment.physical_network, segment.network_type),)
    )


def target(segment: Segment | SegmentRecord) -> dict[str, object]:
    return {
        "id": segment.id,
        "network_id": segment.network_id,
        "network_type": segment.network_type,
        "physical_network": segment.physical_network,
        "segmentation_id": segment.segmentation_id,
    }


# One segment with its tags in ONE statement: selectinload would issue a
# second SELECT, which measured as about half the time of services.get
# (SQLite and PostgreSQL).
_WITH_TAGS = joinedload(Segment.tags)


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    """A segment read for display: its columns and sorted tag names.

    Reads build these from Core rows: they need no identity map or change
    tracking, and loading ORM objects cost about three times as much per
    segment (a page of 100: 1.7 ms against 0.5 ms on SQLite).
    """

    id: str
    network_id: str
    name: str | None
    description: str
    network_type: str
    physical_network: str | None
    segmentation_id: int | None
    segment_index: int
    created_at: dt.datetime
    updated_at: dt.datetime
    revision_number: int
    tag_names: list[str]


_Shown = TypeVar("_Shown", Segment, SegmentRecord)

# Every column a record holds (all but its tags), read by name from rows.
_RECORD_FIELDS = [f.name for f in fields(SegmentRecord) if f.name != "tag_names"]
_RECORD_COLUMNS = [Segment.__table__.c[name] for name in _RECORD_FIELDS]
# Statements built once: their SQL compiles once and is cached by identity.
_READ_ONE = (
    select(*_RECORD_COLUMNS, SegmentTag.tag)
    .select_from(Segment.__table__.outerjoin(SegmentTag.__table__))
    .where(Segment.id == bindparam("segment_id"))
)
_PREPARED_READ_ONE = PreparedRead(_READ_ONE)
_TAGS_OF = select(SegmentTag.segment_id, SegmentTag.tag).where(
    SegmentTag.segment_id.in_(bindparam("ids", expanding=True))
)
# PostgreSQL: the ids as one array parameter.  An expanding IN renders a
# parameter with its cast per id and psycopg parses the grown SQL every
# time: a quarter of a list page's CPU there.
_TAGS_OF_ARRAY = select(SegmentTag.segment_id, SegmentTag.tag).where(
    SegmentTag.segment_id == any_(bindparam("ids", type_=ARRAY(String)))
)


def _record(row: Sequence[Any], tags: list[str]) -> SegmentRecord:
    """A record from a row whose first columns are ``_RECORD_COLUMNS``.

    Values are matched to names by the statement's own column list (built
    from ``_RECORD_FIELDS``), not by the dataclass's field order.
    """
    return SegmentRecord(**dict(zip(_RECORD_FIELDS, row, strict=False)), tag_names=tags)


def _records(session: Session, rows: Sequence[Row[Any]]) -> list[SegmentRecord]:
    """Records for segment rows, with every row's tags in one more statement."""
    tags: dict[str, list[str]] = {}
    if rows:
        stmt = _TAGS_OF_ARRAY if dialect.is_postgres(session) else _TAGS_OF
        for segment_id, tag in session.execute(stmt, {"ids": [r.id for r in rows]}):
            tags.setdefault(segment_id, []).append(tag)
    return [_record(row, sorted(tags.get(row.id, ()))) for row in rows]


def read(snapshot: Snapshot, scope: Scope, segment_id: str) -> SegmentRecord:
    """``get`` for display: the same answers, read as a record."""
    if not scope.unrestricted():
        raise errors.SegmentNotFound(segment_id=segment_id)
    rows = snapshot.rows(_PREPARED_READ_ONE, {"segment_id": segment_id})
    tags = sorted(row[-1] for row in rows if row[-1] is not None)
    return _shown(scope, segment_id, _record(rows[0], tags) if rows else None)


_NETWORK_PROJECT = with_expression(
    Segment.network_project,
    select(Network.project_id).where(Network.id == Segment.network_id).scalar_subquery(),
)
_GET = (
    select(Segment)
    .options(_WITH_TAGS, _NETWORK_PROJECT)
    .where(Segment.id == bindparam("segment_id"))
)
_RELOAD = _GET.execution_options(populate_existing=True)
# Of the segment row only: the tags are on the nullable side of an outer join.
_GET_LOCKED = _GET.with_for_update(of=Segment)
_RELOAD_LOCKED = _GET_LOCKED.execution_options(populate_existing=True)


def _reload(session: Session, segment_id: str, lock: bool = False) -> Segment:
    stmt = _RELOAD_LOCKED if lock else _RELOAD
    return session.scalars(stmt, {"segment_id": segment_id}).unique().one()


reload = _reload  # the current row, for services that change it by statement (tags)


def get(session: Session, scope: Scope, segment_id: str, lock: bool = False) -> Segment:
    """The segment as an ORM object, for changing it (``read`` is for display).

    Segments have no project: a scope sees all of them or none, and then
    each one its rule allows.  ``lock``: the row locked until the
    transaction ends (see ``networks.get``), for updates; a delete locks
    the network first and the segment again (``delete``)."""
    if not scope.unrestricted():
        raise errors.SegmentNotFound(segment_id=segment_id)
    found = session.scalars(_GET_LOCKED if lock else _GET, {"segment_id": segment_id})
    return _shown(scope, segment_id, found.unique().first())


def _shown(scope: Scope, segment_id: str, found: _Shown | None) -> _Shown:
    """``found``, if the scope allows it; else the 404 a missing one gets."""
    if found is None or not scope.allows(target(found)):
        raise errors.SegmentNotFound(segment_id=segment_id)
    return found


def list_(session: Session, scope: Scope, query: ListQuery, *conditions: Any) -> Page:
    """A page of segments the scope sees; ``conditions`` narrow it (a host's segments)."""
    if not scope.unrestricted():
        return Page([], False)
    scoped = select(*_RECORD_COLUMNS).where(*conditions)
    page = list_page(session, scope.principal, scoped, LIST_SPEC, query, Segment.id)
    return Page(_records(session, page.items), page.has_more, page.extra)


def update(
    session: Session, segment: Segment, changes: SegmentUpdate, if_revision: int | None
) -> Segment:
    """Apply ``changes`` to ``segment``, as loaded (locked) by ``get``."""
    standard.check_revision(segment, if_revision)
    values: dict[str, Any] = {}
    if "name" in changes.fields_set:
        values["name"] = changes.name
    if "description" in changes.fields_set and changes.description is not None:
        values["description"] = changes.description
    if changes.tags is not None:
        standard.set_tags(session, SegmentTag, "segment_id", segment.id, changes.tags)
    standard.save(session, segment, values)
    # Tags are replaced by statements, not through the collection: reread them.
    return segment if changes.tags is None else _reload(session, segment.id)


def delete(session: Session, segment: Segment, if_revision: int | None) -> None:
    """Delete ``segment``, as loaded by ``get`` in this session."""
    # Subnet creation locks the network row too, so no subnet can bind to
    # this segment between the check and the delete (FOR UPDATE: no-op on
    # SQLite).  Network first, then the segment, read again under its lock:
    # the one lock order (a network delete holds the network, then cascades).
    session.execute(select(Network.id).where(Network.id == segment.network_id).with_for_update())
    segment = _reload(session, segment.id, lock=True)
    standard.check_revision(segment, if_revision)
    bound = session.scalars(
        select(Subnet.id).where(Subnet.segment_id == segment.id).order_by(Subnet.id).limit(5)
    ).all()
    if bound:
        raise _in_use(segment.id, bound)
    try:
        with session.begin_nested():
            session.execute(sql_delete(Segment).where(Segment.id == segment.id))
    except IntegrityError:
        # The foreign key's ON DELETE RESTRICT is the backstop: same answer.
        raise _in_use(segment.id, []) from None


def _in_use(segment_id: str, subnet_ids: Sequence[str]) -> errors.SegmentInUse:
    listed = f" {', '.join(subnet_ids)}" if subnet_ids else ""
    return errors.SegmentInUse(
        segment_id=segment_id, reason=f"The segment is still associated with subnet(s){listed}"
    )
