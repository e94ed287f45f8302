"""The audit trail: every mutation and every refused mutation, append-only."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import DBAPIError

from segmentd.db.audit import AuditEvent
from tests.client import Api


def _events(api: Api, **filters: Any) -> list[dict[str, Any]]:
    resp = api.get("/v2.0/audit-events", params=filters)
    assert resp.status_code == 200, resp.text
    events: list[dict[str, Any]] = resp.json()["audit_events"]
    return events


def _rid(resp: Any) -> str:
    return str(resp.headers["X-Openstack-Request-Id"])


def test_creates_updates_deletes_are_recorded_with_who_what_and_request_id(api: Api) -> None:
    admin = api.as_("ops-project", "admin")
    created = admin.post("/v2.0/networks", {"network": {"name": "n1", "tags": ["b", "a"]}})
    net = created.json()["network"]
    renamed = admin.put(f"/v2.0/networks/{net['id']}", {"network": {"name": "n2"}})
    seg = admin.create_segment(
        net["id"], network_type="vlan", physical_network="physnet1", segmentation_id=1234
    )
    assert (
        admin.put(f"/v2.0/segments/{seg['id']}", {"segment": {"description": "d"}}).status_code
        == 200
    )
    assert admin.delete(f"/v2.0/segments/{seg['id']}").status_code == 204
    deleted = admin.delete(f"/v2.0/networks/{net['id']}")
    assert deleted.status_code == 204

    events = _events(api, resource_id=net["id"])
    assert [e["action"] for e in events] == ["create", "update", "delete"]
    create, upd, delete = events
    assert create["request_id"] == _rid(created)
    assert (create["user_id"], create["project_id"]) == ("noauth", "ops-project")
    assert create["resource_type"] == "network" and create["permission"] == "create_network"
    assert create["before"] is None
    assert create["after"]["name"] == "n1" and create["after"]["tags"] == ["a", "b"]
    # The tenant segment created with the network is part of what was recorded.
    assert create["after"]["segments"][0]["network_type"] == "vxlan"
    # An update keeps only what changed.
    assert upd["request_id"] == _rid(renamed)
    assert upd["before"]["name"] == "n1" and upd["after"]["name"] == "n2"
    assert upd["before"]["revision_number"] + 1 == upd["after"]["revision_number"]
    assert "project_id" not in upd["after"]
    assert delete["request_id"] == _rid(deleted)
    assert delete["before"]["name"] == "n2" and delete["after"] is None

    seg_events = _events(api, resource_type="segment", resource_id=seg["id"])
    assert [e["action"] for e in seg_events] == ["create", "update", "delete"]
    assert seg_events[0]["after"]["segmentation_id"] == 1234
    changed = seg_events[1]["after"]
    assert (
        {"description", "revision_number"}
        <= set(changed)
        <= {"description", "revision_number", "updated_at"}
    )
    assert (changed["description"], seg_events[1]["before"]["description"]) == ("d", "")


def test_ranges_subnets_and_agents_are_recorded(api: Api) -> None:
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
    assert (
        api.put(
            f"/v2.0/network_segment_ranges/{range_id}", {"network_segment_range": {"maximum": 150}}
        ).status_code
        == 200
    )
    assert api.delete(f"/v2.0/network_segment_ranges/{range_id}").status_code == 204
    range_events = _events(api, resource_id=range_id)
    assert [e["action"] for e in range_events] == ["create", "update", "delete"]
    assert (range_events[1]["before"]["maximum"], range_events[1]["after"]["maximum"]) == (200, 150)
    assert range_events[2]["before"]["project_id"] == "p1"

    net = api.create_network(name="routed")
    sub = api.post(
        "/v2.0/subnets",
        {"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}},
    )
    assert sub.status_code == 201, sub.text
    subnet_id = sub.json()["subnet"]["id"]
    assert api.put(f"/v2.0/subnets/{subnet_id}", {"subnet": {"name": "s"}}).status_code == 200
    assert api.delete(f"/v2.0/subnets/{subnet_id}").status_code == 204
    assert [e["action"] for e in _events(api, resource_type="subnet")] == [
        "create",
        "update",
        "delete",
    ]

    report = {
        "agent": {
            "host": "h1",
            "agent_type": "Open vSwitch agent",
            "binary": "neutron-openvswitch-agent",
            "configurations": {"bridge_mappings": {"physnet1": "br-eth1"}},
        }
    }
    reported = api.as_("svc", "service").post("/v2.0/agents/report", report)
    assert reported.status_code == 200, reported.text
    agent_id = api.get("/v2.0/agents").json()["agents"][0]["id"]
    assert (
        api.put(f"/v2.0/agents/{agent_id}", {"agent": {"admin_state_up": False}}).status_code == 200
    )
    assert api.delete(f"/v2.0/agents/{agent_id}").status_code == 204
    agent_events = _events(api, resource_type="agent")
    # Reports are not audited (heartbeats); operator changes are.
    assert [e["action"] for e in agent_events] == ["update", "delete"]
    assert agent_events[0]["before"] == {"admin_state_up": True}
    assert agent_events[0]["after"] == {"admin_state_up": False}


def test_denied_mutations_are_recorded_and_change_nothing(api: Api, snapshot: Any) -> None:
    net = api.create_network(name="mine")
    before = snapshot()
    member = api.as_("other-project", "member")
    refused = [
        member.post(
            "/v2.0/segments", {"segment": {"network_id": net["id"], "network_type": "vxlan"}}
        ),
        member.post("/v2.0/networks", {"network": {"name": "x", "shared": True}}),
        api.as_("p", "reader").post("/v2.0/networks", {"network": {"name": "x"}}),
        api.as_("admin-project", "admin").delete(f"/v2.0/agents/{net['id']}"),  # 404, not a denial
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 404]
    assert snapshot() == before
    denials = _events(api, action="deny")
    assert [(d["permission"], d["resource_type"], d["detail"]) for d in denials] == [
        ("create_segment", "segment", "forbidden"),
        ("create_network", "network", "forbidden"),
        ("create_network", "network", "forbidden"),
    ]
    assert [d["request_id"] for d in denials] == [_rid(r) for r in refused[:3]]
    assert denials[0]["project_id"] == "other-project" and denials[0]["after"] is None


def test_unauthenticated_mutation_is_recorded(token_app: Any) -> None:
    from tests.identity_support import TokenApi, client_for

    anonymous = TokenApi(client_for(token_app), None)
    resp = anonymous.delete("/v2.0/segments/2f0e3b54-0d43-4d0b-a0a8-6b1f0c2b7c6e")
    assert resp.status_code == 401
    runtime = token_app.state.runtime
    with runtime.db.transaction(write=False) as session:
        [event] = session.scalars(select(AuditEvent)).all()
    assert (event.action, event.detail, event.user_id) == ("deny", "not_authenticated", None)
    assert event.resource_id == "2f0e3b54-0d43-4d0b-a0a8-6b1f0c2b7c6e"
    assert event.request_id == _rid(resp)


def test_failed_mutation_records_nothing(api: Api) -> None:
    net = api.create_network(name="n")
    api.create_segment(net["id"], network_type="vxlan", segmentation_id=4242)
    clash = api.post(
        "/v2.0/segments",
        {"segment": {"network_id": net["id"], "network_type": "vxlan", "segmentation_id": 4242}},
    )
    assert clash.status_code == 409
    assert _events(api, request_id=_rid(clash)) == []


def test_listing_is_admin_only_paginated_and_filtered(api: Api) -> None:
    for i in range(5):
        api.create_network(name=f"n{i}")
    member = api.as_("p", "member")
    assert member.get("/v2.0/audit-events").json()["audit_events"] == []
    page = api.get("/v2.0/audit-events", params={"limit": 2}).json()
    assert len(page["audit_events"]) == 2
    seen = list(page["audit_events"])
    while nxt := [link["href"] for link in page["audit_events_links"] if link["rel"] == "next"]:
        page = api.get(nxt[0].replace("http://testserver", "")).json()
        seen += page["audit_events"]
    names = [e["after"]["name"] for e in seen]
    assert names == [f"n{i}" for i in range(5)]  # chronological
    newest = api.get(
        "/v2.0/audit-events", params={"sort_key": "created_at", "sort_dir": "desc", "limit": 1}
    )
    assert newest.json()["audit_events"][0]["after"]["name"] == "n4"
    assert api.get("/v2.0/audit-events", params={"bogus": "1"}).status_code == 400
    assert len(_events(api, action="create", resource_type="network", user_id="noauth")) == 5


def test_database_refuses_update_and_delete_of_audit_rows(
    api: Api, engine: Engine, is_postgres: bool
) -> None:
    api.create_network(name="n")
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(update(AuditEvent).values(action="delete"))
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events"))
    if is_postgres:
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_events"))
    with engine.connect() as conn:
        assert conn.execute(select(AuditEvent.action)).scalars().all() == ["create"]
