"""Discovery as Neutron 29 answers it: ``/v2.0/extensions`` lists exactly the
aliases whose behaviour segmentd implements (names, descriptions and dates
as Neutron's), ``GET /v2.0/extensions/{alias}`` shows one (404 otherwise,
neutron/api/extensions.py ``ExtensionController.show``), and a collection URL
with a trailing slash is answered, not redirected."""

from __future__ import annotations

import pytest

from segmentd.api.root import EXTENSIONS
from tests.client import Api
from tests.support import assert_error

IMPLEMENTED = {
    "provider",
    "multi-provider",
    "segment",
    "standard-attr-segment",
    "subnet-segmentid-writable",
    "network-segment-range",
    "external-net",
    "subnet-external-network",
    "net-mtu",
    "net-mtu-writable",
    "l2_adjacency",
    "subnet-service-types",
    "standard-attr-description",
    "standard-attr-revisions",
    "standard-attr-timestamp",
    "standard-attr-tag",
    "tag-creation",
    "revision-if-match",
    "pagination",
    "sorting",
    "filter-validation",
    "empty-string-filtering",
    "project-id",
    "quotas",
    "quota_details",
    "agent",
    "agent_sort_key",
}


def test_extension_list_is_exactly_the_implemented_aliases(api: Api) -> None:
    listed = api.get("/v2.0/extensions").json()["extensions"]
    assert [e["alias"] for e in listed] == [e[0] for e in EXTENSIONS]
    assert {e["alias"] for e in listed} == IMPLEMENTED
    for ext in listed:
        assert set(ext) == {"alias", "name", "description", "updated", "links"}


@pytest.mark.parametrize("alias", sorted(IMPLEMENTED))
def test_extension_show(api: Api, alias: str) -> None:
    resp = api.get(f"/v2.0/extensions/{alias}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["extension"]["alias"] == alias


def test_unknown_extension_is_404(api: Api) -> None:
    error = assert_error(api.get("/v2.0/extensions/dvr"), 404, "ExtensionNotFound")
    assert error["message"] == "Extension with alias dvr does not exist"


def test_external_net_extension_as_neutron_describes_it(api: Api) -> None:
    ext = api.get("/v2.0/extensions/external-net").json()["extension"]
    assert ext == {
        "alias": "external-net",
        "name": "Neutron external network",
        "description": "Adds external network attribute to network resource.",
        "updated": "2013-01-14T10:00:00-00:00",
        "links": [],
    }


@pytest.mark.parametrize(
    "path", ["/v2.0/networks/", "/v2.0/segments/", "/v2.0/subnets/", "/v2.0/extensions/"]
)
def test_trailing_slash_is_answered_not_redirected(api: Api, path: str) -> None:
    net = api.create_network(name="n")
    resp = api.get(path, params={"limit": 5}, follow_redirects=False)
    assert resp.status_code == 200, resp.text
    if path == "/v2.0/networks/":
        assert [n["id"] for n in resp.json()["networks"]] == [net["id"]]
    shown = api.get(f"/v2.0/networks/{net['id']}/", follow_redirects=False)
    assert shown.status_code == 200 and shown.json()["network"]["id"] == net["id"]


def test_empty_string_filters(api: Api) -> None:
    """empty-string-filtering: ``?description=`` matches the empty description."""
    plain = api.create_network(name="a")
    api.create_network(name="b", description="set")
    found = api.get("/v2.0/networks", params={"description": ""}).json()["networks"]
    assert [n["id"] for n in found] == [plain["id"]]


def test_agent_sort_keys(api: Api) -> None:
    """agent_sort_key: agents sort by host and agent_type."""
    for key in ("host", "agent_type", "binary", "heartbeat_timestamp"):
        resp = api.get("/v2.0/agents", params={"sort_key": key, "sort_dir": "desc"})
        assert resp.status_code == 200, resp.text
