"""Members and readers of two Keystone projects see and do what Neutron's
default policy says (``docs/authorization-matrix.md``), with real tokens."""

from __future__ import annotations

from typing import Any

import pytest

from tests.keystone.cloud import KeystoneCloud

pytestmark = pytest.mark.slow

# persona -> (user, project): alice is a member of alpha and a reader of beta.
PERSONAS = {
    "reader-A": ("rita", "alpha"),
    "member-A": ("alice", "alpha"),
    "reader-B": ("alice", "beta"),
    "member-B": ("bob", "beta"),
    "admin": ("admin", "admin"),
}
ORDER = tuple(PERSONAS)


def expect(*statuses: int) -> dict[str, int]:
    return dict(zip(ORDER, statuses, strict=True))


def test_members_and_readers_of_two_projects(keystone_cloud: KeystoneCloud) -> None:
    cloud = keystone_cloud
    tokens = {name: cloud.token(user, project) for name, (user, project) in PERSONAS.items()}

    def each(method: str, path: str, body: Any = None) -> dict[str, int]:
        """Each persona's status; ``body`` may be a function of the persona's index."""
        return {
            p: cloud.request(
                method, path, tokens[p], json=body(i) if callable(body) else body
            ).status_code
            for i, p in enumerate(ORDER)
        }

    created = cloud.request("POST", "/v2.0/networks", tokens["member-A"], json=net("a-net"))
    assert created.status_code == 201, created.text
    net_a = created.json()["network"]["id"]
    seg_body = {"segment": {"network_id": net_a, "network_type": "vxlan"}}

    def subnet(index: int) -> dict[str, Any]:
        return {"subnet": {"network_id": net_a, "ip_version": 4, "cidr": f"10.2{index}.0.0/24"}}

    outcomes = {
        "create network": (
            each("POST", "/v2.0/networks", net("x")),
            expect(403, 201, 403, 201, 201),
        ),
        "show A's network": (
            each("GET", f"/v2.0/networks/{net_a}"),
            expect(200, 200, 404, 404, 200),
        ),
        "rename A's network": (
            each("PUT", f"/v2.0/networks/{net_a}", {"network": {"name": "renamed"}}),
            expect(403, 200, 404, 404, 200),
        ),
        "create subnet on A's network": (
            each("POST", "/v2.0/subnets", subnet),
            expect(403, 201, 403, 404, 201),
        ),
        "create segment": (
            each("POST", "/v2.0/segments", seg_body),
            expect(403, 403, 403, 403, 201),
        ),
    }
    for action, (got, wanted) in outcomes.items():
        assert got == wanted, action

    def sees_net_a(persona: str) -> bool:
        listed = cloud.get("/v2.0/networks", tokens[persona]).json()["networks"]
        return net_a in {n["id"] for n in listed}

    assert {p: sees_net_a(p) for p in ORDER} == dict(
        zip(ORDER, (True, True, False, False, True), strict=True)
    )
    segments = {p: len(cloud.get("/v2.0/segments", tokens[p]).json()["segments"]) for p in ORDER}
    assert {p for p, n in segments.items() if n} == {"admin"}
    deletes = {
        p: cloud.request("DELETE", f"/v2.0/networks/{net_a}", tokens[p]).status_code
        for p in ("reader-A", "reader-B", "member-B")
    }
    assert deletes == {"reader-A": 403, "reader-B": 404, "member-B": 404}
    for subnet_row in cloud.get(f"/v2.0/subnets?network_id={net_a}", tokens["admin"]).json()[
        "subnets"
    ]:
        cloud.request("DELETE", f"/v2.0/subnets/{subnet_row['id']}", tokens["admin"])
    assert cloud.request("DELETE", f"/v2.0/networks/{net_a}", tokens["member-A"]).status_code == 204
    for persona in ("member-A", "member-B", "admin"):  # the networks named "x"
        for row in cloud.get("/v2.0/networks?name=x", tokens[persona]).json()["networks"]:
            cloud.request("DELETE", f"/v2.0/networks/{row['id']}", tokens["admin"])


def net(name: str) -> dict[str, Any]:
    return {"network": {"name": name}}
