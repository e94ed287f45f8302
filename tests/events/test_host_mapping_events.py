"""``segment_host_mapping`` events: a host's reachable segments, before and after.

The truth is what the API's mapping queries answer: every test reads
``/v2.0/segment-host-mappings`` and each host's ``/v2.0/hosts/{host}/segments``
before and after a change, and the events written by the change must say
exactly what changed, per host, at most one ``create`` and one ``delete``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select

from segmentd.db.events import Event
from segmentd.db.models import Segment
from segmentd.delivery import amqp
from segmentd.delivery.worker import Worker
from segmentd.main import build_runtime, create_app
from segmentd.services import host_events
from tests.agent_helpers import LB, StatementCounter, count_statements, ovs
from tests.client import Api
from tests.conftest import make_settings
from tests.events.receiver import SECRET, receiving

Mapping = dict[str, set[str]]
HOST_EVENT = "segment_host_mapping"


def mapping(api: Api) -> Mapping:
    """Every mapped host and its segments, as the API answers them."""
    hosts = api.get("/v2.0/segment-host-mappings", params={"limit": 1000})
    assert hosts.status_code == 200, hosts.text
    assert not hosts.json().get("segment_host_mappings_links")
    out: Mapping = {}
    for item in hosts.json()["segment_host_mappings"]:
        host = item["host"]
        segs = api.get(f"/v2.0/hosts/{host}/segments", params={"limit": 1000, "fields": "id"})
        assert segs.status_code == 200, segs.text
        assert not segs.json().get("segments_links")
        out[host] = {s["id"] for s in segs.json()["segments"]}
    return out


def last_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(Event.seq), 0))).scalar() or 0)


def events_since(engine: Engine, seq: int) -> list[Any]:
    with engine.connect() as conn:
        stmt = select(Event).where(Event.seq > seq).order_by(Event.seq)
        return list(conn.execute(stmt))


def host_changes(engine: Engine, seq: int) -> dict[tuple[str, str], list[str]]:
    """The host events after ``seq``: (host, action) -> segment ids, checked for shape."""
    out: dict[tuple[str, str], list[str]] = {}
    for e in events_since(engine, seq):
        if e.resource_type != HOST_EVENT:
            continue
        assert (e.project_id, e.revision_number) == (None, None)
        body = orjson.loads((e.after if e.action == "create" else e.before) or "")
        other = e.before if e.action == "create" else e.after
        assert other is None
        assert body["host"] == e.resource_id
        assert body["segment_ids"] == sorted(body["segment_ids"])
        key = (e.resource_id, e.action)
        assert key not in out, f"two {e.action} events for {e.resource_id} in one request"
        out[key] = body["segment_ids"]
    return out


class Tracker:
    """Snapshot the API's mapping, make a change, compare with its events."""

    def __init__(self, api: Api, engine: Engine) -> None:
        self.api, self.engine = api, engine

    def __call__(self, change: Callable[[], Any]) -> dict[tuple[str, str], list[str]]:
        before, seq = mapping(self.api), last_seq(self.engine)
        change()
        after = mapping(self.api)
        expected: dict[tuple[str, str], list[str]] = {}
        for host in set(before) | set(after):
            gained = after.get(host, set()) - before.get(host, set())
            lost = before.get(host, set()) - after.get(host, set())
            if gained:
                expected[(host, "create")] = sorted(gained)
            if lost:
                expected[(host, "delete")] = sorted(lost)
        written = host_changes(self.engine, seq)
        assert written == expected
        return written


@pytest.fixture
def track(api: Api, engine: Engine) -> Tracker:
    return Tracker(api, engine)


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


def vlan_net(api: Api, physnet: str, vlan: int, project: str = "p1") -> dict[str, Any]:
    return api.create_network(
        name=f"{physnet}-{vlan}",
        project_id=project,
        **{
            "provider:network_type": "vlan",
            "provider:physical_network": physnet,
            "provider:segmentation_id": vlan,
        },
    )


def lb(host: str, *physnets: str) -> dict[str, Any]:
    return {
        "host": host,
        "agent_type": LB,
        "binary": "neutron-linuxbridge-agent",
        "configurations": {"interface_mappings": {p: f"eth{i}" for i, p in enumerate(physnets)}},
    }


def test_reports_that_change_a_hosts_reach_are_events(api: Api, track: Tracker) -> None:
    service = api.as_("svc", "service")
    n1 = vlan_net(api, "physnet1", 1100)
    seg_1b = api.create_segment(
        n1["id"], network_type="vlan", physical_network="physnet1", segmentation_id=1101
    )["id"]
    n2 = vlan_net(api, "physnet2", 1200)
    api.create_network(name="overlay", **{"provider:network_type": "vxlan"})
    on_1 = mapping_ids(api, n1["id"])
    on_2 = mapping_ids(api, n2["id"])
    assert seg_1b in on_1 and len(on_1) == 2 and len(on_2) == 1

    # A host's first agent: it reaches both physnet1 segments.
    written = track(
        lambda: ok(service.post("/v2.0/agents/report", {"agent": ovs("h1", "physnet1")}))
    )
    assert written == {("h1", "create"): sorted(on_1)}
    # A heartbeat, and a restart with the same configuration: nothing.
    assert (
        track(lambda: ok(service.post("/v2.0/agents/report", {"agent": ovs("h1", "physnet1")})))
        == {}
    )
    restart = ovs("h1", "physnet1", start_flag=True)
    assert track(lambda: ok(service.post("/v2.0/agents/report", {"agent": restart}))) == {}
    # A changed configuration that keeps the physnets (another bridge): an
    # agent event, no host event.
    rebridged = ovs("h1", "physnet1")
    rebridged["configurations"]["bridge_mappings"]["physnet1"] = "br-other"
    assert track(lambda: ok(service.post("/v2.0/agents/report", {"agent": rebridged}))) == {}
    # A second agent type on the same physnet reaches nothing new.
    assert (
        track(lambda: ok(service.post("/v2.0/agents/report", {"agent": lb("h1", "physnet1")})))
        == {}
    )

    # A batch: per distinct host, one create and one delete at most.
    batch = [
        ovs("h1", "physnet2"),  # h1 keeps physnet1 through its LB agent, gains physnet2
        lb("h1"),  # ... and now loses physnet1
        ovs("h2", "physnet1", "physnet2"),
        ovs("h3", "physnet2"),
    ]
    written = track(lambda: ok(service.post("/v2.0/agents/report/bulk", {"agents": batch})))
    assert written == {
        ("h1", "create"): sorted(on_2),
        ("h1", "delete"): sorted(on_1),
        ("h2", "create"): sorted(on_1 | on_2),
        ("h3", "create"): sorted(on_2),
    }


def mapping_ids(api: Api, network_id: str) -> set[str]:
    segs = ok(api.get("/v2.0/segments", params={"network_id": network_id}))["segments"]
    return {s["id"] for s in segs}


def hosts(api: Api, *agents: dict[str, Any]) -> None:
    ok(api.as_("svc", "service").post("/v2.0/agents/report/bulk", {"agents": list(agents)}))


def test_segment_creates_and_deletes_fan_out_to_the_hosts_of_their_physnet(
    api: Api, engine: Engine, track: Tracker
) -> None:
    hosts(api, ovs("h1", "physnet1"), ovs("h2", "physnet1", "physnet2"), ovs("h3", "physnet2"))
    net = api.create_network(name="routed", project_id="p1")
    made: dict[str, Any] = {}

    def create() -> None:
        made["seg"] = api.create_segment(
            net["id"], network_type="vlan", physical_network="physnet1", segmentation_id=1300
        )

    written = track(create)
    seg = made["seg"]["id"]
    assert written == {("h1", "create"): [seg], ("h2", "create"): [seg]}

    # A bulk create: one event per host with all the segments it gains.
    def bulk() -> None:
        body = {
            "segments": [
                {
                    "network_id": net["id"],
                    "network_type": "vlan",
                    "physical_network": "physnet1",
                    "segmentation_id": 1301,
                },
                {
                    "network_id": net["id"],
                    "network_type": "vlan",
                    "physical_network": "physnet2",
                    "segmentation_id": 1302,
                },
            ]
        }
        made["bulk"] = [s["id"] for s in ok(api.post("/v2.0/segments", body), 201)["segments"]]

    written = track(bulk)
    a, b = made["bulk"]
    assert written == {
        ("h1", "create"): [a],
        ("h2", "create"): sorted([a, b]),
        ("h3", "create"): [b],
    }
    # Tunnels are mapped to no host: no host event.
    assert track(lambda: api.create_segment(net["id"], network_type="vxlan")) == {}

    written = track(lambda: ok(api.delete(f"/v2.0/segments/{seg}"), 204))
    assert written == {("h1", "delete"): [seg], ("h2", "delete"): [seg]}

    # The segment events carry their network's project (agents none), an
    # update's too (read with the segment).
    ok(api.put(f"/v2.0/segments/{a}", {"segment": {"name": "renamed"}}), 200)
    owned = [
        (e.resource_type, e.action, e.project_id)
        for e in events_since(engine, 0)
        if e.resource_type in ("segment", "agent")
    ]
    assert ("segment", "create", "p1") in owned and ("segment", "delete", "p1") in owned
    assert ("segment", "update", "p1") in owned
    assert all(p == "p1" for t, _, p in owned if t == "segment")
    assert all(p is None for t, _, p in owned if t == "agent")


def test_network_create_and_delete_one_event_per_host(api: Api, track: Tracker) -> None:
    hosts(api, ovs("h1", "physnet1"), ovs("h2", "physnet1", "physnet2"), ovs("h3", "physnet3"))
    made: dict[str, Any] = {}

    def create() -> None:
        made["net"] = api.create_network(
            name="multi",
            segments=[
                {
                    "provider:network_type": "vlan",
                    "provider:physical_network": "physnet1",
                    "provider:segmentation_id": 1400,
                },
                {
                    "provider:network_type": "vlan",
                    "provider:physical_network": "physnet2",
                    "provider:segmentation_id": 1401,
                },
            ],
        )

    written = track(create)
    segs = mapping_ids(api, made["net"]["id"])
    assert written[("h2", "create")] == sorted(segs) and len(segs) == 2
    assert set(written) == {("h1", "create"), ("h2", "create")}

    written = track(lambda: ok(api.delete(f"/v2.0/networks/{made['net']['id']}"), 204))
    assert written[("h2", "delete")] == sorted(segs)
    assert set(written) == {("h1", "delete"), ("h2", "delete")}


def test_deleting_a_hosts_last_agent_on_a_physnet_is_a_delete(api: Api, track: Tracker) -> None:
    service = api.as_("svc", "service")
    net = vlan_net(api, "physnet1", 1500)
    seg = mapping_ids(api, net["id"])
    ovs_id = ok(service.post("/v2.0/agents/report", {"agent": ovs("h1", "physnet1")}))["agent"][
        "id"
    ]
    lb_id = ok(service.post("/v2.0/agents/report", {"agent": lb("h1", "physnet1")}))["agent"]["id"]
    # Another agent still maps physnet1 on h1: nothing changes.
    assert track(lambda: ok(api.delete(f"/v2.0/agents/{ovs_id}"), 204)) == {}
    written = track(lambda: ok(api.delete(f"/v2.0/agents/{lb_id}"), 204))
    assert written == {("h1", "delete"): sorted(seg)}


def test_rolled_back_requests_leave_no_host_event(api: Api, engine: Engine, track: Tracker) -> None:
    hosts(api, ovs("h1", "physnet1"), ovs("h2", "physnet1"))
    net = vlan_net(api, "physnet1", 1600)
    seq = last_seq(engine)
    # The first segment is inserted (and fanned out), the second conflicts: 409.
    body = {
        "segments": [
            {
                "network_id": net["id"],
                "network_type": "vlan",
                "physical_network": "physnet1",
                "segmentation_id": 1601,
            },
            {
                "network_id": net["id"],
                "network_type": "vlan",
                "physical_network": "physnet1",
                "segmentation_id": 1600,
            },
        ]
    }
    assert api.post("/v2.0/segments", body).status_code == 409
    # A network whose second segment conflicts after the first was made.
    clash = api.post(
        "/v2.0/networks",
        {
            "network": {
                "name": "clash",
                "segments": [
                    {
                        "provider:network_type": "vlan",
                        "provider:physical_network": "physnet1",
                        "provider:segmentation_id": 1602,
                    },
                    {
                        "provider:network_type": "vlan",
                        "provider:physical_network": "physnet1",
                        "provider:segmentation_id": 1600,
                    },
                ],
            }
        },
    )
    assert clash.status_code == 409, clash.text
    # A refused report (an unknown agent type after a changing one).
    bad = api.as_("svc", "service").post(
        "/v2.0/agents/report/bulk",
        {"agents": [ovs("h9", "physnet1"), {**ovs("h8"), "agent_type": "nope"}]},
    )
    assert bad.status_code in (400, 422)
    assert events_since(engine, seq) == []
    # The control: the same segment, committed, is an event of each host.
    one = {"segment": body["segments"][0]}
    written = track(lambda: ok(api.post("/v2.0/segments", one), 201))
    assert set(written) == {("h1", "create"), ("h2", "create")}


def test_no_host_events_when_events_are_disabled(
    api: Api, make_api: Callable[..., Api], engine: Engine
) -> None:
    def changes(client: Api, vlan: int, h1: str, h2: str) -> None:
        hosts(client, ovs(h1, "physnet1"))
        net = vlan_net(client, "physnet1", vlan)
        hosts(client, ovs(h1, "physnet2"), ovs(h2, "physnet1"))
        ok(client.delete(f"/v2.0/networks/{net['id']}"), 204)

    changes(make_api(events_enabled=False), 1700, "q1", "q2")
    assert events_since(engine, 0) == []
    # The control: the same changes with events on.
    changes(api, 1701, "h1", "h2")
    written = [
        (e.resource_id, e.action) for e in events_since(engine, 0) if e.resource_type == HOST_EVENT
    ]
    # (q2, left by the quiet part, reports physnet1 too.)
    assert written == [
        ("h1", "create"),
        ("q2", "create"),
        ("h1", "delete"),
        ("h2", "create"),
        ("h2", "delete"),
        ("q2", "delete"),
    ]


def test_pull_and_a_filtered_sink_get_host_events(
    api: Api, engine: Engine, runtime: Any, database_url: str
) -> None:
    net = vlan_net(api, "physnet1", 1800)
    seg = mapping_ids(api, net["id"])
    hosts(api, ovs("h1", "physnet1"), ovs("h2", "physnet2"))
    ok(api.delete(f"/v2.0/networks/{net['id']}"), 204)

    pulled = ok(api.get("/v2.0/events", params={"resource_type": HOST_EVENT}))["events"]
    assert [(e["event_type"], e["resource_id"]) for e in pulled] == [
        ("segment_host_mapping.create", "h1"),
        ("segment_host_mapping.delete", "h1"),
    ]
    assert pulled[0]["after"] == {"host": "h1", "segment_ids": sorted(seg)}
    assert pulled[1]["before"] == {"host": "h1", "segment_ids": sorted(seg)}
    assert pulled[0]["before"] is None and pulled[1]["after"] is None

    with receiving() as receiver:
        sink = {
            "type": "webhook",
            "name": "hosts",
            "url": receiver.url,
            "secrets": [SECRET],
            "allow_private": True,
            "timeout_seconds": 2,
            "resource_types": [HOST_EVENT],
        }
        settings = make_settings(database_url, event_sinks=[sink], events_poll_seconds=0.02)
        Worker(settings, runtime.db).run(threading.Event(), once=True)
        got = receiver.unique()
    assert [(e["event_type"], e["resource_id"]) for e in got] == [
        ("segment_host_mapping.create", "h1"),
        ("segment_host_mapping.delete", "h1"),
    ]
    assert got == pulled


def test_amqp_notification_of_a_host_event() -> None:
    document = {
        "id": "e1",
        "resource_type": HOST_EVENT,
        "resource_id": "h1",
        "action": "delete",
        "before": {"host": "h1", "segment_ids": ["s1"]},
        "after": None,
    }
    message = amqp.notification(document, "network.segmentd")
    assert message["event_type"] == "segment_host_mapping.delete.end"
    assert message["payload"] == {"segment_host_mapping": {"host": "h1", "segment_ids": ["s1"]}}


def mapping_reads(counter: StatementCounter) -> list[str]:
    return [s for s in counter.reads if "FROM agent_physnets" in s]


def test_the_fan_out_is_set_based_and_costs_nothing_when_disabled(
    api: Api, engine: Engine, database_url: str
) -> None:
    """A segment on a physnet: one read of its hosts whatever their number;
    events off: no read for the mapping at all (the insert is on the DBAPI
    connection, unseen here: the event rows are counted instead)."""
    rt = build_runtime(make_settings(database_url, events_enabled=False))
    try:
        with Api.for_app(create_app(runtime=rt)) as quiet:
            hosts(quiet, *(ovs(f"q{i}", "physnet1") for i in range(40)))
            net = quiet.create_network(name="quiet", project_id="p1")
            with count_statements(rt.db.writer) as off:
                seg = quiet.create_segment(
                    net["id"],
                    network_type="vlan",
                    physical_network="physnet1",
                    segmentation_id=1900,
                )
                ok(quiet.delete(f"/v2.0/segments/{seg['id']}"), 204)
                hosts(quiet, *(ovs(f"q{i}") for i in range(40)))
    finally:
        rt.close()
    assert not [s for s in off.statements if "agent_physnets" in s and s.startswith("SELECT")]
    assert events_since(engine, 0) == []

    seen = []
    for count in (4, 40):
        hosts(api, *(ovs(f"h{count}-{i}", "physnet2") for i in range(count)))
        seq = last_seq(engine)
        with count_statements(engine) as on:
            seg = api.create_segment(
                net["id"],
                network_type="vlan",
                physical_network="physnet2",
                segmentation_id=1900 + count,
            )
        seen.append(mapping_reads(on))
        assert len(host_changes(engine, seq)) == (4 if count == 4 else 44)
    assert len(seen[0]) == len(seen[1]) == 1, seen


def test_a_report_racing_a_segment_create_on_its_physnet_is_not_lost(
    api: Api, engine: Engine, runtime: Any, is_postgres: bool
) -> None:
    """PostgreSQL: neither transaction sees the other's uncommitted rows, so
    without the physnet's advisory lock the segment's fan-out finds no host
    and the report's finds no segment, and the host's new reach has no event.
    The report waits for the segment's commit, then reads it."""
    if not is_postgres:
        pytest.skip("SQLite runs one writer at a time")
    net = api.create_network(name="race", project_id="p1")
    seq = last_seq(engine)
    done: dict[str, Any] = {}

    def first_report() -> None:
        service = api.as_("svc", "service")
        done["resp"] = service.post("/v2.0/agents/report", {"agent": ovs("racer", "physnet1")})

    thread = threading.Thread(target=first_report)
    with runtime.db.transaction(True) as session:
        segment = Segment(
            network_id=net["id"],
            network_type="vlan",
            physical_network="physnet1",
            segmentation_id=1950,
            segment_index=1,
        )
        session.add(segment)
        session.flush()
        seg_id = segment.id
        changes = host_events.for_segments(session, [(seg_id, "physnet1", "vlan")], ())
        assert changes == []  # no host reports physnet1 yet
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the report did not wait for the physnet's lock"
    thread.join(10)
    assert done["resp"].status_code == 200, done["resp"].text
    assert mapping(api)["racer"] == {seg_id}
    assert host_changes(engine, seq) == {("racer", "create"): [seg_id]}
