"""External networks (``external-net``): ``router:external`` set by admins on
create and update (neutron/conf/policies/network.py:
``create_network:router:external`` and ``update_network:router:external``
are admin-only), readable and filterable by all, and an external network
(and its subnets) visible to every project (``get_network``'s
``rule:external``, ``get_subnet``'s ``rule:external_network``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select

from segmentd.db.models import Network
from tests.client import Api
from tests.support import assert_error


def stored_external(engine: Engine, network_id: str) -> bool:
    with engine.connect() as conn:
        return bool(conn.scalar(select(Network.router_external).where(Network.id == network_id)))


def test_admin_creates_external_network_visible_to_all(api: Api, engine: Engine) -> None:
    resp = api.post("/v2.0/networks", {"network": {"name": "public", "router:external": True}})
    assert resp.status_code == 201, resp.text
    net = resp.json()["network"]
    assert net["router:external"] is True
    assert stored_external(engine, net["id"])
    body = {"subnet": {"network_id": net["id"], "cidr": "203.0.113.0/24", "ip_version": 4}}
    subnet = api.post("/v2.0/subnets", body).json()["subnet"]
    assert subnet["router:external"] is True

    stranger = api.as_("proj-z", "reader")
    shown = stranger.get(f"/v2.0/networks/{net['id']}").json()["network"]
    assert shown["router:external"] is True and "provider:network_type" not in shown
    assert [n["id"] for n in stranger.get("/v2.0/networks").json()["networks"]] == [net["id"]]
    listed = stranger.get("/v2.0/subnets").json()["subnets"]
    assert [s["id"] for s in listed] == [subnet["id"]]
    assert stranger.get(f"/v2.0/subnets/{subnet['id']}").status_code == 200
    # Visible is not writable: another project may neither change nor delete it.
    member = api.as_("proj-z", "member")
    assert_error(member.put(f"/v2.0/networks/{net['id']}", {"network": {"name": "x"}}), 403)
    assert_error(member.delete(f"/v2.0/networks/{net['id']}"), 403)


def test_filter_on_router_external(api: Api) -> None:
    ext = api.create_network(name="ext", **{"router:external": True})
    internal = api.create_network(name="int")
    found = api.get("/v2.0/networks", params={"router:external": "True"}).json()["networks"]
    assert [n["id"] for n in found] == [ext["id"]]
    found = api.get("/v2.0/networks", params={"router:external": "false"}).json()["networks"]
    assert [n["id"] for n in found] == [internal["id"]]


def test_only_admin_sets_router_external(api: Api, snapshot: Callable[[], Any]) -> None:
    member = api.as_("proj-a", "member")
    before = snapshot()
    resp = member.post("/v2.0/networks", {"network": {"router:external": True}})
    assert_error(resp, 403, "PolicyNotAuthorized")
    assert snapshot() == before
    # false is the default: saying so is not setting it.
    net = member.create_network(name="n", **{"router:external": False})
    before = snapshot()
    resp = member.put(f"/v2.0/networks/{net['id']}", {"network": {"router:external": True}})
    assert_error(resp, 403)
    assert snapshot() == before


def test_admin_updates_router_external(api: Api, engine: Engine) -> None:
    net = api.create_network(name="n")
    resp = api.put(f"/v2.0/networks/{net['id']}", {"network": {"router:external": True}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["network"]["router:external"] is True
    assert resp.json()["network"]["revision_number"] == net["revision_number"] + 1
    assert stored_external(engine, net["id"])
    resp = api.put(f"/v2.0/networks/{net['id']}", {"network": {"router:external": False}})
    assert resp.json()["network"]["router:external"] is False
    assert not stored_external(engine, net["id"])
    assert_error(
        api.put(f"/v2.0/networks/{net['id']}", {"network": {"router:external": "yes"}}), 400
    )


def test_subnet_router_external_is_read_only(api: Api) -> None:
    net = api.create_network(name="n")
    body = {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}
    resp = api.post("/v2.0/subnets", {"subnet": {**body, "router:external": True}})
    assert_error(resp, 400)
    subnet = api.post("/v2.0/subnets", {"subnet": body}).json()["subnet"]
    assert subnet["router:external"] is False
    resp = api.put(f"/v2.0/subnets/{subnet['id']}", {"subnet": {"router:external": True}})
    assert_error(resp, 400)
