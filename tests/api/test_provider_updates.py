"""Provider attributes on update, as ML2 allows them
(neutron/plugins/ml2/plugin.py ``_update_provider_network_attributes`` and
``_update_segmentation_id``; neutron/plugins/ml2/managers.py
``update_network_segment``): ``provider:segmentation_id`` changes on a
single-segment VLAN network (admin, ``update_network:provider:segmentation_id``);
type and physnet may only be repeated; anything else is 400 ``InvalidInput``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select

from segmentd.db.models import Segment
from tests.client import Api
from tests.support import assert_error

Snapshot = Callable[[], dict[str, Any]]
VLAN = {"provider:network_type": "vlan", "provider:physical_network": "physnet1"}


def vlan_ids(engine: Engine) -> list[int | None]:
    with engine.connect() as conn:
        return sorted(conn.scalars(select(Segment.segmentation_id)), key=str)


def test_vlan_id_changes(api: Api, engine: Engine) -> None:
    net = api.create_network(**VLAN, **{"provider:segmentation_id": 1100})
    url = f"/v2.0/networks/{net['id']}"
    resp = api.put(url, {"network": {"provider:segmentation_id": 1200}})
    assert resp.status_code == 200, resp.text
    body = resp.json()["network"]
    assert body["provider:segmentation_id"] == 1200
    assert body["revision_number"] == net["revision_number"] + 1
    assert vlan_ids(engine) == [1200]
    # The old ID is free again; repeating type and physnet is no change.
    api.create_network(**VLAN, **{"provider:segmentation_id": 1100})
    same = {**VLAN, "provider:segmentation_id": 1200}
    assert api.put(url, {"network": same}).status_code == 200


def test_vlan_id_in_use_or_invalid(api: Api, snapshot: Snapshot) -> None:
    net = api.create_network(**VLAN, **{"provider:segmentation_id": 1100})
    api.create_network(**VLAN, **{"provider:segmentation_id": 1101})
    url = f"/v2.0/networks/{net['id']}"
    before = snapshot()
    assert_error(api.put(url, {"network": {"provider:segmentation_id": 1101}}), 409, "VlanIdInUse")
    assert_error(api.put(url, {"network": {"provider:segmentation_id": 5000}}), 400)
    assert snapshot() == before


def test_other_provider_changes_refused(api: Api, snapshot: Snapshot) -> None:
    vxlan = api.create_network(**{"provider:network_type": "vxlan"})
    vlan = api.create_network(**VLAN)
    multi = api.create_network(
        segments=[
            {"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
            {"provider:network_type": "vxlan"},
        ]
    )
    before = snapshot()
    cases = [
        (vxlan, {"provider:segmentation_id": 77}, "Only VLAN type networks"),
        (vlan, {"provider:physical_network": "physnet2"}, "does not support updating"),
        (vlan, {"provider:network_type": "vxlan"}, "does not support updating"),
        (multi, {"provider:segmentation_id": 1300}, "single segment"),
    ]
    for net, attrs, needle in cases:
        resp = api.put(f"/v2.0/networks/{net['id']}", {"network": attrs})
        assert needle in assert_error(resp, 400, "InvalidInput")["message"]
    assert_error(api.put(f"/v2.0/networks/{vlan['id']}", {"network": {"segments": []}}), 400)
    assert snapshot() == before


def test_members_may_not_touch_provider_attributes(api: Api, snapshot: Snapshot) -> None:
    member = api.as_("proj-a", "member")
    net = member.create_network(name="mine")
    before = snapshot()
    for attrs in (
        {"provider:segmentation_id": 5},
        {"provider:network_type": "vxlan"},  # even its current value: no oracle
    ):
        assert_error(member.put(f"/v2.0/networks/{net['id']}", {"network": attrs}), 403)
    assert snapshot() == before
