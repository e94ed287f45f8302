"""Change events: the transactional outbox and its delivery bookkeeping.

``record`` inserts an event in the session of the change it describes, so it
commits or rolls back with it: a committed change always has its event, a
rolled-back one never.  Delivery workers (``segmentd.delivery``) then
``claim`` due events, send them, and ``finish`` them: delivered, retried
later with exponential backoff and jitter, or dead after ``max_attempts``.

Order: ``seq`` increases with each event; a change holds its resource's row
lock when its event draws its number, so one resource's events are numbered
in commit order.  ``claim`` never hands out an event while an earlier event
of the same resource is still pending, so each resource's events are
delivered in order even by several workers.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from sqlalchemy import Table, and_, delete, exists, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from segmentd.authz import Scope
from segmentd.db import dialect
from segmentd.db.events import Event, EventSinkStats
from segmentd.db.prepared import execute_rows

_INSERT = insert(cast(Table, Event.__table__))
OUTBOX_LOCK = "segmentd.events"
# Datetimes as the API writes them (``%Y-%m-%dT%H:%M:%SZ``).
_JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_OMIT_MICROSECONDS


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def dumps(view: Mapping[str, Any] | None) -> str | None:
    return None if view is None else orjson.dumps(view, option=_JSON_OPTIONS).decode()


def record(
    session: Session,
    resource_type: str,
    resource_id: str,
    action: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    request_id: str = "",
    project_id: str | None = None,
) -> None:
    """Insert the event in ``session``'s transaction (a Core INSERT: never read back).

    ``project_id``: the owner when the views do not show one (a segment's is
    its network's); otherwise the views' ``project_id``."""
    change = (resource_type, resource_id, action, before, after)
    record_many(session, [change], request_id, project_id)


Change = tuple[str, str, str, Mapping[str, Any] | None, Mapping[str, Any] | None]


def record_many(
    session: Session,
    changes: Iterable[Change],
    request_id: str = "",
    project_id: str | None = None,
) -> None:
    """Several events in one statement, in the given order.

    Rows are built as the statement's named parameters, the shared
    timestamp converted once: a segment on a busy physnet writes one
    ``segment_host_mapping`` event per host, so the per-row work in Python
    is what such a write costs (bench/RESULTS-events.md).  No changes (most
    requests' host-mapping changes): nothing is done."""
    changes = list(changes)
    if not changes:
        return
    sql, stored_time = _plan(session)
    stamp = stored_time(now())
    rid = request_id[:64]
    rows = []
    for resource_type, resource_id, action, before, after in changes:
        shown = after if after is not None else before or {}
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "created_at": stamp,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "action": action,
                "project_id": shown.get("project_id", project_id),
                "revision_number": shown.get("revision_number"),
                "request_id": rid,
                "before": dumps(before),
                "after": dumps(after),
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": stamp,
                "sinks": "{}",
                "last_error": "",
            }
        )
    # On the transaction's own DB-API connection: an event is written by
    # every change, and SQLAlchemy's Core INSERT cost three times what SQLite
    # spends on the row (bench/RESULTS-events.md).
    execute_rows(session, sql, rows)


_COLUMNS = (
    "id",
    "created_at",
    "resource_type",
    "resource_id",
    "action",
    "project_id",
    "revision_number",
    "request_id",
    "before",
    "after",
    "state",
    "attempts",
    "next_attempt_at",
    "sinks",
    "last_error",
)
_PG_TYPES = {
    "created_at": "timestamptz",
    "next_attempt_at": "timestamptz",
    "revision_number": "bigint",
    "attempts": "integer",
}
_PLANS: dict[str, tuple[str, Callable[[Any], Any]]] = {}


def _plan(session: Session) -> tuple[str, Callable[[Any], Any]]:
    """The INSERT for this dialect, with the stored form of a timestamp."""
    bind = session.get_bind()
    name = bind.dialect.name
    found = _PLANS.get(name)
    if found is None:
        # Constant column names and placeholders only: no value is ever in the text.
        columns = ", ".join(_COLUMNS)
        if name == "postgresql":
            # The shared outbox lock, held to the commit, is taken by the same
            # statement (no extra round trip), before the row draws its number:
            # a pull can then tell when every number drawn is committed
            # (``after_cursor``).
            marks = ", ".join(f"%({c})s::{_PG_TYPES.get(c, 'text')}" for c in _COLUMNS)
            key = zlib.crc32(OUTBOX_LOCK.encode())
            sql = (
                f"INSERT INTO events ({columns}) SELECT {marks} "  # noqa: S608
                f"FROM (SELECT pg_advisory_xact_lock_shared({key})) AS outbox_lock"
            )
        else:
            marks = ", ".join(f":{c}" for c in _COLUMNS)
            sql = f"INSERT INTO events ({columns}) VALUES ({marks})"  # noqa: S608
        column = cast(Table, Event.__table__).c.created_at
        process = column.type.dialect_impl(bind.dialect).bind_processor(bind.dialect)
        found = _PLANS[name] = (sql, process or (lambda value: value))
    return found


def document(event: Event) -> dict[str, Any]:
    """The event as sinks and the pull endpoint carry it (README, "Change events")."""
    return {
        "id": event.id,
        "seq": event.seq,
        "event_type": f"{event.resource_type}.{event.action}",
        "resource_type": event.resource_type,
        "resource_id": event.resource_id,
        "action": event.action,
        "project_id": event.project_id,
        "revision_number": event.revision_number,
        "request_id": event.request_id,
        "created_at": event.created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "before": None if event.before is None else orjson.loads(event.before),
        "after": None if event.after is None else orjson.loads(event.after),
    }


# Delivery -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Retry:
    """Backoff: ``base * 2**(attempts-1)`` seconds, at most ``cap``, with full jitter
    over its upper half; dead after ``max_attempts`` failed attempts."""

    max_attempts: int = 12
    base_s: float = 1.0
    cap_s: float = 600.0

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * 2.0 ** max(0, attempts - 1))
        jitter: float = (rng or random).uniform(0, ceiling / 2)
        return ceiling / 2 + jitter


def claim(
    session: Session, batch: int, lease_s: float, at: dt.datetime | None = None
) -> list[Event]:
    """Due pending events in ``seq`` order, leased for ``lease_s``.

    A resource's events are claimed from its earliest pending one (the
    head), which must be due (``next_attempt_at`` passed); delivered or dead
    ones do not hold it back.  With its head, a resource's next pending
    events come along while they are due, so a burst on one resource goes
    out in a few batches; nobody else can claim them while the head is
    pending.  On PostgreSQL heads are claimed with ``FOR UPDATE SKIP
    LOCKED``, so concurrent workers take disjoint batches; the lease
    (``next_attempt_at`` moved ahead) keeps them claimed after the commit,
    and a worker that dies lets its events come due again when it ends.
    The worker sends them in ``seq`` order and stops at a resource's first
    failure, so each resource's events arrive in order.
    """
    at = at or now()
    earlier = aliased(Event)
    held_back = exists().where(
        earlier.resource_type == Event.resource_type,
        earlier.resource_id == Event.resource_id,
        earlier.state == "pending",
        earlier.seq < Event.seq,
    )
    stmt = (
        select(Event)
        .where(Event.state == "pending", Event.next_attempt_at <= at, ~held_back)
        .order_by(Event.seq)
        .limit(batch)
    )
    if dialect.is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True, of=Event)
    found = list(session.scalars(stmt))
    # Only one event per resource: the earliest (the query guarantees it
    # against the database, this against ties within the batch).
    seen: set[tuple[str, str]] = set()
    claimed = []
    for event in found:
        key = (event.resource_type, event.resource_id)
        if key in seen:
            continue
        seen.add(key)
        claimed.append(event)
    if claimed and len(claimed) < batch:
        claimed += _followers(session, claimed, batch - len(claimed), at)
        claimed.sort(key=lambda e: e.seq)
    if claimed:
        session.execute(
            update(Event)
            .where(Event.seq.in_([e.seq for e in claimed]))
            .values(next_attempt_at=at + dt.timedelta(seconds=lease_s))
        )
    for event in claimed:
        session.expunge(event)
    return claimed


def _followers(session: Session, heads: list[Event], room: int, at: dt.datetime) -> list[Event]:
    """The pending events after each head of its resource, while they are due."""
    keys = {(e.resource_type, e.resource_id) for e in heads}
    stmt = (
        select(Event)
        .where(
            Event.state == "pending",
            Event.resource_id.in_(sorted({e.resource_id for e in heads})),
            Event.seq.not_in([e.seq for e in heads]),
        )
        .order_by(Event.seq)
        .limit(room * 2)
    )
    out: list[Event] = []
    stopped: set[tuple[str, str]] = set()
    for event in session.scalars(stmt):
        key = (event.resource_type, event.resource_id)
        if key not in keys or key in stopped:
            continue
        if event.next_attempt_at > at or len(out) >= room:
            stopped.add(key)  # not due: it and what follows wait
            continue
        out.append(event)
    return out


@dataclass(slots=True)
class Outcome:
    """What one delivery attempt of one event did: per sink, and overall
    (``delivered``: every sink that wants it has it)."""

    sinks: dict[str, dict[str, Any]] = field(default_factory=dict)
    delivered: bool = True
    error: str = ""
    # False: not tried this time (its worker ran out of lease, or a sink
    # failed earlier in the batch): no attempt is counted.
    attempted: bool = True


def sink_states(event: Event) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = orjson.loads(event.sinks or "{}")
    return states


def finish(
    session: Session,
    event: Event,
    outcome: Outcome,
    retry: Retry,
    at: dt.datetime | None = None,
) -> str:
    """Record an attempt: ``delivered``, ``pending`` (retry later) or ``dead``."""
    at = at or now()
    attempts = event.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "sinks": orjson.dumps(outcome.sinks).decode()}
    if not outcome.delivered and not outcome.attempted:
        later = at + dt.timedelta(seconds=retry.delay(event.attempts) if event.attempts else 0)
        values.update(attempts=event.attempts, state="pending", next_attempt_at=later)
    elif outcome.delivered:
        values.update(state="delivered", delivered_at=at, last_error="")
    elif attempts >= retry.max_attempts:
        values.update(state="dead", last_error=outcome.error[:255])
    else:
        later = at + dt.timedelta(seconds=retry.delay(attempts))
        values.update(state="pending", next_attempt_at=later, last_error=outcome.error[:255])
    session.execute(update(Event).where(Event.seq == event.seq).values(**values))
    return str(values["state"])


def count(session: Session, per_sink: Mapping[str, tuple[int, int]]) -> None:
    """Add (deliveries, failures) to each sink's counters."""
    if not per_sink:
        return
    stmt = dialect.insert(session, EventSinkStats)
    stmt = stmt.on_conflict_do_update(
        index_elements=["sink"],
        set_={
            "deliveries": EventSinkStats.deliveries + stmt.excluded.deliveries,
            "failures": EventSinkStats.failures + stmt.excluded.failures,
        },
    )
    rows = [
        {"sink": name, "deliveries": ok, "failures": failed}
        for name, (ok, failed) in sorted(per_sink.items())
    ]
    session.execute(stmt, rows)


def sink_counters(session: Session) -> list[tuple[str, int, int]]:
    found = session.execute(select(EventSinkStats).order_by(EventSinkStats.sink)).scalars()
    return [(s.sink, s.deliveries, s.failures) for s in found]


def prune(session: Session, retention_s: float, at: dt.datetime | None = None) -> int:
    """Delete events delivered longer ago than the retention period (their
    last attempt: a range of the ``(state, next_attempt_at)`` index)."""
    cutoff = (at or now()) - dt.timedelta(seconds=retention_s)
    result = session.execute(
        delete(Event).where(Event.state == "delivered", Event.next_attempt_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def replay(session: Session, since: dt.datetime | None = None, since_seq: int | None = None) -> int:
    """Make retained events (delivered or dead) pending again, for every sink."""
    where = [Event.state != "pending"]
    if since is not None:
        where.append(Event.created_at >= since)
    if since_seq is not None:
        where.append(Event.seq >= since_seq)
    result = session.execute(
        update(Event)
        .where(and_(*where))
        .values(state="pending", attempts=0, next_attempt_at=now(), sinks="{}", last_error="")
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class Backlog:
    pending: int
    dead: int
    oldest_pending_age_s: float


def backlog(session: Session, at: dt.datetime | None = None) -> Backlog:
    """Pending and dead counts and the oldest pending event's age (metrics)."""
    at = at or now()
    rows = session.execute(
        select(Event.state, func.count(), func.min(Event.created_at))
        .where(Event.state.in_(("pending", "dead")))
        .group_by(Event.state)
    ).all()
    counts = {state: (n, oldest) for state, n, oldest in rows}
    pending, oldest = counts.get("pending", (0, None))
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    age = (at - oldest).total_seconds() if oldest is not None else 0.0
    return Backlog(int(pending), int(counts.get("dead", (0, None))[0]), max(0.0, age))


# Pull consumers ------------------------------------------------------------------


def after_cursor(
    session: Session, scope: Scope, since: int, limit: int, resource_types: Sequence[str] = ()
) -> tuple[list[Event], bool]:
    """Events after ``since`` (a ``seq``), in order: (page, more follow).

    On PostgreSQL an event's number is drawn before its transaction commits,
    so a later number can become visible first.  Writers hold a shared
    advisory lock from their event's insert to their commit; this takes it
    exclusively for a moment, so every number drawn so far belongs to a
    committed transaction, and serves only events up to that bound: a
    consumer that moves its cursor never skips one.  A poll that finds
    nothing new takes no lock (an empty page skips nothing).
    """
    scope.require()
    stmt = select(Event).where(Event.seq > since).order_by(Event.seq).limit(limit + 1)
    if resource_types:
        stmt = stmt.where(Event.resource_type.in_(list(resource_types)))
    if dialect.is_postgres(session):
        newest = select(func.max(Event.seq))
        if (session.execute(newest).scalar() or 0) <= since:
            return [], False  # nothing new: an empty page skips nothing, no lock needed
        dialect.lock(session, OUTBOX_LOCK)
        bound = session.execute(newest).scalar()
        stmt = stmt.where(Event.seq <= (bound or 0))
    found = list(session.scalars(stmt))
    return found[:limit], len(found) > limit
