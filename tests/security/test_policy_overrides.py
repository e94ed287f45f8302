"""A policy override moves the check and the row filter together.

For each read permission an operator may grant a reader through a policy
file, the list, show and sub-resource endpoints must agree: a reader who may
read agents sees them listed and shown; a reader who may read the host
mapping sees the same host in every mapping view.  (Before the request
pipeline, services checked one permission and filtered rows with another:
granting ``get_agent`` to readers gave them ``{"agents": []}`` and 404s.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.agent_helpers import ovs, report
from tests.client import Api

READER = ("p-read", "reader")


def _with_policy(make_api: Callable[..., Api], tmp_path: Path, rules: str) -> Api:
    path = tmp_path / "policy.yaml"
    path.write_text(rules)
    return make_api(policy_file=str(path))


@pytest.fixture
def world(api: Api) -> dict[str, Any]:
    """One VLAN segment on physnet1 and one agent on host h1 reporting physnet1."""
    net = api.create_network(
        name="n",
        **{"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
    )
    seg = api.get(f"/v2.0/segments?network_id={net['id']}").json()["segments"][0]
    agent = report(api, ovs("h1", "physnet1"))
    return {"network": net, "segment": seg, "agent": agent}


def _ids(body: dict[str, Any], key: str) -> list[str]:
    return [item["id"] for item in body[key]]


@pytest.mark.parametrize("granted", [False, True], ids=["default", "granted"])
def test_reader_granted_get_agent(
    make_api: Callable[..., Api], tmp_path: Path, world: dict[str, Any], granted: bool
) -> None:
    rules = '"get_agent": "rule:context_is_admin or role:reader"\n' if granted else ""
    reader = _with_policy(make_api, tmp_path, rules).as_(*READER)
    agent_id = world["agent"]["id"]
    listed = _ids(reader.get("/v2.0/agents").json(), "agents")
    shown = reader.get(f"/v2.0/agents/{agent_id}")
    assert listed == ([agent_id] if granted else [])
    assert shown.status_code == (200 if granted else 404)
    # Reading is all it grants: changing stays admin-only (visible now: 403).
    put = reader.put(f"/v2.0/agents/{agent_id}", {"agent": {"description": "x"}})
    assert put.status_code == (403 if granted else 404)


@pytest.mark.parametrize("granted", [False, True], ids=["default", "granted"])
def test_reader_granted_get_segment_host_mapping(
    make_api: Callable[..., Api], tmp_path: Path, world: dict[str, Any], granted: bool
) -> None:
    rules = '"get_segment_host_mapping": "rule:context_is_admin or role:reader"\n'
    reader = _with_policy(make_api, tmp_path, rules if granted else "").as_(*READER)
    seg_id = world["segment"]["id"]
    mapped = reader.get("/v2.0/segment-host-mappings").json()["segment_host_mappings"]
    of_host = _ids(reader.get("/v2.0/hosts/h1/segments").json(), "segments")
    of_segment = reader.get(f"/v2.0/segments/{seg_id}/hosts")
    assert mapped == ([{"host": "h1"}] if granted else [])
    assert of_host == ([seg_id] if granted else [])
    assert of_segment.status_code == (200 if granted else 404)
    if granted:
        assert of_segment.json()["hosts"] == [{"host": "h1"}]
    # The segment resource itself stays admin-only: a separate permission.
    assert reader.get(f"/v2.0/segments/{seg_id}").status_code == 404


@pytest.mark.parametrize("granted", [False, True], ids=["default", "granted"])
def test_reader_granted_get_segment(
    make_api: Callable[..., Api], tmp_path: Path, world: dict[str, Any], granted: bool
) -> None:
    rules = '"get_segment": "rule:context_is_admin or role:reader"\n' if granted else ""
    reader = _with_policy(make_api, tmp_path, rules).as_(*READER)
    seg_id = world["segment"]["id"]
    listed = _ids(reader.get("/v2.0/segments").json(), "segments")
    filtered = _ids(reader.get(f"/v2.0/segments?id={seg_id}").json(), "segments")
    shown = reader.get(f"/v2.0/segments/{seg_id}")
    subnets = reader.get(f"/v2.0/segments/{seg_id}/subnets")
    assert listed == filtered == ([seg_id] if granted else [])
    assert shown.status_code == subnets.status_code == (200 if granted else 404)
    put = reader.put(f"/v2.0/segments/{seg_id}", {"segment": {"name": "x"}})
    assert put.status_code == (403 if granted else 404)


@pytest.mark.parametrize("granted", [False, True], ids=["default", "granted"])
def test_reader_granted_get_network_segment_range(
    make_api: Callable[..., Api], tmp_path: Path, world: dict[str, Any], granted: bool
) -> None:
    rules = '"get_network_segment_range": "rule:context_is_admin or role:reader"\n'
    api = _with_policy(make_api, tmp_path, rules if granted else "")
    ranges = _ids(api.get("/v2.0/network_segment_ranges").json(), "network_segment_ranges")
    assert ranges, "the admin sees the default ranges"
    reader = api.as_(*READER)
    listed = _ids(reader.get("/v2.0/network_segment_ranges").json(), "network_segment_ranges")
    shown = reader.get(f"/v2.0/network_segment_ranges/{ranges[0]}")
    assert listed == (ranges if granted else [])
    assert shown.status_code == (200 if granted else 404)
