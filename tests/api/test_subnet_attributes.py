"""Subnet attributes Neutron clients set: ``dns_nameservers``, ``host_routes``,
``service_types`` (updatable) and ``ipv6_ra_mode``/``ipv6_address_mode``
(create only: ``allow_put`` is False in neutron_lib/api/definitions/subnet.py).
Rules and messages from neutron/db/db_base_plugin_v2.py ``_validate_subnet``,
``_validate_host_route``, ``_validate_ipv6_attributes`` and neutron_lib's
validators; limits ``max_dns_nameservers`` (5) and ``max_subnet_host_routes`` (20)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select

from segmentd.db.models import SubnetDnsNameserver, SubnetRoute, SubnetServiceType
from tests.client import Api
from tests.support import assert_error

Snapshot = Callable[[], dict[str, Any]]


@pytest.fixture
def net(api: Api) -> dict[str, Any]:
    return api.create_network(name="n")


def post(api: Api, network_id: str, **attrs: Any) -> Any:
    body = {"network_id": network_id, "cidr": "10.0.0.0/24", "ip_version": 4, **attrs}
    return api.post("/v2.0/subnets", {"subnet": body})


def rows(engine: Engine, *columns: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(*columns)))


def test_create_with_dns_routes_and_service_types(
    api: Api, net: dict[str, Any], engine: Engine
) -> None:
    routes = [
        {"destination": "192.0.2.0/24", "nexthop": "10.0.0.254"},
        {"destination": "0.0.0.0/0", "nexthop": "10.0.0.1"},
    ]
    resp = post(
        api,
        net["id"],
        dns_nameservers=["192.0.2.53", "192.0.2.10"],
        host_routes=routes,
        service_types=["compute:nova", "network:router_gateway"],
    )
    assert resp.status_code == 201, resp.text
    subnet = resp.json()["subnet"]
    assert subnet["dns_nameservers"] == ["192.0.2.53", "192.0.2.10"]  # order kept
    assert sorted(subnet["host_routes"], key=str) == sorted(routes, key=str)
    assert subnet["service_types"] == ["compute:nova", "network:router_gateway"]
    assert api.get(f"/v2.0/subnets/{subnet['id']}").json()["subnet"] == subnet
    assert rows(engine, SubnetDnsNameserver.address, SubnetDnsNameserver.position) == [
        ("192.0.2.10", 1),
        ("192.0.2.53", 0),
    ]
    assert len(rows(engine, SubnetRoute.destination)) == 2
    assert len(rows(engine, SubnetServiceType.service_type)) == 2


def test_update_replaces_and_null_clears(api: Api, net: dict[str, Any], engine: Engine) -> None:
    subnet = post(api, net["id"], dns_nameservers=["192.0.2.53"]).json()["subnet"]
    url = f"/v2.0/subnets/{subnet['id']}"
    resp = api.put(url, {"subnet": {"dns_nameservers": ["192.0.2.1", "192.0.2.2"]}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["subnet"]["dns_nameservers"] == ["192.0.2.1", "192.0.2.2"]
    route = {"destination": "198.51.100.0/24", "nexthop": "10.0.0.9"}
    body = api.put(url, {"subnet": {"host_routes": [route]}}).json()["subnet"]
    assert body["host_routes"] == [route]
    assert body["dns_nameservers"] == ["192.0.2.1", "192.0.2.2"]  # untouched
    body = api.put(url, {"subnet": {"dns_nameservers": None, "host_routes": []}}).json()["subnet"]
    assert (body["dns_nameservers"], body["host_routes"]) == ([], [])
    assert rows(engine, SubnetDnsNameserver.address) == []
    assert rows(engine, SubnetRoute.destination) == []


REFUSED = [
    ({"dns_nameservers": [f"192.0.2.{i}" for i in range(6)]}, "DNSNameServersExhausted"),
    ({"dns_nameservers": ["192.0.2.1", "192.0.2.1"]}, "InvalidInput"),
    ({"dns_nameservers": ["ns.example.com"]}, "InvalidInput"),
    ({"dns_nameservers": ["2001:db8::1"]}, "InvalidInput"),
    (
        {
            "host_routes": [
                {"destination": f"192.0.{i}.0/24", "nexthop": "10.0.0.1"} for i in range(21)
            ]
        },
        "HostRoutesExhausted",
    ),
    ({"host_routes": [{"destination": "2001:db8::/64", "nexthop": "10.0.0.1"}]}, "InvalidInput"),
    ({"host_routes": [{"destination": "192.0.2.0/24", "nexthop": "2001:db8::1"}]}, "InvalidInput"),
    ({"host_routes": [{"destination": "192.0.2.0/24", "nexthop": "x"}]}, "InvalidInput"),
    ({"host_routes": [{"destination": "127.0.0.0/8", "nexthop": "10.0.0.1"}]}, "InvalidInput"),
    ({"host_routes": [{"destination": "192.0.2.0/24"}]}, "HTTPBadRequest"),
    ({"service_types": ["bogus:thing"]}, "InvalidSubnetServiceType"),
    ({"ipv6_address_mode": "slaac"}, "InvalidInput"),
    ({"ipv6_ra_mode": "sometimes"}, "HTTPBadRequest"),
]


@pytest.mark.parametrize(("attrs", "type_name"), REFUSED, ids=lambda v: str(v)[:60])
def test_refused(
    api: Api, net: dict[str, Any], snapshot: Snapshot, attrs: dict[str, Any], type_name: str
) -> None:
    before = snapshot()
    assert_error(post(api, net["id"], **attrs), 400, type_name)
    assert snapshot() == before


def test_limits_from_settings(make_api: Callable[..., Api]) -> None:
    api = make_api(max_dns_nameservers=1, max_subnet_host_routes=0)
    net = api.create_network(name="n")
    error = assert_error(
        post(api, net["id"], dns_nameservers=["192.0.2.1", "192.0.2.2"]),
        400,
        "DNSNameServersExhausted",
    )
    assert "exceeds the limit 1" in error["message"]
    route = {"destination": "192.0.2.0/24", "nexthop": "10.0.0.1"}
    assert_error(post(api, net["id"], host_routes=[route]), 400, "HostRoutesExhausted")


V6 = {"cidr": "2001:db8::/64", "ip_version": 6}
IPV6_VALID = [
    ("slaac", "slaac"),
    ("dhcpv6-stateless", "dhcpv6-stateless"),
    ("dhcpv6-stateful", "dhcpv6-stateful"),
    (None, "slaac"),
    ("slaac", None),
    (None, "dhcpv6-stateful"),
]


@pytest.mark.parametrize(("ra", "address"), IPV6_VALID)
def test_ipv6_modes_valid(
    api: Api, net: dict[str, Any], ra: str | None, address: str | None
) -> None:
    resp = post(api, net["id"], **V6, ipv6_ra_mode=ra, ipv6_address_mode=address)
    assert resp.status_code == 201, resp.text
    subnet = resp.json()["subnet"]
    assert (subnet["ipv6_ra_mode"], subnet["ipv6_address_mode"]) == (ra, address)


@pytest.mark.parametrize(
    ("attrs", "needle"),
    [
        ({"ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}, "same value"),
        ({"ipv6_ra_mode": "slaac", "enable_dhcp": False}, "enable_dhcp"),
        ({"ipv6_address_mode": "slaac", "cidr": "2001:db8::/80"}, "EUI-64"),
    ],
)
def test_ipv6_modes_invalid(
    api: Api, net: dict[str, Any], attrs: dict[str, Any], needle: str
) -> None:
    error = assert_error(post(api, net["id"], **{**V6, **attrs}), 400, "InvalidInput")
    assert needle in error["message"]


def test_ipv6_modes_are_fixed_after_create(api: Api, net: dict[str, Any]) -> None:
    subnet = post(api, net["id"], **V6, ipv6_address_mode="slaac").json()["subnet"]
    url = f"/v2.0/subnets/{subnet['id']}"
    error = assert_error(api.put(url, {"subnet": {"ipv6_address_mode": "dhcpv6-stateful"}}), 400)
    assert "read-only" in error["message"]
    error = assert_error(api.put(url, {"subnet": {"enable_dhcp": False}}), 400, "InvalidInput")
    assert "ipv6 attributes" in error["message"]
