"""/v2.0/networks over HTTP: provider attributes, multi-segment networks, ownership."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from segmentd.db.models import Network, NetworkTag, Segment
from tests.client import Api
from tests.support import assert_error

Snapshot = Callable[[], dict[str, Any]]
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


def segments_of(api: Api, network_id: str) -> list[dict[str, Any]]:
    resp = api.get(
        "/v2.0/segments", params={"network_id": network_id, "sort_key": "segmentation_id"}
    )
    segments: list[dict[str, Any]] = resp.json()["segments"]
    return segments


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(model)) or 0)


def test_tenant_network_gets_allocated_vxlan_segment(api: Api) -> None:
    net = api.create_network(name="tenant")
    assert net["provider:network_type"] == "vxlan"
    assert net["provider:physical_network"] is None
    assert 1 <= net["provider:segmentation_id"] <= 16777215
    assert net["mtu"] == 1450
    assert net["project_id"] == net["tenant_id"] == "admin-project"
    assert net["status"] == "ACTIVE"
    assert net["revision_number"] == 1
    (segment,) = segments_of(api, net["id"])
    assert segment["segmentation_id"] == net["provider:segmentation_id"]


def test_tenant_network_type_from_settings(make_api: Callable[..., Api]) -> None:
    api = make_api(tenant_network_types="geneve")
    net = api.create_network(name="g")
    assert net["provider:network_type"] == "geneve"
    assert net["mtu"] == 1450  # Neutron: 1500 - 20 (IPv4) - 30 (geneve max_header_size)


def test_single_segment_provider_network(api: Api) -> None:
    attrs = dict(zip(PROVIDER, ("vlan", "physnet1", 101), strict=True))
    net = api.create_network(name="prov", **attrs)
    assert {k: net[k] for k in PROVIDER} == attrs
    assert "segments" not in net
    assert net["mtu"] == 1500
    shown = api.get(f"/v2.0/networks/{net['id']}").json()["network"]
    assert shown == net


def test_multi_segment_network(api: Api) -> None:
    wanted = [
        {
            "provider:network_type": "vlan",
            "provider:physical_network": "physnet1",
            "provider:segmentation_id": 201,
        },
        {
            "provider:network_type": "vxlan",
            "provider:physical_network": None,
            "provider:segmentation_id": 9001,
        },
        {
            "provider:network_type": "flat",
            "provider:physical_network": "physnet2",
            "provider:segmentation_id": None,
        },
    ]
    net = api.create_network(name="multi", segments=wanted)
    assert net["segments"] == wanted
    assert not set(PROVIDER) & set(net)
    assert net["mtu"] == 1450  # the smallest of its segments'
    stored = segments_of(api, net["id"])
    assert sorted((s["network_type"], s["segmentation_id"]) for s in stored) == [
        ("flat", None),
        ("vlan", 201),
        ("vxlan", 9001),
    ]


def test_multi_segment_create_is_all_or_nothing(api: Api, snapshot: Snapshot) -> None:
    api.create_network(
        name="holder", **{"provider:network_type": "vxlan", "provider:segmentation_id": 42}
    )
    before = snapshot()
    clash = {
        "name": "multi",
        "segments": [
            {
                "provider:network_type": "vlan",
                "provider:physical_network": "physnet1",
                "provider:segmentation_id": 300,
            },
            {"provider:network_type": "vxlan", "provider:segmentation_id": 42},
        ],
    }
    assert_error(api.post("/v2.0/networks", {"network": clash}), 409, "TunnelIdInUse")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("attrs", "needle"),
    [
        (
            {"provider:network_type": "vlan", "segments": [{"provider:network_type": "local"}]},
            "Segments",
        ),
        ({"segments": [{"provider:network_type": "local"}] * 2}, "Duplicate"),
        ({"segments": []}, "segments"),
        ({"provider:physical_network": "physnet1"}, "provider:network_type"),
        ({"provider:network_type": "vlan", "provider:physical_network": "nowhere"}, "nowhere"),
        ({"provider:network_type": "vxlan", "provider:segmentation_id": 2**24}, "segmentation_id"),
        ({"segments": [{"provider:network_type": "vlan", "bogus": 1}]}, "bogus"),
        ({"name": "n" * 256}, "name"),
        ({"mtu": 10}, "mtu"),
        ({"status": "DOWN"}, "status"),
        ({"id": str(uuid.uuid4())}, "id"),
        ({"project_id": "a", "tenant_id": "b"}, "match"),
        ({"shared": "maybe"}, "shared"),
        ({"whatever": True}, "whatever"),
    ],
)
def test_create_validation(
    api: Api, snapshot: Snapshot, attrs: dict[str, Any], needle: str
) -> None:
    before = snapshot()
    error = assert_error(api.post("/v2.0/networks", {"network": attrs}), 400)
    assert needle in error["message"]
    assert snapshot() == before


def test_delete_network_deletes_segments_and_tags(api: Api, engine: Engine) -> None:
    net = api.create_network(
        name="gone",
        tags=["a", "b"],
        segments=[
            {
                "provider:network_type": "vlan",
                "provider:physical_network": "physnet1",
                "provider:segmentation_id": 5,
            },
            {"provider:network_type": "vxlan"},
        ],
    )
    keep = api.create_network(name="kept")
    assert count(engine, Segment) == 3
    assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
    assert_error(api.get(f"/v2.0/networks/{net['id']}"), 404, "NetworkNotFound")
    assert count(engine, Network) == 1
    assert count(engine, Segment) == 1
    assert count(engine, NetworkTag) == 0
    assert segments_of(api, keep["id"])
    # VLAN 5 on physnet1 is free again.
    api.create_network(
        **{
            "provider:network_type": "vlan",
            "provider:physical_network": "physnet1",
            "provider:segmentation_id": 5,
        }
    )


def test_update_network(api: Api, snapshot: Snapshot) -> None:
    net = api.create_network(name="a")
    path = f"/v2.0/networks/{net['id']}"
    resp = api.put(path, {"network": {"name": "b", "admin_state_up": False, "tags": ["x"]}})
    assert resp.status_code == 200, resp.text
    body = resp.json()["network"]
    assert (body["name"], body["admin_state_up"], body["tags"], body["revision_number"]) == (
        "b",
        False,
        ["x"],
        2,
    )
    before = snapshot()
    for attrs in (
        {"provider:segmentation_id": 3},
        {"segments": []},
        {"project_id": "p"},
        {"status": "DOWN"},
    ):
        assert_error(api.put(path, {"network": attrs}), 400)
    assert_error(
        api.put(path, {"network": {"name": "c"}}, headers={"If-Match": "revision_number=1"}), 412
    )
    assert snapshot() == before
    ok = api.put(path, {"network": {"name": "c"}}, headers={"If-Match": "revision_number=2"})
    assert ok.json()["network"]["revision_number"] == 3


# Ownership and visibility ----------------------------------------------------------------


def test_member_creates_own_tenant_network_without_provider_view(api: Api) -> None:
    alice = api.as_("alice-project", "member")
    net = alice.create_network(name="mine")
    assert net["project_id"] == "alice-project"
    assert not set(PROVIDER) & set(net)
    assert "segments" not in net
    # The admin sees the provider attributes of the same network.
    assert (
        api.get(f"/v2.0/networks/{net['id']}").json()["network"]["provider:network_type"] == "vxlan"
    )


@pytest.mark.parametrize(
    "attrs",
    [
        {"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
        {"segments": [{"provider:network_type": "local"}]},
        {"shared": True},
        {"project_id": "someone-else"},
    ],
)
def test_member_may_not_set_privileged_attributes(
    api: Api, snapshot: Snapshot, attrs: dict[str, Any]
) -> None:
    before = snapshot()
    resp = api.as_("alice-project", "member").post(
        "/v2.0/networks", {"network": {"name": "x", **attrs}}
    )
    assert_error(resp, 403)
    assert snapshot() == before


def test_projects_see_only_their_own_and_shared_networks(api: Api, snapshot: Snapshot) -> None:
    alice = api.as_("alice-project", "member")
    bob = api.as_("bob-project", "member")
    own = alice.create_network(name="alice-net")
    shared = api.create_network(name="public", shared=True, project_id="ops")
    names = {n["name"] for n in bob.get("/v2.0/networks").json()["networks"]}
    assert names == {"public"}
    assert bob.get(f"/v2.0/networks/{shared['id']}").status_code == 200
    missing = str(uuid.uuid4())
    before = snapshot()
    for method, body in (("GET", None), ("PUT", {"network": {"name": "x"}}), ("DELETE", None)):
        hidden = bob.request(method, f"/v2.0/networks/{own['id']}", json=body)
        absent = bob.request(method, f"/v2.0/networks/{missing}", json=body)
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json()["NeutronError"]["type"] == absent.json()["NeutronError"]["type"]
    # A shared network is readable by all but changed only by its owner.
    assert_error(bob.put(f"/v2.0/networks/{shared['id']}", {"network": {"name": "mine"}}), 403)
    assert_error(bob.delete(f"/v2.0/networks/{shared['id']}"), 403)
    assert snapshot() == before
    assert alice.delete(f"/v2.0/networks/{own['id']}").status_code == 204


def test_reader_reads_but_does_not_write(api: Api, snapshot: Snapshot) -> None:
    net = api.as_("alice-project", "member").create_network(name="n")
    reader = api.as_("alice-project", "reader")
    assert reader.get(f"/v2.0/networks/{net['id']}").status_code == 200
    before = snapshot()
    assert_error(reader.post("/v2.0/networks", {"network": {"name": "r"}}), 403)
    assert_error(reader.put(f"/v2.0/networks/{net['id']}", {"network": {"name": "r"}}), 403)
    assert_error(reader.delete(f"/v2.0/networks/{net['id']}"), 403)
    assert snapshot() == before


def test_member_cannot_filter_on_provider_attributes(api: Api) -> None:
    api.create_network(name="n")
    resp = api.as_("alice-project", "member").get(
        "/v2.0/networks", params={"provider:network_type": "vxlan"}
    )
    assert_error(resp, 400)
    admin = api.get("/v2.0/networks", params={"provider:network_type": "vxlan"}).json()["networks"]
    assert [n["name"] for n in admin] == ["n"]


def test_router_external_filter(api: Api) -> None:
    # `openstack network list --internal` / `--external` send this filter;
    # segmentd has no external networks.
    api.create_network(name="n")
    internal = api.get("/v2.0/networks", params={"router:external": "False"}).json()["networks"]
    assert [n["name"] for n in internal] == ["n"]
    assert api.get("/v2.0/networks", params={"router:external": "True"}).json()["networks"] == []
    both = api.get(
        "/v2.0/networks", params=[("router:external", "True"), ("router:external", "False")]
    )
    assert [n["name"] for n in both.json()["networks"]] == ["n"]
    member = api.as_("alice-project", "member")
    assert member.get("/v2.0/networks", params={"router:external": "False"}).status_code == 200
    assert_error(api.get("/v2.0/networks", params={"router:external": "maybe"}), 400)
