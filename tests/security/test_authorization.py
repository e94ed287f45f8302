"""Authorization matrix: every /v2.0 action x persona, with token authentication.

Each cell asserts the status code, and for every refused mutation that the
database is unchanged.  ``docs/authorization-matrix.md`` is generated from
the same table (``SEGMENTD_WRITE_DOCS=1 pytest tests/security``) and a test
fails when it is out of date.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from segmentd.api.runtime import Runtime
from tests.identity_support import Identity, TokenApi, client_for

PERSONAS = (
    "anonymous",
    "expired",
    "reader-A",
    "member-A",
    "member-B",
    "admin",
    "service-A",
    "agent-A",
)
MISSING = str(uuid.uuid4())


@dataclass
class World:
    tokens: dict[str, str | None]
    net_a: dict[str, Any]
    shared: dict[str, Any]
    segment: dict[str, Any]
    subnet: dict[str, Any]
    segment_range: dict[str, Any]
    agent: dict[str, Any]


@pytest.fixture
def world(token_runtime: Runtime, token_app: Any) -> Iterator[tuple[TokenApi, World]]:
    ident = Identity(token_runtime)
    admin_project, a, b = ident.project("admin"), ident.project("A"), ident.project("B")
    admin = ident.user("admin", None, admin_project, "admin")
    users = {
        "reader-A": (ident.user("ra", None, a, "reader"), a),
        "member-A": (ident.user("ma", None, a, "member"), a),
        "member-B": (ident.user("mb", None, b, "member"), b),
        "service-A": (ident.user("sa", None, a, "service"), a),
    }
    tokens: dict[str, str | None] = {name: ident.token(u, p) for name, (u, p) in users.items()}
    tokens["admin"] = ident.token(admin, admin_project)
    tokens["anonymous"] = None
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    tokens["expired"] = ident.token(users["member-A"][0], a, now=long_ago)
    tokens["agent-A"] = ident.token(users["service-A"][0], a, kind="agent")
    with client_for(token_app) as client:
        web = TokenApi(client, None)
        as_admin, as_member = web.with_token(tokens["admin"]), web.with_token(tokens["member-A"])
        net_a = as_member.create_network(name="net-a")
        shared = as_admin.create_network(name="shared", shared=True)
        segment = as_admin.create_segment(
            net_a["id"], network_type="vlan", physical_network="physnet1", segmentation_id=10
        )
        subnet = _created(
            as_member.post(
                "/v2.0/subnets",
                {"subnet": {"network_id": net_a["id"], "cidr": "10.1.0.0/24", "ip_version": 4}},
            ),
            "subnet",
        )
        segment_range = _created(
            as_admin.post(
                "/v2.0/network_segment_ranges",
                {"network_segment_range": {"network_type": "gre", "minimum": 5, "maximum": 9}},
            ),
            "network_segment_range",
        )
        _created(as_admin.post("/v2.0/agents/report", AGENT_REPORT), "agent")
        agent = as_admin.get("/v2.0/agents").json()["agents"][0]
        yield web, World(tokens, net_a, shared, segment, subnet, segment_range, agent)


AGENT_REPORT = {
    "agent": {
        "host": "compute-1",
        "agent_type": "Open vSwitch agent",
        "binary": "neutron-openvswitch-agent",
        "configurations": {"bridge_mappings": {"physnet1": "br-eth1"}},
    }
}


def _created(resp: Any, key: str) -> dict[str, Any]:
    assert resp.status_code in (200, 201), resp.text
    body: dict[str, Any] = resp.json().get(key, {})
    return body


Body = dict[str, Any] | Callable[[World], dict[str, Any]] | None
Request = tuple[str, Callable[[World], str], Body]

ACTIONS: dict[str, Request] = {
    "list networks": ("GET", lambda w: "/v2.0/networks", None),
    "show own network": ("GET", lambda w: f"/v2.0/networks/{w.net_a['id']}", None),
    "show shared network": ("GET", lambda w: f"/v2.0/networks/{w.shared['id']}", None),
    "create network": ("POST", lambda w: "/v2.0/networks", {"network": {"name": "n"}}),
    "create network with provider attrs": (
        "POST",
        lambda w: "/v2.0/networks",
        {"network": {"provider:network_type": "vxlan", "provider:segmentation_id": 77}},
    ),
    "create network with segments": (
        "POST",
        lambda w: "/v2.0/networks",
        {"network": {"segments": [{"provider:network_type": "local"}]}},
    ),
    "create shared network": ("POST", lambda w: "/v2.0/networks", {"network": {"shared": True}}),
    "create network in other project": (
        "POST",
        lambda w: "/v2.0/networks",
        {"network": {"project_id": "someone-else"}},
    ),
    "update network name": (
        "PUT",
        lambda w: f"/v2.0/networks/{w.net_a['id']}",
        {"network": {"name": "x"}},
    ),
    "update network shared": (
        "PUT",
        lambda w: f"/v2.0/networks/{w.net_a['id']}",
        {"network": {"shared": True}},
    ),
    "update shared network": (
        "PUT",
        lambda w: f"/v2.0/networks/{w.shared['id']}",
        {"network": {"name": "x"}},
    ),
    "create external network": (
        "POST",
        lambda w: "/v2.0/networks",
        {"network": {"router:external": True}},
    ),
    "update network router:external": (
        "PUT",
        lambda w: f"/v2.0/networks/{w.net_a['id']}",
        {"network": {"router:external": True}},
    ),
    "list network tags": ("GET", lambda w: f"/v2.0/networks/{w.net_a['id']}/tags", None),
    "replace network tags": (
        "PUT",
        lambda w: f"/v2.0/networks/{w.net_a['id']}/tags",
        {"tags": ["x"]},
    ),
    "add a tag to a shared network": (
        "PUT",
        lambda w: f"/v2.0/networks/{w.shared['id']}/tags/x",
        None,
    ),
    "delete network": ("DELETE", lambda w: f"/v2.0/networks/{w.net_a['id']}", None),
    "delete shared network": ("DELETE", lambda w: f"/v2.0/networks/{w.shared['id']}", None),
    "list segments": ("GET", lambda w: "/v2.0/segments", None),
    "show segment": ("GET", lambda w: f"/v2.0/segments/{w.segment['id']}", None),
    "create segment": (
        "POST",
        lambda w: "/v2.0/segments",
        lambda w: {"segment": {"network_id": w.net_a["id"], "network_type": "vxlan"}},
    ),
    "create segment on missing network": (
        "POST",
        lambda w: "/v2.0/segments",
        {"segment": {"network_id": MISSING, "network_type": "vxlan"}},
    ),
    "update segment": (
        "PUT",
        lambda w: f"/v2.0/segments/{w.segment['id']}",
        {"segment": {"name": "x"}},
    ),
    "delete segment": ("DELETE", lambda w: f"/v2.0/segments/{w.segment['id']}", None),
    "list subnets": ("GET", lambda w: "/v2.0/subnets", None),
    "show subnet": ("GET", lambda w: f"/v2.0/subnets/{w.subnet['id']}", None),
    "create subnet": (
        "POST",
        lambda w: "/v2.0/subnets",
        lambda w: {"subnet": {"network_id": w.net_a["id"], "cidr": "10.2.0.0/24", "ip_version": 4}},
    ),
    "create subnet on shared network": (
        "POST",
        lambda w: "/v2.0/subnets",
        lambda w: {
            "subnet": {"network_id": w.shared["id"], "cidr": "10.3.0.0/24", "ip_version": 4}
        },
    ),
    "create subnet with segment_id": (
        "POST",
        lambda w: "/v2.0/subnets",
        lambda w: {
            "subnet": {
                "network_id": w.net_a["id"],
                "segment_id": w.segment["id"],
                "cidr": "10.4.0.0/24",
                "ip_version": 4,
            }
        },
    ),
    "update subnet": (
        "PUT",
        lambda w: f"/v2.0/subnets/{w.subnet['id']}",
        {"subnet": {"name": "x"}},
    ),
    "delete subnet": ("DELETE", lambda w: f"/v2.0/subnets/{w.subnet['id']}", None),
    "list segment ranges": ("GET", lambda w: "/v2.0/network_segment_ranges", None),
    "show segment range": (
        "GET",
        lambda w: f"/v2.0/network_segment_ranges/{w.segment_range['id']}",
        None,
    ),
    "create segment range": (
        "POST",
        lambda w: "/v2.0/network_segment_ranges",
        {"network_segment_range": {"network_type": "gre", "minimum": 20, "maximum": 29}},
    ),
    "update segment range": (
        "PUT",
        lambda w: f"/v2.0/network_segment_ranges/{w.segment_range['id']}",
        {"network_segment_range": {"name": "x"}},
    ),
    "delete segment range": (
        "DELETE",
        lambda w: f"/v2.0/network_segment_ranges/{w.segment_range['id']}",
        None,
    ),
    "report agent state": (
        "POST",
        lambda w: "/v2.0/agents/report",
        {"agent": {**AGENT_REPORT["agent"], "host": "compute-2"}},
    ),
    "list agents": ("GET", lambda w: "/v2.0/agents", None),
    "show agent": ("GET", lambda w: f"/v2.0/agents/{w.agent['id']}", None),
    "update agent": (
        "PUT",
        lambda w: f"/v2.0/agents/{w.agent['id']}",
        {"agent": {"description": "x"}},
    ),
    "delete agent": ("DELETE", lambda w: f"/v2.0/agents/{w.agent['id']}", None),
    "list segment host mappings": ("GET", lambda w: "/v2.0/segment-host-mappings", None),
    "list hosts of a segment": ("GET", lambda w: f"/v2.0/segments/{w.segment['id']}/hosts", None),
    "list subnets of a host": ("GET", lambda w: "/v2.0/hosts/compute-1/subnets", None),
    "read change events": ("GET", lambda w: "/v2.0/events", None),
}

UNAUTH = {"anonymous": 401, "expired": 401}


def row(
    reader: int, member_a: int, member_b: int, admin: int, service: int, agent: int
) -> dict[str, int]:
    return {
        **UNAUTH,
        "reader-A": reader,
        "member-A": member_a,
        "member-B": member_b,
        "admin": admin,
        "service-A": service,
        "agent-A": agent,
    }


EXPECTED: dict[str, dict[str, int]] = {
    "list networks": row(200, 200, 200, 200, 200, 403),
    "show own network": row(200, 200, 404, 200, 404, 403),
    "show shared network": row(200, 200, 200, 200, 200, 403),
    "create network": row(403, 201, 201, 201, 403, 403),
    "create network with provider attrs": row(403, 403, 403, 201, 403, 403),
    "create network with segments": row(403, 403, 403, 201, 403, 403),
    "create shared network": row(403, 403, 403, 201, 403, 403),
    "create network in other project": row(403, 403, 403, 201, 403, 403),
    "update network name": row(403, 200, 404, 200, 404, 403),
    "update network shared": row(403, 403, 404, 200, 404, 403),
    "update shared network": row(403, 403, 403, 200, 403, 403),
    "create external network": row(403, 403, 403, 201, 403, 403),
    "update network router:external": row(403, 403, 404, 200, 404, 403),
    "list network tags": row(200, 200, 404, 200, 404, 403),
    "replace network tags": row(403, 200, 404, 200, 404, 403),
    "add a tag to a shared network": row(403, 403, 403, 201, 403, 403),
    "delete network": row(403, 204, 404, 204, 404, 403),
    "delete shared network": row(403, 403, 403, 204, 403, 403),
    "list segments": row(200, 200, 200, 200, 200, 403),
    "show segment": row(404, 404, 404, 200, 404, 403),
    "create segment": row(403, 403, 403, 201, 403, 403),
    "create segment on missing network": row(403, 403, 403, 404, 403, 403),
    "update segment": row(404, 404, 404, 200, 404, 403),
    "delete segment": row(404, 404, 404, 204, 404, 403),
    "list subnets": row(200, 200, 200, 200, 200, 403),
    "show subnet": row(200, 200, 404, 200, 404, 403),
    "create subnet": row(403, 201, 404, 201, 403, 403),
    "create subnet on shared network": row(403, 403, 403, 201, 403, 403),
    "create subnet with segment_id": row(403, 403, 403, 409, 403, 403),
    "update subnet": row(403, 200, 404, 200, 404, 403),
    "delete subnet": row(403, 204, 404, 204, 404, 403),
    "list segment ranges": row(200, 200, 200, 200, 200, 403),
    "show segment range": row(404, 404, 404, 200, 404, 403),
    "create segment range": row(403, 403, 403, 201, 403, 403),
    "update segment range": row(404, 404, 404, 200, 404, 403),
    "delete segment range": row(404, 404, 404, 204, 404, 403),
    "report agent state": row(403, 403, 403, 200, 200, 200),
    "list agents": row(200, 200, 200, 200, 200, 403),
    "show agent": row(404, 404, 404, 200, 404, 403),
    "update agent": row(404, 404, 404, 200, 404, 403),
    "delete agent": row(404, 404, 404, 204, 404, 403),
    "list segment host mappings": row(200, 200, 200, 200, 200, 403),
    "list hosts of a segment": row(404, 404, 404, 200, 404, 403),
    "list subnets of a host": row(200, 200, 200, 200, 200, 403),
    "read change events": row(403, 403, 403, 200, 403, 403),
}

CELLS = [(action, persona) for action in ACTIONS for persona in PERSONAS]


@pytest.mark.parametrize(("action", "persona"), CELLS, ids=[f"{a}-{p}" for a, p in CELLS])
def test_matrix(
    world: tuple[TokenApi, World], snapshot: Callable[[], Any], action: str, persona: str
) -> None:
    web, state = world
    method, path, body = ACTIONS[action]
    before = snapshot()
    payload = body(state) if callable(body) else body
    resp = web.with_token(state.tokens[persona]).request(method, path(state), json=payload)
    expected = EXPECTED[action][persona]
    assert resp.status_code == expected, resp.text
    if expected >= 400:
        assert snapshot() == before
        assert set(resp.json()["NeutronError"]) == {"type", "message", "detail"}
    if expected == 401:
        assert "WWW-Authenticate" in resp.headers


def test_every_cell_is_specified() -> None:
    assert set(EXPECTED) == set(ACTIONS)
    assert all(set(cells) == set(PERSONAS) for cells in EXPECTED.values())


def test_lists_are_scoped(world: tuple[TokenApi, World]) -> None:
    web, state = world

    def names(persona: str, path: str, key: str) -> set[str]:
        body = web.with_token(state.tokens[persona]).get(path).json()
        return {item.get("name") or item["id"] for item in body[key]}

    assert names("admin", "/v2.0/networks", "networks") == {"net-a", "shared"}
    assert names("member-A", "/v2.0/networks", "networks") == {"net-a", "shared"}
    assert names("reader-A", "/v2.0/networks", "networks") == {"net-a", "shared"}
    assert names("member-B", "/v2.0/networks", "networks") == {"shared"}
    assert names("service-A", "/v2.0/networks", "networks") == {"shared"}
    # An agent token posts reports and nothing else: refused, not an empty list.
    agent = web.with_token(state.tokens["agent-A"])
    assert agent.get("/v2.0/networks").status_code == 403
    # Each network also got a tenant segment when it was created.
    assert state.segment["id"] in names("admin", "/v2.0/segments", "segments")
    for persona in ("reader-A", "member-A", "member-B", "service-A"):
        assert names(persona, "/v2.0/segments", "segments") == set()
        assert names(persona, "/v2.0/network_segment_ranges", "network_segment_ranges") == set()
        assert names(persona, "/v2.0/agents", "agents") == set()
    assert state.agent["id"] in names("admin", "/v2.0/agents", "agents")
    assert names("member-A", "/v2.0/subnets", "subnets") == {state.subnet["id"]}
    assert names("reader-A", "/v2.0/subnets", "subnets") == {state.subnet["id"]}
    assert names("member-B", "/v2.0/subnets", "subnets") == set()


def test_provider_attributes_only_for_admin(world: tuple[TokenApi, World]) -> None:
    web, state = world
    path = f"/v2.0/networks/{state.net_a['id']}"
    admin_view = web.with_token(state.tokens["admin"]).get(path).json()["network"]
    assert "segments" in admin_view or "provider:network_type" in admin_view
    for persona in ("member-A", "reader-A"):
        view = web.with_token(state.tokens[persona]).get(path).json()["network"]
        assert not {k for k in view if k.startswith("provider:")}
        assert "segments" not in view
        filtered = web.with_token(state.tokens[persona]).get(
            "/v2.0/networks", params={"provider:network_type": "vxlan"}
        )
        assert filtered.status_code == 400


def test_hidden_and_missing_answer_alike(world: tuple[TokenApi, World]) -> None:
    web, state = world
    bob = web.with_token(state.tokens["member-B"])
    for method, body in (("GET", None), ("PUT", {"network": {"name": "x"}}), ("DELETE", None)):
        hidden = bob.request(method, f"/v2.0/networks/{state.net_a['id']}", json=body)
        absent = bob.request(method, f"/v2.0/networks/{MISSING}", json=body)
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json()["NeutronError"]["message"].replace(
            state.net_a["id"], ""
        ) == absent.json()["NeutronError"]["message"].replace(MISSING, "")


DOC = Path(__file__).resolve().parents[2] / "docs" / "authorization-matrix.md"


def render_matrix() -> str:
    lines = [
        "# Authorization matrix (default policy)",
        "",
        "Generated from `tests/security/test_authorization.py` (`SEGMENTD_WRITE_DOCS=1 pytest tests/security`);",
        "the test suite fails when this file and the tested table disagree.",
        "",
        "Personas: `anonymous` (no token), `expired` (expired token), `reader-A`/`member-A` (role on project A),",
        "`member-B` (member of project B), `admin`, `service-A` (service role on A, user token), `agent-A` (agent",
        "token of that service user: may only post agent reports, everything else is refused). The network is project A's (created by",
        "member-A, as is its subnet); the shared network, the segment, the segment range and the agent belong to the admin. 404 is answered exactly as for a",
        "resource that does not exist. Every refused mutation leaves the database unchanged.",
        "",
        "| action | " + " | ".join(PERSONAS) + " |",
        "|---|" + "---|" * len(PERSONAS),
    ]
    for action, (method, _, _) in ACTIONS.items():
        cells = " | ".join(str(EXPECTED[action][p]) for p in PERSONAS)
        lines.append(f"| {action} ({method}) | {cells} |")
    return "\n".join(lines) + "\n"


def test_matrix_document_is_current() -> None:
    text = render_matrix()
    if os.environ.get("SEGMENTD_WRITE_DOCS"):
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text)
    assert DOC.exists() and DOC.read_text() == text, "regenerate with SEGMENTD_WRITE_DOCS=1"
