"""Tags as a sub-resource (``standard-attr-tag``) on networks, subnets,
segments and segment ranges, as neutron/extensions/tagging.py answers them:
list 200 ``{"tags": [...]}``, check 204/404 ``TagNotFound``, replace 200,
add one 201 (idempotent), remove 204/404, clear 204; more than 50 tags 400
``BadRequest``; the parent's update policy decides, and a change bumps the
parent's revision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select

from segmentd.db.models import NetworkSegmentRangeTag, NetworkTag, SegmentTag, SubnetTag
from tests.client import Api
from tests.support import assert_error


def _network(api: Api) -> str:
    return str(api.create_network(name="t")["id"])


def _subnet(api: Api) -> str:
    net = _network(api)
    body = {"subnet": {"network_id": net, "cidr": "10.9.0.0/24", "ip_version": 4}}
    resp = api.post("/v2.0/subnets", body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["subnet"]["id"])


def _segment(api: Api) -> str:
    return str(api.create_segment(_network(api), network_type="vxlan")["id"])


def _range(api: Api) -> str:
    body = {"network_segment_range": {"network_type": "gre", "minimum": 5, "maximum": 9}}
    resp = api.post("/v2.0/network_segment_ranges", body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["network_segment_range"]["id"])


KINDS: dict[str, tuple[Callable[[Api], str], str, Any]] = {
    "networks": (_network, "network", NetworkTag),
    "subnets": (_subnet, "subnet", SubnetTag),
    "segments": (_segment, "segment", SegmentTag),
    "network_segment_ranges": (_range, "network_segment_range", NetworkSegmentRangeTag),
}


def stored(engine: Engine, model: Any) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.scalars(select(model.tag)))


@pytest.mark.parametrize("collection", list(KINDS))
def test_tag_lifecycle(api: Api, engine: Engine, collection: str) -> None:
    make, key, model = KINDS[collection]
    rid = make(api)
    base = f"/v2.0/{collection}/{rid}"
    rev = api.get(base).json()[key]["revision_number"]

    resp = api.put(f"{base}/tags", {"tags": ["red", "blue"]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"tags": ["blue", "red"]}
    assert stored(engine, model) == ["blue", "red"]
    shown = api.get(base).json()[key]
    assert shown["tags"] == ["blue", "red"]
    assert shown["revision_number"] == rev + 1

    assert api.get(f"{base}/tags").json() == {"tags": ["blue", "red"]}
    assert api.get(f"{base}/tags/red").status_code == 204
    assert_error(api.get(f"{base}/tags/green"), 404, "TagNotFound")

    resp = api.put(f"{base}/tags/green")
    assert resp.status_code == 201 and resp.json() is None  # Neutron answers ``null``
    assert api.put(f"{base}/tags/green").status_code == 201  # idempotent
    assert stored(engine, model) == ["blue", "green", "red"]
    assert api.get(base).json()[key]["revision_number"] == rev + 2

    assert api.delete(f"{base}/tags/red").status_code == 204
    assert_error(api.delete(f"{base}/tags/red"), 404, "TagNotFound")
    assert stored(engine, model) == ["blue", "green"]

    assert api.delete(f"{base}/tags").status_code == 204
    assert stored(engine, model) == []
    assert api.get(f"{base}/tags").json() == {"tags": []}


def test_tags_filter_after_set(api: Api) -> None:
    a, b = _network(api), _network(api)
    api.put(f"/v2.0/networks/{a}/tags", {"tags": ["x", "y"]})
    api.put(f"/v2.0/networks/{b}/tags/x")
    found = api.get("/v2.0/networks", params={"tags": "x,y"}).json()["networks"]
    assert [n["id"] for n in found] == [a]
    found = api.get("/v2.0/networks", params={"tags-any": "x"}).json()["networks"]
    assert {n["id"] for n in found} == {a, b}


def test_tag_limits(api: Api, engine: Engine) -> None:
    net = _network(api)
    base = f"/v2.0/networks/{net}/tags"
    assert_error(api.put(base, {"tags": [f"t{i}" for i in range(51)]}), 400)
    assert api.put(base, {"tags": [f"t{i}" for i in range(50)]}).status_code == 200
    error = assert_error(api.put(f"{base}/t50"), 400, "BadRequest")
    assert "per-resource limit of 50" in error["message"]
    assert len(stored(engine, NetworkTag)) == 50
    assert_error(api.put(f"{base}/{'x' * 256}"), 400)
    assert_error(api.put(f"{base}/a,b"), 400)
    assert_error(api.put(base, {"tags": "x"}), 400)
    error = assert_error(api.put(base, {"tags": ["a", "b", "a"]}), 400, "InvalidInput")
    assert "Duplicate items in the list: 'a'" in error["message"]
    assert_error(api.put(base, {}), 400)
    assert len(stored(engine, NetworkTag)) == 50


def test_tags_follow_the_parents_policy(api: Api, snapshot: Callable[[], Any]) -> None:
    member = api.as_("proj-a", "member")
    net = member.create_network(name="mine")["id"]
    assert member.put(f"/v2.0/networks/{net}/tags/a").status_code == 201
    before = snapshot()
    reader = api.as_("proj-a", "reader")
    assert reader.get(f"/v2.0/networks/{net}/tags").json() == {"tags": ["a"]}
    assert_error(reader.put(f"/v2.0/networks/{net}/tags/b"), 403)
    other = api.as_("proj-b", "member")
    assert_error(other.put(f"/v2.0/networks/{net}/tags/b"), 404, "NetworkNotFound")
    assert_error(other.get(f"/v2.0/networks/{net}/tags"), 404, "NetworkNotFound")
    seg = _segment(api)
    assert_error(member.put(f"/v2.0/segments/{seg}/tags/b"), 404, "SegmentNotFound")
    after = snapshot()
    after.pop("segments"), before.pop("segments")
    after.pop("networks"), before.pop("networks")
    assert after["network_tags"] == before["network_tags"]
    assert after["segment_tags"] == []


def test_tags_on_missing_resource(api: Api) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert_error(api.get(f"/v2.0/networks/{missing}/tags"), 404, "NetworkNotFound")
    assert_error(api.put(f"/v2.0/subnets/{missing}/tags/a"), 404, "SubnetNotFound")
