"""Allocation under real concurrency: several server processes, one database.

Four ``segmentd serve`` processes share the test database; 240 segment
creations race through them.  The unique index on (type, physnet, ID) is the
only arbiter, so this proves the claim is atomic across processes: no
duplicate IDs, no 5xx, exhaustion answered with 503, and every 201 stored.
"""

from __future__ import annotations

import itertools
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, func, select

from segmentd.db.models import Segment
from tests.client import Api
from tests.server import running_server

pytestmark = pytest.mark.slow

SERVERS = 4
VLAN_POOL = 150  # fewer free IDs than allocation requests: exhaustion must show as 503
ALLOCATIONS = 200
SAME_VNI = 40  # requests all asking for one explicit VNI: exactly one may win


def test_concurrent_creations_across_processes(database_url: str, engine: Engine) -> None:
    env = {
        "SEGMENTD_NETWORK_VLAN_RANGES": f"physnet1:1:{VLAN_POOL}",
        "SEGMENTD_ENVIRONMENT": "test",
        "SEGMENTD_QUOTA_SEGMENT": "-1",  # 248 segments in one project
    }
    with ExitStack() as stack:
        bases = [stack.enter_context(running_server(database_url, env=env)) for _ in range(SERVERS)]
        clients = [Api.for_url(b) for b in bases]
        networks = [
            clients[0].create_network(name=f"n{i}", **{"provider:network_type": "local"})
            for i in range(8)
        ]
        jobs: list[dict[str, Any]] = [
            {"network_type": "vlan", "physical_network": "physnet1"} for _ in range(ALLOCATIONS)
        ] + [{"network_type": "vxlan", "segmentation_id": 777} for _ in range(SAME_VNI)]
        targets = zip(itertools.cycle(clients), itertools.cycle(networks), jobs, strict=False)

        def create(job: tuple[Api, dict[str, Any], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
            client, net, attrs = job
            resp = client.post("/v2.0/segments", {"segment": {"network_id": net["id"], **attrs}})
            return resp.status_code, resp.json()

        with ThreadPoolExecutor(max_workers=48) as pool:
            results = list(pool.map(create, targets))
        for client in clients:
            client.close()

    statuses = Counter(code for code, _ in results)
    assert all(code < 500 or code == 503 for code in statuses), statuses
    vlan = [body["segment"] for code, body in results[:ALLOCATIONS] if code == 201]
    vni = [code for code, _ in results[ALLOCATIONS:]]
    ids = [s["segmentation_id"] for s in vlan]
    assert len(ids) == len(set(ids)) == VLAN_POOL, statuses
    assert set(ids) == set(range(1, VLAN_POOL + 1))
    assert Counter(code for code, _ in results[:ALLOCATIONS]) == {
        201: VLAN_POOL,
        503: ALLOCATIONS - VLAN_POOL,
    }
    assert Counter(vni) == {201: 1, 409: SAME_VNI - 1}
    with engine.connect() as conn:
        stored = conn.execute(
            select(
                Segment.network_type,
                func.count(),
                func.count(func.distinct(Segment.segmentation_id)),
            )
            .group_by(Segment.network_type)
            .order_by(Segment.network_type)
        ).all()
    assert [tuple(r) for r in stored] == [
        ("local", 8, 0),
        ("vlan", VLAN_POOL, VLAN_POOL),
        ("vxlan", 1, 1),
    ]


def test_real_server_smoke(database_url: str) -> None:
    """The CLI's server answers over real HTTP with the wire conventions intact."""
    with running_server(database_url) as base, httpx.Client(base_url=base) as http:
        headers = {"X-Project-Id": "p", "X-Roles": "admin"}
        assert http.get("/").json()["versions"][0]["id"] == "v2.0"
        created = http.post("/v2.0/networks", json={"network": {"name": "smoke"}}, headers=headers)
        assert created.status_code == 201
        assert created.headers["X-Openstack-Request-Id"].startswith("req-")
        net = created.json()["network"]
        listed = http.get(
            "/v2.0/segments", params={"network_id": net["id"]}, headers=headers
        ).json()
        assert listed["segments"][0]["segmentation_id"] == net["provider:segmentation_id"]
        missing = http.get("/v2.0/networks/2f0e3b54-0d43-4d0b-a0a8-6b1f0c2b7c6e", headers=headers)
        assert missing.status_code == 404
        assert missing.json()["NeutronError"]["type"] == "NetworkNotFound"
        assert http.delete(f"/v2.0/networks/{net['id']}", headers=headers).status_code == 204
