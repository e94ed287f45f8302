"""Queries over the segment-host mapping: always paginated, always scoped.

Host lists page by the host name itself (keyset on the indexed ``host``
column), with their parameters declared in a ``QuerySpec`` like any list;
segment lists reuse the segment list's filters, sorts and keyset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, select
from sqlalchemy.orm import Session

from segmentd.authz import Scope
from segmentd.db.base import Page, SortKey, paginate
from segmentd.db.models import Agent, AgentPhysnet, Segment
from segmentd.services import host_mapping
from segmentd.services import segments as segment_service
from segmentd.services.query import ListQuery, Param, QuerySpec, parse_uuid


def parse_agent_type(value: str) -> str:
    if value not in host_mapping.AGENT_TYPES:
        raise ValueError("unknown agent type")
    return value


_AGENT_TYPE_FILTERS = {
    "include_agent_types": Param(parse_agent_type),
    "exclude_agent_types": Param(parse_agent_type),
}
# Hosts page by name: no sort keys but the name itself.
SEGMENT_HOSTS_SPEC = QuerySpec(
    filters=_AGENT_TYPE_FILTERS,
    sorts={},
    marker=host_mapping.parse_host,
    marker_kind="a host name",
)
MAPPED_HOSTS_SPEC = QuerySpec(
    filters={**_AGENT_TYPE_FILTERS, "segment_id": Param(parse_uuid)},
    sorts={},
    marker=host_mapping.parse_host,
    marker_kind="a host name",
)


@dataclass(frozen=True, slots=True)
class HostItem:
    """One mapped host; ``id`` is its page marker."""

    host: str

    @property
    def id(self) -> str:
        return self.host


def _agent_type_condition(host_column: Any, query: ListQuery) -> ColumnElement[bool] | None:
    """The incumbent's include/exclude rule: exclude wins, agentless hosts drop out."""
    include = query.filters.get("include_agent_types", [])
    exclude = query.filters.get("exclude_agent_types", [])
    if not (include or exclude):
        return None

    def has_agent(*extra: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists(select(1).where(Agent.host == host_column, *extra))

    conditions = [has_agent()]
    if include:
        conditions.append(has_agent(Agent.agent_type.in_(include)))
    if exclude:
        conditions.append(~has_agent(Agent.agent_type.in_(exclude)))
    return and_(*conditions)


def _host_page(session: Session, stmt: Select[Any], query: ListQuery) -> Page:
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


def hosts_of_segment(session: Session, segment: Segment, query: ListQuery) -> Page:
    """Hosts mapped to ``segment`` (loaded, so already in the caller's scope)."""
    return _host_page(session, host_mapping.hosts_reaching(segment.id), query)


def mapped_hosts(session: Session, scope: Scope, query: ListQuery) -> Page:
    """Every host with at least one mapping (the incumbent's
    ``get_hosts_mapped_with_segments``), filtered by agent type, paginated."""
    if not scope.unrestricted():  # the mapping has no project: all of it or none
        return Page([], False)
    stmt = select(AgentPhysnet.host).where(host_mapping.mapped())
    segment_ids = query.filters.get("segment_id", [])
    if segment_ids:
        on_segments = select(Segment.physical_network).where(Segment.id.in_(segment_ids))
        stmt = stmt.where(AgentPhysnet.physical_network.in_(on_segments))
    return _host_page(session, stmt, query)


def segments_of_host(session: Session, scope: Scope, host: str, query: ListQuery) -> Page:
    """Segments mapped to ``host``, with the segment list's filters and sorts.

    Selected by physical network (the host's few, through the segments'
    physnet index), not by id: an ``id IN (...)`` let PostgreSQL walk the
    primary key in page order until enough matched, a walk that grew with
    the table as the host's physnets became a smaller share of it.
    """
    reachable = host_mapping.on_physnets_of(bindparam("host", host))
    return segment_service.list_(session, scope, query, reachable)
