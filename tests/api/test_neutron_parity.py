"""Neutron wire parity: one case per observation of issue 17's "What was
seen", each asserting Neutron 29's status, body shape and error type.

The expected values come from Neutron's source (neutron 29.0.0 and
neutron-lib 5.0.1, modules named per case) and from the incumbent run side
by side (``../shared/incumbent``) on the same requests.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from segmentd.db.models import Network, NetworkTag
from tests.agent_helpers import ovs, report
from tests.client import Api
from tests.support import assert_error

VLAN = {"provider:network_type": "vlan", "provider:physical_network": "physnet1"}


def subnet(api: Api, network_id: str, cidr: str = "10.0.0.0/24", **attrs: Any) -> Any:
    version = 6 if ":" in cidr else 4
    body = {"network_id": network_id, "cidr": cidr, "ip_version": version, **attrs}
    return api.post("/v2.0/subnets", {"subnet": body})


def test_tags_after_create_and_on_set(api: Api, engine: Engine) -> None:
    """``network create --tag foo`` POSTs, then PUTs /v2.0/networks/{id}/tags
    (osc_lib.utils.tags.update_tags_for_set); ``set --tag`` PUTs one tag.
    neutron/extensions/tagging.py: 200 ``{"tags": [...]}`` and 201."""
    aliases = {e["alias"] for e in api.get("/v2.0/extensions").json()["extensions"]}
    assert {"standard-attr-tag", "tag-creation"} <= aliases
    net = api.create_network(name="n1")
    resp = api.put(f"/v2.0/networks/{net['id']}/tags", {"tags": ["foo"]})
    assert (resp.status_code, resp.json()) == (200, {"tags": ["foo"]})
    assert api.put(f"/v2.0/networks/{net['id']}/tags/bar").status_code == 201
    sub = subnet(api, net["id"]).json()["subnet"]
    assert api.put(f"/v2.0/subnets/{sub['id']}/tags/baz").status_code == 201
    with engine.connect() as conn:
        assert sorted(conn.scalars(select(NetworkTag.tag))) == ["bar", "foo"]


def test_router_external_is_settable(api: Api) -> None:
    """external-net (neutron_lib/api/definitions/external_net.py): allow_post
    and allow_put, guarded by ``create_network:router:external`` (admin)."""
    resp = api.post("/v2.0/networks", {"network": {"name": "n1", "router:external": True}})
    assert resp.status_code == 201, resp.text
    net = resp.json()["network"]
    assert net["router:external"] is True
    resp = api.put(f"/v2.0/networks/{net['id']}", {"network": {"router:external": False}})
    assert resp.status_code == 200 and resp.json()["network"]["router:external"] is False


def test_subnet_dns_host_routes_service_types_ipv6_modes(api: Api) -> None:
    """neutron_lib/api/definitions/subnet.py and subnet_service_types.py:
    all four accepted on POST; DNS servers and host routes updatable."""
    net = api.create_network(name="n")
    resp = subnet(
        api,
        net["id"],
        dns_nameservers=["192.0.2.53"],
        host_routes=[{"destination": "198.51.100.0/24", "nexthop": "10.0.0.254"}],
        service_types=["compute:nova"],
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()["subnet"]
    assert body["dns_nameservers"] == ["192.0.2.53"]
    assert body["host_routes"] == [{"destination": "198.51.100.0/24", "nexthop": "10.0.0.254"}]
    assert body["service_types"] == ["compute:nova"]
    v6 = subnet(api, net["id"], "2001:db8::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert v6.status_code == 201, v6.text
    assert v6.json()["subnet"]["ipv6_address_mode"] == "slaac"


def test_extensions_advertised_and_shown(api: Api) -> None:
    """neutron/api/extensions.py ``ExtensionController``: index and show;
    segmentd's implemented features are advertised under Neutron's aliases."""
    aliases = {e["alias"] for e in api.get("/v2.0/extensions").json()["extensions"]}
    assert {
        "external-net",
        "net-mtu-writable",
        "subnet-segmentid-writable",
        "project-id",
        "empty-string-filtering",
        "agent_sort_key",
    } <= aliases
    resp = api.get("/v2.0/extensions/external-net")
    assert resp.status_code == 200
    assert set(resp.json()["extension"]) == {"alias", "name", "description", "updated", "links"}
    assert_error(api.get("/v2.0/extensions/dvr"), 404)


def test_bulk_create(api: Api) -> None:
    """neutron/api/v2/base.py ``_create``: a plural body is a bulk create,
    answered 201 with the plural key."""
    resp = api.post("/v2.0/networks", {"networks": [{"name": "a"}, {"name": "b"}]})
    assert resp.status_code == 201
    nets = resp.json()["networks"]
    body = [{"network_id": nets[0]["id"], "cidr": c, "ip_version": 4} for c in ("10.1.0.0/24",)]
    resp = api.post("/v2.0/subnets", {"subnets": body})
    assert resp.status_code == 201 and len(resp.json()["subnets"]) == 1


def test_network_and_subnet_attributes(api: Api) -> None:
    """l2_adjacency (neutron/services/segments/plugin.py
    ``_extend_network_dict_binding``: false once subnets sit on segments),
    address scopes null without subnet pools, ``router:external`` on subnets
    (subnet-external-network), agent reports carrying ``tunnel_types``."""
    net = api.create_network(name="n", **VLAN, **{"provider:segmentation_id": 1100})
    assert net["l2_adjacency"] is True
    assert (net["ipv4_address_scope"], net["ipv6_address_scope"]) == (None, None)
    seg = api.get("/v2.0/segments", params={"network_id": net["id"]}).json()["segments"][0]
    sub = subnet(api, net["id"], segment_id=seg["id"]).json()["subnet"]
    assert sub["router:external"] is False
    assert api.get(f"/v2.0/networks/{net['id']}").json()["network"]["l2_adjacency"] is False
    agent = ovs("compute-1", "physnet1")
    agent["configurations"]["tunnel_types"] = ["vxlan"]
    assert report(api, agent)["result"] == "created"


def test_values_terraform_compares(api: Api, engine: Engine) -> None:
    """MTU per ML2 (neutron/plugins/ml2/plugin.py ``_get_network_mtu``; geneve
    1500 - 20 - 30), IPv6 gateway (neutron/db/ipam_backend_mixin.py
    ``_gateway_ip_str``: the network address), revisions as Neutron 29
    answers them (a network at 1 after create, a subnet at 0, the network
    bumped by each subnet), description "" (the standard-attr default), a
    VLAN segment without physnet allocated one (ML2's VLAN type driver)."""
    geneve = api.create_network(**{"provider:network_type": "geneve"})
    assert geneve["mtu"] == 1450
    for attrs in ({"provider:network_type": "vxlan"}, VLAN):
        resp = api.post("/v2.0/networks", {"network": {**attrs, "mtu": 9000}})
        assert_error(resp, 400, "InvalidInput")
    net = api.create_network(name="n")
    assert net["revision_number"] == 1
    assert net["description"] == ""
    v6 = subnet(api, net["id"], "2001:db8::/64").json()["subnet"]
    assert v6["gateway_ip"] == "2001:db8::"
    assert v6["allocation_pools"] == [
        {"start": "2001:db8::1", "end": "2001:db8::ffff:ffff:ffff:ffff"}
    ]
    assert v6["revision_number"] == 0
    assert api.get(f"/v2.0/networks/{net['id']}").json()["network"]["revision_number"] == 2
    with engine.connect() as conn:
        assert conn.scalar(select(Network.revision_number).where(Network.id == net["id"])) == 2
    vlan = api.create_network(**{"provider:network_type": "vlan"})
    assert vlan["provider:physical_network"] in ("physnet1", "physnet2")


def test_pagination_and_error_types(api: Api) -> None:
    """An unknown marker is the resource's 404 (neutron/api/v2/base.py reads
    the marker object: ``NetworkNotFound``); a trailing slash is answered;
    error types are neutron_lib's: VlanIdInUse, InvalidInput,
    SegmentsSetInConjunctionWithProviders (neutron_lib/exceptions)."""
    missing = "11111111-2222-3333-4444-555555555555"
    assert_error(api.get("/v2.0/networks", params={"marker": missing}), 404, "NetworkNotFound")
    resp = api.get("/v2.0/networks/", params={"limit": 1}, follow_redirects=False)
    assert resp.status_code == 200 and "networks" in resp.json()
    api.create_network(**VLAN, **{"provider:segmentation_id": 150})
    clash = {**VLAN, "provider:segmentation_id": 150}
    error = assert_error(api.post("/v2.0/networks", {"network": clash}), 409, "VlanIdInUse")
    assert error["message"] == (
        "Unable to create the network. The VLAN 150 on physical network physnet1 is in use."
    )
    both = {"segments": [{"provider:network_type": "vxlan"}], "provider:network_type": "vxlan"}
    error = assert_error(
        api.post("/v2.0/networks", {"network": both}), 400, "SegmentsSetInConjunctionWithProviders"
    )
    assert error["message"] == "Segments and provider values cannot both be set."
    assert_error(api.post("/v2.0/networks", {"network": {"mtu": 9000}}), 400, "InvalidInput")
    # Out-of-range values are the type driver's and ML2's refusals, not the schema's.
    too_big = assert_error(
        api.post("/v2.0/networks", {"network": {"mtu": 9217}}), 400, "InvalidInput"
    )
    assert too_big["message"].endswith("Requested MTU is too big, maximum is 1450.")
    for vlan_id in (0, -1, 4095):
        zero = {**VLAN, "provider:segmentation_id": vlan_id}
        assert_error(api.post("/v2.0/networks", {"network": zero}), 400, "InvalidInput")
    bogus = {"provider:network_type": "bogus"}
    error = assert_error(api.post("/v2.0/networks", {"network": bogus}), 400, "InvalidInput")
    assert (
        error["message"] == "Invalid input for operation: network_type value 'bogus' not supported."
    )


def test_bodies_carry_neutrons_keys(api: Api) -> None:
    """The keys Neutron 29 (ML2 + segments plugin) answers for a network and
    a subnet, as read from the incumbent on the same requests."""
    net = api.create_network(name="n")
    assert set(net) == {
        "id",
        "name",
        "tenant_id",
        "project_id",
        "admin_state_up",
        "mtu",
        "status",
        "subnets",
        "shared",
        "router:external",
        "provider:network_type",
        "provider:physical_network",
        "provider:segmentation_id",
        "availability_zone_hints",
        "availability_zones",
        "ipv4_address_scope",
        "ipv6_address_scope",
        "description",
        "l2_adjacency",
        "tags",
        "created_at",
        "updated_at",
        "revision_number",
    }
    sub = subnet(api, net["id"]).json()["subnet"]
    assert set(sub) == {
        "id",
        "name",
        "project_id",
        "tenant_id",
        "network_id",
        "ip_version",
        "subnetpool_id",
        "enable_dhcp",
        "ipv6_ra_mode",
        "ipv6_address_mode",
        "gateway_ip",
        "cidr",
        "allocation_pools",
        "host_routes",
        "dns_nameservers",
        "description",
        "router:external",
        "service_types",
        "segment_id",
        "tags",
        "created_at",
        "updated_at",
        "revision_number",
    }
