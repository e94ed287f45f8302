"""List conventions: pagination walks, sorting on two keys, filters, fields, links."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.client import Api
from tests.support import assert_error

TYPES = ("vxlan", "geneve", "gre", "local")


@pytest.fixture
def population(api: Api) -> list[dict[str, Any]]:
    """23 segments over four types with repeated names, so ties need the id."""
    net = api.create_network(name="n", **{"provider:network_type": "local"})
    made = [api.get("/v2.0/segments").json()["segments"][0]]
    for i in range(22):
        attrs: dict[str, Any] = {"network_type": TYPES[i % 4], "name": f"seg-{i % 5}"}
        made.append(api.create_segment(net["id"], **attrs))
    return made


def follow(api: Api, first: str, rel: str) -> list[list[str]]:
    """Pages of ids, following ``rel`` links from ``first`` until there are none."""
    pages, url, seen = [], first, 0
    while url:
        body = api.get(url).json()
        pages.append([s["id"] for s in body["segments"]])
        links = {link["rel"]: link["href"] for link in body.get("segments_links", [])}
        url = links.get(rel, "")
        seen += 1
        assert seen < 50, "pagination does not terminate"
    return pages


def expected_order(items: list[dict[str, Any]], name_desc: bool) -> list[str]:
    # The id tie-breaker takes the direction of the last sort key, as in Neutron.
    by_id = sorted(items, key=lambda s: s["id"], reverse=name_desc)
    by_name = sorted(by_id, key=lambda s: s["name"] or "", reverse=name_desc)
    return [s["id"] for s in sorted(by_name, key=lambda s: s["network_type"])]


@pytest.mark.parametrize("name_dir", ["asc", "desc"])
def test_walk_forward_and_backward_with_two_sort_keys(
    api: Api, population: list[dict[str, Any]], name_dir: str
) -> None:
    order = expected_order(population, name_desc=name_dir == "desc")
    query = f"sort_key=network_type&sort_dir=asc&sort_key=name&sort_dir={name_dir}&limit=5"
    forward = follow(api, f"/v2.0/segments?{query}", "next")
    assert [len(p) for p in forward] == [5, 5, 5, 5, 3]
    assert [i for page in forward for i in page] == order
    # Backward from the last page's first item, following "previous" links.
    last_marker = forward[-1][0]
    backward = follow(
        api, f"/v2.0/segments?{query}&marker={last_marker}&page_reverse=True", "previous"
    )
    assert [i for page in reversed(backward) for i in page] + forward[-1] == order


def test_page_reverse_without_marker_is_the_last_page(
    api: Api, population: list[dict[str, Any]]
) -> None:
    order = sorted(s["id"] for s in population)
    body = api.get("/v2.0/segments", params={"limit": 4, "page_reverse": "True"}).json()
    assert [s["id"] for s in body["segments"]] == order[-4:]
    rels = [link["rel"] for link in body["segments_links"]]
    assert rels == ["previous"]


def test_links_carry_the_other_parameters(api: Api, population: list[dict[str, Any]]) -> None:
    body = api.get(
        "/v2.0/segments", params={"limit": 2, "network_type": "vxlan", "fields": "id"}
    ).json()
    (link,) = body["segments_links"]
    parts = urlsplit(link["href"])
    assert parts.path == "/v2.0/segments"
    params = parse_qs(parts.query)
    assert params["network_type"] == ["vxlan"]
    assert params["limit"] == ["2"]
    assert params["fields"] == ["id"]
    assert params["marker"] == [body["segments"][-1]["id"]]


def test_last_page_has_no_next_and_unpaged_list_has_no_links(
    api: Api, population: list[dict[str, Any]]
) -> None:
    body = api.get("/v2.0/segments", params={"limit": 100}).json()
    assert len(body["segments"]) == 23
    assert body["segments_links"] == []
    assert "segments_links" not in api.get("/v2.0/segments").json()


def test_limit_is_capped(make_api: Any, api: Api, population: list[dict[str, Any]]) -> None:
    capped = make_api(pagination_max_limit=10, pagination_default_limit=7)
    assert len(capped.get("/v2.0/segments").json()["segments"]) == 7
    assert len(capped.get("/v2.0/segments", params={"limit": 10**6}).json()["segments"]) == 10
    assert len(capped.get("/v2.0/segments", params={"limit": 0}).json()["segments"]) == 10


@pytest.mark.parametrize(
    "params",
    [
        {"limit": -1},
        {"limit": "ten"},
        {"marker": "not-a-uuid"},
        {"sort_key": "password"},
        {"sort_key": "name", "sort_dir": "sideways"},
        {"sort_key": ["name", "id", "network_type", "description", "created_at"]},
        {"sort_dir": "asc"},
        {"fields": "secret"},
        {"no_such_filter": "x"},
        {"segmentation_id": "twelve"},
        {"network_id": "not-a-uuid"},
        {"page_reverse": "perhaps"},
    ],
)
def test_bad_list_parameters_are_400(api: Api, params: dict[str, Any]) -> None:
    assert_error(api.get("/v2.0/segments", params=params), 400)


def test_unknown_marker_is_the_resources_404(api: Api) -> None:
    """As Neutron 29 answers an unknown marker (its get_object lookup)."""
    resp = api.get("/v2.0/segments", params={"marker": "0b2fca1f-7b4e-4bd3-b8a4-2d9b3b8c1a11"})
    assert_error(resp, 404, "SegmentNotFound")


def test_filters_repeat_and_combine(api: Api, population: list[dict[str, Any]]) -> None:
    types = api.get("/v2.0/segments?network_type=vxlan&network_type=gre").json()["segments"]
    assert {s["network_type"] for s in types} == {"vxlan", "gre"}
    assert len(types) == len([s for s in population if s["network_type"] in ("vxlan", "gre")])
    both = api.get("/v2.0/segments?network_type=vxlan&name=seg-0").json()["segments"]
    assert both and all(s["network_type"] == "vxlan" and s["name"] == "seg-0" for s in both)
    seg = population[5]
    exact = api.get(
        "/v2.0/segments",
        params={"segmentation_id": seg["segmentation_id"], "network_type": seg["network_type"]},
    )
    assert [s["id"] for s in exact.json()["segments"]] == [seg["id"]]
    assert api.get("/v2.0/segments", params={"name": "' OR 1=1 --"}).json()["segments"] == []


def test_fields_projection(api: Api, population: list[dict[str, Any]]) -> None:
    body = api.get("/v2.0/segments?fields=id&fields=segmentation_id&limit=3").json()
    assert all(set(s) == {"id", "segmentation_id"} for s in body["segments"])
    one = population[3]
    shown = api.get(f"/v2.0/segments/{one['id']}", params={"fields": "name,network_type"}).json()
    assert shown == {"segment": {"name": one["name"], "network_type": one["network_type"]}}


def test_tag_filters(api: Api) -> None:
    a = api.create_network(name="a", tags=["red", "big"])
    b = api.create_network(name="b", tags=["red"])
    c = api.create_network(name="c")

    def names(query: str) -> set[str]:
        return {n["name"] for n in api.get(f"/v2.0/networks?{query}").json()["networks"]}

    assert a["tags"] == ["big", "red"]
    assert names("tags=red,big") == {"a"}
    assert names("tags-any=big,red") == {"a", "b"}
    assert names("not-tags=red,big") == {"b", "c"}
    assert names("not-tags-any=red") == {"c"}
    assert c["tags"] == [] and b["tags"] == ["red"]


def test_network_pagination_by_name_then_id(api: Api) -> None:
    for i in range(9):
        api.create_network(name=f"n{i % 3}")
    ids, url = [], "/v2.0/networks?sort_key=name&sort_key=id&sort_dir=desc&sort_dir=asc&limit=2"
    while url:
        body = api.get(url).json()
        ids += [(n["name"], n["id"]) for n in body["networks"]]
        url = next((lk["href"] for lk in body["networks_links"] if lk["rel"] == "next"), "")
    assert len(ids) == 9
    assert ids == sorted(sorted(ids, key=lambda t: t[1]), key=lambda t: t[0], reverse=True)
