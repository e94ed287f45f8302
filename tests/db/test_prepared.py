"""``db.prepared``: a prepared INSERT stores exactly what SQLAlchemy's would."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from segmentd.db.audit import AuditEvent
from segmentd.db.prepared import PreparedInsert, insert_rows

TABLE = cast(Table, AuditEvent.__table__)
COLUMNS = tuple(c.name for c in TABLE.columns)
WHEN = dt.datetime(2026, 12, 4, 12, 30, 5, 123456, tzinfo=dt.UTC)


def _row(event_id: str, **values: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "created_at": WHEN,
        "request_id": "req-1",
        "user_id": None,
        "project_id": "p1",
        "action": "update",
        "resource_type": "segment",
        "resource_id": "s1",
        "permission": "update_segment",
        "detail": "",
        "before": {"name": "a", "tags": ["x"]},
        "after": None,
        **values,
    }


def _stored(engine: Engine, event_id: str) -> tuple[Any, ...]:
    with engine.connect() as conn:
        # The stored form itself (text casts: no type's result processing).
        row = conn.execute(
            text(
                "SELECT CAST(created_at AS TEXT), CAST(before AS TEXT), CAST(after AS TEXT),"
                " user_id, project_id FROM audit_events WHERE id = :id"
            ),
            {"id": event_id},
        ).one()
    return tuple(row)


def test_rows_are_stored_as_a_core_insert_stores_them(engine: Engine) -> None:
    prepared = PreparedInsert(TABLE, COLUMNS)
    with Session(engine) as session, session.begin():
        session.execute(insert(TABLE), _row("core"))
        insert_rows(session, prepared, [_row("prepared")])
        insert_rows(session, prepared, [_row("many-1"), _row("many-2", after={"n": 1})])
    assert _stored(engine, "prepared") == _stored(engine, "core")
    assert _stored(engine, "many-1") == _stored(engine, "core")
    assert _stored(engine, "many-2")[2] is not None


def test_a_refused_row_raises_as_sqlalchemy_does_and_rolls_back(engine: Engine) -> None:
    prepared = PreparedInsert(TABLE, COLUMNS)
    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
        insert_rows(session, prepared, [_row("dup")])
        insert_rows(session, prepared, [_row("dup")])  # the same primary key
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT count(*) FROM audit_events WHERE id = 'dup'")).scalar() == 0
        )
