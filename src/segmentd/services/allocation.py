"""Per-type segment rules and segmentation-ID allocation.

A small driver per network type validates a requested segment.  Free IDs are
found with a gap query in SQL (never by listing the ID space in Python, so a
24-bit VNI range costs the same as a 100-ID VLAN range) and claimed by the
INSERT itself: the unique index on (type, physnet, ID) is the arbiter between
concurrent workers, and a lost race retries from a fresh random start.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sqlalchemy import ColumnElement, bindparam, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from segmentd import errors
from segmentd.config import TUNNEL_ID_LIMITS, VLAN_ID_LIMITS, IdRange, Settings
from segmentd.db.models import Segment
from segmentd.db.snapshot import PreparedRead, session_rows

_rng = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class SegmentSpec:
    network_type: str
    physical_network: str | None = None
    segmentation_id: int | None = None
    name: str | None = None
    description: str = ""


def _invalid(message: str) -> errors.InvalidInput:
    return errors.InvalidInput(error_message=message)


class TypeDriver(Protocol):
    def validate(self, spec: SegmentSpec) -> None: ...

    def needs_allocation(self, spec: SegmentSpec) -> bool: ...


@dataclass(frozen=True)
class FlatDriver:
    allowed: list[str] | None
    known: set[str]

    def validate(self, spec: SegmentSpec) -> None:
        if spec.physical_network is None:
            raise _invalid("physical_network required for flat provider network")
        if spec.segmentation_id is not None:
            raise _invalid("segmentation_id specified for flat provider network")
        allowed = self.known if self.allowed is None else set(self.allowed)
        if spec.physical_network not in allowed:
            raise _invalid(
                f"physical_network '{spec.physical_network}' unknown for flat provider network"
            )

    def needs_allocation(self, spec: SegmentSpec) -> bool:
        return False


@dataclass(frozen=True)
class VlanDriver:
    physnets: list[str]

    def validate(self, spec: SegmentSpec) -> None:
        if spec.physical_network is None:
            if spec.segmentation_id is not None:
                raise _invalid(
                    "segmentation_id requires physical_network for VLAN provider network"
                )
            return  # partial spec: a physnet with a free VLAN is chosen
        if spec.physical_network not in self.physnets:
            raise _invalid(
                f"physical_network '{spec.physical_network}' unknown for VLAN provider network"
            )
        lo, hi = VLAN_ID_LIMITS
        if spec.segmentation_id is not None and not lo <= spec.segmentation_id <= hi:
            raise _invalid(f"segmentation_id out of range ({lo} through {hi})")

    def needs_allocation(self, spec: SegmentSpec) -> bool:
        return spec.segmentation_id is None


@dataclass(frozen=True)
class TunnelDriver:
    network_type: str

    def validate(self, spec: SegmentSpec) -> None:
        if spec.physical_network is not None:
            raise _invalid(f"provider:physical_network specified for {self.network_type} network")
        lo, hi = TUNNEL_ID_LIMITS[self.network_type]
        if spec.segmentation_id is not None and not lo <= spec.segmentation_id <= hi:
            raise _invalid(f"{self.network_type} segmentation_id out of range ({lo} through {hi})")

    def needs_allocation(self, spec: SegmentSpec) -> bool:
        return spec.segmentation_id is None


@dataclass(frozen=True)
class LocalDriver:
    def validate(self, spec: SegmentSpec) -> None:
        if spec.physical_network is not None or spec.segmentation_id is not None:
            raise _invalid(
                "provider:physical_network and segmentation_id must be absent for local network"
            )

    def needs_allocation(self, spec: SegmentSpec) -> bool:
        return False


def build_drivers(settings: Settings) -> dict[str, TypeDriver]:
    # Allocation ranges live in the database (network segment ranges); the
    # drivers only need to know which physical networks exist.
    return {
        "flat": FlatDriver(settings.flat_physnets(), settings.known_physnets()),
        "vlan": VlanDriver(settings.vlan_physnets()),
        "vxlan": TunnelDriver("vxlan"),
        "geneve": TunnelDriver("geneve"),
        "gre": TunnelDriver("gre"),
        "local": LocalDriver(),
    }


# Gap queries --------------------------------------------------------------------


def _pool_of(table: Any, physnet_null: bool) -> ColumnElement[bool]:
    """A pool's rows, by parameters ``network_type`` and (unless null) ``physnet``."""
    physnet_cond = (
        table.physical_network.is_(None)
        if physnet_null
        else table.physical_network == bindparam("physnet")
    )
    cond: ColumnElement[bool] = (table.network_type == bindparam("network_type")) & physnet_cond
    return cond


def _gap_queries(physnet_null: bool) -> tuple[PreparedRead, PreparedRead]:
    """(is ``start`` taken, the first used ID from ``start`` whose successor is free).

    The first used ID (in index order from ``start``) whose successor is
    free: ORDER BY ... LIMIT 1 stops there, so the cost follows the
    distance to the next gap, not the size of the pool (a min() had to
    visit every used ID above ``start``).  Prepared once: an allocation
    runs them on every create without an ID (``db.snapshot``)."""
    taken = select(Segment.id).where(
        _pool_of(Segment, physnet_null), Segment.segmentation_id == bindparam("start")
    )
    nxt = aliased(Segment)
    successor_used = exists().where(
        _pool_of(nxt, physnet_null), nxt.segmentation_id == Segment.segmentation_id + 1
    )
    gap = (
        select(Segment.segmentation_id + 1)
        .where(
            _pool_of(Segment, physnet_null),
            Segment.segmentation_id >= bindparam("start"),
            Segment.segmentation_id < bindparam("maximum"),
            ~successor_used,
        )
        .order_by(Segment.segmentation_id)
        .limit(1)
    )
    return PreparedRead(taken), PreparedRead(gap)


_GAPS = {null: _gap_queries(null) for null in (False, True)}


def first_free_id(session: Session, id_range: IdRange, start: int) -> int | None:
    """Smallest unused ID in ``[start, id_range.maximum]``, in two indexed reads."""
    physnet = id_range.physical_network
    taken, gap = _GAPS[physnet is None]
    params = {"network_type": id_range.network_type, "start": start}
    if physnet is not None:
        params["physnet"] = physnet
    if not session_rows(session, taken, params):
        return start
    found = session_rows(session, gap, {**params, "maximum": id_range.maximum})
    return int(found[0][0]) if found else None


def find_free_id(session: Session, id_range: IdRange) -> int | None:
    """A free ID from a random point onwards, wrapping once to the range start.

    The random start spreads concurrent allocators over the range so they
    rarely race for the same ID.
    """
    start = _rng.randint(id_range.minimum, id_range.maximum)
    found = first_free_id(session, id_range, start)
    if found is None and start > id_range.minimum:
        found = first_free_id(session, replace(id_range, maximum=start - 1), id_range.minimum)
    return found


# Claiming -------------------------------------------------------------------------


def _insert(session: Session, segment: Segment) -> bool:
    """Insert in a savepoint; False when the (type, physnet, ID) is taken."""
    try:
        with session.begin_nested():
            session.add(segment)
    except IntegrityError:
        if _in_use(session, segment):
            return False
        raise
    return True


def _in_use(session: Session, segment: Segment) -> bool:
    physnet, seg_id = segment.physical_network, segment.segmentation_id
    stmt = select(Segment.id).where(
        _pool_of(Segment, physnet is None),
        Segment.segmentation_id.is_(None)
        if seg_id is None
        else Segment.segmentation_id == bindparam("start"),
    )
    params = {"network_type": segment.network_type, "physnet": physnet, "start": seg_id}
    return session.scalar(stmt, params) is not None


def claim(
    session: Session,
    driver: TypeDriver,
    spec: SegmentSpec,
    make: Callable[[SegmentSpec], Segment],
    retries: int,
    pools: Sequence[IdRange],
) -> Segment:
    """Insert the segment for ``spec``, allocating its ID from ``pools`` when it has none."""
    if not driver.needs_allocation(spec):
        segment = make(spec)
        if not _insert(session, segment):
            raise _in_use_error(spec)
        return segment
    for id_range in pools:
        for _ in range(retries):
            free = find_free_id(session, id_range)
            if free is None:
                break  # this range is full; try the next one
            chosen = replace(spec, physical_network=id_range.physical_network, segmentation_id=free)
            segment = make(chosen)
            if _insert(session, segment):
                return segment
    raise errors.NoNetworkAvailable(network_type=spec.network_type)


def _in_use_error(spec: SegmentSpec) -> errors.Conflict:
    if spec.network_type == "flat":
        return errors.FlatNetworkInUse(physical_network=spec.physical_network)
    if spec.network_type == "vlan":
        return errors.VlanIdInUse(
            vlan_id=spec.segmentation_id, physical_network=spec.physical_network
        )
    return errors.TunnelIdInUse(tunnel_id=spec.segmentation_id)
