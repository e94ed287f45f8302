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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from segmentd import errors
from segmentd.authz import Scope
from segmentd.db import dialect
from segmentd.db.base import Page, utcnow
from segmentd.db.models import Agent, AgentPhysnet, new_id
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


@dataclass(frozen=True, slots=True)
class ReportPolicy:
    max_agents: int
    heartbeat_write_interval: int


@dataclass(frozen=True, slots=True)
class ReportResult:
    id: str
    host: str
    agent_type: str
    result: str  # created | updated | heartbeat | unchanged


@dataclass(frozen=True, slots=True)
class _Normalized:
    report: AgentReport
    configurations: dict[str, dict[str, Any]]
    physnets: frozenset[str]
    fingerprint: str


def normalize(report: AgentReport) -> _Normalized:
    """Apply the per-agent-type rules and fingerprint the result."""
    rule = AGENT_TYPES.get(report.agent_type)
    if rule is None:
        raise errors.InvalidInput(error_message=f"unknown agent type '{report.agent_type}'")
    configs: dict[str, dict[str, Any]] = {}
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
    canonical = json.dumps(
        [report.agent_type, report.binary, report.topic, configs],
        sort_keys=True,
        separators=(",", ":"),
    )
    return _Normalized(report, configs, physnets, hashlib.sha256(canonical.encode()).hexdigest())


def report_state(
    session: Session,
    scope: Scope,
    reports: Sequence[AgentReport],
    policy: ReportPolicy,
) -> list[ReportResult]:
    """Reconcile one or many agent reports in the caller's transaction.

    Host names and shapes were checked by the API schema; the per-type
    rules are checked here."""
    scope.require()
    if len(reports) > policy.max_agents:
        raise errors.TooManyAgents(maximum=policy.max_agents)
    items = [normalize(r) for r in reports]
    keys = [(n.report.host, n.report.agent_type) for n in items]
    if len(set(keys)) != len(keys):
        raise errors.InvalidInput(error_message="an agent appears twice in one report")
    if not items:
        return []
    now = utcnow()
    stored = _stored(session, sorted({k[0] for k in keys}))
    fresh_after = now - dt.timedelta(seconds=policy.heartbeat_write_interval)

    results: dict[tuple[str, str], ReportResult] = {}
    touch: list[str] = []
    changed: list[_Normalized] = []
    for item, key in zip(items, keys, strict=True):
        row = stored.get(key)
        if row is None or row.config_hash != item.fingerprint or item.report.start_flag:
            changed.append(item)
            continue
        if row.heartbeat_timestamp > fresh_after:
            results[key] = ReportResult(row.id, *key, "unchanged")
        else:
            touch.append(row.id)
            results[key] = ReportResult(row.id, *key, "heartbeat")
    if touch:
        session.execute(
            update(Agent).where(Agent.id.in_(sorted(touch))).values(heartbeat_timestamp=now)
        )
    if changed:
        for item, agent_id in _write_changed(session, changed, now):
            key = (item.report.host, item.report.agent_type)
            results[key] = ReportResult(agent_id, *key, "updated" if key in stored else "created")
    return [results[k] for k in keys]


def _stored(session: Session, hosts: list[str]) -> dict[tuple[str, str], Any]:
    """The one indexed read every report needs."""
    stmt = select(
        Agent.id, Agent.host, Agent.agent_type, Agent.config_hash, Agent.heartbeat_timestamp
    ).where(Agent.host.in_(hosts))
    return {(r.host, r.agent_type): r for r in session.execute(stmt)}


def _write_changed(
    session: Session,
    changed: list[_Normalized],
    now: dt.datetime,
) -> list[tuple[_Normalized, str]]:
    changed.sort(key=lambda n: (n.report.host, n.report.agent_type))  # one lock order
    ids = _upsert_agents(session, changed, now)
    agent_ids = [ids[(n.report.host, n.report.agent_type)] for n in changed]
    # The physnets are the mapping's only stored input (host_mapping derives
    # the rest), so replacing them is the whole reconciliation.
    session.execute(delete(AgentPhysnet).where(AgentPhysnet.agent_id.in_(agent_ids)))
    new_rows = [
        {
            "agent_id": agent_id,
            "physical_network": physnet,
            "host": item.report.host,
            "agent_type": item.report.agent_type,
        }
        for item, agent_id in zip(changed, agent_ids, strict=True)
        for physnet in sorted(item.physnets)
    ]
    if new_rows:
        # executemany: SQLAlchemy batches it into multi-row INSERTs ("insertmanyvalues").
        stmt = dialect.insert(session, AgentPhysnet)
        session.execute(
            stmt.on_conflict_do_nothing(index_elements=["agent_id", "physical_network"]), new_rows
        )
    return list(zip(changed, agent_ids, strict=True))


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
