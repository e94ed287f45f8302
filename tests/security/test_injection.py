"""Injection resistance: hostile values through every filter, sort key and field name.

Every list endpoint gets classic SQL-injection strings and oversized, NUL,
RTL and emoji values in each of its filters (from the resource's own
``QuerySpec``, so a new filter is covered automatically), and as sort keys,
field names, filter names and markers.  Each answer must be a 4xx or a
correct (empty) result, never a 5xx or a leak, and the database must be
exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from segmentd.services import agents, networks, segment_ranges, segments, subnets
from segmentd.services.query import QuerySpec
from tests.agent_helpers import ovs, report
from tests.client import Api
from tests.support import LEAKS

PAYLOADS = [
    "' OR 1=1 --",
    "' OR '1'='1",
    '"; DROP TABLE segments; --',
    "1; DELETE FROM networks",
    "') UNION SELECT * FROM users --",
    "%00",
    "\x00",
    "a\x00b",
    "x" * 256,
    "x" * 5000,
    "\u202eevil\u202c",
    "\U0001f4a3\U0001f525",
    "../../etc/passwd",
    "${jndi:ldap://x}",
    "\\",
    "*",
    "%",
    "_",
]

LISTS: list[tuple[str, QuerySpec]] = [
    ("/v2.0/networks", networks.LIST_SPEC),
    ("/v2.0/segments", segments.LIST_SPEC),
    ("/v2.0/subnets", subnets.LIST_SPEC),
    ("/v2.0/network_segment_ranges", segment_ranges.LIST_SPEC),
    ("/v2.0/agents", agents.LIST_SPEC),
    ("/v2.0/hosts/host-1/segments", segments.LIST_SPEC),
    ("/v2.0/segments/{segment}/subnets", subnets.LIST_SPEC),
]
HOST_LISTS = [
    ("/v2.0/segments/{segment}/hosts", ("include_agent_types", "exclude_agent_types")),
    ("/v2.0/segment-host-mappings", ("include_agent_types", "exclude_agent_types", "segment_id")),
]
RESERVED = ("sort_key", "fields", "marker", "sort_dir", "page_reverse", "limit")


@pytest.fixture
def world(api: Api) -> dict[str, Any]:
    net = api.create_network(name="net")
    segment = api.create_segment(
        net["id"], network_type="vlan", physical_network="physnet1", segmentation_id=7
    )
    subnet = api.post(
        "/v2.0/subnets",
        {
            "subnet": {
                "network_id": net["id"],
                "segment_id": segment["id"],
                "cidr": "10.0.0.0/24",
                "ip_version": 4,
                "name": "sub",
            }
        },
    )
    assert subnet.status_code == 201, subnet.text
    report(api, ovs("host-1", "physnet1"))
    return {"segment": segment["id"]}


def leaks(resp: Any, payload: str) -> bool:
    """A leak pattern in the body, not counting the caller's own input echoed back."""
    text = resp.text
    for echoed in (payload, payload.replace("\\", "\\\\"), payload.replace('"', '\\"')):
        text = text.replace(echoed, "")
    return bool(LEAKS.search(text))


def _check(resp: Any, collection_hint: str, payload: str) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.text)
    assert not leaks(resp, payload), resp.text
    if resp.status_code == 200:
        body = resp.json()
        items = [v for k, v in body.items() if isinstance(v, list) and not k.endswith("_links")]
        assert items == [[]], f"{collection_hint}: hostile value matched rows: {resp.text[:300]}"
    else:
        assert 400 <= resp.status_code < 500
        assert "NeutronError" in resp.json()


def test_hostile_values_in_every_filter(
    api: Api, world: dict[str, Any], snapshot: Callable[[], Any]
) -> None:
    before = snapshot()
    sent = 0
    for template, spec in LISTS:
        path = template.format(**world)
        names = [
            *spec.filters,
            *(("tags", "tags-any", "not-tags", "not-tags-any") if spec.tags else ()),
        ]
        for name in names:
            for payload in PAYLOADS:
                resp = api.get(f"{path}?{quote(name)}={quote(payload)}")
                if name.startswith("not-tags"):
                    # Negated tag filters match the (untagged) rows: a correct, non-empty answer.
                    assert resp.status_code in (200, 400), resp.text
                    assert not leaks(resp, payload)
                else:
                    _check(resp, f"{path} {name}", payload)
                sent += 1
    assert sent > 500
    assert snapshot() == before


@pytest.mark.parametrize("param", RESERVED)
def test_hostile_sort_keys_fields_and_markers(
    api: Api, world: dict[str, Any], snapshot: Callable[[], Any], param: str
) -> None:
    before = snapshot()
    for template, _ in LISTS:
        path = template.format(**world)
        for payload in PAYLOADS:
            resp = api.get(f"{path}?{param}={quote(payload)}")
            assert resp.status_code == 400, (path, param, payload, resp.text)
            assert not leaks(resp, payload), resp.text
    assert snapshot() == before


def test_hostile_filter_names_and_host_queries(
    api: Api, world: dict[str, Any], snapshot: Callable[[], Any]
) -> None:
    before = snapshot()
    for template, _ in LISTS:
        path = template.format(**world)
        for payload in PAYLOADS:
            resp = api.get(f"{path}?{quote(payload)}=1")
            assert resp.status_code == 400, (path, payload, resp.text)
    for template, filters in HOST_LISTS:
        path = template.format(**world)
        for name in (*filters, "marker", "limit", "page_reverse"):
            for payload in PAYLOADS:
                resp = api.get(f"{path}?{name}={quote(payload)}")
                assert resp.status_code == 400, (path, name, payload, resp.text)
                assert not leaks(resp, payload)
    assert snapshot() == before


def test_hostile_path_segments(
    api: Api, world: dict[str, Any], snapshot: Callable[[], Any]
) -> None:
    before = snapshot()
    paths = [
        "/v2.0/networks/{}",
        "/v2.0/segments/{}",
        "/v2.0/subnets/{}",
        "/v2.0/agents/{}",
        "/v2.0/network_segment_ranges/{}",
        "/v2.0/segments/{}/hosts",
        "/v2.0/hosts/{}/segments",
        "/v2.0/segments/{}/subnets",
    ]
    for template in paths:
        for payload in PAYLOADS:
            resp = api.get(template.format(quote(payload, safe="")))
            assert resp.status_code in (400, 404), (template, payload, resp.text)
            assert not leaks(resp, payload), resp.text
            gone = api.delete(template.format(quote(payload, safe="")))
            assert gone.status_code in (400, 404, 405), (template, payload, gone.text)
    assert snapshot() == before


def test_hostile_values_in_bodies_are_stored_verbatim_or_refused(
    api: Api, world: dict[str, Any]
) -> None:
    for payload in PAYLOADS:
        resp = api.post(
            "/v2.0/networks", {"network": {"name": payload[:255], "description": payload[:255]}}
        )
        assert resp.status_code in (201, 400), (payload, resp.text)
        assert not leaks(resp, payload[:255])
        if resp.status_code == 201:
            net = resp.json()["network"]
            assert net["name"] == payload[:255]
            found = api.get(f"/v2.0/networks?name={quote(payload[:255])}").json()["networks"]
            assert net["id"] in {n["id"] for n in found}
            assert {n["name"] for n in found} == {payload[:255]}
    # The tables the classic payloads name are all still there and intact.
    created = sum(1 for p in PAYLOADS if "\x00" not in p)
    assert len(api.get("/v2.0/networks?limit=0").json()["networks"]) == 1 + created
    # Each new network got its tenant segment; "net" has two.
    assert len(api.get("/v2.0/segments?limit=0").json()["segments"]) == 2 + created
