"""How full the allocation pools are: per range, and per (type, physical network).

Everything is counted in SQL over the segments' pool index, never by listing
the ID space: the next free IDs come from ``allocation.first_free_id`` (two
indexed reads each), used counts from one ``count(*)`` per range or pool.
Both entry points are bounded: ranges are paged, and the pool summary reads
at most ``max_ranges`` range rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session

from segmentd.authz import Scope
from segmentd.config import IdRange
from segmentd.db.base import Page
from segmentd.db.models import NetworkSegmentRange, Segment
from segmentd.services import segment_ranges
from segmentd.services.allocation import first_free_id
from segmentd.services.query import CustomFilter, ListQuery, QuerySpec, list_page

Range = NetworkSegmentRange
MAX_NEXT_FREE = 16
DEFAULT_NEXT_FREE = 5


def _parse_next_free(value: str) -> int:
    count = int(value)
    if not 0 <= count <= MAX_NEXT_FREE:
        raise ValueError("next_free out of range")
    return count


# The ranges' own filters and sort keys, plus ``next_free`` (how many free IDs
# to list per range): a parameter, not a condition, taken out by ``list_``.
LIST_SPEC = QuerySpec(
    filters={
        **segment_ranges.LIST_SPEC.filters,
        "next_free": CustomFilter(lambda _values: true(), _parse_next_free),
    },
    sorts=segment_ranges.LIST_SPEC.sorts,
    tags=segment_ranges.LIST_SPEC.tags,
)


@dataclass(frozen=True, slots=True)
class RangeUsage:
    row: NetworkSegmentRange
    size: int
    used: int
    next_free: list[int]

    @property
    def free(self) -> int:
        return self.size - self.used

    @property
    def id(self) -> str:
        """The range's id: a page marker."""
        return self.row.id


@dataclass(frozen=True, slots=True)
class PoolUsage:
    network_type: str
    physical_network: str | None
    size: int
    used: int

    @property
    def free(self) -> int:
        return self.size - self.used


def _pool(network_type: str, physical_network: str | None) -> ColumnElement[bool]:
    physnet = (
        Segment.physical_network.is_(None)
        if physical_network is None
        else Segment.physical_network == physical_network
    )
    return (Segment.network_type == network_type) & physnet


def _count(
    session: Session, network_type: str, physnet: str | None, spans: Sequence[tuple[int, int]]
) -> int:
    inside = or_(*(Segment.segmentation_id.between(lo, hi) for lo, hi in spans))
    stmt = select(func.count()).select_from(Segment).where(_pool(network_type, physnet), inside)
    return int(session.scalar(stmt) or 0)


def next_free_ids(session: Session, id_range: IdRange, count: int) -> list[int]:
    found: list[int] = []
    start = id_range.minimum
    while len(found) < count and start <= id_range.maximum:
        free = first_free_id(session, id_range, start)
        if free is None:
            break
        found.append(free)
        start = free + 1
    return found


def range_usage(session: Session, row: NetworkSegmentRange, next_free: int) -> RangeUsage:
    span = [(row.minimum, row.maximum)]
    id_range = IdRange(row.network_type, row.physical_network, row.minimum, row.maximum)
    return RangeUsage(
        row,
        size=row.maximum - row.minimum + 1,
        used=_count(session, row.network_type, row.physical_network, span),
        next_free=next_free_ids(session, id_range, min(next_free, MAX_NEXT_FREE)),
    )


def list_(session: Session, scope: Scope, query: ListQuery) -> Page:
    """A page of ranges (the ranges' own filters and sort keys), as their usage."""
    next_free = int(query.filters.pop("next_free", [DEFAULT_NEXT_FREE])[-1])
    scoped = select(Range).where(scope.where(Range.project_id, Range.shared))
    page = list_page(session, scope.principal, scoped, LIST_SPEC, query, Range.id)
    return Page([range_usage(session, row, next_free) for row in page.items], page.has_more)


def merge(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of inclusive intervals, sorted (overlapping default and project ranges)."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def pool_usage(session: Session, max_ranges: int = 10_000) -> list[PoolUsage]:
    """Used and free IDs per (type, physical network) over the union of its ranges."""
    stmt = (
        select(Range.network_type, Range.physical_network, Range.minimum, Range.maximum)
        .order_by(Range.network_type, Range.physical_network, Range.minimum, Range.id)
        .limit(max_ranges)
    )
    pools: dict[tuple[str, str | None], list[tuple[int, int]]] = {}
    for network_type, physnet, lo, hi in session.execute(stmt):
        pools.setdefault((network_type, physnet), []).append((lo, hi))
    out = []
    for (network_type, physnet), spans in sorted(
        pools.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
    ):
        merged = merge(spans)
        size = sum(hi - lo + 1 for lo, hi in merged)
        out.append(
            PoolUsage(network_type, physnet, size, _count(session, network_type, physnet, merged))
        )
    return out
