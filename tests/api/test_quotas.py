"""Per-project quotas (issue 15, item 7): Neutron's quota resource, 409 OverQuota.

One member could take every free VLAN in two seconds; now each project is
held to its quotas, which admins set per project, race-free under
concurrent creates from several server processes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from segmentd.db.models import Network, Quota, Segment
from tests.client import Api
from tests.server import running_server
from tests.support import assert_error

LOCAL = {"provider:network_type": "local"}


def test_defaults_and_show(make_api: Callable[..., Api]) -> None:
    api = make_api(quota_network=3, quota_subnet=5, quota_segment=4)
    member = api.as_("p1", "member")
    shown = member.get("/v2.0/quotas/p1").json()["quota"]
    assert shown == {"network": 3, "subnet": 5, "segment": 4, "project_id": "p1", "tenant_id": "p1"}
    assert member.get("/v2.0/quotas/p1/default").json()["quota"]["network"] == 3
    # Another project's quotas: refused (every project has quotas: nothing to hide).
    assert_error(member.get("/v2.0/quotas/p2"), 403, "PolicyNotAuthorized")


def test_a_member_is_held_to_its_network_quota(
    make_api: Callable[..., Api], snapshot: Callable[[], Any]
) -> None:
    api = make_api(quota_network=2)
    member, other = api.as_("p1", "member"), api.as_("p2", "member")
    member.create_network(name="a")
    member.create_network(name="b")
    before = snapshot()
    refused = member.post("/v2.0/networks", {"network": {"name": "c"}})
    error = assert_error(refused, 409, "OverQuota")
    assert error["message"] == "Quota exceeded for resources: ['network']."
    assert snapshot() == before  # no network, no segment, no ID taken
    other.create_network(name="c")  # another project still can


def test_admin_sets_and_resets_a_project_quota(
    make_api: Callable[..., Api], engine: Engine
) -> None:
    api = make_api(quota_network=1)
    member = api.as_("p1", "member")
    assert member.put("/v2.0/quotas/p1", {"quota": {"network": 5}}).status_code == 403
    resp = api.put("/v2.0/quotas/p1", {"quota": {"network": 3, "segment": -1}})
    assert resp.status_code == 200, resp.text
    assert resp.json()["quota"] == {
        "network": 3,
        "subnet": 100,
        "segment": -1,
        "project_id": "p1",
        "tenant_id": "p1",
    }
    with engine.connect() as conn:
        stored = sorted(tuple(r) for r in conn.execute(select(Quota.resource, Quota.limit)))
    assert stored == [("network", 3), ("segment", -1)]
    for name in ("a", "b", "c"):
        member.create_network(name=name)
    assert_error(member.post("/v2.0/networks", {"network": {}}), 409, "OverQuota")
    listed = api.get("/v2.0/quotas").json()["quotas"]
    assert [q["project_id"] for q in listed] == ["p1"]
    assert api.delete("/v2.0/quotas/p1").status_code == 204
    assert member.get("/v2.0/quotas/p1").json()["quota"]["network"] == 1
    details = member.get("/v2.0/quotas/p1/details").json()["quota"]
    assert details["network"] == {"limit": 1, "used": 3, "reserved": 0}
    assert details["segment"] == {"limit": 100, "used": 3, "reserved": 0}


@pytest.mark.parametrize(
    "body", [{"network": -2}, {"network": "5"}, {"bogus": 1}, {"network": 1.0}]
)
def test_quota_updates_are_validated(api: Api, body: dict[str, Any]) -> None:
    assert_error(api.put("/v2.0/quotas/p1", {"quota": body}), 400)


def test_segment_and_subnet_quotas(make_api: Callable[..., Api]) -> None:
    api = make_api(quota_segment=2, quota_subnet=1)
    net = api.create_network(name="n", **LOCAL)  # one segment
    api.create_segment(net["id"], network_type="vxlan")  # two
    assert_error(
        api.post("/v2.0/segments", {"segment": {"network_id": net["id"], "network_type": "vxlan"}}),
        409,
        "OverQuota",
    )
    # A network's own segments count too: a two-segment network is refused.
    multi = {"segments": [{"provider:network_type": t} for t in ("local", "vxlan")]}
    assert_error(api.post("/v2.0/networks", {"network": multi}), 409, "OverQuota")
    subnet = {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}
    assert api.post("/v2.0/subnets", {"subnet": subnet}).status_code == 201
    subnet["cidr"] = "10.0.1.0/24"
    assert_error(api.post("/v2.0/subnets", {"subnet": subnet}), 409, "OverQuota")


@pytest.fixture
def two_servers(database_url: str) -> Iterator[list[Api]]:
    env = {"SEGMENTD_QUOTA_NETWORK": "5", "SEGMENTD_NETWORK_VLAN_RANGES": "physnet1:100:199"}
    with ExitStack() as stack:
        bases = [stack.enter_context(running_server(database_url, env=env)) for _ in range(2)]
        clients = [Api.for_url(b).as_("racer", "member") for b in bases]
        yield clients
        for client in clients:
            client.close()


@pytest.mark.slow
def test_concurrent_creates_cannot_exceed_the_quota(
    two_servers: list[Api], api: Api, engine: Engine
) -> None:
    def create(i: int) -> int:
        client = two_servers[i % 2]
        return client.post("/v2.0/networks", {"network": {"name": f"n{i}"}}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = Counter(pool.map(create, range(24)))
    assert codes == {201: 5, 409: 19}
    with engine.connect() as conn:
        networks = conn.scalar(
            select(func.count()).select_from(Network).where(Network.project_id == "racer")
        )
        segments = conn.scalar(select(func.count()).select_from(Segment))
    assert networks == segments == 5
