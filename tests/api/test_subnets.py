"""/v2.0/subnets over HTTP: addressing, routed-network rules, ownership, listing.

Every rejection asserts the whole database unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from segmentd.db.models import Segment, Subnet, SubnetAllocationPool, SubnetTag
from tests.client import Api
from tests.support import assert_error

Snapshot = Callable[[], dict[str, Any]]
LOCAL = {"provider:network_type": "local"}


@pytest.fixture
def net(api: Api) -> dict[str, Any]:
    return api.create_network(name="net", **LOCAL)


def segments_of(api: Api, network_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.get(
        "/v2.0/segments", params={"network_id": network_id, "sort_key": "created_at"}
    ).json()["segments"]
    return found


@pytest.fixture
def routed(api: Api) -> dict[str, Any]:
    """A network with two segments: the shape of a routed provider network."""
    network = api.create_network(
        name="routed",
        segments=[
            {
                "provider:network_type": "vlan",
                "provider:physical_network": "physnet1",
                "provider:segmentation_id": 11,
            },
            {
                "provider:network_type": "vlan",
                "provider:physical_network": "physnet2",
                "provider:segmentation_id": 12,
            },
        ],
    )
    segs = sorted(segments_of(api, network["id"]), key=lambda s: s["physical_network"])
    return {"network": network, "segments": [s["id"] for s in segs]}


def post_subnet(
    api: Api, network_id: str, cidr: str = "10.0.0.0/24", ip_version: int = 4, **attrs: Any
) -> Any:
    body = {"network_id": network_id, "cidr": cidr, "ip_version": ip_version, **attrs}
    return api.post("/v2.0/subnets", {"subnet": body})


def create_subnet(
    api: Api, network_id: str, cidr: str = "10.0.0.0/24", ip_version: int = 4, **attrs: Any
) -> dict[str, Any]:
    resp = post_subnet(api, network_id, cidr, ip_version, **attrs)
    assert resp.status_code == 201, resp.text
    subnet: dict[str, Any] = resp.json()["subnet"]
    return subnet


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(model)) or 0)


# Defaults -------------------------------------------------------------------------------


def test_ipv4_defaults_and_wire_shape(api: Api, net: dict[str, Any]) -> None:
    body = create_subnet(api, net["id"], "10.0.0.77/24", name="s", tags=["b", "a"])
    assert body["cidr"] == "10.0.0.0/24"  # host bits cleared, as Neutron does
    assert body["gateway_ip"] == "10.0.0.1"
    assert body["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]
    assert body["enable_dhcp"] is True
    assert body["segment_id"] is None
    assert body["project_id"] == body["tenant_id"] == "admin-project"
    assert body["tags"] == ["a", "b"]
    assert body["revision_number"] == 0  # Neutron 29: a new subnet is at revision 0
    assert (body["dns_nameservers"], body["host_routes"], body["service_types"]) == ([], [], [])
    assert (body["ipv6_ra_mode"], body["ipv6_address_mode"], body["subnetpool_id"]) == (
        None,
        None,
        None,
    )
    assert api.get(f"/v2.0/subnets/{body['id']}").json()["subnet"] == body
    assert api.get(f"/v2.0/networks/{net['id']}").json()["network"]["subnets"] == [body["id"]]


def test_ipv6_defaults(api: Api, net: dict[str, Any]) -> None:
    """As Neutron 29 answers: the gateway is the subnet-router anycast address
    (ipam_backend_mixin._gateway_ip_str) and the pool starts after it."""
    body = create_subnet(api, net["id"], "2001:db8::/64", 6)
    assert body["gateway_ip"] == "2001:db8::"
    assert body["allocation_pools"] == [
        {"start": "2001:db8::1", "end": "2001:db8::ffff:ffff:ffff:ffff"}
    ]


@pytest.mark.parametrize(
    ("attrs", "gateway", "pools"),
    [
        ({"gateway_ip": None}, None, [("10.0.0.1", "10.0.0.254")]),
        (
            {"gateway_ip": "10.0.0.100"},
            "10.0.0.100",
            [("10.0.0.1", "10.0.0.99"), ("10.0.0.101", "10.0.0.254")],
        ),
        (
            {
                "allocation_pools": [
                    {"start": "10.0.0.200", "end": "10.0.0.210"},
                    {"start": "10.0.0.10", "end": "10.0.0.20"},
                ]
            },
            "10.0.0.1",
            [("10.0.0.10", "10.0.0.20"), ("10.0.0.200", "10.0.0.210")],
        ),
        ({"cidr": "10.0.0.9/32", "enable_dhcp": False}, None, [("10.0.0.9", "10.0.0.9")]),
        ({"cidr": "10.0.0.8/31", "enable_dhcp": False}, None, []),
        ({"cidr": "10.0.0.0/30"}, "10.0.0.1", [("10.0.0.2", "10.0.0.2")]),
    ],
)
def test_gateway_and_pools(
    api: Api,
    net: dict[str, Any],
    attrs: dict[str, Any],
    gateway: str | None,
    pools: list[tuple[str, str]],
) -> None:
    body = create_subnet(api, net["id"], **{"cidr": "10.0.0.0/24", **attrs})
    assert body["gateway_ip"] == gateway
    assert [(p["start"], p["end"]) for p in body["allocation_pools"]] == pools


# Rejections -----------------------------------------------------------------------------

REJECTED_400 = [
    ({"cidr": "10.0.0.0"}, "recognized"),
    ({"cidr": "10.0.0.0/33"}, "valid IP subnet"),
    ({"cidr": "nonsense"}, "nonsense"),
    ({"cidr": "0.0.0.0/0"}, "0 is not allowed"),
    ({"cidr": "2001:db8::/64"}, "ip_version"),
    ({"ip_version": 6}, "ip_version"),
    ({"ip_version": 5}, "ip_version"),
    ({"gateway_ip": "10.0.1.1"}, "Gateway"),
    ({"gateway_ip": "10.0.0.0"}, "Gateway"),
    ({"gateway_ip": "10.0.0.255"}, "Gateway"),
    ({"gateway_ip": "2001:db8::1"}, "ip_version"),
    ({"gateway_ip": "10.0.0.x"}, "10.0.0.x"),
    ({"allocation_pools": [{"start": "10.0.0.0", "end": "10.0.0.9"}]}, "spans beyond"),
    ({"allocation_pools": [{"start": "10.0.0.5", "end": "10.0.0.255"}]}, "spans beyond"),
    ({"allocation_pools": [{"start": "10.0.0.9", "end": "10.0.0.5"}]}, "not valid"),
    ({"allocation_pools": [{"start": "10.0.0.5"}]}, "end"),
    ({"allocation_pools": [{"start": "10.0.0.5", "end": "10.0.0.9", "x": 1}]}, "x"),
    ({"cidr": "10.0.0.9/32"}, "DHCP"),
    ({"cidr": "10.0.0.8/31"}, "DHCP"),
    ({"cidr": "224.0.0.0/24"}, "Multicast"),
    ({"dns_nameservers": ["2001:db8::53"]}, "dns_nameserver"),
    ({"host_routes": [{"destination": "10.1.0.1/24", "nexthop": "10.0.0.1"}]}, "valid CIDR"),
    ({"ipv6_ra_mode": "slaac"}, "ipv6_ra_mode"),
    ({"id": "4f1bd1f4-5a23-4b8c-9b0e-6f4b8c1d2e3f"}, "id"),
    ({"revision_number": 4}, "revision_number"),
    ({"bogus": True}, "bogus"),
    ({"name": "n" * 256}, "name"),
    ({"enable_dhcp": "sometimes"}, "enable_dhcp"),
    ({"segment_id": "not-a-uuid"}, "segment_id"),
    ({"project_id": "a", "tenant_id": "b"}, "match"),
]


@pytest.mark.parametrize(("attrs", "needle"), REJECTED_400, ids=lambda v: str(v))
def test_rejected_400(
    api: Api, net: dict[str, Any], snapshot: Snapshot, attrs: dict[str, Any], needle: str
) -> None:
    before = snapshot()
    error = assert_error(
        post_subnet(api, net["id"], **{"cidr": "10.0.0.0/24", "ip_version": 4, **attrs}), 400
    )
    assert needle in error["message"]
    assert snapshot() == before


@pytest.mark.parametrize(
    ("attrs", "type_name"),
    [
        (
            {
                "allocation_pools": [
                    {"start": "10.0.0.2", "end": "10.0.0.9"},
                    {"start": "10.0.0.9", "end": "10.0.0.20"},
                ]
            },
            "OverlappingAllocationPools",
        ),
        (
            {"allocation_pools": [{"start": "10.0.0.1", "end": "10.0.0.9"}]},
            "GatewayConflictWithAllocationPools",
        ),
        (
            {
                "gateway_ip": "10.0.0.5",
                "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.9"}],
            },
            "GatewayConflictWithAllocationPools",
        ),
    ],
)
def test_rejected_409(
    api: Api, net: dict[str, Any], snapshot: Snapshot, attrs: dict[str, Any], type_name: str
) -> None:
    before = snapshot()
    assert_error(post_subnet(api, net["id"], **attrs), 409, type_name)
    assert snapshot() == before


def test_missing_required_and_unknown_network(
    api: Api, net: dict[str, Any], snapshot: Snapshot
) -> None:
    before = snapshot()
    assert_error(
        api.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4}}), 400
    )
    assert_error(
        api.post("/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24"}}), 400
    )
    assert_error(post_subnet(api, "not-a-uuid"), 400)
    assert_error(post_subnet(api, str(uuid.uuid4())), 404, "NetworkNotFound")
    assert snapshot() == before


def test_overlapping_cidrs_on_one_network_are_refused(
    api: Api, net: dict[str, Any], snapshot: Snapshot
) -> None:
    create_subnet(api, net["id"], "10.0.0.0/24")
    create_subnet(api, net["id"], "2001:db8::/64", 6)
    other = api.create_network(name="other", **LOCAL)
    before = snapshot()
    for cidr in ("10.0.0.0/24", "10.0.0.128/25", "10.0.0.0/16"):
        error = assert_error(post_subnet(api, net["id"], cidr), 400, "InvalidInput")
        assert "overlaps with another subnet" in error["message"]
    assert_error(post_subnet(api, net["id"], "2001:db8::/48", 6), 400)
    assert snapshot() == before
    create_subnet(api, net["id"], "10.0.1.0/24")
    create_subnet(api, other["id"], "10.0.0.0/24")  # other networks may reuse it


# Routed networks ------------------------------------------------------------------------


def test_subnets_on_segments(api: Api, routed: dict[str, Any]) -> None:
    net_id, (seg_a, seg_b) = routed["network"]["id"], routed["segments"]
    a = create_subnet(api, net_id, "10.1.0.0/24", segment_id=seg_a)
    b = create_subnet(api, net_id, "10.2.0.0/24", segment_id=seg_b)
    create_subnet(api, net_id, "10.1.1.0/24", segment_id=seg_a)
    assert (a["segment_id"], b["segment_id"]) == (seg_a, seg_b)
    listed = api.get("/v2.0/subnets", params={"segment_id": seg_a, "sort_key": "cidr"}).json()[
        "subnets"
    ]
    assert [s["cidr"] for s in listed] == ["10.1.0.0/24", "10.1.1.0/24"]


def test_segment_of_another_network_is_400(
    api: Api, routed: dict[str, Any], net: dict[str, Any], snapshot: Snapshot
) -> None:
    before = snapshot()
    assert_error(
        post_subnet(api, net["id"], segment_id=routed["segments"][0]), 400, "NetworkIdsDontMatch"
    )
    assert_error(post_subnet(api, net["id"], segment_id=str(uuid.uuid4())), 404, "SegmentNotFound")
    assert snapshot() == before


def test_all_or_none_with_segments(api: Api, routed: dict[str, Any], snapshot: Snapshot) -> None:
    net_id, (seg_a, _) = routed["network"]["id"], routed["segments"]
    create_subnet(api, net_id, "10.1.0.0/24", segment_id=seg_a)
    before = snapshot()
    error = assert_error(
        post_subnet(api, net_id, "10.9.0.0/24"), 409, "SubnetsNotAllAssociatedWithSegments"
    )
    assert "a subnet without segment cannot be added" in error["message"]
    assert snapshot() == before


def test_all_or_none_without_segments(api: Api, routed: dict[str, Any], snapshot: Snapshot) -> None:
    net_id, (seg_a, _) = routed["network"]["id"], routed["segments"]
    create_subnet(api, net_id, "10.9.0.0/24")
    before = snapshot()
    error = assert_error(
        post_subnet(api, net_id, "10.1.0.0/24", segment_id=seg_a),
        409,
        "SubnetsNotAllAssociatedWithSegments",
    )
    assert "without a segment" in error["message"]
    assert snapshot() == before


def test_segment_set_once_from_null_on_single_segment_network(
    api: Api, net: dict[str, Any], snapshot: Snapshot
) -> None:
    (seg,) = segments_of(api, net["id"])
    subnet = create_subnet(api, net["id"])
    path = f"/v2.0/subnets/{subnet['id']}"
    resp = api.put(path, {"subnet": {"segment_id": seg["id"]}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["subnet"]["segment_id"] == seg["id"]
    assert resp.json()["subnet"]["revision_number"] == 1
    # Setting the same value again changes nothing about the association.
    assert api.put(path, {"subnet": {"segment_id": seg["id"]}}).status_code == 200
    other_seg = api.create_segment(net["id"], network_type="local")
    before = snapshot()
    for value in (other_seg["id"], None):
        assert_error(
            api.put(path, {"subnet": {"segment_id": value}}),
            400,
            "SubnetSegmentAssociationChangeNotAllowed",
        )
    assert snapshot() == before


def test_segment_cannot_be_set_when_network_has_several_segments(
    api: Api, routed: dict[str, Any], snapshot: Snapshot
) -> None:
    net_id, (seg_a, _) = routed["network"]["id"], routed["segments"]
    subnet = create_subnet(api, net_id)
    before = snapshot()
    resp = api.put(f"/v2.0/subnets/{subnet['id']}", {"subnet": {"segment_id": seg_a}})
    assert_error(resp, 400, "NoUpdateSubnetWhenMultipleSegmentsOnNetwork")
    assert snapshot() == before


def test_segment_cannot_be_set_on_one_of_several_subnets(
    api: Api, net: dict[str, Any], snapshot: Snapshot
) -> None:
    (seg,) = segments_of(api, net["id"])
    first = create_subnet(api, net["id"], "10.0.0.0/24")
    create_subnet(api, net["id"], "10.0.1.0/24")
    before = snapshot()
    resp = api.put(f"/v2.0/subnets/{first['id']}", {"subnet": {"segment_id": seg["id"]}})
    assert_error(resp, 409, "SubnetsNotAllAssociatedWithSegments")
    assert snapshot() == before


def test_segment_with_subnets_cannot_be_deleted(
    api: Api, routed: dict[str, Any], snapshot: Snapshot
) -> None:
    net_id, (seg_a, seg_b) = routed["network"]["id"], routed["segments"]
    subnet = create_subnet(api, net_id, "10.1.0.0/24", segment_id=seg_a)
    before = snapshot()
    error = assert_error(api.delete(f"/v2.0/segments/{seg_a}"), 409, "SegmentInUse")
    assert subnet["id"] in error["message"]
    assert snapshot() == before
    assert api.delete(f"/v2.0/segments/{seg_b}").status_code == 204  # no subnets: fine
    assert api.delete(f"/v2.0/subnets/{subnet['id']}").status_code == 204
    assert api.delete(f"/v2.0/segments/{seg_a}").status_code == 204


def test_database_restricts_segment_delete_with_subnets(
    api: Api, routed: dict[str, Any], engine: Engine
) -> None:
    """The last line of defence, for writes that bypass the service."""
    seg_a = routed["segments"][0]
    create_subnet(api, routed["network"]["id"], "10.1.0.0/24", segment_id=seg_a)
    with Session(engine) as session, pytest.raises(IntegrityError), session.begin():
        session.execute(delete(Segment).where(Segment.id == seg_a))
    assert count(engine, Segment) == 2


def test_deleting_network_deletes_subnets_and_segments(
    api: Api, routed: dict[str, Any], engine: Engine
) -> None:
    net_id, (seg_a, seg_b) = routed["network"]["id"], routed["segments"]
    keep = api.create_network(name="keep", **LOCAL)
    create_subnet(api, keep["id"], "10.0.0.0/24")
    create_subnet(api, net_id, "10.1.0.0/24", segment_id=seg_a, tags=["t"])
    create_subnet(api, net_id, "10.2.0.0/24", segment_id=seg_b)
    assert api.delete(f"/v2.0/networks/{net_id}").status_code == 204
    assert count(engine, Subnet) == 1
    assert count(engine, SubnetAllocationPool) == 1
    assert count(engine, SubnetTag) == 0
    assert count(engine, Segment) == 1
    assert [s["network_id"] for s in api.get("/v2.0/subnets").json()["subnets"]] == [keep["id"]]


def test_concurrent_creates_keep_all_or_none_and_cidrs_disjoint(
    api: Api, routed: dict[str, Any], engine: Engine
) -> None:
    net_id, (seg_a, _) = routed["network"]["id"], routed["segments"]

    def attempt(i: int) -> int:
        attrs = {"segment_id": seg_a} if i % 2 else {}
        return int(post_subnet(api, net_id, f"10.{i}.0.0/16", **attrs).status_code)

    def same_cidr(_: int) -> int:
        return int(post_subnet(api, net_id, "172.16.0.0/24", segment_id=seg_a).status_code)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attempt, range(16)))
    assert set(statuses) <= {201, 409}, statuses
    with engine.connect() as conn:
        kinds = set(
            conn.scalars(select(Subnet.segment_id.is_(None)).where(Subnet.network_id == net_id))
        )
    assert len(kinds) == 1  # all routed or none, whichever won the first create
    assert statuses.count(201) == count(engine, Subnet)
    with ThreadPoolExecutor(max_workers=8) as pool:
        same = list(pool.map(same_cidr, range(8)))
    if kinds == {False}:
        assert sorted(same) == [201] + [400] * 7
    else:
        assert set(same) == {409}


# Updates ------------------------------------------------------------------------------


def test_update_attributes(api: Api, net: dict[str, Any], snapshot: Snapshot) -> None:
    subnet = create_subnet(api, net["id"])
    path = f"/v2.0/subnets/{subnet['id']}"
    resp = api.put(
        path, {"subnet": {"name": "n", "description": "d", "tags": ["x"], "enable_dhcp": False}}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()["subnet"]
    assert (
        body["name"],
        body["description"],
        body["tags"],
        body["enable_dhcp"],
        body["revision_number"],
    ) == ("n", "d", ["x"], False, 1)
    pools = [{"start": "10.0.0.100", "end": "10.0.0.200"}]
    body = api.put(
        path, {"subnet": {"allocation_pools": pools, "gateway_ip": "10.0.0.254"}}
    ).json()["subnet"]
    assert (body["allocation_pools"], body["gateway_ip"]) == (pools, "10.0.0.254")
    body = api.put(path, {"subnet": {"gateway_ip": None}}).json()["subnet"]
    assert body["gateway_ip"] is None
    assert api.get(path).json()["subnet"] == body
    before = snapshot()
    assert_error(
        api.put(path, {"subnet": {"gateway_ip": "10.0.0.150"}}),
        409,
        "GatewayConflictWithAllocationPools",
    )
    assert_error(api.put(path, {"subnet": {"gateway_ip": "10.0.0.255"}}), 400)
    assert_error(
        api.put(path, {"subnet": {"allocation_pools": [{"start": "10.0.0.1", "end": "10.0.1.1"}]}}),
        400,
    )
    assert_error(api.put(path, {"subnet": {"allocation_pools": None}}), 400)
    for attrs in (
        {"cidr": "10.0.1.0/24"},
        {"ip_version": 6},
        {"network_id": str(uuid.uuid4())},
        {"project_id": "p"},
        {"id": "x"},
    ):
        error = assert_error(api.put(path, {"subnet": attrs}), 400)
        assert next(iter(attrs)) in error["message"]
    assert_error(
        api.put(path, {"subnet": {"name": "m"}}, headers={"If-Match": "revision_number=1"}), 412
    )
    assert_error(api.delete(path, headers={"If-Match": "revision_number=1"}), 412)
    assert snapshot() == before
    assert (
        api.delete(
            path, headers={"If-Match": f"revision_number={body['revision_number']}"}
        ).status_code
        == 204
    )
    assert_error(api.get(path), 404, "SubnetNotFound")


def test_enabling_dhcp_checks_the_prefix(api: Api, net: dict[str, Any], snapshot: Snapshot) -> None:
    subnet = create_subnet(api, net["id"], "10.0.0.8/31", enable_dhcp=False)
    before = snapshot()
    assert_error(api.put(f"/v2.0/subnets/{subnet['id']}", {"subnet": {"enable_dhcp": True}}), 400)
    assert snapshot() == before


# Authorization ------------------------------------------------------------------------


def test_member_works_on_own_network_without_segment_attributes(
    api: Api, snapshot: Snapshot
) -> None:
    alice = api.as_("alice-project", "member")
    net = alice.create_network(name="mine")
    subnet = create_subnet(alice, net["id"])
    assert "segment_id" not in subnet  # get_subnet:segment_id is admin-only
    assert subnet["project_id"] == "alice-project"
    (seg,) = segments_of(api, net["id"])
    before = snapshot()
    assert_error(post_subnet(alice, net["id"], "10.0.1.0/24", segment_id=seg["id"]), 403)
    assert_error(
        alice.put(f"/v2.0/subnets/{subnet['id']}", {"subnet": {"segment_id": seg["id"]}}), 403
    )
    assert_error(post_subnet(alice, net["id"], "10.0.1.0/24", project_id="bob-project"), 403)
    assert_error(alice.get("/v2.0/subnets", params={"segment_id": seg["id"]}), 400)
    assert_error(alice.get(f"/v2.0/segments/{seg['id']}/subnets"), 404)
    assert snapshot() == before
    assert (
        "segment_id"
        not in alice.get(
            f"/v2.0/subnets/{subnet['id']}", params={"fields": ["id", "segment_id"]}
        ).json()["subnet"]
    )
    assert alice.put(f"/v2.0/subnets/{subnet['id']}", {"subnet": {"name": "x"}}).status_code == 200
    assert alice.delete(f"/v2.0/subnets/{subnet['id']}").status_code == 204


def test_reader_reads_but_does_not_write(api: Api, snapshot: Snapshot) -> None:
    net = api.as_("alice-project", "member").create_network(name="n")
    subnet = create_subnet(api.as_("alice-project", "member"), net["id"])
    reader = api.as_("alice-project", "reader")
    assert reader.get(f"/v2.0/subnets/{subnet['id']}").status_code == 200
    assert [s["id"] for s in reader.get("/v2.0/subnets").json()["subnets"]] == [subnet["id"]]
    before = snapshot()
    assert_error(post_subnet(reader, net["id"], "10.0.1.0/24"), 403)
    assert_error(reader.put(f"/v2.0/subnets/{subnet['id']}", {"subnet": {"name": "r"}}), 403)
    assert_error(reader.delete(f"/v2.0/subnets/{subnet['id']}"), 403)
    assert snapshot() == before


def test_other_projects_get_404_like_missing(api: Api, snapshot: Snapshot) -> None:
    alice = api.as_("alice-project", "member")
    bob = api.as_("bob-project", "member")
    net = alice.create_network(name="a")
    subnet = create_subnet(alice, net["id"])
    missing = str(uuid.uuid4())
    assert bob.get("/v2.0/subnets").json()["subnets"] == []
    before = snapshot()
    for method, body in (("GET", None), ("PUT", {"subnet": {"name": "x"}}), ("DELETE", None)):
        hidden = bob.request(method, f"/v2.0/subnets/{subnet['id']}", json=body)
        absent = bob.request(method, f"/v2.0/subnets/{missing}", json=body)
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json()["NeutronError"]["message"].replace(subnet["id"], "") == absent.json()[
            "NeutronError"
        ]["message"].replace(missing, "")
    assert_error(post_subnet(bob, net["id"], "10.0.1.0/24"), 404, "NetworkNotFound")
    assert snapshot() == before


def test_shared_network_subnets_are_visible_but_owned(api: Api, snapshot: Snapshot) -> None:
    shared = api.create_network(name="public", shared=True, project_id="ops")
    subnet = create_subnet(api, shared["id"], project_id="ops")
    bob = api.as_("bob-project", "member")
    assert bob.get(f"/v2.0/subnets/{subnet['id']}").status_code == 200
    assert [s["id"] for s in bob.get("/v2.0/subnets").json()["subnets"]] == [subnet["id"]]
    before = snapshot()
    assert_error(post_subnet(bob, shared["id"], "10.0.1.0/24"), 403)
    assert_error(bob.put(f"/v2.0/subnets/{subnet['id']}", {"subnet": {"name": "mine"}}), 403)
    assert_error(bob.delete(f"/v2.0/subnets/{subnet['id']}"), 403)
    assert snapshot() == before
    ops = api.as_("ops", "member")
    assert ops.put(f"/v2.0/subnets/{subnet['id']}", {"subnet": {"name": "o"}}).status_code == 200


# Listing -----------------------------------------------------------------------------


@pytest.fixture
def population(api: Api, net: dict[str, Any]) -> list[dict[str, Any]]:
    made = [create_subnet(api, net["id"], f"10.0.{i}.0/24", name=f"s{i % 3}") for i in range(7)]
    made.append(create_subnet(api, net["id"], "2001:db8::/64", 6, name="v6"))
    return made


def test_filters_sorts_and_fields(
    api: Api, net: dict[str, Any], population: list[dict[str, Any]]
) -> None:
    def cidrs(**params: Any) -> list[str]:
        return [s["cidr"] for s in api.get("/v2.0/subnets", params=params).json()["subnets"]]

    assert cidrs(ip_version=6) == ["2001:db8::/64"]
    assert cidrs(cidr="10.0.3.0/24") == ["10.0.3.0/24"]
    assert cidrs(name="s1", sort_key="cidr", sort_dir="desc") == ["10.0.4.0/24", "10.0.1.0/24"]
    assert len(cidrs(network_id=net["id"])) == 8
    assert cidrs(network_id=str(uuid.uuid4())) == []
    body = api.get("/v2.0/subnets", params={"fields": ["id", "cidr"], "limit": 2}).json()
    assert all(set(s) == {"id", "cidr"} for s in body["subnets"])
    for bad in (
        {"sort_key": "password"},
        {"ip_version": "four"},
        {"fields": "secret"},
        {"segment_id": "x"},
    ):
        assert_error(api.get("/v2.0/subnets", params=bad), 400)


def test_pagination_walk(api: Api, population: list[dict[str, Any]]) -> None:
    url, seen, pages = "/v2.0/subnets?limit=3&sort_key=name&sort_key=id", [], 0
    while url:
        body = api.get(url).json()
        seen += [s["id"] for s in body["subnets"]]
        url = next((lk["href"] for lk in body["subnets_links"] if lk["rel"] == "next"), "")
        pages += 1
    assert pages == 3
    expected = sorted(population, key=lambda s: (s["name"], s["id"]))
    assert seen == [s["id"] for s in expected]


def test_subnets_of_a_segment(api: Api, routed: dict[str, Any]) -> None:
    net_id, (seg_a, seg_b) = routed["network"]["id"], routed["segments"]
    made = [create_subnet(api, net_id, f"10.1.{i}.0/24", segment_id=seg_a) for i in range(3)]
    create_subnet(api, net_id, "10.2.0.0/24", segment_id=seg_b)
    body = api.get(
        f"/v2.0/segments/{seg_a}/subnets", params={"limit": 2, "sort_key": "cidr"}
    ).json()
    assert [s["cidr"] for s in body["subnets"]] == ["10.1.0.0/24", "10.1.1.0/24"]
    assert body["subnets"][0]["allocation_pools"] == made[0]["allocation_pools"]
    (link,) = body["subnets_links"]
    assert link["rel"] == "next" and f"/v2.0/segments/{seg_a}/subnets" in link["href"]
    rest = api.get(link["href"]).json()["subnets"]
    assert [s["cidr"] for s in rest] == ["10.1.2.0/24"]
    assert_error(api.get(f"/v2.0/segments/{uuid.uuid4()}/subnets"), 404, "SegmentNotFound")


def test_network_views_list_subnet_ids_without_n_plus_one(api: Api, read_engine: Engine) -> None:
    from sqlalchemy import event

    nets = [api.create_network(name=f"n{i}", **LOCAL) for i in range(5)]
    for i, n in enumerate(nets):
        create_subnet(api, n["id"], f"10.{i}.0.0/24")
        create_subnet(api, n["id"], f"10.{i}.1.0/24")
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(read_engine, "before_cursor_execute", record)
    try:
        listed = api.get("/v2.0/networks").json()["networks"]
    finally:
        event.remove(read_engine, "before_cursor_execute", record)
    assert all(len(n["subnets"]) == 2 for n in listed)
    assert sum("FROM subnets" in s for s in statements) == 1


def test_resources_listing_names_subnets(api: Api) -> None:
    resources = {r["collection"]: r["name"] for r in api.get("/v2.0").json()["resources"]}
    assert resources["subnets"] == "subnet"


def test_subnets_reachable_from_a_host(api: Api) -> None:
    """Per host: the subnets on the segments the host is mapped to (admin view)."""
    from tests.agent_helpers import ovs, report

    routed = api.create_network(
        name="routed",
        segments=[
            {
                "provider:network_type": "vlan",
                "provider:physical_network": "physnet1",
                "provider:segmentation_id": 11,
            },
            {
                "provider:network_type": "vlan",
                "provider:physical_network": "physnet2",
                "provider:segmentation_id": 12,
            },
        ],
    )
    by_physnet = {s["physical_network"]: s["id"] for s in segments_of(api, routed["id"])}
    rack1 = create_subnet(api, routed["id"], "10.1.0.0/24", segment_id=by_physnet["physnet1"])
    create_subnet(api, routed["id"], "10.2.0.0/24", segment_id=by_physnet["physnet2"])
    report(api, ovs("compute-1", "physnet1"))
    body = api.get("/v2.0/hosts/compute-1/subnets").json()
    assert [(s["id"], s["cidr"]) for s in body["subnets"]] == [(rack1["id"], "10.1.0.0/24")]
    assert body["subnets"][0]["allocation_pools"] == [{"start": "10.1.0.2", "end": "10.1.0.254"}]
    assert api.get("/v2.0/hosts/nowhere/subnets").json()["subnets"] == []
    assert api.get("/v2.0/hosts/bad host!/subnets").status_code == 400
    member = api.as_(routed["project_id"], "member")
    assert member.get("/v2.0/hosts/compute-1/subnets").json()["subnets"] == []
