"""The outbox: a committed change has exactly one event, a rolled-back one none."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Engine, select

from segmentd.db.events import Event
from tests.agent_helpers import ovs
from tests.client import Api
from tests.support import assert_error


def rows(engine: Engine) -> list[Event]:
    with engine.connect() as conn:
        return list(conn.execute(select(Event).order_by(Event.seq)))  # type: ignore[arg-type]


def summary(engine: Engine) -> list[tuple[str, str, str]]:
    return [(e.resource_type, e.resource_id, e.action) for e in rows(engine)]


def test_each_committed_write_has_one_event_with_admin_views(api: Api, engine: Engine) -> None:
    created = api.post("/v2.0/networks", {"network": {"name": "n1", "project_id": "p1"}})
    assert created.status_code == 201, created.text
    net = created.json()["network"]
    renamed = api.put(f"/v2.0/networks/{net['id']}", {"network": {"name": "n2"}})
    assert renamed.status_code == 200
    seg = api.create_segment(
        net["id"], network_type="vlan", physical_network="physnet1", segmentation_id=1234
    )
    sub = api.post(
        "/v2.0/subnets",
        {"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}},
    )
    assert sub.status_code == 201, sub.text
    subnet_id = sub.json()["subnet"]["id"]
    assert api.delete(f"/v2.0/subnets/{subnet_id}").status_code == 204
    assert api.delete(f"/v2.0/segments/{seg['id']}").status_code == 204
    assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204

    assert summary(engine) == [
        ("network", net["id"], "create"),
        ("network", net["id"], "update"),
        ("segment", seg["id"], "create"),
        ("subnet", subnet_id, "create"),
        ("subnet", subnet_id, "delete"),
        ("segment", seg["id"], "delete"),
        ("network", net["id"], "delete"),
    ]
    events = rows(engine)
    create, update = events[0], events[1]
    assert create.request_id == created.headers["X-Openstack-Request-Id"]
    assert (create.project_id, create.revision_number, create.state) == ("p1", 1, "pending")
    assert create.before is None
    # The view an admin gets from the API, provider attributes included.
    assert orjson.loads(create.after or "") == {**net, "name": "n1"}
    assert orjson.loads(create.after or "")["provider:network_type"] == "vxlan"
    assert orjson.loads(update.before or "")["name"] == "n1"
    assert orjson.loads(update.after or "") == renamed.json()["network"]
    assert update.revision_number == renamed.json()["network"]["revision_number"]
    assert orjson.loads(events[2].after or "") == seg
    assert events[-1].after is None and orjson.loads(events[-1].before or "")["name"] == "n2"
    assert len({e.id for e in events}) == len(events)
    assert [e.seq for e in events] == sorted(e.seq for e in events)


def test_rolled_back_requests_leave_no_event(api: Api, engine: Engine) -> None:
    net = api.create_network(name="taken", **{"provider:network_type": "vlan"})
    seg_id = net["provider:segmentation_id"]
    before = summary(engine)
    assert before == [("network", net["id"], "create")]
    # The network row is inserted, then its segment's VLAN conflicts: 409, rolled back.
    clash = api.post(
        "/v2.0/networks",
        {
            "network": {
                "name": "clash",
                "provider:network_type": "vlan",
                "provider:physical_network": net["provider:physical_network"],
                "provider:segmentation_id": seg_id,
            }
        },
    )
    assert_error(clash, 409)
    # A stale revision: 412, nothing changed.
    stale = api.put(
        f"/v2.0/networks/{net['id']}",
        {"network": {"name": "x"}},
        headers={"If-Match": "revision_number=99"},
    )
    assert stale.status_code == 412, stale.text
    # Refused by policy: 404 for another project.
    other = api.as_("other", "member").put(
        f"/v2.0/networks/{net['id']}", {"network": {"name": "y"}}
    )
    assert other.status_code == 404
    assert summary(engine) == before


def test_ranges_and_agents_including_reports(api: Api, engine: Engine) -> None:
    rng = api.post(
        "/v2.0/network_segment_ranges",
        {
            "network_segment_range": {
                "network_type": "vxlan",
                "minimum": 100,
                "maximum": 200,
                "name": "r",
                "shared": False,
                "project_id": "p1",
            }
        },
    )
    assert rng.status_code == 201, rng.text
    range_id = rng.json()["network_segment_range"]["id"]
    service = api.as_("svc", "service")
    first = service.post("/v2.0/agents/report", {"agent": ovs("h1", "physnet1")})
    assert first.status_code == 200
    agent_id = first.json()["agent"]["id"]
    # A heartbeat changes nothing worth an event; a new mapping does.
    assert service.post("/v2.0/agents/report", {"agent": ovs("h1", "physnet1")}).status_code == 200
    moved = service.post("/v2.0/agents/report", {"agent": ovs("h1", "physnet1", "physnet2")})
    assert moved.json()["agent"]["result"] == "updated"
    # A refused report (unknown agent type) rolls back and leaves nothing.
    bad = service.post(
        "/v2.0/agents/report/bulk",
        {"agents": [ovs("h2", "physnet1"), {**ovs("h3"), "agent_type": "nope"}]},
    )
    assert bad.status_code in (400, 422)
    assert api.put(f"/v2.0/agents/{agent_id}", {"agent": {"description": "d"}}).status_code == 200
    assert api.delete(f"/v2.0/agents/{agent_id}").status_code == 204

    assert summary(engine) == [
        ("network_segment_range", range_id, "create"),
        ("agent", agent_id, "create"),
        ("agent", agent_id, "update"),
        ("agent", agent_id, "update"),
        ("agent", agent_id, "delete"),
    ]
    events = rows(engine)
    report_update: dict[str, Any] = orjson.loads(events[2].after or "")
    assert report_update["configurations"]["bridge_mappings"] == {
        "physnet1": "br-0",
        "physnet2": "br-1",
    }
    assert orjson.loads(events[2].before or "")["configurations"]["bridge_mappings"] == {
        "physnet1": "br-0"
    }
    assert orjson.loads(events[0].after or "")["project_id"] == "p1"


def test_no_events_when_disabled(make_api: Callable[..., Api], engine: Engine) -> None:
    api = make_api(events_enabled=False)
    net = api.create_network(name="quiet")
    assert api.put(f"/v2.0/networks/{net['id']}", {"network": {"name": "q"}}).status_code == 200
    assert (
        api.as_("svc", "service").post("/v2.0/agents/report", {"agent": ovs("h1")}).status_code
        == 200
    )
    assert rows(engine) == []


def test_a_bulk_create_has_one_event_per_resource_and_tags_update_their_parent(
    api: Api, engine: Engine
) -> None:
    """Bulk create (all or nothing) and the tags sub-resource go through the
    same pipeline step as single writes: an event per resource created, an
    update event of the parent when its tags change, none when the bulk fails."""
    bulk = api.post(
        "/v2.0/networks", {"networks": [{"name": "b1"}, {"name": "b2"}, {"name": "b3"}]}
    )
    assert bulk.status_code == 201, bulk.text
    ids = [n["id"] for n in bulk.json()["networks"]]
    assert api.put(f"/v2.0/networks/{ids[0]}/tags/red", None).status_code == 201
    refused = api.post("/v2.0/networks", {"networks": [{"name": "ok"}, {"name": 7}]})
    assert refused.status_code == 400
    assert summary(engine) == [
        *[("network", i, "create") for i in ids],
        ("network", ids[0], "update"),
    ]
    assert "red" in orjson.loads(rows(engine)[-1].after or "")["tags"]
