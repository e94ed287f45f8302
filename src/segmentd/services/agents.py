"""Agents: state reports (single and bulk) and Neutron's agent resource.

A report carries the host's full state and is reconciled idempotently:

* one indexed read of the reporting agents (``host IN (...)``, served by the
  unique index on ``(host, agent_type)``) classifies every report;
* **unchanged** (same configuration fingerprint, no ``start_flag``) and a
  heartbeat younger than ``heartbeat_write_interval``: no write at all;
* **unchanged** but the stored heartbeat is older: one ``UPDATE`` of the
  heartbeat for all such agents together;
* **new or changed** (or ``start_flag``, which forces a full resync as it does
  in Neutron): an ``INSERT ... ON CONFLICT DO UPDATE`` of the agents, the
  agents' physical networks replaced (a delete and one multi-row insert); the
  segment-host mapping is derived from those rows (``services.host_mapping``).

So a steady agent costs one read per report, and one small write every
``heartbeat_write_interval`` seconds, instead of a write per report.

With change events on, a new or changed agent also costs one read of its
views, one read of its host's physnets before the write (the pairs after it
are computed, not read) and, only when a host's physnets changed, one read of
the segments on those physnets: then ``segment_host_mapping`` events say what
each host gained or lost (``services.host_events``), in the same insert as the
agent events.  A heartbeat costs nothing more.

Everything that needs no database (bounds, normalisation, fingerprints, the
physnet rows as JSON) is computed by ``prepare`` before the first statement:
on SQLite the transaction holds the one write lock from its first statement
to its commit, and every other write waits for it.  Inside it, each table
gets one statement: the agents one batched upsert, their physnets one
``INSERT ... SELECT`` that the database unpacks from a single JSON parameter
(no per-row work in Python while the lock is held).  A report is bounded by
``max_agents_per_report`` agents of ``max_physnets_per_agent`` physical
networks each.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import String, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from segmentd import errors
from segmentd.authz import Scope
from segmentd.db import dialect
from segmentd.db.base import Page, utcnow
from segmentd.db.models import Agent, AgentPhysnet, new_id
from segmentd.services import events, host_events
from segmentd.services.host_mapping import AGENT_TYPES
from segmentd.services.query import Filter, ListQuery, QuerySpec, list_page, parse_bool, parse_uuid

LIST_SPEC = QuerySpec(
    filters={
        "id": Filter(Agent.id, parse_uuid),
        "agent_type": Filter(Agent.agent_type),
        "binary": Filter(Agent.binary),
        "host": Filter(Agent.host),
        "topic": Filter(Agent.topic),
        "admin_state_up": Filter(Agent.admin_state_up, parse_bool),
        "description": Filter(Agent.description),
    },
    sorts={
        "id": Agent.id,
        "agent_type": Agent.agent_type,
        "binary": Agent.binary,
        "host": Agent.host,
        "admin_state_up": Agent.admin_state_up,
        "heartbeat_timestamp": Agent.heartbeat_timestamp,
        "started_at": Agent.started_at,
        "created_at": Agent.created_at,
    },
    missing=lambda m: errors.AgentNotFound(id=m),
)


@dataclass(frozen=True, slots=True)
class AgentReport:
    """One agent's full state, shape-checked by the API schema."""

    host: str
    agent_type: str
    binary: str
    topic: str | None = None
    # mapping key -> physnet -> device name, or device names for device_mappings
    configurations: Mapping[str, Mapping[str, str | list[str]]] = field(default_factory=dict)
    start_flag: bool = False
    # The overlay types the agent terminates (OVS and Linux bridge agents
    # report them); kept in its configurations, no bearing on the mapping.
    tunnel_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportPolicy:
    max_agents: int
    heartbeat_write_interval: int
    max_physnets: int


@dataclass(frozen=True, slots=True)
class ReportResult:
    id: str
    host: str
    agent_type: str
    result: str  # created | updated | heartbeat | unchanged


@dataclass(frozen=True, slots=True)
class _Normalized:
    report: AgentReport
    configurations: dict[str, Any]
    physnets: frozenset[str]
    fingerprint: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.report.host, self.report.agent_type)


def normalize(report: AgentReport, max_physnets: int) -> _Normalized:
    """Apply the per-agent-type rules and fingerprint the result."""
    rule = AGENT_TYPES.get(report.agent_type)
    if rule is None:
        raise errors.InvalidInput(error_message=f"unknown agent type '{report.agent_type}'")
    configs: dict[str, Any] = {}
    for key in sorted(report.configurations):
        if key not in rule.mapping_keys:
            raise errors.InvalidInput(
                error_message=f"agent type '{report.agent_type}' does not report '{key}'"
            )
        configs[key] = {
            physnet: sorted(set(dev)) if isinstance(dev, list) else dev
            for physnet, dev in sorted(report.configurations[key].items())
        }
    physnets = frozenset(p for mapping in configs.values() for p in mapping)
    if len(physnets) > max_physnets:
        raise errors.TooManyPhysicalNetworks(maximum=max_physnets, host=report.host)
    if report.tunnel_types:
        configs["tunnel_types"] = sorted(set(report.tunnel_types))
    canonical = json.dumps(
        [report.agent_type, report.binary, report.topic, configs],
        sort_keys=True,
        separators=(",", ":"),
    )
    return _Normalized(report, configs, physnets, hashlib.sha256(canonical.encode()).hexdigest())


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A checked report and its rows, built before the transaction writes."""

    items: list[_Normalized]  # in request order
    # Per agent, its physnet rows as JSON array elements: [host, agent_type, physnet].
    physnet_rows: dict[tuple[str, str], str]


def prepare(reports: Sequence[AgentReport], policy: ReportPolicy) -> _Prepared:
    """Bounds, normalisation, fingerprints and rows: all the work that needs no database."""
    if len(reports) > policy.max_agents:
        raise errors.TooManyAgents(maximum=policy.max_agents)
    items = [normalize(r, policy.max_physnets) for r in reports]
    keys = {n.key for n in items}
    if len(keys) != len(items):
        raise errors.InvalidInput(error_message="an agent appears twice in one report")
    rows = {n.key: _json_rows(n.key, sorted(n.physnets)) for n in items}
    return _Prepared(items, rows)


def _json_rows(key: tuple[str, str], physnets: list[str]) -> str:
    """``[host, agent_type, physnet]`` arrays, comma-separated (see ``_insert_physnets``)."""
    host, agent_type = key
    return orjson.dumps([[host, agent_type, p] for p in physnets]).decode()[1:-1]


def report_state(
    session: Session,
    scope: Scope,
    reports: Sequence[AgentReport],
    policy: ReportPolicy,
    event_view: Callable[[Agent], dict[str, Any]] | None = None,
    request_id: str = "",
) -> list[ReportResult]:
    """Reconcile one or many agent reports in the caller's transaction.

    Host names and shapes were checked by the API schema; the per-type
    rules are checked here (``prepare``, before anything is written).
    ``event_view``: a new or changed agent (never a heartbeat) is a change
    event with its views before and after, in this transaction."""
    scope.require()
    prepared = prepare(reports, policy)
    if not prepared.items:
        return []
    now = utcnow()
    stored = _stored(session, sorted({n.key[0] for n in prepared.items}))
    fresh_after = now - dt.timedelta(seconds=policy.heartbeat_write_interval)

    results: dict[tuple[str, str], ReportResult] = {}
    touch: list[str] = []
    changed: list[_Normalized] = []
    for item in prepared.items:
        row = stored.get(item.key)
        if row is None or row.config_hash != item.fingerprint or item.report.start_flag:
            changed.append(item)
            continue
        if row.heartbeat_timestamp > fresh_after:
            results[item.key] = ReportResult(row.id, *item.key, "unchanged")
        else:
            touch.append(row.id)
            results[item.key] = ReportResult(row.id, *item.key, "heartbeat")
    if touch:
        session.execute(
            update(Agent).where(Agent.id.in_(sorted(touch))).values(heartbeat_timestamp=now)
        )
    if changed:
        old_ids = [stored[n.key].id for n in changed if n.key in stored]
        before = _views(session, old_ids, event_view) if event_view else {}
        # The changed hosts' side of the mapping, before and after (events only).
        hosts = sorted({n.key[0] for n in changed})
        pairs_before = host_events.host_pairs(session, hosts) if event_view else {}
        ids = _write_changed(session, changed, prepared.physnet_rows, now)
        for item in changed:
            result = "updated" if item.key in stored else "created"
            results[item.key] = ReportResult(ids[item.key], *item.key, result)
        if event_view is not None:
            new_ids = sorted(ids[n.key] for n in changed)
            after = _views(session, new_ids, event_view)
            pairs_after = _pairs_after(pairs_before, changed)
            # Locks the changed physnets before the event rows (host_events).
            derived = host_events.for_hosts(session, pairs_before, pairs_after)
            agent_changes: list[events.Change] = [
                (
                    "agent",
                    agent_id,
                    "update" if agent_id in before else "create",
                    before.get(agent_id),
                    after[agent_id],
                )
                for agent_id in new_ids
                if before.get(agent_id) != after[agent_id]
            ]
            events.record_many(session, [*agent_changes, *derived], request_id)
    return [results[n.key] for n in prepared.items]


def _pairs_after(
    before: host_events.HostPairs, changed: list[_Normalized]
) -> host_events.HostPairs:
    """The hosts' pairs once ``changed`` agents replaced theirs (no read: a
    report replaces its agents' physnets, the host's other agents keep theirs)."""
    replaced: dict[str, set[str]] = {}
    added: dict[str, set[tuple[str, str]]] = {}
    for item in changed:
        host, agent_type = item.key
        replaced.setdefault(host, set()).add(agent_type)
        added.setdefault(host, set()).update((agent_type, p) for p in item.physnets)
    return {
        host: frozenset(
            {(t, p) for t, p in pairs if t not in replaced.get(host, set())}
            | added.get(host, set())
        )
        for host, pairs in before.items()
    }


def _views(
    session: Session, ids: list[str], view: Callable[[Agent], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The agents' event views, read afresh (only for new or changed agents)."""
    if not ids:
        return {}
    stmt = select(Agent).where(Agent.id.in_(ids)).execution_options(populate_existing=True)
    return {agent.id: view(agent) for agent in session.scalars(stmt)}


def _stored(session: Session, hosts: list[str]) -> dict[tuple[str, str], Any]:
    """The one indexed read every report needs."""
    stmt = select(
        Agent.id, Agent.host, Agent.agent_type, Agent.config_hash, Agent.heartbeat_timestamp
    ).where(Agent.host.in_(hosts))
    return {(r.host, r.agent_type): r for r in session.execute(stmt)}


def _write_changed(
    session: Session,
    changed: list[_Normalized],
    physnet_rows: dict[tuple[str, str], str],
    now: dt.datetime,
) -> dict[tuple[str, str], str]:
    changed = sorted(changed, key=lambda n: n.key)  # one lock order
    ids = _upsert_agents(session, changed, now)
    # The physnets are the mapping's only stored input (host_mapping derives
    # the rest), so replacing them is the whole reconciliation.
    agent_ids = [ids[n.key] for n in changed]
    session.execute(delete(AgentPhysnet).where(AgentPhysnet.agent_id.in_(agent_ids)))
    rows = "[" + ",".join(filter(None, (physnet_rows[n.key] for n in changed))) + "]"
    if rows != "[]":
        session.execute(_insert_physnets(session, rows))
    return ids


def _insert_physnets(session: Session, rows_json: str) -> Any:
    """``INSERT ... SELECT`` of every physnet row of the report, from one JSON parameter.

    Up to max_agents x max_physnets rows: as a JSON array the database
    unpacks them itself and finds each agent's id by the (host, agent_type)
    index, so the transaction spends nothing per row in Python (an
    ``executemany`` spent more in SQLAlchemy's parameter handling than
    SQLite did inserting).
    """
    elements = dialect.json_array_elements(session, bindparam("rows", rows_json, type_=String))
    host, agent_type, physnet = (
        elements.c.value.op("->>", return_type=String)(i) for i in range(3)
    )
    source = select(Agent.id, physnet, Agent.host, Agent.agent_type).join_from(
        elements, Agent, (Agent.host == host) & (Agent.agent_type == agent_type)
    )
    columns = ["agent_id", "physical_network", "host", "agent_type"]
    return insert(AgentPhysnet).from_select(columns, source)


def _upsert_agents(
    session: Session, changed: list[_Normalized], now: dt.datetime
) -> dict[tuple[str, str], str]:
    """Insert or update the agents: one batched upsert per start_flag value."""
    ids: dict[tuple[str, str], str] = {}
    for restarted in (False, True):
        rows = [
            {
                "id": new_id(),
                "host": n.report.host,
                "agent_type": n.report.agent_type,
                "binary": n.report.binary,
                "topic": n.report.topic,
                "configurations": n.configurations,
                "config_hash": n.fingerprint,
                "admin_state_up": True,
                "description": "",
                "heartbeat_timestamp": now,
                "started_at": now,
                "created_at": now,
            }
            for n in changed
            if n.report.start_flag is restarted
        ]
        if not rows:
            continue
        stmt = dialect.insert(session, Agent)
        updated = ["binary", "topic", "configurations", "config_hash", "heartbeat_timestamp"]
        if restarted:
            updated.append("started_at")
        stmt = stmt.on_conflict_do_update(
            index_elements=["host", "agent_type"],
            set_={name: stmt.excluded[name] for name in updated},
        ).returning(Agent.id, Agent.host, Agent.agent_type)
        # executemany with RETURNING: batched into multi-row statements.
        for row in session.execute(stmt, rows):
            ids[(row.host, row.agent_type)] = row.id
    return ids


# The agent resource ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentUpdate:
    admin_state_up: bool | None = None
    description: str | None = None


def get(session: Session, scope: Scope, agent_id: str, lock: bool = False) -> Agent:
    """The agent, if ``scope`` sees agents (they have no project); else a 404."""
    if not scope.unrestricted():
        raise errors.AgentNotFound(id=agent_id)
    stmt = select(Agent).where(Agent.id == agent_id)
    agent = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if agent is None or not scope.allows(target(agent)):
        raise errors.AgentNotFound(id=agent_id)
    return agent


def reach(agent: Agent) -> host_events.Reach:
    """An agent's physnets are its host's side of the segment-host mapping."""
    return host_events.Reach(hosts=(agent.host,))


def target(agent: Agent) -> dict[str, object]:
    return {"id": agent.id, "host": agent.host, "agent_type": agent.agent_type}


def list_(session: Session, scope: Scope, query: ListQuery) -> Page:
    if not scope.unrestricted():
        return Page([], False)
    return list_page(session, scope.principal, select(Agent), LIST_SPEC, query, Agent.id)


def update_agent(session: Session, agent: Agent, changes: AgentUpdate) -> Agent:
    if changes.admin_state_up is not None:
        agent.admin_state_up = changes.admin_state_up
    if changes.description is not None:
        agent.description = changes.description
    session.flush()
    return agent


def delete_agent(session: Session, agent: Agent) -> None:
    """Delete an agent; the mappings only it justified go with its physnets (cascade)."""
    session.execute(delete(Agent).where(Agent.id == agent.id))


def is_alive(agent: Agent, now: dt.datetime, down_time: int) -> bool:
    return (now - agent.heartbeat_timestamp).total_seconds() <= down_time
