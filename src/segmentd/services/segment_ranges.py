"""Network segment ranges: which segmentation IDs allocation may hand out.

The configuration's ranges are mirrored as ``default`` shared rows at start-up
(idempotent, so several workers may start at once).  Operators add shared or
per-project ranges at run time.  A project allocates from its own ranges
first, then from the shared ones minus every other project's reservations;
all of this is interval arithmetic over a handful of rows, never a walk over
the ID space.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, delete, func, select
from sqlalchemy.orm import Session, selectinload

from segmentd import errors
from segmentd.authz import Scope
from segmentd.config import TUNNEL_ID_LIMITS, VLAN_ID_LIMITS, IdRange
from segmentd.db import dialect
from segmentd.db.base import Page, utcnow
from segmentd.db.models import Network, NetworkSegmentRange, NetworkSegmentRangeTag, Segment
from segmentd.db.snapshot import PreparedRead, session_rows
from segmentd.services import standard
from segmentd.services.query import (
    Filter,
    ListQuery,
    QuerySpec,
    TagTable,
    list_page,
    parse_bool,
    parse_int,
    parse_uuid,
)

Range = NetworkSegmentRange
ID_LIMITS = {"vlan": VLAN_ID_LIMITS, **TUNNEL_ID_LIMITS}
# Default ranges get stable ids, so every worker computes the same rows.
_DEFAULT_NAMESPACE = uuid.UUID("6f1c7e52-8d0b-4b8e-9a43-2f0d5c1e7a90")

LIST_SPEC = QuerySpec(
    filters={
        "id": Filter(Range.id, parse_uuid),
        "name": Filter(Range.name),
        "description": Filter(Range.description),
        "default": Filter(Range.default, parse_bool),
        "shared": Filter(Range.shared, parse_bool),
        "project_id": Filter(Range.project_id),
        "network_type": Filter(Range.network_type),
        "physical_network": Filter(Range.physical_network),
        "minimum": Filter(Range.minimum, parse_int),
        "maximum": Filter(Range.maximum, parse_int),
        "revision_number": Filter(Range.revision_number, parse_int),
    },
    sorts={
        "id": Range.id,
        "name": Range.name,
        "network_type": Range.network_type,
        "physical_network": func.coalesce(Range.physical_network, ""),
        "minimum": Range.minimum,
        "maximum": Range.maximum,
        "default": Range.default,
        "shared": Range.shared,
        "project_id": func.coalesce(Range.project_id, ""),
        "created_at": Range.created_at,
        "updated_at": Range.updated_at,
        "revision_number": Range.revision_number,
    },
    tags=TagTable(NetworkSegmentRangeTag, NetworkSegmentRangeTag.range_id, Range.id),
    missing=lambda m: errors.NetworkSegmentRangeNotFound(range_id=m),
)


@dataclass(frozen=True, slots=True)
class RangeSpec:
    network_type: str
    minimum: int
    maximum: int
    physical_network: str | None = None
    shared: bool = True
    project_id: str | None = None
    name: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RangeUpdate:
    name: str | None = None
    description: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    tags: list[str] | None = None


# Default ranges ----------------------------------------------------------------


def default_range_id(r: IdRange) -> str:
    key = f"{r.network_type}:{r.physical_network or ''}:{r.minimum}:{r.maximum}"
    return str(uuid.uuid5(_DEFAULT_NAMESPACE, key))


def sync_default_ranges(session: Session, configured: Iterable[IdRange]) -> None:
    """Make the ``default`` rows equal the configured ranges; safe to run concurrently."""
    wanted = {default_range_id(r): r for r in configured}
    session.execute(delete(Range).where(Range.default.is_(True), Range.id.not_in(list(wanted))))
    if not wanted:
        return
    now = utcnow()
    rows = [
        {
            "id": rid,
            "name": "",
            "description": "",
            "default": True,
            "shared": True,
            "project_id": None,
            "network_type": r.network_type,
            "physical_network": r.physical_network,
            "minimum": r.minimum,
            "maximum": r.maximum,
            "created_at": now,
            "updated_at": now,
            "revision_number": 1,
        }
        for rid, r in wanted.items()
    ]
    stmt = dialect.insert(session, Range).on_conflict_do_nothing(index_elements=["id"])
    session.execute(stmt, rows)


# Allocation pools -----------------------------------------------------------------


def subtract(
    lo: int, hi: int, holes: Iterable[tuple[int, int]], limit: int | None = None
) -> list[tuple[int, int]]:
    """``[lo, hi]`` minus the given inclusive intervals: the free runs, in order.

    One sweep over the holes in order (a sorted merge), so the cost is linear
    in the holes (Timsort takes already sorted input, as ``usage`` passes it,
    in one pass); with ``limit``, the sweep stops once that many runs are found.
    """
    runs: list[tuple[int, int]] = []
    start = lo  # the lowest ID not yet known to be in a hole
    for h_lo, h_hi in sorted(holes):
        if start > hi or h_lo > hi or (limit is not None and len(runs) >= limit):
            break
        if h_lo > start:
            runs.append((start, h_lo - 1))
        start = max(start, h_hi + 1)
    if start <= hi and (limit is None or len(runs) < limit):
        runs.append((start, hi))
    return runs


def _pools_query(by_physnet: bool) -> PreparedRead:
    columns = (Range.physical_network, Range.minimum, Range.maximum, Range.shared, Range.project_id)
    stmt = select(*columns).where(Range.network_type == bindparam("network_type"))
    if by_physnet:
        stmt = stmt.where(Range.physical_network == bindparam("physnet"))
    return PreparedRead(stmt.order_by(Range.minimum))


# Every allocation reads them: prepared once (``db.snapshot``).
_POOLS = {by_physnet: _pools_query(by_physnet) for by_physnet in (False, True)}


def usable_pools(
    session: Session, network_type: str, physical_network: str | None, project_id: str
) -> list[IdRange]:
    """The pools ``project_id`` allocates from, its own ranges first."""
    _lock_pools(session, network_type, exclusive=False)
    params = {"network_type": network_type}
    if physical_network is not None:
        params["physnet"] = physical_network
    rows = session_rows(session, _POOLS[physical_network is not None], params)
    own = [r for r in rows if not r[3] and r[4] == project_id]
    reserved = [r for r in rows if not r[3] and r[4] != project_id]
    pools = [IdRange(network_type, physnet, lo, hi) for physnet, lo, hi, _, _ in own]
    for physnet, lo, hi, shared, _ in rows:
        if not shared:
            continue
        holes = [(o[1], o[2]) for o in reserved if o[0] == physnet]
        pools += [IdRange(network_type, physnet, a, b) for a, b in subtract(lo, hi, holes)]
    return pools


def check_explicit_id(
    pools: Sequence[IdRange], physical_network: str | None, segmentation_id: int
) -> None:
    """For callers limited to their pools: an explicit ID must lie in one of them."""
    if not any(
        p.minimum <= segmentation_id <= p.maximum and p.physical_network == physical_network
        for p in pools
    ):
        raise errors.InvalidInput(
            error_message=f"segmentation_id {segmentation_id} is outside the ranges this project may use"
        )


# Computed attributes -----------------------------------------------------------------


def _in_range(model: Any, r: Range, lo: int, hi: int) -> ColumnElement[bool]:
    physnet = (
        model.physical_network.is_(None)
        if r.physical_network is None
        else model.physical_network == r.physical_network
    )
    cond: ColumnElement[bool] = (
        (model.network_type == r.network_type) & physnet & model.segmentation_id.between(lo, hi)
    )
    return cond


@dataclass(frozen=True, slots=True)
class Usage:
    used: dict[int, str]
    used_count: int
    available: list[int]
    available_count: int
    available_ranges: list[tuple[int, int]]


def usage(session: Session, r: Range, cap: int) -> Usage:
    """What a range holds, every list bounded by ``cap`` entries.

    ``available`` stays a list of integers, as the incumbent's is, because
    the ``openstack`` CLI converts each entry with ``int()``; it holds the
    lowest free IDs, at most ``cap`` of them, so a 24-bit range never becomes
    millions of integers.  ``available_count`` and ``used_count`` are exact,
    and ``available_ranges`` gives the free IDs as compact ``[lo, hi]`` runs.
    """
    in_range = _in_range(Segment, r, r.minimum, r.maximum)
    stmt = (
        select(Segment.segmentation_id, Network.project_id)
        .join(Network, Network.id == Segment.network_id)
        .where(in_range)
        .order_by(Segment.segmentation_id)
        .limit(cap + 1)
    )
    rows = [(i, p) for i, p in session.execute(stmt) if i is not None]
    truncated = len(rows) > cap
    used = dict(rows[:cap])
    used_count = len(used)
    if truncated:
        used_count = int(
            session.scalar(select(func.count()).select_from(Segment).where(in_range)) or 0
        )
    # Free runs are known up to the last used ID read (all of them unless truncated).
    end = rows[cap][0] - 1 if truncated else r.maximum
    runs = subtract(r.minimum, end, [(i, i) for i in used], limit=cap)
    return Usage(
        used=used,
        used_count=used_count,
        available=_first_ids(runs, cap),
        available_count=r.maximum - r.minimum + 1 - used_count,
        available_ranges=runs[:cap],
    )


def _first_ids(runs: Sequence[tuple[int, int]], cap: int) -> list[int]:
    out: list[int] = []
    for lo, hi in runs:
        out.extend(range(lo, min(hi, lo + cap - len(out) - 1) + 1))
        if len(out) >= cap:
            break
    return out


# CRUD ---------------------------------------------------------------------------------


def _validate(spec: RangeSpec, vlan_physnets: Sequence[str]) -> None:
    lo, hi = ID_LIMITS[spec.network_type]
    if not lo <= spec.minimum <= spec.maximum <= hi:
        raise errors.InvalidInput(
            error_message=f"{spec.network_type} range must satisfy {lo} <= minimum <= maximum <= {hi}"
        )
    if spec.network_type == "vlan":
        if spec.physical_network is None:
            raise errors.InvalidInput(error_message="physical_network required for a vlan range")
        if spec.physical_network not in vlan_physnets:
            raise errors.InvalidInput(
                error_message=f"physical_network '{spec.physical_network}' unknown for VLAN ranges"
            )
    elif spec.physical_network is not None:
        raise errors.InvalidInput(
            error_message=f"physical_network must be absent for a {spec.network_type} range"
        )
    if not spec.shared and not spec.project_id:
        raise errors.InvalidInput(
            error_message="project_id required for a range that is not shared"
        )


def _lock_pools(session: Session, network_type: str, *, exclusive: bool) -> None:
    """Range changes of a type exclude each other and concurrent allocations.

    Overlap and "IDs in use in the removed part" are properties of rows that
    may not exist yet, so row locks cannot guard them: a transaction-scoped
    advisory lock per network type does (shared for allocations, so those
    never wait for each other).  SQLite writers are already serialised by
    ``BEGIN IMMEDIATE``.
    """
    dialect.lock(session, f"segment-range:{network_type}", exclusive=exclusive)


def _check_overlap(session: Session, spec: RangeSpec, exclude_id: str | None = None) -> None:
    # As the incumbent: operator ranges may not overlap each other; they may
    # overlap the default ranges, which is how a project's reservation is carved out.
    stmt = select(Range.id).where(
        Range.default.is_(False),
        Range.network_type == spec.network_type,
        Range.physical_network.is_(None)
        if spec.physical_network is None
        else Range.physical_network == spec.physical_network,
        Range.minimum <= spec.maximum,
        Range.maximum >= spec.minimum,
    )
    if exclude_id is not None:
        stmt = stmt.where(Range.id != exclude_id)
    clashes = sorted(session.scalars(stmt))
    if clashes:
        raise errors.NetworkSegmentRangeOverlaps(range_id=", ".join(clashes))


def _ids_in_use(session: Session, r: Range, lo: int, hi: int) -> bool:
    if lo > hi:
        return False
    return (
        session.scalar(select(Segment.id).where(_in_range(Segment, r, lo, hi)).limit(1)) is not None
    )


def create(session: Session, scope: Scope, spec: RangeSpec, vlan_physnets: Sequence[str]) -> Range:
    owner = None if spec.shared else spec.project_id
    scope.require(
        {
            "project_id": owner,
            "tenant_id": owner,
            "shared": spec.shared,
            "network_type": spec.network_type,
        },
    )
    if spec.shared:
        spec = RangeSpec(**{**_as_dict(spec), "project_id": None})
    _validate(spec, vlan_physnets)
    _lock_pools(session, spec.network_type, exclusive=True)
    _check_overlap(session, spec)
    row = Range(
        name=spec.name,
        description=spec.description,
        default=False,
        shared=spec.shared,
        project_id=spec.project_id,
        network_type=spec.network_type,
        physical_network=spec.physical_network,
        minimum=spec.minimum,
        maximum=spec.maximum,
    )
    session.add(row)
    session.flush()
    standard.set_tags(session, NetworkSegmentRangeTag, "range_id", row.id, list(spec.tags))
    return _reload(session, row.id)


def _as_dict(spec: RangeSpec) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in RangeSpec.__slots__}


def _reload(session: Session, range_id: str) -> Range:
    stmt = select(Range).options(selectinload(Range.tags)).where(Range.id == range_id)
    return session.scalars(stmt.execution_options(populate_existing=True)).one()


reload = _reload  # the current row, for services that change it by statement (tags)


def _scoped(scope: Scope) -> Select[Range]:
    return select(Range).where(scope.where(Range.project_id, Range.shared))


def target(row: Range) -> dict[str, Any]:
    # Neutron's target: a range belongs to its project (None when shared).
    return {
        "id": row.id,
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "shared": row.shared,
        "default": row.default,
        "network_type": row.network_type,
    }


def get(session: Session, scope: Scope, range_id: str, lock: bool = False) -> Range:
    """The range ``scope`` sees, or a 404; ``lock``: for a change (see ``networks.get``)."""
    stmt = _scoped(scope).options(selectinload(Range.tags)).where(Range.id == range_id)
    if lock:
        stmt = stmt.with_for_update(of=Range)
    found = session.scalars(stmt).first()
    if found is None or not scope.allows(target(found)):
        raise errors.NetworkSegmentRangeNotFound(range_id=range_id)
    return found


def list_(session: Session, scope: Scope, query: ListQuery) -> Page:
    options = [selectinload(Range.tags)]
    return list_page(session, scope.principal, _scoped(scope), LIST_SPEC, query, Range.id, options)


def update(
    session: Session,
    row: Range,
    changes: RangeUpdate,
    if_revision: int | None,
    vlan_physnets: Sequence[str],
) -> Range:
    """Apply ``changes`` to ``row``, as loaded (locked) by ``get``."""
    if row.default:
        raise errors.NetworkSegmentRangeDefaultReadOnly(range_id=row.id)
    standard.check_revision(row, if_revision)
    new = RangeSpec(
        row.network_type,
        row.minimum if changes.minimum is None else changes.minimum,
        row.maximum if changes.maximum is None else changes.maximum,
        row.physical_network,
        row.shared,
        row.project_id,
    )
    _validate(new, vlan_physnets)
    _lock_pools(session, row.network_type, exclusive=True)
    _check_overlap(session, new, exclude_id=row.id)
    removed = ((row.minimum, new.minimum - 1), (new.maximum + 1, row.maximum))
    if any(_ids_in_use(session, row, lo, hi) for lo, hi in removed):
        raise errors.NetworkSegmentRangeReferencedByProject(range_id=row.id)
    row.minimum, row.maximum = new.minimum, new.maximum
    if changes.name is not None:
        row.name = changes.name
    if changes.description is not None:
        row.description = changes.description
    if changes.tags is not None:
        standard.set_tags(session, NetworkSegmentRangeTag, "range_id", row.id, changes.tags)
    standard.bump(row)
    session.flush()
    return _reload(session, row.id)


def delete_(session: Session, row: Range, if_revision: int | None) -> None:
    """Delete ``row``, as loaded (locked) by ``get``."""
    if row.default:
        raise errors.NetworkSegmentRangeDefaultReadOnly(range_id=row.id)
    standard.check_revision(row, if_revision)
    _lock_pools(session, row.network_type, exclusive=True)
    if _ids_in_use(session, row, row.minimum, row.maximum):
        raise errors.NetworkSegmentRangeReferencedByProject(range_id=row.id)
    session.execute(delete(Range).where(Range.id == row.id))
