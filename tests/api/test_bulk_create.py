"""Bulk create (``{"networks": [...]}``, ``{"subnets": [...]}``,
``{"segments": [...]}``) answered ``201 {"<collection>": [...]}`` as Neutron's
API controller does (neutron/api/v2/base.py ``_create`` with ``bulk``), and
all or nothing: one refused item leaves the database as it was (ML2's
``_create_bulk_ml2`` rolls the others back).  Each created resource is
audited; a bulk larger than ``max_bulk_create`` is 413."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select

from segmentd.db.models import AuditEvent
from tests.client import Api
from tests.support import assert_error

Snapshot = Callable[[], dict[str, Any]]


def test_bulk_networks(api: Api, engine: Engine) -> None:
    resp = api.post("/v2.0/networks", {"networks": [{"name": "a"}, {"name": "b", "mtu": 1400}]})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert list(body) == ["networks"]
    assert [n["name"] for n in body["networks"]] == ["a", "b"]
    assert body["networks"][1]["mtu"] == 1400
    listed = api.get("/v2.0/networks", params={"sort_key": "name"}).json()["networks"]
    assert [n["id"] for n in listed] == [n["id"] for n in body["networks"]]
    with engine.connect() as conn:
        audited = set(
            conn.scalars(select(AuditEvent.resource_id).where(AuditEvent.action == "create"))
        )
    assert audited == {n["id"] for n in body["networks"]}


def test_bulk_subnets_and_segments(api: Api) -> None:
    net = api.create_network(name="n")
    subnets = [
        {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4, "name": "s1"},
        {"network_id": net["id"], "cidr": "10.0.1.0/24", "ip_version": 4, "name": "s2"},
    ]
    resp = api.post("/v2.0/subnets", {"subnets": subnets})
    assert resp.status_code == 201, resp.text
    assert [s["cidr"] for s in resp.json()["subnets"]] == ["10.0.0.0/24", "10.0.1.0/24"]
    segs = [
        {"network_id": net["id"], "network_type": "vlan", "physical_network": "physnet1"},
        {"network_id": net["id"], "network_type": "gre", "segmentation_id": 77},
    ]
    resp = api.post("/v2.0/segments", {"segments": segs})
    assert resp.status_code == 201, resp.text
    created = resp.json()["segments"]
    assert [s["network_type"] for s in created] == ["vlan", "gre"]
    assert created[1]["segmentation_id"] == 77


def test_bulk_is_all_or_nothing(api: Api, snapshot: Snapshot) -> None:
    net = api.create_network(name="n")
    before = snapshot()
    subnets = [
        {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4},
        {"network_id": net["id"], "cidr": "10.0.0.128/25", "ip_version": 4},  # overlaps
    ]
    assert_error(api.post("/v2.0/subnets", {"subnets": subnets}), 400, "InvalidInput")
    assert snapshot() == before
    segs = [
        {
            "network_id": net["id"],
            "network_type": "vlan",
            "physical_network": "physnet1",
            "segmentation_id": 1500,
        },
        {
            "network_id": net["id"],
            "network_type": "vlan",
            "physical_network": "physnet1",
            "segmentation_id": 1500,
        },
    ]
    assert_error(api.post("/v2.0/segments", {"segments": segs}), 409)
    assert snapshot() == before
    nets = [{"name": "ok"}, {"name": "big", "mtu": 9000}]
    assert_error(api.post("/v2.0/networks", {"networks": nets}), 400, "InvalidInput")
    assert snapshot() == before


def test_bulk_policy_applies_to_each_item(api: Api, snapshot: Snapshot) -> None:
    member = api.as_("proj-a", "member")
    before = snapshot()
    nets = [{"name": "fine"}, {"name": "shared", "shared": True}]
    assert_error(member.post("/v2.0/networks", {"networks": nets}), 403)
    assert snapshot() == before


def test_bulk_shape_and_bounds(make_api: Callable[..., Api], snapshot: Snapshot) -> None:
    api = make_api(max_bulk_create=2)
    before = snapshot()
    assert_error(api.post("/v2.0/networks", {"networks": [{}, {}, {}]}), 413, "TooManyBulkItems")
    assert_error(api.post("/v2.0/networks", {"networks": []}), 400)
    assert_error(api.post("/v2.0/networks", {"network": {}, "networks": [{}]}), 400)
    assert_error(api.post("/v2.0/networks", {}), 400)
    assert_error(api.post("/v2.0/networks", {"networks": [{"bogus": 1}]}), 400)
    assert snapshot() == before
