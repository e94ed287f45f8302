"""/v2.0/agents: reports (single and bulk), the agent resource, authorization, validation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from segmentd.db.models import Agent, Event
from tests.agent_helpers import LB, OVS, SRIOV, count_statements, mappings, ovs, report
from tests.client import Api
from tests.support import assert_error

Snapshot = Callable[[], dict[str, Any]]


def _age_heartbeats(engine: Engine, seconds: int) -> None:
    old = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=seconds)
    with engine.begin() as conn:
        conn.execute(update(Agent).values(heartbeat_timestamp=old))


def test_report_creates_agent_and_shows_neutron_attributes(api: Api) -> None:
    created = report(api, ovs("compute-1", "physnet1", "physnet2", topic="N/A"))
    assert created["result"] == "created"
    assert created["host"] == "compute-1"
    shown = api.get(f"/v2.0/agents/{created['id']}").json()["agent"]
    assert set(shown) == {
        "id",
        "agent_type",
        "binary",
        "host",
        "topic",
        "admin_state_up",
        "alive",
        "description",
        "configurations",
        "heartbeat_timestamp",
        "started_at",
        "created_at",
        "availability_zone",
    }
    assert shown["alive"] is True
    assert shown["admin_state_up"] is True
    assert shown["availability_zone"] is None
    assert shown["configurations"] == {"bridge_mappings": {"physnet1": "br-0", "physnet2": "br-1"}}
    listed = api.get("/v2.0/agents", params={"host": "compute-1"}).json()["agents"]
    assert [a["id"] for a in listed] == [created["id"]]


def test_unchanged_report_is_one_read_and_no_write(api: Api, engine: Engine) -> None:
    report(api, ovs("compute-1", "physnet1"))
    with count_statements(engine) as counter:
        again = report(api, ovs("compute-1", "physnet1"))
    assert again["result"] == "unchanged"
    assert counter.writes == []
    assert len(counter.reads) == 1, counter.statements
    assert "agents" in counter.reads[0]


def test_stale_heartbeat_is_refreshed_with_one_update(api: Api, engine: Engine) -> None:
    first = report(api, ovs("compute-1", "physnet1"))
    _age_heartbeats(engine, 60)
    with count_statements(engine) as counter:
        again = report(api, ovs("compute-1", "physnet1"))
    assert again["result"] == "heartbeat"
    assert len(counter.writes) == 1 and counter.writes[0].upper().startswith("UPDATE")
    assert api.get(f"/v2.0/agents/{first['id']}").json()["agent"]["alive"] is True


def test_alive_follows_agent_down_time(api: Api, engine: Engine) -> None:
    agent = report(api, ovs("compute-1", "physnet1"))
    _age_heartbeats(engine, 120)
    assert api.get(f"/v2.0/agents/{agent['id']}").json()["agent"]["alive"] is False


def test_start_flag_resyncs_and_sets_started_at(api: Api, engine: Engine) -> None:
    agent = report(api, ovs("compute-1", "physnet1"))
    with engine.begin() as conn:
        conn.execute(update(Agent).values(started_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
    again = report(api, ovs("compute-1", "physnet1", start_flag=True))
    assert again["result"] == "updated" and again["id"] == agent["id"]
    shown = api.get(f"/v2.0/agents/{agent['id']}").json()["agent"]
    assert not shown["started_at"].startswith("2020")


def test_changed_report_updates_configuration(api: Api) -> None:
    agent = report(api, ovs("compute-1", "physnet1"))
    again = report(api, ovs("compute-1", "physnet2"))
    assert again == {**agent, "result": "updated"}
    shown = api.get(f"/v2.0/agents/{agent['id']}").json()["agent"]
    assert shown["configurations"] == {"bridge_mappings": {"physnet2": "br-0"}}


def test_several_agent_types_on_one_host(api: Api) -> None:
    report(api, ovs("compute-1", "physnet1"))
    sriov = {
        "host": "compute-1",
        "agent_type": SRIOV,
        "binary": "neutron-sriov-nic-agent",
        "configurations": {"device_mappings": {"physnet2": ["ens5f1", "ens5f0", "ens5f0"]}},
    }
    report(api, sriov)
    agents = api.get("/v2.0/agents", params={"host": "compute-1", "sort_key": "agent_type"}).json()[
        "agents"
    ]
    assert [a["agent_type"] for a in agents] == [SRIOV, OVS]
    assert agents[0]["configurations"] == {"device_mappings": {"physnet2": ["ens5f0", "ens5f1"]}}


def test_bulk_report(api: Api) -> None:
    agents = [ovs(f"compute-{i}", "physnet1") for i in range(5)]
    resp = api.post("/v2.0/agents/report/bulk", {"agents": agents})
    assert resp.status_code == 200, resp.text
    assert [r["result"] for r in resp.json()["agents"]] == ["created"] * 5
    agents[2] = ovs("compute-2", "physnet2")
    resp = api.post("/v2.0/agents/report/bulk", {"agents": agents})
    assert [r["result"] for r in resp.json()["agents"]] == ["unchanged"] * 2 + ["updated"] + [
        "unchanged"
    ] * 2
    page = api.get("/v2.0/agents", params={"limit": 2, "sort_key": "host"}).json()
    assert [a["host"] for a in page["agents"]] == ["compute-0", "compute-1"]
    assert page["agents_links"][0]["rel"] == "next"


def test_bulk_cap(make_api: Callable[..., Api], snapshot: Snapshot) -> None:
    capped = make_api(max_agents_per_report=2)
    before = snapshot()
    resp = capped.post(
        "/v2.0/agents/report/bulk", {"agents": [ovs(f"h{i}", "physnet1") for i in range(3)]}
    )
    assert_error(resp, 413, "TooManyAgents")
    assert snapshot() == before
    ok = capped.post(
        "/v2.0/agents/report/bulk", {"agents": [ovs(f"h{i}", "physnet1") for i in range(2)]}
    )
    assert ok.status_code == 200


def test_physnets_per_agent_cap(make_api: Callable[..., Api], snapshot: Snapshot) -> None:
    capped = make_api(max_physnets_per_agent=3)
    before = snapshot()

    def linux_bridge(host: str, bridges: list[str], interfaces: list[str]) -> dict[str, Any]:
        configurations = {
            "bridge_mappings": {p: f"br-{p}" for p in bridges},
            "interface_mappings": {p: f"if-{p}" for p in interfaces},
        }
        return {"host": host, "agent_type": LB, "binary": "lb", "configurations": configurations}

    # Counted over all of an agent's mappings together; one agent over the
    # cap refuses the whole bulk report.
    over = [
        ("/v2.0/agents/report", {"agent": ovs("h1", "p1", "p2", "p3", "p4")}),
        (
            "/v2.0/agents/report/bulk",
            {"agents": [ovs("h0", "p1"), linux_bridge("h2", ["p1", "p2"], ["p3", "p4"])]},
        ),
    ]
    for path, body in over:
        error = assert_error(capped.post(path, body), 400, "TooManyPhysicalNetworks")
        assert error["message"].startswith("Agent on host h")
    assert snapshot() == before
    # At the cap; a physnet in two mappings counts once.
    at_cap = [ovs("h1", "p1", "p2", "p3"), linux_bridge("h2", ["p1", "p2"], ["p1", "p3"])]
    resp = capped.post("/v2.0/agents/report/bulk", {"agents": at_cap})
    assert resp.status_code == 200, resp.text
    assert [r["result"] for r in resp.json()["agents"]] == ["created", "created"]
    physnets = sorted((row[2], row[1]) for row in snapshot()["agent_physnets"])
    assert physnets == [(host, p) for host in ("h1", "h2") for p in ("p1", "p2", "p3")]


def test_bulk_report_writes_in_batches(api: Api, engine: Engine, is_postgres: bool) -> None:
    # A bulk report is one batch per table whatever its size: the agents'
    # upsert, the replaced physnets' delete and their insert; then the new
    # agents' change events (one read of their views, one of the hosts'
    # physnets before the write, one of the segments on the physnets they
    # changed, after taking their advisory locks on PostgreSQL, and one
    # insert made on the DBAPI connection itself, unseen by SQLAlchemy's
    # hooks: counted below).
    with count_statements(engine) as counter:
        resp = api.post(
            "/v2.0/agents/report/bulk",
            {"agents": [ovs(f"h{i}", "p1", "p2", "p3") for i in range(50)]},
        )
    assert resp.status_code == 200, resp.text
    assert len(counter.reads) == (5 if is_postgres else 4), counter.statements
    assert [w.split()[0:3] for w in counter.writes] == [
        ["INSERT", "INTO", "agents"],
        ["DELETE", "FROM", "agent_physnets"],
        ["INSERT", "INTO", "agent_physnets"],
    ]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Event)).scalar() == 50


def test_update_agent(api: Api) -> None:
    agent = report(api, ovs("compute-1", "physnet1"))
    resp = api.put(
        f"/v2.0/agents/{agent['id']}", {"agent": {"admin_state_up": False, "description": "maint"}}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()["agent"]
    assert (body["admin_state_up"], body["description"]) == (False, "maint")
    # A later report keeps the operator's settings.
    report(api, ovs("compute-1", "physnet2"))
    shown = api.get(f"/v2.0/agents/{agent['id']}").json()["agent"]
    assert (shown["admin_state_up"], shown["description"]) == (False, "maint")


@pytest.mark.parametrize(
    "attrs",
    [
        {"host": "other"},
        {"agent_type": LB},
        {"configurations": {}},
        {"alive": False},
        {"unknown": 1},
        {"admin_state_up": "maybe"},
        {"description": "x" * 256},
    ],
)
def test_update_rejects_other_attributes(
    api: Api, snapshot: Snapshot, attrs: dict[str, Any]
) -> None:
    agent = report(api, ovs("compute-1", "physnet1"))
    before = snapshot()
    assert_error(api.put(f"/v2.0/agents/{agent['id']}", {"agent": attrs}), 400)
    assert snapshot() == before


def test_delete_agent(api: Api) -> None:
    agent = report(api, ovs("compute-1", "physnet1"))
    assert api.delete(f"/v2.0/agents/{agent['id']}").status_code == 204
    assert_error(api.get(f"/v2.0/agents/{agent['id']}"), 404, "AgentNotFound")
    assert_error(api.delete(f"/v2.0/agents/{agent['id']}"), 404, "AgentNotFound")


# Authorization --------------------------------------------------------------------------


@pytest.mark.parametrize("roles", ["member", "reader", "member,reader", ""])
def test_only_service_or_admin_may_report(api: Api, snapshot: Snapshot, roles: str) -> None:
    caller = api.as_("p1", roles)
    before = snapshot()
    assert_error(caller.post("/v2.0/agents/report", {"agent": ovs("h1", "physnet1")}), 403)
    assert_error(caller.post("/v2.0/agents/report/bulk", {"agents": [ovs("h1", "physnet1")]}), 403)
    assert snapshot() == before


def test_service_role_reports_but_cannot_read_or_manage(api: Api) -> None:
    service = api.as_("services", "service")
    agent = report(service, ovs("h1", "physnet1"))
    assert service.get("/v2.0/agents").json()["agents"] == []
    assert_error(service.get(f"/v2.0/agents/{agent['id']}"), 404)
    assert_error(service.put(f"/v2.0/agents/{agent['id']}", {"agent": {"description": "x"}}), 404)
    assert_error(service.delete(f"/v2.0/agents/{agent['id']}"), 404)


@pytest.mark.parametrize("roles", ["member", "reader"])
def test_agents_are_invisible_to_non_admins(api: Api, snapshot: Snapshot, roles: str) -> None:
    agent = report(api, ovs("h1", "physnet1"))
    caller = api.as_("p1", roles)
    before = snapshot()
    assert caller.get("/v2.0/agents").json()["agents"] == []
    missing_id = "00000000-0000-4000-8000-000000000000"
    missing = caller.get(f"/v2.0/agents/{missing_id}").json()
    hidden = caller.get(f"/v2.0/agents/{agent['id']}").json()
    assert hidden == {
        "NeutronError": {
            **missing["NeutronError"],
            "message": missing["NeutronError"]["message"].replace(missing_id, agent["id"]),
        }
    }
    assert_error(caller.put(f"/v2.0/agents/{agent['id']}", {"agent": {"description": "x"}}), 404)
    assert_error(caller.delete(f"/v2.0/agents/{agent['id']}"), 404)
    assert snapshot() == before


# Validation -------------------------------------------------------------------------------

INVALID = [
    {"host": ""},
    {"host": "a" * 256},
    {"host": "bad host"},
    {"host": "-leading-dash"},
    {"host": "semi;colon"},
    {"agent_type": "Hyper-V agent"},
    {"agent_type": None},
    {"binary": ""},
    {"binary": "x" * 256},
    {"topic": "bad topic"},
    {"configurations": {"bridge_mappings": {"bad physnet": "br-0"}}},
    {"configurations": {"bridge_mappings": {"p" * 65: "br-0"}}},
    {"configurations": {"bridge_mappings": {"physnet1": "br 0"}}},
    {"configurations": {"bridge_mappings": {"physnet1": ""}}},
    {"configurations": {"bridge_mappings": {"physnet1": "b" * 65}}},
    {"configurations": {"bridge_mappings": {f"p{i}": "br" for i in range(257)}}},
    {"configurations": {"bridge_mappings": ["physnet1"]}},
    {"configurations": {"tunnel_types": ["stt"]}},
    # per-type rule: an OVS agent reports bridge_mappings only
    {"configurations": {"device_mappings": {"physnet1": "eth1"}}},
    {"configurations": {"interface_mappings": {"physnet1": "eth1"}}},
    {"start_flag": "sometimes"},
    {"alive": True},
]


@pytest.mark.parametrize("attrs", INVALID, ids=lambda v: str(v)[:60])
def test_invalid_reports_change_nothing(
    api: Api, snapshot: Snapshot, attrs: dict[str, Any]
) -> None:
    report(api, ovs("existing", "physnet1"))
    before = snapshot()
    body = {**ovs("h1", "physnet1"), **attrs}
    assert_error(api.post("/v2.0/agents/report", {"agent": body}), 400)
    assert_error(
        api.post("/v2.0/agents/report/bulk", {"agents": [ovs("h2", "physnet1"), body]}), 400
    )
    assert snapshot() == before


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"agent": None},
        {"agents": []},
        {"agent": {}},
        {"agent": ovs("h", "p"), "extra": 1},
    ],
)
def test_malformed_report_bodies(api: Api, snapshot: Snapshot, body: Any) -> None:
    before = snapshot()
    assert_error(api.post("/v2.0/agents/report", body), 400)
    assert snapshot() == before


def test_bulk_refuses_the_same_agent_twice(api: Api, snapshot: Snapshot) -> None:
    before = snapshot()
    resp = api.post(
        "/v2.0/agents/report/bulk", {"agents": [ovs("h1", "physnet1"), ovs("h1", "physnet2")]}
    )
    assert_error(resp, 400)
    assert snapshot() == before


def test_linux_bridge_reports_interface_and_bridge_mappings(api: Api, engine: Engine) -> None:
    agent = {
        "host": "h1",
        "agent_type": LB,
        "binary": "neutron-linuxbridge-agent",
        "configurations": {
            "interface_mappings": {"physnet1": "eth1"},
            "bridge_mappings": {"physnet2": "br-ex"},
        },
    }
    assert report(api, agent)["result"] == "created"
    net = api.create_network(
        **{"provider:network_type": "flat", "provider:physical_network": "physnet2"}
    )
    seg = api.get("/v2.0/segments", params={"network_id": net["id"]}).json()["segments"][0]
    assert mappings(engine) == {(seg["id"], "h1")}


def test_report_with_tunnel_types(api: Api, engine: Engine) -> None:
    """An OVS agent reports ``tunnel_types`` (neutron/plugins/ml2/drivers/
    openvswitch/agent/ovs_neutron_agent.py's agent_state configurations):
    accepted and shown, with no bearing on the host mapping."""
    body = ovs("compute-1", "physnet1")
    body["configurations"]["tunnel_types"] = ["vxlan", "geneve", "vxlan"]
    created = report(api, body)
    shown = api.get(f"/v2.0/agents/{created['id']}").json()["agent"]
    assert shown["configurations"] == {
        "bridge_mappings": {"physnet1": "br-0"},
        "tunnel_types": ["geneve", "vxlan"],
    }
    assert report(api, body)["result"] in ("unchanged", "heartbeat")
    body["configurations"]["tunnel_types"] = ["gre"]
    assert report(api, body)["result"] == "updated"
