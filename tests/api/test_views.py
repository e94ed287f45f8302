"""Each response view and its ``fields=`` names come from one definition.

A full view (no ``fields=``, seen by an admin) carries exactly the
attributes its response model declares, so the OpenAPI document, the
allow-list of ``fields=`` and the bodies cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from segmentd.api import agent_schemas, ops, schemas
from tests.agent_helpers import ovs, report
from tests.client import Api


def test_full_views_carry_exactly_their_declared_attributes(api: Api) -> None:
    single = api.create_network(name="n", **{"provider:network_type": "vxlan"})
    multi = api.create_network(
        name="m",
        segments=[{"provider:network_type": "vxlan"}, {"provider:network_type": "geneve"}],
    )
    segment = api.get(f"/v2.0/segments?network_id={single['id']}").json()["segments"][0]
    subnet = api.post(
        "/v2.0/subnets",
        {"subnet": {"network_id": single["id"], "cidr": "10.0.0.0/24", "ip_version": 4}},
    ).json()["subnet"]
    ranges = api.get("/v2.0/network_segment_ranges").json()["network_segment_ranges"]
    report(api, ovs("h1", "physnet1"))
    agent = api.get("/v2.0/agents").json()["agents"][0]
    event = api.get("/v2.0/audit-events").json()["audit_events"][0]
    usage = api.get("/v2.0/network-segment-range-usage").json()["network_segment_range_usage"][0]

    provider = set(schemas.PROVIDER_ATTRS)
    assert set(single) == schemas.NETWORK_FIELDS - {"segments"}
    assert set(multi) == schemas.NETWORK_FIELDS - provider
    assert set(segment) == schemas.SEGMENT_FIELDS
    assert set(subnet) == schemas.SUBNET_FIELDS
    assert set(ranges[0]) == schemas.RANGE_FIELDS
    assert set(agent) == agent_schemas.AGENT_FIELDS
    assert set(event) == ops.AUDIT_FIELDS
    assert set(usage) == ops.USAGE_FIELDS


def test_fields_names_are_the_declared_attributes(api: Api) -> None:
    for name in ("network_type", "segmentation_id", "tags"):
        resp: Any = api.get(f"/v2.0/segments?fields={name}")
        assert resp.status_code == 200
    assert api.get("/v2.0/segments?fields=segment_index").status_code == 400
