"""Per-project quotas, as Neutron's quota resource: how many networks,
subnets and segments a project may hold.

Defaults come from settings; the rows of ``quotas`` hold only a project's
overrides (``-1``: unlimited).  A create checks its project's quota under a
lock named for (resource, project) until the transaction ends, then counts:
two concurrent creates of one project serialise there, so neither can see
the other's uncommitted row and slip past the limit together (PostgreSQL;
SQLite's writers are serial anyway).  Segments count against the project
of their network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.orm import Session

from segmentd import errors
from segmentd.authz import Scope
from segmentd.db import dialect
from segmentd.db.base import Page, SortKey, paginate
from segmentd.db.models import Network, Quota, Segment, Subnet
from segmentd.services.query import ListQuery, QuerySpec, parse_str

RESOURCES = ("network", "subnet", "segment")
UNLIMITED = -1

# Quotas page by project id (any string a project id may be).
LIST_SPEC = QuerySpec(filters={}, sorts={}, marker=parse_str, marker_kind="a project id")


@dataclass(frozen=True, slots=True)
class QuotaSet:
    """A project's own limits (overrides of the defaults); ``id`` is its page marker."""

    project_id: str
    limits: Mapping[str, int] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.project_id

    def effective(self, defaults: Mapping[str, int]) -> dict[str, int]:
        return {**defaults, **self.limits}


def _overrides(session: Session, project_id: str) -> dict[str, int]:
    stmt = select(Quota.resource, Quota.limit).where(Quota.project_id == project_id)
    return {row.resource: row.limit for row in session.execute(stmt)}


def _used_count(resource: str, project: Any) -> Any:
    """A scalar subquery: how many ``resource`` rows ``project`` holds."""
    if resource == "network":
        stmt = select(func.count()).select_from(Network).where(Network.project_id == project)
    elif resource == "subnet":
        stmt = select(func.count()).select_from(Subnet).where(Subnet.project_id == project)
    else:
        stmt = (
            select(func.count())
            .select_from(Segment)
            .join(Network, Network.id == Segment.network_id)
            .where(Network.project_id == project)
        )
    return stmt.scalar_subquery()


def _override(resource: str, project: Any) -> Any:
    return (
        select(Quota.limit)
        .where(Quota.project_id == project, Quota.resource == resource)
        .scalar_subquery()
    )


def _usage_statement(resources: tuple[str, ...]) -> Any:
    """One round trip: each resource's override (or NULL) and its count."""
    project: Any = bindparam("project")
    columns = [c for r in resources for c in (_override(r, project), _used_count(r, project))]
    return select(*columns)


# Built once (their SQL compiles once): the combinations creates check.
_USAGE: dict[tuple[str, ...], Any] = {
    resources: _usage_statement(resources)
    for resources in (("network", "segment"), ("segment",), ("subnet",))
}


def _used(session: Session, project_id: str, resource: str) -> int:
    return session.scalar(select(_used_count(resource, project_id))) or 0


def check(
    session: Session, defaults: Mapping[str, int], project_id: str, adding: Mapping[str, int]
) -> None:
    """409 ``OverQuota`` when adding ``adding[resource]`` more of each
    resource would exceed the project's limits."""
    resources = tuple(adding)
    # Before counting: concurrent creates of the project serialise here.
    dialect.lock(session, *(f"quota:{resource}:{project_id}" for resource in resources))
    statement = _USAGE.get(resources)
    if statement is None:
        statement = _usage_statement(resources)
    row = session.execute(statement, {"project": project_id}).one()
    overs = []
    for i, resource in enumerate(resources):
        override, used = row[2 * i], row[2 * i + 1]
        limit = defaults[resource] if override is None else override
        if limit != UNLIMITED and used + adding[resource] > limit:
            overs.append(resource)
    if overs:
        raise errors.OverQuota(overs=overs)


# The quota resource -------------------------------------------------------------------


def target(found: QuotaSet) -> dict[str, Any]:
    return {"project_id": found.project_id, "tenant_id": found.project_id}


def get(session: Session, scope: Scope, project_id: str, lock: bool = False) -> QuotaSet:
    """``/v2.0/quotas/{project_id}``: every project has quotas (its defaults
    at least), so nothing is ever missing; the pipeline's policy check on
    the project answers 403 for another's.  ``lock``: for a change, the
    project's quota rows are changed by one writer at a time."""
    if lock:
        dialect.lock(session, f"quota-set:{project_id}")
    return QuotaSet(project_id, _overrides(session, project_id))


def list_(session: Session, scope: Scope, query: ListQuery) -> Page:
    """Projects with limits of their own (Neutron lists those), paged by project id."""
    projects = (
        select(Quota.project_id)
        .where(scope.where(project=Quota.project_id))
        .group_by(Quota.project_id)
    )
    marker = [query.marker] if query.marker is not None else None
    project_column: Any = Quota.project_id
    page = paginate(
        session, projects, [SortKey(project_column)], query.limit, marker, query.reverse
    )
    return Page([QuotaSet(p, _overrides(session, p)) for p in page.items], page.has_more)


def update(session: Session, found: QuotaSet, limits: Mapping[str, int]) -> QuotaSet:
    """Set some of a project's limits; the others keep their values."""
    for resource, limit in sorted(limits.items()):
        stmt = dialect.insert(session, Quota).values(
            project_id=found.project_id, resource=resource, limit=limit
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["project_id", "resource"], set_={"limit": limit}
        )
        session.execute(stmt)
    return QuotaSet(found.project_id, {**found.limits, **limits})


def reset(session: Session, found: QuotaSet) -> None:
    """Back to the defaults (Neutron's DELETE of a project's quotas)."""
    session.execute(delete(Quota).where(Quota.project_id == found.project_id))


def details(
    session: Session, found: QuotaSet, defaults: Mapping[str, int]
) -> dict[str, dict[str, int]]:
    """Neutron's quota-details: limit, used and reserved (always 0 here:
    creates are checked in their own transaction, nothing is held ahead)."""
    return {
        resource: {
            "limit": limit,
            "used": _used(session, found.project_id, resource),
            "reserved": 0,
        }
        for resource, limit in found.effective(defaults).items()
    }
