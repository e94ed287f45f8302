"""Network MTU as ML2 computes and validates it (neutron/plugins/ml2/plugin.py
``_get_network_mtu``; type drivers' ``get_mtu`` in
neutron/plugins/ml2/drivers/type_{vlan,flat,vxlan,geneve,gre,local,tunnel}.py):
tunnels take ``min(global_physnet_mtu, path_mtu)`` less 20 (IPv4) and their
overhead (VXLAN 30, Geneve 30, GRE 22); flat and VLAN take ``global_physnet_mtu``
or their physnet's smaller MTU; a requested MTU above that is 400
``InvalidInput`` "Requested MTU is too big, maximum is N", on create and update."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from segmentd.db.models import Network
from tests.client import Api
from tests.support import assert_error


def provider(network_type: str, physnet: str | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"provider:network_type": network_type}
    if physnet:
        attrs["provider:physical_network"] = physnet
    return attrs


@pytest.mark.parametrize(
    ("attrs", "mtu"),
    [
        (provider("vxlan"), 1450),
        (provider("geneve"), 1450),
        (provider("gre"), 1458),
        (provider("vlan", "physnet1"), 1500),
        (provider("flat", "physnet2"), 1500),
        (provider("local"), 1500),
    ],
)
def test_default_mtu_per_type(api: Api, attrs: dict[str, Any], mtu: int) -> None:
    assert api.create_network(**attrs)["mtu"] == mtu


def test_settings_move_the_mtus(make_api: Callable[..., Api]) -> None:
    api = make_api(global_physnet_mtu=9000, path_mtu=1600, physnet_mtus="physnet1:1400")
    assert api.create_network(**provider("vxlan"))["mtu"] == 1550
    assert api.create_network(**provider("vlan", "physnet1"))["mtu"] == 1400
    assert api.create_network(**provider("vlan", "physnet2"))["mtu"] == 9000
    multi = [
        {"provider:network_type": "vlan", "provider:physical_network": "physnet2"},
        {"provider:network_type": "gre"},
    ]
    assert api.create_network(segments=multi)["mtu"] == 1558


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Network)) or 0)


@pytest.mark.parametrize(
    ("attrs", "maximum"),
    [({}, 1450), (provider("vlan", "physnet1"), 1500), (provider("gre"), 1458)],
)
def test_too_big_refused_on_create(
    api: Api, engine: Engine, attrs: dict[str, Any], maximum: int
) -> None:
    resp = api.post("/v2.0/networks", {"network": {**attrs, "mtu": 9000}})
    error = assert_error(resp, 400, "InvalidInput")
    assert error["message"] == (
        f"Invalid input for operation: Requested MTU is too big, maximum is {maximum}."
    )
    assert count(engine) == 0
    assert api.create_network(**attrs, mtu=maximum)["mtu"] == maximum
    assert api.create_network(**attrs, mtu=1280)["mtu"] == 1280


def test_too_big_refused_on_update(api: Api, snapshot: Callable[[], Any]) -> None:
    net = api.create_network(name="n")
    before = snapshot()
    resp = api.put(f"/v2.0/networks/{net['id']}", {"network": {"mtu": 1500}})
    assert_error(resp, 400, "InvalidInput")
    assert snapshot() == before
    resp = api.put(f"/v2.0/networks/{net['id']}", {"network": {"mtu": 1400}})
    assert resp.json()["network"]["mtu"] == 1400


def test_bad_physnet_mtus_setting_refused(make_api: Callable[..., Api]) -> None:
    with pytest.raises(ValueError, match="physnet_mtus"):
        make_api(physnet_mtus="physnet1")
