"""Policy: operator overrides from a file, deny by default, and fail-closed routes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from segmentd.authz import DEFAULT_RULES, Permission, Policy, Principal, can, target_keys_read
from segmentd.db import migrate
from tests.client import Api

MEMBERS_MANAGE_SEGMENTS = """
# Let project members manage segments of their own networks.
"create_segment": "rule:context_is_admin or (role:member and project_id:%(project_id)s)"
"get_segment": "rule:context_is_admin or role:member"
"""


def test_policy_file_lets_members_create_segments(
    make_api: Callable[..., Api], tmp_path: Path, snapshot: Callable[[], Any]
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(MEMBERS_MANAGE_SEGMENTS)
    api = make_api(policy_file=str(path))
    alice, bob = api.as_("alice", "member"), api.as_("bob", "member")
    net = alice.create_network(name="a")
    seg = alice.create_segment(net["id"], network_type="vxlan")
    assert alice.get(f"/v2.0/segments/{seg['id']}").status_code == 200
    before = snapshot()
    # Bob cannot see Alice's network: the same 404 as a missing one.
    resp = bob.post(
        "/v2.0/segments", {"segment": {"network_id": net["id"], "network_type": "vxlan"}}
    )
    assert resp.status_code == 404
    # Update and delete stay admin-only: visible, so 403.
    assert alice.delete(f"/v2.0/segments/{seg['id']}").status_code == 403
    assert snapshot() == before


def test_without_the_file_members_may_not(
    make_api: Callable[..., Api], snapshot: Callable[[], Any]
) -> None:
    api = make_api()
    alice = api.as_("alice", "member")
    net = alice.create_network(name="a")
    before = snapshot()
    resp = alice.post(
        "/v2.0/segments", {"segment": {"network_id": net["id"], "network_type": "vxlan"}}
    )
    assert resp.status_code == 403
    assert resp.json()["NeutronError"]["type"] == "PolicyNotAuthorized"
    assert snapshot() == before


def test_defaults_cover_every_permission() -> None:
    assert {r.name for r in DEFAULT_RULES} >= {str(p) for p in Permission}


def test_deny_by_default() -> None:
    policy = Policy({"create_network": "@"})
    nobody = Principal("u", "p", frozenset(), policy=policy)
    assert can(nobody, Permission.CREATE_NETWORK)
    assert not can(nobody, Permission.GET_SEGMENT)
    assert not policy.check("no_such_rule", {}, nobody)
    # No policy at all: nothing is allowed.
    assert not can(Principal("u", "p", frozenset({"admin"})), Permission.GET_NETWORK)


def test_broken_rule_refuses_instead_of_crashing() -> None:
    policy = Policy({"get_network": "project_id:%(no_such_key)s"})
    assert not can(Principal("u", "p", frozenset({"admin"}), policy=policy), Permission.GET_NETWORK)


def test_agent_credentials_are_limited_whatever_the_roles() -> None:
    agent = Principal(
        "u", "p", frozenset({"admin", "service"}), credential="agent", policy=Policy()
    )
    assert can(agent, Permission.CREATE_AGENT_REPORT)
    assert not any(can(agent, p) for p in Permission if p is not Permission.CREATE_AGENT_REPORT)


def test_unreadable_policy_file_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("- not\n- a mapping\n")
    with pytest.raises(ValueError, match="policy file"):
        Policy.from_file(path)


def test_decisions_are_cached_on_the_target_attributes_a_rule_reads() -> None:
    policy = Policy({"get_segment": "rule:context_is_admin or network_id:%(network_id)s"})
    rules = policy._enforcer.rules
    assert target_keys_read(rules, "get_segment") == {"network_id"}
    assert target_keys_read(rules, "delete_segment") == frozenset()  # admin-only: reads nothing
    assert target_keys_read(rules, "get_network") == {"project_id", "shared", "router:external"}


def test_narrowed_cache_keys_still_tell_targets_apart() -> None:
    # The rule reads network_id (compared with the caller's user id, for the
    # test): segments that differ only there must get different answers.
    policy = Policy({"get_segment": "user_id:%(network_id)s"})
    alice = Principal("net-a", "p", frozenset({"member"}), policy=policy)
    mine = {"id": "s1", "network_id": "net-a"}
    other = {"id": "s2", "network_id": "net-b"}
    assert can(alice, Permission.GET_SEGMENT, mine)
    assert not can(alice, Permission.GET_SEGMENT, other)
    assert can(alice, Permission.GET_SEGMENT, {**mine, "id": "s3"})


@pytest.mark.parametrize(
    "check",
    [
        "http://127.0.0.1:9/decide",
        "https://policy.example/%(project_id)s",
        "role:admin or not http://169.254.169.254/",
    ],
)
def test_outbound_policy_checks_are_refused_at_start(check: str) -> None:
    """oslo.policy's http:/https: checks would call another server on every
    decision (and send it the target): refused when the rules load."""
    with pytest.raises(ValueError, match="checks are not supported"):
        Policy({"get_network": check})


def test_serving_loads_no_http_client_for_policy(tmp_path: Path) -> None:
    """The rule-check plugin scan is skipped: building the app does not import
    requests (5 MB a worker; bench/RESULTS-memory.md), nor Alembic."""
    url = f"sqlite:///{tmp_path}/p.db"
    migrate.upgrade(url)
    code = (
        f"import os, sys; os.environ['SEGMENTD_DATABASE_URL'] = '{url}'\n"
        "from segmentd.authz import Policy\n"
        "from segmentd.main import create_app\n"
        "create_app()\n"
        "Policy({'get_network': 'role:admin or project_id:%(project_id)s'})\n"
        "print(sorted(m for m in ('requests', 'alembic', 'mako') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stderr
