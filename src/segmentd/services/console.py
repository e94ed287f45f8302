"""What the web console shows beyond the API's lists: counts and pool pictures.

Every query is bounded: counts are single ``count(*)`` statements, a VLAN
pool's picture reads at most its 4094 segments, a tunnel pool's one ordered
column of segmentation IDs (one query per pool), and the ranges are read
once, at most ``max_ranges`` of them.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.orm import Session

from segmentd.authz import Scope
from segmentd.config import VLAN_ID_LIMITS
from segmentd.db.models import Agent, AgentPhysnet, Network, NetworkSegmentRange, Segment
from segmentd.services import host_mapping
from segmentd.services.usage import merge

Range = NetworkSegmentRange
BAR_BUCKETS = 100
FREE_RUNS = 5


def count_networks(session: Session, scope: Scope) -> int:
    stmt = select(func.count()).select_from(Network)
    return int(session.scalar(stmt.where(scope.where(Network.project_id, Network.shared))) or 0)


def count_segments(session: Session, scope: Scope) -> int | None:
    """None: the scope may not see segments (they have no project: all or none)."""
    if not scope.unrestricted():
        return None
    return int(session.scalar(select(func.count()).select_from(Segment)) or 0)


def count_hosts(session: Session, scope: Scope) -> int | None:
    if not scope.unrestricted():
        return None
    stmt = select(func.count(distinct(AgentPhysnet.host))).where(host_mapping.mapped())
    return int(session.scalar(stmt) or 0)


def count_agents(
    session: Session, scope: Scope, now: dt.datetime, down_time: int
) -> tuple[int, int] | None:
    """(alive, dead), or None when the scope may not see agents."""
    if not scope.unrestricted():
        return None
    since = now - dt.timedelta(seconds=down_time)
    total = int(session.scalar(select(func.count()).select_from(Agent)) or 0)
    alive = select(func.count()).select_from(Agent).where(Agent.heartbeat_timestamp >= since)
    up = int(session.scalar(alive) or 0)
    return up, int(total) - up


def host_physnets(session: Session, host: str) -> list[str]:
    """The physical networks ``host``'s agents report (its few mapping rows)."""
    stmt = (
        select(AgentPhysnet.physical_network)
        .where(AgentPhysnet.host == host)
        .distinct()
        .order_by(AgentPhysnet.physical_network)
    )
    return list(session.scalars(stmt))


@dataclass
class Pool:
    """One (type, physical network) pool: its ranges and what is used in them."""

    network_type: str
    physical_network: str | None
    ranges: list[Range] = field(default_factory=list)
    size: int = 0
    used: int = 0
    # VLAN: one cell per ID 1-4094: (id, state, network id or None, title).
    cells: list[tuple[int, str, str | None, str]] = field(default_factory=list)
    # Tunnels: fill per bucket (0-1) over [low, high], and the largest free runs.
    buckets: list[float] = field(default_factory=list)
    low: int = 0
    high: int = 0
    free_runs: list[tuple[int, int]] = field(default_factory=list)

    @property
    def free(self) -> int:
        return self.size - self.used

    @property
    def key(self) -> str:
        return f"{self.network_type}:{self.physical_network or ''}"


def pools(session: Session, scope: Scope, max_ranges: int = 10_000) -> list[Pool]:
    """Every pool with its ranges (one query); pictures are drawn by ``draw``."""
    if not scope.unrestricted():
        return []
    stmt = (
        select(Range)
        .order_by(Range.network_type, Range.physical_network, Range.minimum, Range.id)
        .limit(max_ranges)
    )
    found: dict[tuple[str, str | None], Pool] = {}
    for row in session.scalars(stmt):
        key = (row.network_type, row.physical_network)
        found.setdefault(key, Pool(row.network_type, row.physical_network)).ranges.append(row)
    # VLAN pools first: theirs is the picture operators look for.
    return sorted(
        found.values(),
        key=lambda p: (p.network_type != "vlan", p.network_type, p.physical_network or ""),
    )


def _physnet_condition(physical_network: str | None) -> ColumnElement[bool]:
    return (
        Segment.physical_network.is_(None)
        if physical_network is None
        else Segment.physical_network == physical_network
    )


def draw(session: Session, pool: Pool) -> Pool:
    """The pool's picture: one query (its segments' IDs)."""
    spans = merge([(r.minimum, r.maximum) for r in pool.ranges])
    pool.size = sum(hi - lo + 1 for lo, hi in spans)
    where = (Segment.network_type == pool.network_type, _physnet_condition(pool.physical_network))
    if pool.network_type == "vlan":
        stmt = (
            select(Segment.segmentation_id, Segment.network_id, Network.name)
            .join(Network, Network.id == Segment.network_id)
            .where(*where, Segment.segmentation_id.is_not(None))
        )
        used = {
            int(sid): (net, name) for sid, net, name in session.execute(stmt) if sid is not None
        }
        pool.used = sum(1 for sid in used if _inside(spans, sid))
        pool.cells = _vlan_cells(pool.ranges, used)
        return pool
    stmt_ids = (
        select(Segment.segmentation_id)
        .where(*where, Segment.segmentation_id.is_not(None))
        .order_by(Segment.segmentation_id)
    )
    ids = [int(i) for i in session.scalars(stmt_ids) if i is not None]
    pool.used = sum(_count_between(ids, lo, hi) for lo, hi in spans)
    if spans:
        pool.low, pool.high = spans[0][0], spans[-1][1]
        pool.buckets = _buckets(ids, spans, pool.low, pool.high)
        pool.free_runs = largest_free_runs(ids, spans, FREE_RUNS)
    return pool


def _inside(spans: Sequence[tuple[int, int]], value: int) -> bool:
    return any(lo <= value <= hi for lo, hi in spans)


def _count_between(ids: Sequence[int], lo: int, hi: int) -> int:
    return bisect.bisect_right(ids, hi) - bisect.bisect_left(ids, lo)


def _vlan_cells(
    ranges: Sequence[Range], used: dict[int, tuple[str, str]]
) -> list[tuple[int, str, str | None, str]]:
    owner: dict[int, Range] = {}
    for each in ranges:  # a project's range wins over the shared default it overlaps
        for vid in range(each.minimum, each.maximum + 1):
            if vid not in owner or not each.shared:
                owner[vid] = each
    cells: list[tuple[int, str, str | None, str]] = []
    for vid in range(VLAN_ID_LIMITS[0], VLAN_ID_LIMITS[1] + 1):
        row: Range | None = owner.get(vid)
        if vid in used:
            net, name = used[vid]
            cells.append((vid, "used", net, f"VLAN {vid}: {name or net}"))
        elif row is None:
            cells.append((vid, "outside", None, str(vid)))
        elif not row.shared:
            cells.append((vid, "reserved", None, f"{vid}: reserved for {row.project_id}"))
        else:
            cells.append((vid, "free", None, str(vid)))
    return cells


def _buckets(
    ids: Sequence[int], spans: Sequence[tuple[int, int]], low: int, high: int
) -> list[float]:
    """Share of each of ``BAR_BUCKETS`` equal slices of [low, high] that is used
    (slices outside every range count as empty)."""
    width = (high - low + 1) / BAR_BUCKETS
    out = []
    for i in range(BAR_BUCKETS):
        lo = low + int(i * width)
        hi = max(lo, low + int((i + 1) * width) - 1)
        inside = sum(max(0, min(hi, b) - max(lo, a) + 1) for a, b in spans)
        used = _count_between(ids, lo, hi)
        out.append(round(used / inside, 3) if inside else 0.0)
    return out


def largest_free_runs(
    ids: Sequence[int], spans: Sequence[tuple[int, int]], count: int
) -> list[tuple[int, int]]:
    """The ``count`` longest runs of free IDs inside ``spans`` (sorted IDs used)."""
    runs: list[tuple[int, int]] = []
    for lo, hi in spans:
        start = lo
        for used in ids[bisect.bisect_left(ids, lo) : bisect.bisect_right(ids, hi)]:
            if used > start:
                runs.append((start, used - 1))
            start = used + 1
        if start <= hi:
            runs.append((start, hi))
    runs.sort(key=lambda r: (-(r[1] - r[0]), r[0]))
    return runs[:count]
