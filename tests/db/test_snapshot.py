"""``db.snapshot``: reads without a Session give the values a Session would."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session

from segmentd.db.models import Segment
from segmentd.db.snapshot import PreparedRead, snapshot
from tests.client import Api

BY_ID = select(
    Segment.id, Segment.created_at, Segment.segmentation_id, Segment.physical_network
).where(Segment.id == bindparam("segment_id"))


def test_rows_are_converted_as_the_orm_converts_them(api: Api, read_engine: Engine) -> None:
    net = api.create_network(name="n")
    seg = api.create_segment(net["id"], network_type="vlan", physical_network="physnet1")
    with snapshot(read_engine) as snap:
        rows = snap.rows(PreparedRead(BY_ID), {"segment_id": seg["id"]})
    with Session(read_engine) as session:
        expected = session.execute(BY_ID, {"segment_id": seg["id"]}).one()
    assert rows == [tuple(expected)]
    assert isinstance(rows[0][1], dt.datetime) and rows[0][1].tzinfo is not None


def test_no_row_is_an_empty_list(read_engine: Engine) -> None:
    with snapshot(read_engine) as snap:
        assert snap.rows(PreparedRead(BY_ID), {"segment_id": "none"}) == []


def test_a_parameter_that_needs_conversion_is_refused(read_engine: Engine) -> None:
    """Such a value would reach the driver unconverted: refused when compiled."""
    query = PreparedRead(select(Segment.id).where(Segment.created_at > bindparam("t")))
    with snapshot(read_engine) as snap, pytest.raises(TypeError, match="needs conversion"):
        snap.rows(query, {"t": dt.datetime.now(dt.UTC)})


def test_values_written_into_the_statement_are_bound(api: Api, read_engine: Engine) -> None:
    """``+ 1`` and ``LIMIT 1`` are binds SQLAlchemy fills in itself: so does the read."""
    net = api.create_network(name="n")
    for vlan in (301, 302):
        api.create_segment(
            net["id"], network_type="vlan", physical_network="physnet1", segmentation_id=vlan
        )
    query = (
        select(Segment.segmentation_id + 1)
        .where(Segment.physical_network == bindparam("physnet"))
        .order_by(Segment.segmentation_id)
        .limit(1)
    )
    with snapshot(read_engine) as snap:
        rows = snap.rows(PreparedRead(query), {"physnet": "physnet1"})
    assert rows == [(302,)]
