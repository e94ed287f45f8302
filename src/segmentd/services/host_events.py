"""Change events of the derived segment-host mapping (README, "Change events").

A host reaches a segment when one of its agents reports the segment's
physical network and serves its type (``host_mapping``).  The mapping is not
stored, so its changes are computed from what changed among its inputs, in
the transaction of that change, and become ``segment_host_mapping`` events:
per host at most one ``create`` (the segments it now reaches and did not)
and one ``delete`` (those it no longer reaches) per request.

* A segment created or deleted (``for_segments``): one query of the
  (host, agent type) rows on the segments' physical networks; each host
  with an agent serving a segment's type gains or loses it.  A segment
  without a physical network (VXLAN, GRE, Geneve, local) is mapped to no
  host and changes nothing.  Hosts are never read one by one: a segment on
  a physnet of many hosts costs one read and one multi-row insert, whatever
  the number of hosts.
* A host's agents changed (a report, an agent deleted; ``for_hosts``): the
  hosts' (agent type, physnet) pairs read before and after the write; only
  where they differ are the segments on the differing physnets read (one
  query), and each host's reach of them compared.  A heartbeat or an
  unchanged report reads nothing more.

Concurrency (PostgreSQL): a report and a segment create on the same physnet
that run at once do not see each other's uncommitted rows.  So each takes
the advisory locks of the physnets whose mapping it changes, to its commit,
before reading the other side (hosts for a segment, segments for a report):
the later one reads after the earlier one committed, and the two events
together say what the mapping became.  The locks are taken before the
request writes any event row (the outbox's shared lock comes after them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from segmentd.db import dialect
from segmentd.db.models import AgentPhysnet, Segment
from segmentd.db.snapshot import PreparedRead, session_rows
from segmentd.services.events import Change
from segmentd.services.host_mapping import AGENT_TYPES

RESOURCE_TYPE = "segment_host_mapping"

# A segment as the mapping sees it: (id, physical_network, network_type).
SegmentReach = tuple[str, str | None, str]
# Per host, its agents' (agent_type, physical_network) pairs.
HostPairs = dict[str, frozenset[tuple[str, str]]]

_NONE: frozenset[tuple[str, str]] = frozenset()

# Statements built once (their SQL compiles once and is cached by identity).
_AP = AgentPhysnet
# Every segment created or deleted on a physnet reads this: prepared, on the
# session's connection (a Session round trip cost more than the rest of the
# events of such a write; bench/RESULTS-events.md).
_ON_PHYSNET = PreparedRead(
    select(_AP.host, _AP.agent_type).where(_AP.physical_network == bindparam("physnet"))
)
_PAIRS_OF = select(_AP.host, _AP.agent_type, _AP.physical_network).where(
    _AP.host.in_(bindparam("hosts", expanding=True))
)
_SEGMENTS_ON = select(Segment.id, Segment.physical_network, Segment.network_type).where(
    Segment.physical_network.in_(bindparam("physnets", expanding=True))
)


@dataclass(frozen=True, slots=True)
class Reach:
    """What a resource contributes to the mapping: its segments, or its host's agents."""

    segments: tuple[SegmentReach, ...] = ()
    hosts: tuple[str, ...] = ()


def serves(agent_type: str, network_type: str) -> bool:
    """``host_mapping.served``, in Python."""
    rule = AGENT_TYPES.get(agent_type)
    return rule is not None and network_type in rule.network_types


def _lock(session: Session, physnets: Iterable[str]) -> None:
    dialect.lock(session, *(f"segmentd.physnet:{p}" for p in sorted(set(physnets))))


def _changes(gained: dict[str, set[str]], lost: dict[str, set[str]]) -> list[Change]:
    out: list[Change] = []
    for host in sorted(set(gained) | set(lost)):
        if gained.get(host):
            after = {"host": host, "segment_ids": sorted(gained[host])}
            out.append((RESOURCE_TYPE, host, "create", None, after))
        if lost.get(host):
            before = {"host": host, "segment_ids": sorted(lost[host])}
            out.append((RESOURCE_TYPE, host, "delete", before, None))
    return out


def for_segments(
    session: Session, added: Sequence[SegmentReach], removed: Sequence[SegmentReach]
) -> list[Change]:
    """The events of segments created (``added``) and deleted (``removed``) in this
    transaction: the hosts on their physnets that serve their types."""
    mapped = [s for s in (*added, *removed) if s[1] is not None]
    if not mapped:
        return []
    physnets = sorted({p for _, p, _ in mapped if p is not None})
    _lock(session, physnets)
    on_physnet: dict[str, list[tuple[str, str]]] = {
        physnet: [(host, agent_type) for host, agent_type in rows]
        for physnet in physnets
        if (rows := session_rows(session, _ON_PHYSNET, {"physnet": physnet}))
    }
    gained: dict[str, set[str]] = defaultdict(set)
    lost: dict[str, set[str]] = defaultdict(set)
    for found, segments in ((gained, added), (lost, removed)):
        for segment_id, segment_physnet, network_type in segments:
            for host, agent_type in on_physnet.get(segment_physnet or "", ()):
                if serves(agent_type, network_type):
                    found[host].add(segment_id)
    return _changes(gained, lost)


def host_pairs(session: Session, hosts: Sequence[str]) -> HostPairs:
    """The hosts' (agent type, physnet) pairs: the mapping's inputs on their side."""
    found: dict[str, set[tuple[str, str]]] = {h: set() for h in hosts}
    if hosts:
        rows = session.execute(_PAIRS_OF, {"hosts": sorted(set(hosts))})
        for host, agent_type, physnet in rows:
            found[host].add((agent_type, physnet))
    return {h: frozenset(pairs) for h, pairs in found.items()}


def for_hosts(session: Session, before: HostPairs, after: HostPairs) -> list[Change]:
    """The events of hosts whose agents' pairs went from ``before`` to ``after``."""
    differing: dict[str, set[str]] = {}
    for host in sorted(set(before) | set(after)):
        old, new = before.get(host, _NONE), after.get(host, _NONE)
        if old != new:
            differing[host] = {physnet for _, physnet in old ^ new}
    if not differing:
        return []
    physnets = sorted(set().union(*differing.values()))
    _lock(session, physnets)
    on_physnet: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for segment_id, physnet, network_type in session.execute(_SEGMENTS_ON, {"physnets": physnets}):
        on_physnet[physnet or ""].append((segment_id, network_type))
    gained: dict[str, set[str]] = defaultdict(set)
    lost: dict[str, set[str]] = defaultdict(set)
    for host, changed in differing.items():
        old_types = _types_by_physnet(before.get(host, _NONE))
        new_types = _types_by_physnet(after.get(host, _NONE))
        for physnet in changed:
            for segment_id, network_type in on_physnet.get(physnet, ()):
                had = any(serves(t, network_type) for t in old_types.get(physnet, ()))
                has = any(serves(t, network_type) for t in new_types.get(physnet, ()))
                if has and not had:
                    gained[host].add(segment_id)
                elif had and not has:
                    lost[host].add(segment_id)
    return _changes(gained, lost)


def _types_by_physnet(pairs: frozenset[tuple[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for agent_type, physnet in pairs:
        out[physnet].add(agent_type)
    return out
