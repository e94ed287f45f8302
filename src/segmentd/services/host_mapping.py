"""The segment-host mapping, derived from what agents report.

A host is mapped to every segment whose ``physical_network`` one of its
agents reports, provided that agent's type can serve the segment's network
type.  The mapping is not stored: it is the join of the agents' reported
physical networks (``agent_physnets``, a few rows per host) with the
segments, evaluated by each query through indexes on both sides.

The incumbent (and this service's first version) materialised it as one row
per (segment, host) pair: 10,000 hosts on physnets of 40 segments each is
480,000 rows to insert on a full sync (9 s on SQLite, 14-20 s on
PostgreSQL).  Derived, a full sync writes only the reported physnets, a new
segment or a deleted agent needs no mapping writes at all, the mapping can
never drift from the reports, and there is nothing for concurrent reports
and segment creations to race on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, true

from segmentd.db.models import AgentPhysnet, Segment

# Host names: RFC 1123 labels and dots, plus the underscore Neutron
# tolerates; at most 255 characters.  The one rule for a host name, in a
# report, a path or a page marker.
HOST_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_.\-]{0,253}[A-Za-z0-9])?$"
_HOST_RE = re.compile(HOST_PATTERN)


def parse_host(value: str) -> str:
    if not _HOST_RE.match(value):
        raise ValueError("not a host name")
    return value


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
    "NIC Switch agent": AgentTypeRule(frozenset({"device_mappings"}), frozenset({"flat", "vlan"})),
    "OVN Controller agent": AgentTypeRule(
        frozenset({"bridge_mappings"}), frozenset({"flat", "vlan"})
    ),
}


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


# The mapping -------------------------------------------------------------------------


def reachable_segments(host: Any) -> Select[Any]:
    """Ids of the segments ``host`` (a value or a correlated column) is mapped to."""
    ap = AgentPhysnet
    return (
        select(Segment.id)
        .select_from(ap)
        .join(Segment, Segment.physical_network == ap.physical_network)
        .where(ap.host == host, served(ap.agent_type, Segment.network_type))
    )


def on_physnets_of(host: Any) -> ColumnElement[bool]:
    """SQL on ``segments``: the segment is on a physnet ``host`` reports, to
    an agent that serves its type (``reachable_segments``, as a condition)."""
    ap = AgentPhysnet
    physnets = select(ap.physical_network).where(
        ap.host == host, served(ap.agent_type, Segment.network_type)
    )
    return Segment.physical_network.in_(physnets)


def hosts_reaching(segment_id: Any) -> Select[Any]:
    """Host names mapped to ``segment_id``: one row per (host, agent), not distinct."""
    ap = AgentPhysnet
    return (
        select(ap.host)
        .select_from(Segment)
        .join(ap, ap.physical_network == Segment.physical_network)
        .where(Segment.id == segment_id, served(ap.agent_type, Segment.network_type))
    )


def mapped() -> ColumnElement[bool]:
    """SQL, correlated to ``agent_physnets``: the reported physnet carries a segment it serves."""
    ap = AgentPhysnet
    return exists(
        select(1).where(
            Segment.physical_network == ap.physical_network,
            served(ap.agent_type, Segment.network_type),
        )
    )
