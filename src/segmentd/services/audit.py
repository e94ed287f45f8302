"""The audit trail: who changed what, and who was refused (CWE-778).

Mutations are recorded by ``record`` in the session of the change itself, so
the event commits or rolls back with it: nothing acknowledged goes
unrecorded and nothing rolled back is recorded.  Denials are recorded by
``record_denial`` in a transaction of their own, because the request's
transaction is rolled back when it is refused.

Attributes are captured with ``snapshot``: the loaded column values of an ORM
object (and of its loaded child collections, such as tags or a network's
segments), never triggering a lazy load.  ``record`` keeps, for an update,
only the attributes that changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table, insert, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from segmentd.authz import Permission, Principal, admin_only, can
from segmentd.db.audit import AuditEvent
from segmentd.db.base import Page
from segmentd.services.query import Filter, ListQuery, QuerySpec, list_page, parse_uuid

LIST_SPEC = QuerySpec(
    filters={
        "id": Filter(AuditEvent.id, parse_uuid),
        "resource_type": Filter(AuditEvent.resource_type),
        "resource_id": Filter(AuditEvent.resource_id),
        "action": Filter(AuditEvent.action),
        "user_id": Filter(AuditEvent.user_id),
        "project_id": Filter(AuditEvent.project_id),
        "request_id": Filter(AuditEvent.request_id),
        "permission": Filter(AuditEvent.permission),
    },
    sorts={
        "id": AuditEvent.id,
        "created_at": AuditEvent.created_at,
        "resource_type": AuditEvent.resource_type,
        "action": AuditEvent.action,
    },
)

# Built once; each event's values are bound parameters.
_INSERT_EVENT = insert(cast(Table, AuditEvent.__table__))

# Columns that are bookkeeping of another row, not attributes of the resource.
_SKIPPED_CHILD_COLUMNS = frozenset(
    {"network_id", "segment_id", "subnet_id", "range_id", "agent_id"}
)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _columns(obj: Any, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    state = inspect(obj)
    loaded = state.dict
    return {
        attr.key: _plain(loaded[attr.key])
        for attr in state.mapper.column_attrs
        if attr.key in loaded and attr.key not in skip
    }


def _child(obj: Any) -> Any:
    columns = _columns(obj, _SKIPPED_CHILD_COLUMNS)
    # A tag row is just its tag.
    return next(iter(columns.values())) if len(columns) == 1 else columns


def snapshot(obj: Any) -> dict[str, Any]:
    """The loaded attributes of ``obj`` as JSON values; never loads anything."""
    state = inspect(obj)
    out = _columns(obj)
    for rel in state.mapper.relationships:
        if rel.key in state.dict and rel.uselist:
            children = [_child(c) for c in state.dict[rel.key]]
            out[rel.key] = sorted(children, key=repr) if rel.key == "tags" else children
    return out


def changes(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Only the attributes that differ (all of them for a create or a delete)."""
    if before is None or after is None:
        return before, after
    keys = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def record(
    session: Session,
    principal: Principal,
    request_id: str,
    action: str,
    resource_type: str,
    resource_id: str | None,
    *,
    permission: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Insert the event in ``session``'s transaction: it commits with the change
    it describes.  A Core INSERT, not an ORM object: the event is never read
    back, and the unit of work's flush cost more than the statement."""
    old, new = changes(before, after)
    session.execute(
        _INSERT_EVENT,
        {
            "request_id": request_id[:64],
            "user_id": principal.subject[:255] or None,
            "project_id": principal.project_id[:255] or None,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "permission": permission,
            "before": old,
            "after": new,
        },
    )


def record_denial(
    sessions: sessionmaker[Session],
    principal: Principal | None,
    request_id: str,
    permission: str,
    resource_id: str | None,
    reason: str,
) -> None:
    """Record a refused mutation in its own transaction (the request's rolled back)."""
    action, _, resource_type = permission.partition("_")
    with sessions() as session, session.begin():
        session.execute(
            _INSERT_EVENT,
            {
                "request_id": request_id[:64],
                "user_id": principal.subject[:255] if principal is not None else None,
                "project_id": principal.project_id[:255] if principal is not None else None,
                "action": "deny",
                "resource_type": resource_type or action,
                "resource_id": resource_id,
                "permission": permission,
                "detail": reason,
            },
        )


def list_(session: Session, principal: Principal, query: ListQuery) -> Page:
    if not can(principal, Permission.GET_AUDIT_EVENT, {"project_id": None, "tenant_id": None}):
        return Page([], False)
    scoped = select(AuditEvent).where(admin_only(principal, Permission.GET_AUDIT_EVENT))
    if not query.sorts:
        # A trail reads in time order; ``id`` breaks ties between equal stamps.
        query.sorts = [("created_at", True)]
    return list_page(session, principal, scoped, LIST_SPEC, query, AuditEvent.id)
