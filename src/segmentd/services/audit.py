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
import functools
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, cast

from sqlalchemy import Table, inspect, select
from sqlalchemy.orm import Mapper, Session

from segmentd.authz import Principal, Scope
from segmentd.db.audit import AuditEvent, audit_now
from segmentd.db.base import Page
from segmentd.db.prepared import PreparedInsert, insert_rows
from segmentd.services.query import (
    CustomFilter,
    Filter,
    ListQuery,
    QuerySpec,
    list_page,
    parse_uuid,
)


def parse_time(value: str) -> dt.datetime:
    """An ISO 8601 time (``2026-12-04T01:00``, ``...Z``); naive means UTC."""
    stamp = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def parse_outcome(value: str) -> str:
    if value not in ("allowed", "denied"):
        raise ValueError("outcome is 'allowed' or 'denied'")
    return value


def _outcome(values: list[Any]) -> Any:
    if set(values) == {"denied"}:
        return AuditEvent.action == "deny"
    if set(values) == {"allowed"}:
        return AuditEvent.action != "deny"
    return AuditEvent.action.is_not(None)


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
        # Denials are events with action "deny"; times are inclusive bounds.
        "outcome": CustomFilter(_outcome, parse_outcome),
        "since": CustomFilter(lambda v: AuditEvent.created_at >= max(v), parse_time),
        "until": CustomFilter(lambda v: AuditEvent.created_at <= min(v), parse_time),
    },
    sorts={
        "id": AuditEvent.id,
        "created_at": AuditEvent.created_at,
        "resource_type": AuditEvent.resource_type,
        "action": AuditEvent.action,
    },
)

# Compiled once; each event's values are bound parameters.  Every column is
# given (``_event`` fills what a caller leaves out, as the model's defaults).
_EVENT_COLUMNS = (
    "id",
    "created_at",
    "request_id",
    "user_id",
    "project_id",
    "action",
    "resource_type",
    "resource_id",
    "permission",
    "detail",
    "before",
    "after",
)
_INSERT_EVENT = PreparedInsert(cast(Table, AuditEvent.__table__), _EVENT_COLUMNS)


def _insert_event(session: Session, **values: Any) -> None:
    """One audit row, on the transaction's own connection (``db.prepared``):
    every write records one, so it is written the cheapest way."""
    row = {
        "id": str(uuid.uuid4()),
        "created_at": audit_now(),
        "user_id": None,
        "project_id": None,
        "resource_id": None,
        "permission": "",
        "detail": "",
        "before": None,
        "after": None,
        **values,
    }
    insert_rows(session, _INSERT_EVENT, [row])


# Columns that are bookkeeping of another row, not attributes of the resource.
_SKIPPED_CHILD_COLUMNS = frozenset(
    {"network_id", "segment_id", "subnet_id", "range_id", "agent_id"}
)


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    if isinstance(value, _SCALARS):  # most values: nothing to convert
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@functools.cache
def _column_keys(mapper: Mapper[Any], skip: frozenset[str]) -> tuple[str, ...]:
    """A model's recorded columns, worked out once (every write snapshots twice)."""
    return tuple(
        attr.key
        for attr in mapper.column_attrs
        if attr.key not in skip and not attr.info.get("derived")
    )


def _columns(obj: Any, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    state = inspect(obj)
    loaded = state.dict
    return {key: _plain(loaded[key]) for key in _column_keys(state.mapper, skip) if key in loaded}


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
    _insert_event(
        session,
        request_id=request_id[:64],
        user_id=principal.subject[:255] or None,
        project_id=principal.project_id[:255] or None,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        permission=permission,
        before=old,
        after=new,
    )


def _resource_type(permission: str) -> str:
    action, _, resource_type = permission.partition("_")
    return resource_type or action


def record_denial(
    session: Session,
    principal: Principal | None,
    request_id: str,
    permission: str,
    resource_id: str | None,
    reason: str,
) -> None:
    """Record a refused mutation (in a transaction of its own: the request's rolled back)."""
    _insert_event(
        session,
        request_id=request_id[:64],
        user_id=principal.subject[:255] if principal is not None else None,
        project_id=principal.project_id[:255] if principal is not None else None,
        action="deny",
        resource_type=_resource_type(permission),
        resource_id=resource_id,
        permission=permission,
        detail=reason,
    )


def record_suppressed_denials(
    session: Session, permission: str, address: str, count: int, window_s: float
) -> None:
    """One event for ``count`` anonymous denials not recorded one by one."""
    _insert_event(
        session,
        request_id="",
        action="deny",
        resource_type=_resource_type(permission),
        permission=permission,
        detail="not_authenticated_repeated",
        after={"client_address": address, "count": count, "window_seconds": window_s},
    )


class DenialCounter:
    """Anonymous denials per (client address, permission) and time window.

    An anonymous caller could otherwise append a row to the append-only
    trail with every refused request.  ``admit`` says whether a denial is
    the first of its key's window (record it); later ones are only counted,
    and ``closed`` hands back, once, the counts of windows that have ended,
    to be recorded as one event each.  Keys are bounded: when the table is
    full, windows are closed early rather than grown.
    """

    def __init__(
        self,
        window_s: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}  # key -> (start, suppressed)
        self._lock = threading.Lock()
        self._flush_due = False

    def clear(self) -> None:
        """Forget every window and count (a fresh start, as after a restart)."""
        with self._lock:
            self._windows.clear()
            self._flush_due = False

    def flush_due(self) -> bool:
        """True once while counts wait for their windows to end: whoever
        gets True arranges a ``closed`` call one window later."""
        with self._lock:
            if self._flush_due or not any(n for _, n in self._windows.values()):
                return False
            self._flush_due = True
            return True

    def admit(self, key: tuple[str, str]) -> bool:
        """True: the first denial of a window, record it.  Call ``closed``
        first, so an ended window's count is collected before it restarts."""
        now = self._clock()
        with self._lock:
            found = self._windows.get(key)
            if found is not None and now - found[0] < self.window_s:
                self._windows[key] = (found[0], found[1] + 1)
                return False
            if len(self._windows) < self.max_keys:  # full: record each, track none
                self._windows[key] = (now, 0)
            return True

    def closed(self) -> list[tuple[tuple[str, str], int]]:
        """(key, suppressed count) of every window that has ended, once each."""
        now = self._clock()
        with self._lock:
            self._flush_due = False
            ended = [k for k, (start, _) in self._windows.items() if now - start >= self.window_s]
            out = [(k, self._windows.pop(k)[1]) for k in ended]
        return [(k, n) for k, n in out if n]


def list_(session: Session, scope: Scope, query: ListQuery) -> Page:
    scoped = select(AuditEvent).where(scope.where())
    if not query.sorts:
        # A trail reads in time order; ``id`` breaks ties between equal stamps.
        query.sorts = [("created_at", True)]
    return list_page(session, scope.principal, scoped, LIST_SPEC, query, AuditEvent.id)
