"""``standard.save``: one UPDATE, the object clean afterwards, the row changed."""

from __future__ import annotations

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from segmentd.db.models import Segment
from segmentd.services import standard
from tests.client import Api


def test_save_writes_the_values_and_leaves_nothing_to_flush(api: Api, engine: Engine) -> None:
    net = api.create_network(name="n")
    seg = api.create_segment(net["id"], network_type="vxlan", name="old")
    statements: list[str] = []
    with Session(engine) as session, session.begin():
        segment = session.get(Segment, seg["id"])
        assert segment is not None
        listen = lambda *args: statements.append(args[2])  # noqa: E731 - the statement text
        event.listen(engine, "before_cursor_execute", listen)
        try:
            standard.save(session, segment, {"name": "new"})
            assert not session.dirty and segment.name == "new"
            assert segment.revision_number == seg["revision_number"] + 1
            session.flush()  # nothing left for the unit of work
        finally:
            event.remove(engine, "before_cursor_execute", listen)
    assert [s.split()[0] for s in statements] == ["UPDATE"]
    shown = api.get(f"/v2.0/segments/{seg['id']}").json()["segment"]
    assert (shown["name"], shown["revision_number"]) == ("new", seg["revision_number"] + 1)
    assert shown["updated_at"] >= seg["updated_at"]
