"""Admin queries over the segment-host mapping: always paginated, always scoped.

Host lists page by the host name itself (keyset on the indexed ``host``
column); segment lists reuse the segment list's filters, sorts and keyset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, select
from sqlalchemy.orm import Session, selectinload

from segmentd import errors
from segmentd.authz import Permission, Principal, admin_only, can
from segmentd.db.base import Page, SortKey, paginate
from segmentd.db.models import Agent, AgentPhysnet, Segment
from segmentd.services import host_mapping
from segmentd.services import segments as segment_service
from segmentd.services.query import ListQuery, list_page


@dataclass(frozen=True, slots=True)
class HostQuery:
    """A page of host names: keyset on the name itself."""

    limit: int
    marker: str | None = None
    reverse: bool = False
    include_agent_types: tuple[str, ...] = ()
    exclude_agent_types: tuple[str, ...] = ()
    segment_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HostItem:
    """One mapped host; ``id`` is its page marker."""

    host: str

    @property
    def id(self) -> str:
        return self.host


def _agent_type_condition(host_column: Any, query: HostQuery) -> ColumnElement[bool] | None:
    """The incumbent's include/exclude rule: exclude wins, agentless hosts drop out."""
    if not (query.include_agent_types or query.exclude_agent_types):
        return None

    def has_agent(*extra: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists(select(1).where(Agent.host == host_column, *extra))

    conditions = [has_agent()]
    if query.include_agent_types:
        conditions.append(has_agent(Agent.agent_type.in_(query.include_agent_types)))
    if query.exclude_agent_types:
        conditions.append(~has_agent(Agent.agent_type.in_(query.exclude_agent_types)))
    return and_(*conditions)


def _host_page(session: Session, stmt: Select[Any], query: HostQuery) -> Page:
    """``stmt`` selects ``agent_physnets.host``: page the distinct names."""
    condition = _agent_type_condition(AgentPhysnet.host, query)
    if condition is not None:
        stmt = stmt.where(condition)
    stmt = stmt.distinct()
    host_column: Any = AgentPhysnet.host
    keys = [SortKey(host_column)]
    marker = [query.marker] if query.marker is not None else None
    page = paginate(session, stmt, keys, query.limit, marker, query.reverse)
    return Page([HostItem(h) for h in page.items], page.has_more)


def _may_read(principal: Principal) -> bool:
    return can(principal, Permission.GET_SEGMENT_HOST_MAPPING)


def hosts_of_segment(
    session: Session, principal: Principal, segment_id: str, query: HostQuery
) -> Page:
    """Hosts mapped to one segment; a segment the caller cannot see is a 404."""
    if not _may_read(principal):
        raise errors.SegmentNotFound(segment_id=segment_id)
    segment_service.get(session, principal, segment_id)  # 404 outside the caller's scope
    return _host_page(session, host_mapping.hosts_reaching(segment_id), query)


def mapped_hosts(session: Session, principal: Principal, query: HostQuery) -> Page:
    """Every host with at least one mapping (the incumbent's
    ``get_hosts_mapped_with_segments``), filtered by agent type, paginated."""
    if not _may_read(principal):
        return Page([], False)
    stmt = select(AgentPhysnet.host).where(host_mapping.mapped())
    if query.segment_ids:
        on_segments = select(Segment.physical_network).where(Segment.id.in_(query.segment_ids))
        stmt = stmt.where(AgentPhysnet.physical_network.in_(on_segments))
    return _host_page(session, stmt, query)


def segments_of_host(session: Session, principal: Principal, host: str, query: ListQuery) -> Page:
    """Segments mapped to ``host``, with the segment list's filters and sorts."""
    if not _may_read(principal):
        return Page([], False)
    reachable = Segment.id.in_(host_mapping.reachable_segments(bindparam("host", host)))
    scoped = select(Segment).where(admin_only(principal), reachable)
    return list_page(
        session,
        principal,
        scoped,
        segment_service.LIST_SPEC,
        query,
        Segment.id,
        [selectinload(Segment.tags)],
    )
