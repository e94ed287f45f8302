"""/v2.0/segments over HTTP: type rules, allocation, validation, updates, deletes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.client import Api
from tests.support import assert_error

Snapshot = Callable[[], dict[str, Any]]


@pytest.fixture
def network(api: Api) -> dict[str, Any]:
    return api.create_network(name="net", **{"provider:network_type": "local"})


def post_segment(api: Api, network_id: str, **attrs: Any) -> Any:
    return api.post("/v2.0/segments", {"segment": {"network_id": network_id, **attrs}})


# Type rules: accepted -----------------------------------------------------------

ACCEPTED = [
    ({"network_type": "flat", "physical_network": "physnet1"}, ("physnet1", None)),
    (
        {"network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 101},
        ("physnet1", 101),
    ),
    (
        {"network_type": "vlan", "physical_network": "physnet2", "segmentation_id": 4094},
        ("physnet2", 4094),
    ),
    ({"network_type": "vxlan", "segmentation_id": 5000}, (None, 5000)),
    ({"network_type": "vxlan", "segmentation_id": 16777215}, (None, 16777215)),
    ({"network_type": "geneve", "segmentation_id": 1}, (None, 1)),
    ({"network_type": "gre", "segmentation_id": 4294967295}, (None, 4294967295)),
    ({"network_type": "local"}, (None, None)),
]


@pytest.mark.parametrize(("attrs", "expected"), ACCEPTED, ids=lambda v: str(v))
def test_type_rules_accept(
    api: Api, network: dict[str, Any], attrs: dict[str, Any], expected: tuple[Any, Any]
) -> None:
    resp = post_segment(api, network["id"], name="s", **attrs)
    assert resp.status_code == 201, resp.text
    body = resp.json()["segment"]
    assert (body["physical_network"], body["segmentation_id"]) == expected
    assert body["network_type"] == attrs["network_type"]
    assert body["network_id"] == network["id"]
    assert body["revision_number"] == 1
    shown = api.get(f"/v2.0/segments/{body['id']}").json()["segment"]
    assert shown == body


@pytest.mark.parametrize(
    ("attrs", "physnets", "low", "high"),
    [
        ({"network_type": "vlan", "physical_network": "physnet2"}, {"physnet2"}, 1000, 2999),
        ({"network_type": "vlan"}, {"physnet1", "physnet2"}, 1000, 2999),
        ({"network_type": "vxlan"}, {None}, 1, 16777215),
        ({"network_type": "geneve"}, {None}, 1, 16777215),
        ({"network_type": "gre"}, {None}, 1, 4294967295),
    ],
)
def test_allocates_from_configured_ranges(
    api: Api,
    network: dict[str, Any],
    attrs: dict[str, Any],
    physnets: set[Any],
    low: int,
    high: int,
) -> None:
    seen = set()
    for _ in range(5):
        body = api.create_segment(network["id"], **attrs)
        assert body["physical_network"] in physnets
        assert low <= body["segmentation_id"] <= high
        seen.add((body["physical_network"], body["segmentation_id"]))
    assert len(seen) == 5


# Type rules: rejected -------------------------------------------------------------

REJECTED = [
    {"network_type": "flat"},
    {"network_type": "flat", "physical_network": "physnet1", "segmentation_id": 5},
    {"network_type": "flat", "physical_network": "nowhere"},
    {"network_type": "vlan", "physical_network": "nowhere", "segmentation_id": 5},
    {"network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 0},
    {"network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 4095},
    {"network_type": "vlan", "segmentation_id": 100},
    {"network_type": "vxlan", "physical_network": "physnet1"},
    {"network_type": "vxlan", "segmentation_id": 16777216},
    {"network_type": "geneve", "segmentation_id": 16777216},
    {"network_type": "gre", "segmentation_id": 4294967296},
    {"network_type": "gre", "segmentation_id": -1},
    {"network_type": "local", "physical_network": "physnet1"},
    {"network_type": "local", "segmentation_id": 3},
    {"network_type": "token-ring"},
    {"network_type": None},
    {},
]


@pytest.mark.parametrize("attrs", REJECTED, ids=lambda v: str(v))
def test_type_rules_reject(
    api: Api, network: dict[str, Any], snapshot: Snapshot, attrs: dict[str, Any]
) -> None:
    before = snapshot()
    assert_error(post_segment(api, network["id"], **attrs), 400)
    assert snapshot() == before


def test_flat_physnet_usable_once_in_whole_deployment(
    api: Api, network: dict[str, Any], snapshot: Snapshot
) -> None:
    other = api.create_network(name="other", **{"provider:network_type": "local"})
    api.create_segment(network["id"], network_type="flat", physical_network="physnet1")
    before = snapshot()
    error = assert_error(
        post_segment(api, other["id"], network_type="flat", physical_network="physnet1"), 409
    )
    assert "physnet1" in error["message"]
    assert snapshot() == before
    assert api.create_segment(other["id"], network_type="flat", physical_network="physnet2")


@pytest.mark.parametrize(
    ("first", "clash", "ok"),
    [
        (
            {"network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 101},
            {"network_type": "vlan", "physical_network": "physnet1", "segmentation_id": 101},
            {"network_type": "vlan", "physical_network": "physnet2", "segmentation_id": 101},
        ),
        (
            {"network_type": "vxlan", "segmentation_id": 7},
            {"network_type": "vxlan", "segmentation_id": 7},
            {"network_type": "geneve", "segmentation_id": 7},
        ),
        (
            {"network_type": "gre", "segmentation_id": 7},
            {"network_type": "gre", "segmentation_id": 7},
            {"network_type": "vxlan", "segmentation_id": 7},
        ),
    ],
)
def test_segmentation_id_in_use(
    api: Api,
    network: dict[str, Any],
    snapshot: Snapshot,
    first: dict[str, Any],
    clash: dict[str, Any],
    ok: dict[str, Any],
) -> None:
    api.create_segment(network["id"], **first)
    before = snapshot()
    # Neutron's types: VlanIdInUse for VLANs, TunnelIdInUse for tunnels.
    expected = "VlanIdInUse" if clash["network_type"] == "vlan" else "TunnelIdInUse"
    error = assert_error(post_segment(api, network["id"], **clash), 409, expected)
    assert str(clash["segmentation_id"]) in error["message"]
    assert snapshot() == before
    assert api.create_segment(network["id"], **ok)


def test_local_segments_may_repeat(api: Api, network: dict[str, Any]) -> None:
    api.create_segment(network["id"], network_type="local")
    api.create_segment(network["id"], network_type="local")
    segments = api.get("/v2.0/segments", params={"network_id": network["id"]}).json()["segments"]
    assert len(segments) == 3


def test_allocation_skips_ids_in_use_and_exhausts_with_503(
    make_api: Callable[..., Api], snapshot: Snapshot
) -> None:
    small = make_api(network_vlan_ranges="physnet1:10:12", tenant_network_types="vlan")
    net = small.create_network(**{"provider:network_type": "local"})
    small.create_segment(
        net["id"], network_type="vlan", physical_network="physnet1", segmentation_id=11
    )
    got = {
        small.create_segment(net["id"], network_type="vlan", physical_network="physnet1")[
            "segmentation_id"
        ]
        for _ in range(2)
    }
    assert got == {10, 12}
    before = snapshot()
    resp = post_segment(small, net["id"], network_type="vlan", physical_network="physnet1")
    error = assert_error(resp, 503, "NoNetworkAvailable")
    assert "vlan" in error["message"]
    assert snapshot() == before
    # A tenant network with the only tenant type exhausted fails the same way, whole.
    assert_error(small.post("/v2.0/networks", {"network": {"name": "x"}}), 503)
    assert snapshot() == before


def test_huge_vni_range_allocates_without_enumerating(make_api: Callable[..., Api]) -> None:
    # A 24-bit range with a single free ID at the far end: found by the gap query.
    api = make_api(vni_ranges="1:16777215")
    net = api.create_network(**{"provider:network_type": "local"})
    for vni in (16777213, 16777214):
        api.create_segment(net["id"], network_type="vxlan", segmentation_id=vni)
    narrow = make_api(vni_ranges="16777213:16777215")
    assert narrow.create_segment(net["id"], network_type="vxlan")["segmentation_id"] == 16777215


# Validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"bogus": 1}, "bogus"),
        ({"id": str(uuid.uuid4())}, "id"),
        ({"revision_number": 3}, "revision_number"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"segment_index": 0}, "segment_index"),
        ({"name": "n" * 256}, "name"),
        ({"description": "d" * 256}, "description"),
        ({"physical_network": "p" * 65, "network_type": "vlan"}, "physical_network"),
        ({"segmentation_id": "abc", "network_type": "vxlan"}, "segmentation_id"),
        ({"segmentation_id": 1.5, "network_type": "vxlan"}, "segmentation_id"),
        ({"name": 5}, "name"),
        ({"tags": "not-a-list"}, "tags"),
    ],
)
def test_validation_errors(
    api: Api, network: dict[str, Any], snapshot: Snapshot, extra: dict[str, Any], needle: str
) -> None:
    before = snapshot()
    attrs = {"network_type": "local", **extra}
    error = assert_error(post_segment(api, network["id"], **attrs), 400)
    assert needle in error["message"]
    assert snapshot() == before


def test_malformed_network_id_is_400_unknown_is_404(api: Api, snapshot: Snapshot) -> None:
    before = snapshot()
    assert_error(post_segment(api, "not-a-uuid", network_type="local"), 400)
    assert_error(post_segment(api, str(uuid.uuid4()), network_type="local"), 404, "NetworkNotFound")
    assert snapshot() == before


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"[]",
        b"null",
        b'"segment"',
        b'{"segment": []}',
        b'{"segment": {"network_type": "local"}}',
        b"",
    ],
)
def test_malformed_bodies(api: Api, snapshot: Snapshot, raw: bytes) -> None:
    before = snapshot()
    resp = api.request(
        "POST", "/v2.0/segments", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(resp, 400)
    assert snapshot() == before


def test_body_without_content_type_is_parsed_as_json(api: Api, network: dict[str, Any]) -> None:
    import orjson

    raw = orjson.dumps({"segment": {"network_id": network["id"], "network_type": "local"}})
    resp = api.request("POST", "/v2.0/segments", content=raw)
    assert resp.status_code == 201, resp.text


# Read, update, delete -------------------------------------------------------------------


def test_show_unknown_and_malformed_ids_are_404(api: Api) -> None:
    for segment_id in (str(uuid.uuid4()), "nope"):
        assert_error(api.get(f"/v2.0/segments/{segment_id}"), 404, "SegmentNotFound")


def test_update_name_and_description_bumps_revision(api: Api, network: dict[str, Any]) -> None:
    seg = api.create_segment(network["id"], network_type="vxlan", name="a")
    resp = api.put(f"/v2.0/segments/{seg['id']}", {"segment": {"name": "b", "description": "d"}})
    assert resp.status_code == 200, resp.text
    body = resp.json()["segment"]
    assert (body["name"], body["description"], body["revision_number"]) == ("b", "d", 2)
    assert body["segmentation_id"] == seg["segmentation_id"]
    assert api.get(f"/v2.0/segments/{seg['id']}").json()["segment"] == body
    cleared = api.put(f"/v2.0/segments/{seg['id']}", {"segment": {"name": None}}).json()["segment"]
    assert cleared["name"] is None


@pytest.mark.parametrize(
    "attrs",
    [
        {"network_type": "vlan"},
        {"physical_network": "physnet2"},
        {"segmentation_id": 9},
        {"network_id": str(uuid.uuid4())},
        {"id": str(uuid.uuid4())},
        {"revision_number": 9},
        {"bogus": 1},
        {"name": "x" * 256},
    ],
)
def test_immutable_and_read_only_on_update(
    api: Api, network: dict[str, Any], snapshot: Snapshot, attrs: dict[str, Any]
) -> None:
    seg = api.create_segment(network["id"], network_type="vxlan")
    before = snapshot()
    error = assert_error(api.put(f"/v2.0/segments/{seg['id']}", {"segment": attrs}), 400)
    assert next(iter(attrs)) in error["message"]
    assert snapshot() == before


def test_if_match_compare_and_swap(api: Api, network: dict[str, Any], snapshot: Snapshot) -> None:
    seg = api.create_segment(network["id"], network_type="vxlan")
    path = f"/v2.0/segments/{seg['id']}"
    before = snapshot()
    stale = api.put(path, {"segment": {"name": "x"}}, headers={"If-Match": "revision_number=7"})
    assert_error(stale, 412, "RevisionNumberConstraintFailed")
    assert_error(api.put(path, {"segment": {"name": "x"}}, headers={"If-Match": "etag"}), 400)
    assert_error(api.delete(path, headers={"If-Match": "revision_number=2"}), 412)
    assert snapshot() == before
    ok = api.put(path, {"segment": {"name": "x"}}, headers={"If-Match": "revision_number=1"})
    assert ok.status_code == 200
    assert api.delete(path, headers={"If-Match": "revision_number=2"}).status_code == 204


def test_delete_segment(api: Api, network: dict[str, Any]) -> None:
    seg = api.create_segment(
        network["id"], network_type="vlan", physical_network="physnet1", segmentation_id=77
    )
    resp = api.delete(f"/v2.0/segments/{seg['id']}")
    assert resp.status_code == 204
    assert resp.content == b""
    assert_error(api.get(f"/v2.0/segments/{seg['id']}"), 404)
    assert_error(api.delete(f"/v2.0/segments/{seg['id']}"), 404)
    # The ID is free again.
    api.create_segment(
        network["id"], network_type="vlan", physical_network="physnet1", segmentation_id=77
    )


def test_deleting_last_segment_of_network_is_allowed(api: Api) -> None:
    net = api.create_network(name="n")
    (seg,) = api.get("/v2.0/segments", params={"network_id": net["id"]}).json()["segments"]
    assert api.delete(f"/v2.0/segments/{seg['id']}").status_code == 204
    assert api.get(f"/v2.0/networks/{net['id']}").status_code == 200


# Non-admin callers -------------------------------------------------------------------------


@pytest.mark.parametrize("roles", ["member", "reader", "member,reader", "service"])
def test_segments_are_admin_only(
    api: Api, network: dict[str, Any], snapshot: Snapshot, roles: str
) -> None:
    seg = api.create_segment(network["id"], network_type="vxlan")
    user = api.as_(network["project_id"], roles)
    before = snapshot()
    assert_error(post_segment(user, network["id"], network_type="vxlan"), 403)
    listed = user.get("/v2.0/segments")
    assert listed.status_code == 200
    assert listed.json()["segments"] == []
    missing = str(uuid.uuid4())
    for method, body in (("GET", None), ("PUT", {"segment": {"name": "x"}}), ("DELETE", None)):
        hidden = user.request(method, f"/v2.0/segments/{seg['id']}", json=body)
        absent = user.request(method, f"/v2.0/segments/{missing}", json=body)
        assert hidden.status_code == absent.status_code == 404
        # Same body shape and wording: nothing tells the two apart but the id.
        assert hidden.json()["NeutronError"]["message"].replace(seg["id"], "") == absent.json()[
            "NeutronError"
        ]["message"].replace(missing, "")
    assert snapshot() == before
