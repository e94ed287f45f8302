"""Compare-and-swap updates and revision numbers under concurrent writers.

Two ``segmentd serve`` processes share the database; 16 clients update one
resource at once.  With ``If-Match: revision_number=N`` exactly one may
succeed (the rest 412); without it, every success increments the revision
once, so 16 successes move it by 16 (issue 15, item 2: the row was read
unlocked, compared in Python and an absolute value written back).  It runs
in both passes; PostgreSQL is where concurrent transactions can interleave.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import pytest

from tests.client import Api
from tests.server import running_server

pytestmark = pytest.mark.slow

CLIENTS = 16


@pytest.fixture(scope="module")
def servers(database_url: str) -> Iterator[list[Api]]:
    env = {"SEGMENTD_NETWORK_VLAN_RANGES": "physnet1:100:199"}
    with ExitStack() as stack:
        bases = [stack.enter_context(running_server(database_url, env=env)) for _ in range(2)]
        clients = [Api.for_url(b) for b in bases]
        yield clients
        for client in clients:
            client.close()


def _resources(api: Api) -> dict[str, tuple[str, str]]:
    """(collection path, body key) of one fresh resource of each kind."""
    net = api.create_network(name="n", **{"provider:network_type": "vlan"})
    seg = api.create_segment(net["id"], network_type="vlan", physical_network="physnet1")
    sub = api.post(
        "/v2.0/subnets",
        {"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4}},
    ).json()["subnet"]
    rng = api.post(
        "/v2.0/network_segment_ranges",
        {"network_segment_range": {"network_type": "vxlan", "minimum": 5, "maximum": 9}},
    ).json()["network_segment_range"]
    return {
        "network": (f"/v2.0/networks/{net['id']}", "network"),
        "segment": (f"/v2.0/segments/{seg['id']}", "segment"),
        "subnet": (f"/v2.0/subnets/{sub['id']}", "subnet"),
        "range": (f"/v2.0/network_segment_ranges/{rng['id']}", "network_segment_range"),
    }


def _race(clients: list[Api], put: Callable[[Api, int], int]) -> Counter[int]:
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        return Counter(pool.map(lambda i: put(clients[i % len(clients)], i), range(CLIENTS)))


@pytest.mark.parametrize("kind", ["network", "segment", "subnet", "range"])
def test_if_match_lets_exactly_one_concurrent_update_win(
    servers: list[Api], api: Api, kind: str
) -> None:
    path, key = _resources(servers[0])[kind]
    revision = servers[0].get(path).json()[key]["revision_number"]

    def put(client: Api, i: int) -> int:
        headers = {"If-Match": f"revision_number={revision}"}
        return client.put(path, {key: {"name": f"w{i}"}}, headers=headers).status_code

    assert _race(servers, put) == {200: 1, 412: CLIENTS - 1}
    assert servers[1].get(path).json()[key]["revision_number"] == revision + 1


@pytest.mark.parametrize("kind", ["network", "segment", "subnet", "range"])
def test_every_concurrent_update_increments_the_revision_once(
    servers: list[Api], api: Api, kind: str
) -> None:
    path, key = _resources(servers[0])[kind]
    revision = servers[0].get(path).json()[key]["revision_number"]

    def put(client: Api, i: int) -> int:
        return client.put(path, {key: {"description": f"d{i}"}}).status_code

    assert _race(servers, put) == {200: CLIENTS}
    body: dict[str, Any] = servers[1].get(path).json()[key]
    assert body["revision_number"] == revision + CLIENTS
