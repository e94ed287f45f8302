"""The segment-host mapping: reconciliation rules, admin queries, concurrency."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.agent_helpers import OVS, SRIOV, mappings, ovs, report
from tests.client import Api
from tests.server import running_server
from tests.support import assert_error

Snapshot = Callable[[], dict[str, Any]]


def segment(
    api: Api, network_type: str, physnet: str | None = None, **attrs: Any
) -> dict[str, Any]:
    net = api.create_network(**{"provider:network_type": "local"})
    extra = {"physical_network": physnet} if physnet else {}
    return api.create_segment(net["id"], network_type=network_type, **extra, **attrs)


def hosts_of(api: Api, segment_id: str, **params: Any) -> list[str]:
    resp = api.get(f"/v2.0/segments/{segment_id}/hosts", params=params)
    assert resp.status_code == 200, resp.text
    return [h["host"] for h in resp.json()["hosts"]]


def test_report_maps_host_to_segments_of_its_physnets(api: Api, engine: Engine) -> None:
    v1 = segment(api, "vlan", "physnet1")
    f2 = segment(api, "flat", "physnet2")
    v2 = segment(api, "vlan", "physnet2")
    segment(api, "vxlan")
    report(api, ovs("h1", "physnet1", "physnet2"))
    assert mappings(engine) == {(v1["id"], "h1"), (f2["id"], "h1"), (v2["id"], "h1")}


def test_changed_report_adds_missing_and_removes_stale(api: Api, engine: Engine) -> None:
    v1 = segment(api, "vlan", "physnet1")
    v2 = segment(api, "vlan", "physnet2")
    report(api, ovs("h1", "physnet1"))
    report(api, ovs("h2", "physnet1"))
    report(api, ovs("h1", "physnet2"))
    assert mappings(engine) == {(v2["id"], "h1"), (v1["id"], "h2")}
    report(api, ovs("h1"))
    assert mappings(engine) == {(v1["id"], "h2")}


def test_host_keeps_mappings_justified_by_another_agent(api: Api, engine: Engine) -> None:
    v1 = segment(api, "vlan", "physnet1")
    report(api, ovs("h1", "physnet1"))
    sriov = report(
        api,
        {
            "host": "h1",
            "agent_type": SRIOV,
            "binary": "neutron-sriov-nic-agent",
            "configurations": {"device_mappings": {"physnet1": "ens5f0"}},
        },
    )
    report(api, ovs("h1"))  # OVS drops physnet1; the SR-IOV agent still has it
    assert mappings(engine) == {(v1["id"], "h1")}
    assert api.delete(f"/v2.0/agents/{sriov['id']}").status_code == 204
    assert mappings(engine) == set()


def test_new_segment_maps_to_hosts_already_reporting(api: Api, engine: Engine) -> None:
    for i in range(3):
        report(api, ovs(f"h{i}", "physnet1"))
    report(api, ovs("other", "physnet2"))
    seg = segment(api, "vlan", "physnet1")
    assert mappings(engine) == {(seg["id"], f"h{i}") for i in range(3)}
    # Networks created with provider attributes take the same path.
    net = api.create_network(
        **{"provider:network_type": "flat", "provider:physical_network": "physnet2"}
    )
    flat = api.get("/v2.0/segments", params={"network_id": net["id"]}).json()["segments"][0]
    assert (flat["id"], "other") in mappings(engine)


def test_deleting_segment_network_or_agent_removes_mappings(api: Api, engine: Engine) -> None:
    a = segment(api, "vlan", "physnet1")
    b = segment(api, "vlan", "physnet1")
    agent = report(api, ovs("h1", "physnet1"))
    report(api, ovs("h2", "physnet1"))
    assert api.delete(f"/v2.0/segments/{a['id']}").status_code == 204
    assert mappings(engine) == {(b["id"], "h1"), (b["id"], "h2")}
    assert api.delete(f"/v2.0/agents/{agent['id']}").status_code == 204
    assert mappings(engine) == {(b["id"], "h2")}
    assert api.delete(f"/v2.0/networks/{b['network_id']}").status_code == 204
    assert mappings(engine) == set()


def test_mapping_is_derived_never_stored(api: Api, engine: Engine) -> None:
    """Reports and segment creation write no mapping rows: nothing can drift."""
    from tests.agent_helpers import count_statements

    report(api, ovs("h1", "physnet1"))
    with count_statements(engine) as counter:
        seg = segment(api, "vlan", "physnet1")
    assert not [w for w in counter.writes if "host" in w.lower()], counter.writes
    assert mappings(engine) == {(seg["id"], "h1")}
    assert hosts_of(api, seg["id"]) == ["h1"]


# Queries --------------------------------------------------------------------------------


def test_hosts_of_segment_paginates(api: Api) -> None:
    seg = segment(api, "vlan", "physnet1")
    hosts = [f"h{i:02d}" for i in range(7)]
    api.post("/v2.0/agents/report/bulk", {"agents": [ovs(h, "physnet1") for h in hosts]})
    assert hosts_of(api, seg["id"]) == hosts
    seen, params = [], {"limit": 3}
    while True:
        body = api.get(f"/v2.0/segments/{seg['id']}/hosts", params=params).json()
        seen += [h["host"] for h in body["hosts"]]
        nxt = [link for link in body["hosts_links"] if link["rel"] == "next"]
        if not nxt:
            break
        params = {"limit": 3, "marker": body["hosts"][-1]["host"]}
        assert "marker=" in nxt[0]["href"]
    assert seen == hosts
    back = api.get(
        f"/v2.0/segments/{seg['id']}/hosts",
        params={"limit": 2, "marker": "h04", "page_reverse": "true"},
    ).json()
    assert [h["host"] for h in back["hosts"]] == ["h02", "h03"]


def test_page_size_is_capped(make_api: Callable[..., Api]) -> None:
    small = make_api(pagination_max_limit=2, pagination_default_limit=2)
    seg = segment(small, "vlan", "physnet1")
    small.post("/v2.0/agents/report/bulk", {"agents": [ovs(f"h{i}", "physnet1") for i in range(5)]})
    assert len(hosts_of(small, seg["id"], limit=1000)) == 2
    assert len(hosts_of(small, seg["id"], limit=0)) == 2
    assert len(small.get("/v2.0/segment-host-mappings").json()["segment_host_mappings"]) == 2


def test_segments_of_host(api: Api) -> None:
    a = segment(api, "vlan", "physnet1", name="a")
    b = segment(api, "flat", "physnet2", name="b")
    segment(api, "vlan", "physnet1", name="c")  # same physnet as a: also mapped
    report(api, ovs("h1", "physnet1", "physnet2"))
    body = api.get("/v2.0/hosts/h1/segments", params={"sort_key": "name", "limit": 2}).json()
    assert [s["name"] for s in body["segments"]] == ["a", "b"]
    assert body["segments_links"][0]["rel"] == "next"
    flat = api.get("/v2.0/hosts/h1/segments", params={"network_type": "flat"}).json()["segments"]
    assert [s["id"] for s in flat] == [b["id"]]
    assert a["id"] in {s["id"] for s in api.get("/v2.0/hosts/h1/segments").json()["segments"]}
    assert api.get("/v2.0/hosts/unknown-host/segments").json()["segments"] == []


def test_mapped_hosts_with_agent_type_filters(api: Api, engine: Engine) -> None:
    seg = segment(api, "vlan", "physnet1")
    report(api, ovs("ovs-only", "physnet1"))
    sriov = {
        "agent_type": SRIOV,
        "binary": "neutron-sriov-nic-agent",
        "configurations": {"device_mappings": {"physnet1": "ens5f0"}},
    }
    report(api, {"host": "sriov-only", **sriov})
    report(api, ovs("both", "physnet1"))
    report(api, {"host": "both", **sriov})

    def listed(**params: Any) -> list[str]:
        resp = api.get("/v2.0/segment-host-mappings", params=params)
        assert resp.status_code == 200, resp.text
        return [h["host"] for h in resp.json()["segment_host_mappings"]]

    assert listed() == ["both", "ovs-only", "sriov-only"]
    assert listed(include_agent_types=OVS) == ["both", "ovs-only"]
    assert listed(exclude_agent_types=SRIOV) == ["ovs-only"]
    assert listed(include_agent_types=OVS, exclude_agent_types=SRIOV) == [
        "ovs-only"
    ]  # exclude wins
    assert listed(include_agent_types=[OVS, SRIOV]) == ["both", "ovs-only", "sriov-only"]
    assert listed(segment_id=seg["id"], limit=1) == ["both"]
    assert hosts_of(api, seg["id"], exclude_agent_types=OVS) == ["sriov-only"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v2.0/segment-host-mappings", {"host": "h1"}),
        ("/v2.0/segment-host-mappings", {"include_agent_types": "Hyper-V agent"}),
        ("/v2.0/segment-host-mappings", {"marker": "bad host"}),
        ("/v2.0/segment-host-mappings", {"limit": "x"}),
        ("/v2.0/segment-host-mappings", {"limit": "-1"}),
        ("/v2.0/segment-host-mappings", {"segment_id": "not-a-uuid"}),
        ("/v2.0/segment-host-mappings", {"page_reverse": "sideways"}),
        ("/v2.0/hosts/h1/segments", {"hosts": "h1"}),
        ("/v2.0/hosts/h1/segments", {"sort_key": "hosts"}),
        ("/v2.0/hosts/bad%20host/segments", {}),
        ("/v2.0/hosts/" + "a" * 300 + "/segments", {}),
        ("SEGMENT/hosts", {"segment_id": "x"}),
    ],
)
def test_invalid_queries(api: Api, path: str, params: dict[str, str]) -> None:
    if path.startswith("SEGMENT"):
        path = path.replace("SEGMENT", f"/v2.0/segments/{segment(api, 'vlan', 'physnet1')['id']}")
    assert_error(api.get(path, params=params), 400)


@pytest.mark.parametrize("roles", ["member", "reader", "service"])
def test_mapping_queries_are_admin_only(api: Api, roles: str) -> None:
    seg = segment(api, "vlan", "physnet1")
    report(api, ovs("h1", "physnet1"))
    caller = api.as_("p1", roles)
    assert_error(caller.get(f"/v2.0/segments/{seg['id']}/hosts"), 404, "SegmentNotFound")
    assert caller.get("/v2.0/hosts/h1/segments").json()["segments"] == []
    assert caller.get("/v2.0/segment-host-mappings").json()["segment_host_mappings"] == []


def test_unknown_segment_hosts_is_404(api: Api) -> None:
    assert_error(
        api.get("/v2.0/segments/00000000-0000-4000-8000-000000000000/hosts"), 404, "SegmentNotFound"
    )


# Concurrency ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_concurrent_duplicate_reports_across_processes(database_url: str, engine: Engine) -> None:
    """Three server processes; many threads send the same first reports at once,
    then the same changed reports, while segments are created on the physnets."""
    env = {"SEGMENTD_ENVIRONMENT": "test"}
    hosts = [f"race-{i}" for i in range(6)]
    with ExitStack() as stack:
        clients = [
            Api.for_url(stack.enter_context(running_server(database_url, env=env)))
            for _ in range(3)
        ]
        for client in clients:
            stack.callback(client.close)
        admin = clients[0]
        segs = [segment(admin, "vlan", "physnet1") for _ in range(2)]

        def send(job: tuple[Api, str, tuple[str, ...], bool]) -> int:
            client, host, physnets, bulk = job
            if bulk:
                resp = client.post(
                    "/v2.0/agents/report/bulk", {"agents": [ovs(h, *physnets) for h in hosts]}
                )
            else:
                resp = client.post("/v2.0/agents/report", {"agent": ovs(host, *physnets)})
            return resp.status_code

        def create_segment(client: Api) -> int:
            net = client.post(
                "/v2.0/networks",
                {
                    "network": {
                        "provider:network_type": "vlan",
                        "provider:physical_network": "physnet2",
                    }
                },
            )
            return net.status_code

        statuses: Counter[int] = Counter()
        for physnets in (("physnet1",), ("physnet2",), ("physnet1", "physnet2")):
            jobs = [
                (client, host, physnets, n % 5 == 0)
                for n, (client, host) in enumerate(itertools.product(clients * 4, hosts))
            ]
            with ThreadPoolExecutor(max_workers=24) as pool:
                futures = [pool.submit(send, job) for job in jobs]
                futures += [pool.submit(create_segment, c) for c in clients * 2]
                statuses.update(f.result() for f in futures)
        assert set(statuses) <= {200, 201}, statuses
        physnet2 = admin.get(
            "/v2.0/segments", params={"physical_network": "physnet2", "limit": 0}
        ).json()["segments"]

    agents_per_host = Counter(r[1] for r in _agents(engine))
    assert agents_per_host == dict.fromkeys(hosts, 1)
    expected = {(s["id"], h) for s in [*segs, *physnet2] for h in hosts}
    assert len(physnet2) == 18  # 3 rounds x 6 creations
    assert mappings(engine) == expected


def _agents(engine: Engine) -> list[Any]:
    from sqlalchemy import select

    from segmentd.db.models import Agent

    with engine.connect() as conn:
        return list(conn.execute(select(Agent.id, Agent.host, Agent.agent_type)))
