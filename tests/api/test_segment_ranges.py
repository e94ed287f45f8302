"""/v2.0/network_segment_ranges: defaults from config, operator ranges, allocation by project."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from segmentd.api.runtime import Runtime
from segmentd.db.models import NetworkSegmentRange, Segment
from segmentd.main import build_runtime
from segmentd.services.segment_ranges import sync_default_ranges
from tests.client import Api
from tests.conftest import make_settings
from tests.server import running_server
from tests.support import assert_error

Snapshot = Callable[[], dict[str, Any]]
PATH = "/v2.0/network_segment_ranges"


def create_range(api: Api, **attrs: Any) -> dict[str, Any]:
    resp = api.post(PATH, {"network_segment_range": {"name": "r", **attrs}})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()["network_segment_range"]
    return body


def vlan(api: Api, network_id: str, segmentation_id: int | None = None) -> Any:
    attrs: dict[str, Any] = {"network_type": "vlan", "physical_network": "physnet1"}
    if segmentation_id is not None:
        attrs["segmentation_id"] = segmentation_id
    return api.post("/v2.0/segments", {"segment": {"network_id": network_id, **attrs}})


@pytest.fixture
def network(api: Api) -> dict[str, Any]:
    return api.create_network(name="n", project_id="alice", **{"provider:network_type": "local"})


def test_config_ranges_are_default_read_only_ranges(api: Api, snapshot: Snapshot) -> None:
    ranges = api.get(PATH, params={"sort_key": ["network_type", "physical_network"]}).json()[
        "network_segment_ranges"
    ]
    got = [
        (
            r["network_type"],
            r["physical_network"],
            r["minimum"],
            r["maximum"],
            r["default"],
            r["shared"],
        )
        for r in ranges
    ]
    assert got == [
        ("geneve", None, 1, 16777215, True, True),
        ("gre", None, 1, 4294967295, True, True),
        ("vlan", "physnet1", 1000, 2999, True, True),
        ("vlan", "physnet2", 1000, 2999, True, True),
        ("vxlan", None, 1, 16777215, True, True),
    ]
    default = ranges[2]
    before = snapshot()
    assert_error(api.delete(f"{PATH}/{default['id']}"), 400, "NetworkSegmentRangeDefaultReadOnly")
    assert_error(api.put(f"{PATH}/{default['id']}", {"network_segment_range": {"name": "x"}}), 400)
    assert snapshot() == before


def test_create_show_update_delete(api: Api) -> None:
    body = create_range(
        api, network_type="vlan", physical_network="physnet1", minimum=100, maximum=104, tags=["t"]
    )
    assert body["default"] is False and body["shared"] is True and body["project_id"] is None
    assert body["available"] == [100, 101, 102, 103, 104]
    assert body["used"] == {}
    assert body["tags"] == ["t"]
    path = f"{PATH}/{body['id']}"
    assert api.get(path).json()["network_segment_range"] == body
    updated = api.put(path, {"network_segment_range": {"name": "grown", "maximum": 110}})
    assert updated.status_code == 200, updated.text
    view = updated.json()["network_segment_range"]
    assert (view["name"], view["maximum"], view["revision_number"], len(view["available"])) == (
        "grown",
        110,
        2,
        11,
    )
    assert api.get(path, params={"fields": "id,name"}).json() == {
        "network_segment_range": {"id": body["id"], "name": "grown"}
    }
    assert api.delete(path).status_code == 204
    assert_error(api.get(path), 404, "NetworkSegmentRangeNotFound")


@pytest.mark.parametrize(
    "attrs",
    [
        {"network_type": "vlan", "physical_network": "physnet1", "minimum": 20, "maximum": 10},
        {"network_type": "vlan", "minimum": 1, "maximum": 10},
        {"network_type": "vlan", "physical_network": "physnet1", "minimum": 0, "maximum": 10},
        {"network_type": "vlan", "physical_network": "physnet1", "minimum": 10, "maximum": 4095},
        {"network_type": "vlan", "physical_network": "nowhere", "minimum": 1, "maximum": 10},
        {"network_type": "vxlan", "physical_network": "physnet1", "minimum": 1, "maximum": 10},
        {"network_type": "vxlan", "minimum": 1, "maximum": 16777216},
        {"network_type": "gre", "minimum": 1, "maximum": 4294967296},
        {"network_type": "flat", "minimum": 1, "maximum": 10},
        {"network_type": "vxlan", "minimum": 1, "maximum": 10, "shared": False},
        {"network_type": "vxlan", "minimum": 1, "maximum": 10, "default": True},
        {"network_type": "vxlan", "minimum": 1, "maximum": 10, "used": {}},
        {"network_type": "vxlan", "minimum": "one", "maximum": 10},
        {"network_type": "vxlan", "maximum": 10},
        {"network_type": "vxlan", "minimum": 1, "maximum": 10, "bogus": 1},
    ],
)
def test_create_validation(api: Api, snapshot: Snapshot, attrs: dict[str, Any]) -> None:
    before = snapshot()
    assert_error(api.post(PATH, {"network_segment_range": attrs}), 400)
    assert snapshot() == before


def test_operator_ranges_may_not_overlap_each_other_but_may_overlap_defaults(
    api: Api, snapshot: Snapshot
) -> None:
    first = create_range(
        api, network_type="vlan", physical_network="physnet1", minimum=1500, maximum=1599
    )
    before = snapshot()
    error = assert_error(
        api.post(
            PATH,
            {
                "network_segment_range": {
                    "network_type": "vlan",
                    "physical_network": "physnet1",
                    "minimum": 1590,
                    "maximum": 1700,
                }
            },
        ),
        409,
        "NetworkSegmentRangeOverlaps",
    )
    assert first["id"] in error["message"]
    grow = api.put(f"{PATH}/{first['id']}", {"network_segment_range": {"maximum": 1700}})
    assert grow.status_code == 200  # itself is not an overlap
    other = create_range(
        api, network_type="vlan", physical_network="physnet1", minimum=1701, maximum=1800
    )
    assert_error(
        api.put(f"{PATH}/{other['id']}", {"network_segment_range": {"minimum": 1650}}), 409
    )
    assert snapshot() != before
    # Another physnet or type is another pool.
    create_range(api, network_type="vlan", physical_network="physnet2", minimum=1500, maximum=1599)
    create_range(api, network_type="vxlan", minimum=1500, maximum=1599)


def test_range_in_use_cannot_shrink_or_go(
    api: Api, network: dict[str, Any], snapshot: Snapshot
) -> None:
    body = create_range(
        api,
        network_type="vlan",
        physical_network="physnet1",
        minimum=100,
        maximum=199,
        shared=False,
        project_id="alice",
    )
    seg = vlan(api, network["id"], 150).json()["segment"]
    path = f"{PATH}/{body['id']}"
    shown = api.get(path).json()["network_segment_range"]
    assert shown["used"] == {"150": "alice"}
    assert 150 not in shown["available"] and len(shown["available"]) == 99
    before = snapshot()
    for bounds in ({"minimum": 151}, {"maximum": 149}, {"minimum": 10, "maximum": 120}):
        assert_error(
            api.put(path, {"network_segment_range": bounds}),
            409,
            "NetworkSegmentRangeReferencedByProject",
        )
    assert_error(api.delete(path), 409, "NetworkSegmentRangeReferencedByProject")
    assert snapshot() == before
    assert (
        api.put(path, {"network_segment_range": {"minimum": 150, "maximum": 150}}).status_code
        == 200
    )
    assert api.delete(f"/v2.0/segments/{seg['id']}").status_code == 204
    assert api.delete(path).status_code == 204


def test_large_ranges_stay_bounded_and_counted(api: Api, network: dict[str, Any]) -> None:
    body = create_range(api, network_type="vxlan", minimum=1, maximum=16777215)
    for vni in (5, 10):
        api.create_segment(network["id"], network_type="vxlan", segmentation_id=vni)
    shown = api.get(f"{PATH}/{body['id']}").json()["network_segment_range"]
    # Integers, as openstackclient parses them, but never millions of them.
    assert len(shown["available"]) == 4094
    assert shown["available"][:6] == [1, 2, 3, 4, 6, 7]
    assert 10 not in shown["available"]
    assert shown["available_count"] == 16777215 - 2
    assert shown["available_ranges"] == [[1, 4], [6, 9], [11, 16777215]]
    assert (shown["used"], shown["used_count"]) == ({"5": "alice", "10": "alice"}, 2)


def test_used_and_available_are_bounded(make_api: Callable[..., Api]) -> None:
    api = make_api(segment_range_detail_max=3)
    net = api.create_network(name="n", **{"provider:network_type": "local"})
    body = create_range(api, network_type="gre", minimum=1, maximum=100)
    for key in (2, 4, 6, 8, 10):
        api.create_segment(net["id"], network_type="gre", segmentation_id=key)
    shown = api.get(f"{PATH}/{body['id']}").json()["network_segment_range"]
    assert list(shown["used"]) == ["2", "4", "6"]
    assert shown["used_count"] == 5
    assert shown["available"] == [1, 3, 5]
    assert shown["available_count"] == 95
    assert len(shown["available_ranges"]) <= 3


def test_project_allocates_own_range_first_and_others_avoid_it(
    make_api: Callable[..., Api], snapshot: Snapshot
) -> None:
    api = make_api(network_vlan_ranges="physnet1:10:19", tenant_network_types="vlan")
    create_range(
        api,
        network_type="vlan",
        physical_network="physnet1",
        minimum=10,
        maximum=14,
        shared=False,
        project_id="alice",
    )
    alice = api.as_("alice", "member")
    bob = api.as_("bob", "member")
    bob_ids = {
        api.get(f"/v2.0/networks/{bob.create_network(name='b')['id']}").json()["network"][
            "provider:segmentation_id"
        ]
        for _ in range(5)
    }
    assert bob_ids == {15, 16, 17, 18, 19}
    before = snapshot()
    assert_error(bob.post("/v2.0/networks", {"network": {"name": "b6"}}), 503, "NoNetworkAvailable")
    assert snapshot() == before
    alice_ids = {
        api.get(f"/v2.0/networks/{alice.create_network(name='a')['id']}").json()["network"][
            "provider:segmentation_id"
        ]
        for _ in range(5)
    }
    assert alice_ids == {10, 11, 12, 13, 14}
    assert_error(alice.post("/v2.0/networks", {"network": {"name": "a6"}}), 503)


def test_admin_may_use_ids_outside_every_range(api: Api, network: dict[str, Any]) -> None:
    assert vlan(api, network["id"], 5).status_code == 201


def test_segment_ranges_are_admin_only(api: Api, snapshot: Snapshot) -> None:
    body = create_range(api, network_type="gre", minimum=5, maximum=9)
    member = api.as_("alice", "member")
    before = snapshot()
    assert_error(
        member.post(
            PATH, {"network_segment_range": {"network_type": "gre", "minimum": 20, "maximum": 30}}
        ),
        403,
    )
    assert member.get(PATH).json()["network_segment_ranges"] == []
    for method, payload in (
        ("GET", None),
        ("PUT", {"network_segment_range": {"name": "x"}}),
        ("DELETE", None),
    ):
        assert_error(
            member.request(method, f"{PATH}/{body['id']}", json=payload),
            404,
            "NetworkSegmentRangeNotFound",
        )
    assert snapshot() == before


def test_defaults_follow_configuration_changes(
    make_api: Callable[..., Api], engine: Engine
) -> None:
    api = make_api(
        network_vlan_ranges="datacentre:5:6", vni_ranges="", geneve_vni_ranges="", gre_id_ranges=""
    )
    create_range(api, network_type="gre", minimum=5, maximum=9)
    ranges = api.get(PATH, params={"default": "true"}).json()["network_segment_ranges"]
    assert [(r["physical_network"], r["minimum"], r["maximum"]) for r in ranges] == [
        ("datacentre", 5, 6)
    ]
    assert len(api.get(PATH).json()["network_segment_ranges"]) == 2  # operator ranges stay


def count_defaults(engine: Engine) -> int:
    with engine.connect() as conn:
        stmt = (
            select(func.count())
            .select_from(NetworkSegmentRange)
            .where(NetworkSegmentRange.default.is_(True))
        )
        return int(conn.scalar(stmt) or 0)


def test_concurrent_startups_create_defaults_once(
    database_url: str, runtime: Runtime, engine: Engine
) -> None:
    with runtime.db.transaction(write=True) as session:
        session.execute(NetworkSegmentRange.__table__.delete())
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        with runtime.db.transaction(write=True) as session:
            sync_default_ranges(session, runtime.settings.default_ranges())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: start(), range(8)))
    assert count_defaults(engine) == 5
    # And real worker processes, each building its runtime at import.
    with running_server(database_url, workers=3):
        assert count_defaults(engine) == 5
    rt = build_runtime(make_settings(database_url))
    rt.close()
    assert count_defaults(engine) == 5


@pytest.mark.slow
def test_concurrent_allocation_across_overlapping_project_views(
    database_url: str, engine: Engine
) -> None:
    """alice: own 10-29 then shared 30-59; bob: shared minus alice's = 30-59.  They race."""
    env = {
        "SEGMENTD_NETWORK_VLAN_RANGES": "physnet1:10:59",
        "SEGMENTD_TENANT_NETWORK_TYPES": "vlan",
    }
    with ExitStack() as stack:
        bases = [stack.enter_context(running_server(database_url, env=env)) for _ in range(2)]
        clients = [stack.enter_context(Api.for_url(b)) for b in bases]
        admin = clients[0]
        create_range(
            admin,
            network_type="vlan",
            physical_network="physnet1",
            minimum=10,
            maximum=29,
            shared=False,
            project_id="alice",
        )
        callers = [c.as_(p, "member") for c in clients for p in ("alice", "bob")]
        jobs = list(zip(itertools.cycle(callers), range(80), strict=False))

        def create(job: tuple[Api, int]) -> tuple[str, int, int | None]:
            caller, i = job
            resp = caller.post("/v2.0/networks", {"network": {"name": f"n{i}"}})
            seg = None
            if resp.status_code == 201:
                net_id = resp.json()["network"]["id"]
                seg = admin.get(f"/v2.0/networks/{net_id}").json()["network"][
                    "provider:segmentation_id"
                ]
            return caller.project, resp.status_code, seg

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(create, jobs))
    statuses = Counter(code for _, code, _ in results)
    assert set(statuses) <= {201, 503}, statuses
    ids = [seg for _, code, seg in results if code == 201]
    assert len(ids) == len(set(ids)) == 50
    assert set(ids) == set(range(10, 60))
    assert all(seg >= 30 for project, _, seg in results if project == "bob" and seg is not None)


def test_every_vlan_range_lists_available_as_integers(api: Api) -> None:
    # openstackclient int()s each entry of `available`: runs such as
    # "1000-2999" made `network segment range show/create` exit 1.
    body = create_range(
        api, network_type="vlan", physical_network="physnet1", minimum=1, maximum=4094
    )
    available = api.get(f"{PATH}/{body['id']}").json()["network_segment_range"]["available"]
    assert all(isinstance(i, int) for i in available)
    assert len(available) == 4094 - len(body["used"])


def test_alternating_used_ids_are_listed_in_order_and_bounded(
    make_api: Callable[..., Api], engine: Engine
) -> None:
    # The shape that made listing quadratic: every other ID used.
    api = make_api(segment_range_detail_max=50)
    net = api.create_network(name="n", project_id="alice", **{"provider:network_type": "local"})
    body = create_range(api, network_type="gre", minimum=1, maximum=1000)
    with engine.begin() as conn:
        conn.execute(
            insert(Segment),
            [
                {
                    "id": str(uuid.uuid4()),
                    "network_id": net["id"],
                    "network_type": "gre",
                    "segmentation_id": 2 * i + 1,
                    "segment_index": i + 1,
                }
                for i in range(300)
            ],
        )
    listed = api.get(PATH, params={"network_type": "gre"}).json()["network_segment_ranges"]
    for shown in listed:
        assert list(shown["used"]) == [str(2 * i + 1) for i in range(50)]
        assert set(shown["used"].values()) == {"alice"}
        assert shown["used_count"] == 300
        assert shown["available"] == [2 * i for i in range(1, 51)]
        assert shown["available_ranges"] == [[2 * i, 2 * i] for i in range(1, 51)]
    mine = next(r for r in listed if r["id"] == body["id"])
    assert mine["available_count"] == 1000 - 300
