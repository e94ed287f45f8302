"""The segment-host mapping: set-based reconciliation and bounded admin queries.

A host is mapped to every segment whose ``physical_network`` one of its
agents reports, provided that agent's type can serve the segment's network
type.  Every write here is one set-based statement over all the hosts or
segments concerned (``INSERT ... SELECT ... ON CONFLICT DO NOTHING``,
``DELETE ... WHERE NOT EXISTS``), so the cost grows with the rows that change,
not with round trips, and concurrent duplicate work is harmless.

Races between transactions that change *which* hosts report a physical
network (agent reports, agent deletion) and transactions that add a segment on
it are closed on PostgreSQL with transaction-scoped advisory locks keyed by
the physical network: reports take them shared, segment creation exclusive.
SQLite needs none: its writers are serialized by ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, literal, or_, select, text, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from segmentd.db.models import AgentPhysnet, Segment, SegmentHostMapping


@dataclass(frozen=True, slots=True)
class AgentTypeRule:
    """What an L2 agent type reports and which physnet-based types it serves."""

    mapping_keys: frozenset[str]
    network_types: frozenset[str]


# Neutron's mechanism drivers: which configuration keys each agent's
# ``get_mappings`` reads, and ``supported_network_types`` restricted to the
# types that carry a physical network (tunnels are not host-mapped).
AGENT_TYPES: dict[str, AgentTypeRule] = {
    "Open vSwitch agent": AgentTypeRule(
        frozenset({"bridge_mappings"}), frozenset({"flat", "vlan"})
    ),
    "Linux bridge agent": AgentTypeRule(
        frozenset({"interface_mappings", "bridge_mappings"}), frozenset({"flat", "vlan"})
    ),
    "NIC Switch agent": AgentTypeRule(
        frozenset({"device_mappings"}), frozenset({"flat", "vlan"})
    ),
    "OVN Controller agent": AgentTypeRule(
        frozenset({"bridge_mappings"}), frozenset({"flat", "vlan"})
    ),
}

def agent_types_serving(network_type: str) -> list[str]:
    return sorted(t for t, rule in AGENT_TYPES.items() if network_type in rule.network_types)


# Only these types carry a physical network (the type drivers refuse one elsewhere).
PHYSNET_TYPES = frozenset({"flat", "vlan"})


def served(agent_type: Any, network_type: Any) -> ColumnElement[bool]:
    """SQL: the agent type can serve the segment's network type.

    When every agent type serves every physnet-carrying type (today's table),
    the condition is always true and is left out, so the planner joins
    segments by ``physical_network`` alone.
    """
    if all(rule.network_types >= PHYSNET_TYPES for rule in AGENT_TYPES.values()):
        return true()
    by_types: dict[frozenset[str], list[str]] = {}
    for name, rule in AGENT_TYPES.items():
        by_types.setdefault(rule.network_types, []).append(name)
    return or_(
        *(
            and_(agent_type.in_(sorted(names)), network_type.in_(sorted(types)))
            for types, names in sorted(by_types.items(), key=lambda kv: sorted(kv[0]))
        )
    )


def dialect_insert(session: Session, table: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# Locking (PostgreSQL) ----------------------------------------------------------------

_LOCK_NAMESPACE = b"segmentd:physnet:"


def _lock_key(physnet: str) -> int:
    digest = hashlib.sha256(_LOCK_NAMESPACE + physnet.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_physnets(session: Session, physnets: Iterable[str], *, exclusive: bool) -> None:
    """Transaction-scoped advisory locks, taken in one sorted statement."""
    keys = sorted({_lock_key(p) for p in physnets})
    if not keys or not is_postgres(session):
        return
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    # unnest yields in array order, so the locks are taken in sorted order
    # and two transactions can never wait on each other's physnet locks.
    stmt = text(f"SELECT count({fn}(k)) FROM unnest(CAST(:keys AS bigint[])) AS k")  # noqa: S608 - fn is one of two constants
    session.execute(stmt, {"keys": keys})


# Reconciliation ----------------------------------------------------------------------


def _desired(hosts_filter: ColumnElement[bool]) -> Any:
    """(segment_id, host) pairs the mapping rule yields for the selected hosts.

    Not DISTINCT: two agents of one host reporting the same physnet yield a
    pair twice, which ``ON CONFLICT DO NOTHING`` absorbs more cheaply than a sort.
    """
    ap = AgentPhysnet
    return (
        select(Segment.id, ap.host)
        .select_from(ap)
        .join(Segment, Segment.physical_network == ap.physical_network)
        .where(hosts_filter, served(ap.agent_type, Segment.network_type))
    )


def reconcile_hosts(session: Session, hosts: Sequence[str]) -> None:
    """Make the mapping of ``hosts`` exactly what their agents report: two statements."""
    if not hosts:
        return
    host_list = sorted(set(hosts))
    m, ap = SegmentHostMapping, AgentPhysnet
    supported = exists(
        select(1)
        .select_from(ap)
        .join(Segment, Segment.physical_network == ap.physical_network)
        .where(
            ap.host == m.host,
            Segment.id == m.segment_id,
            served(ap.agent_type, Segment.network_type),
        )
    )
    session.execute(delete(m).where(m.host.in_(host_list), ~supported))
    missing = dialect_insert(session, m).from_select(
        ["segment_id", "host"], _desired(ap.host.in_(host_list))
    )
    session.execute(missing.on_conflict_do_nothing(index_elements=["segment_id", "host"]))


def map_new_segment(session: Session, segment: Segment) -> None:
    """Map a just-created segment to every host already reporting its physnet."""
    physnet = segment.physical_network
    types = agent_types_serving(segment.network_type)
    if physnet is None or not types:
        return
    lock_physnets(session, [physnet], exclusive=True)
    hosts = select(literal(segment.id), AgentPhysnet.host).where(
        AgentPhysnet.physical_network == physnet, AgentPhysnet.agent_type.in_(types)
    )
    stmt = dialect_insert(session, SegmentHostMapping).from_select(["segment_id", "host"], hosts)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["segment_id", "host"]))
