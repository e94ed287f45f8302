"""Version discovery, extension list and liveness: what clients probe first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from starlette.responses import Response

from segmentd import errors
from segmentd.api import schemas
from segmentd.api.pipeline import Operation, routes
from segmentd.api.wire import json_response
from segmentd.authz import Permission

router = routes(tag="discovery")

# Under /v2.0 everything needs a caller, as behind keystonemiddleware.
DISCOVERY = Operation(Permission.GET_API_DISCOVERY, "info")
PROBE = Operation.public()

# Only what segmentd really implements, each as Neutron 29 describes it
# (alias, name, description, updated): clients look aliases up before using
# a feature, so an alias listed here is a promise, and one left out turns a
# feature off in them.  tests/api/test_discovery.py exercises each.
EXTENSIONS: tuple[tuple[str, str, str, str], ...] = (
    (
        "provider",
        "Provider Network",
        "Expose mapping of virtual networks to physical networks",
        "2012-09-07T10:00:00-00:00",
    ),
    (
        "multi-provider",
        "Multi Provider Network",
        "Expose mapping of virtual networks to multiple physical networks",
        "2013-06-27T10:00:00-00:00",
    ),
    ("segment", "Segment", "Segments extension.", "2016-02-24T17:00:00-00:00"),
    (
        "standard-attr-segment",
        "Standard Attribute Segment Extension",
        "Add standard attributes to Segment resource",
        "2018-04-09T10:00:00-00:00",
    ),
    (
        "subnet-segmentid-writable",
        "Subnet SegmentID (writable)",
        "Provides a writable segment_id attribute for a subnet resource.",
        "2018-03-12T00:00:00-00:00",
    ),
    (
        "network-segment-range",
        "Neutron Network Segment Range",
        "Provides support for the network segment range management",
        "2018-11-29T00:00:00-00:00",
    ),
    (
        "external-net",
        "Neutron external network",
        "Adds external network attribute to network resource.",
        "2013-01-14T10:00:00-00:00",
    ),
    (
        "subnet-external-network",
        "Subnet belongs to an external network",
        "Informs if the subnet belongs to an external network",
        "2024-02-05T18:00:00-00:00",
    ),
    (
        "net-mtu",
        "Network MTU",
        "Provides MTU attribute for a network resource.",
        "2015-03-25T10:00:00-00:00",
    ),
    (
        "net-mtu-writable",
        "Network MTU (writable)",
        "Provides a writable MTU attribute for a network resource.",
        "2017-07-12T00:00:00-00:00",
    ),
    (
        "l2_adjacency",
        "L2 Adjacency",
        "Display L2 Adjacency for Neutron Networks.",
        "2016-04-12T16:00:00-00:00",
    ),
    (
        "subnet-service-types",
        "Subnet service types",
        "Provides ability to set the subnet service_types field",
        "2016-03-15T18:00:00-00:00",
    ),
    (
        "standard-attr-description",
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
        "2016-02-10T10:00:00-00:00",
    ),
    (
        "standard-attr-revisions",
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
        "2016-04-11T10:00:00-00:00",
    ),
    (
        "standard-attr-timestamp",
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have "
        "Neutron standard attributes.",
        "2016-09-12T10:00:00-00:00",
    ),
    (
        "standard-attr-tag",
        "Tag support for resources with standard attribute: subnet, network, "
        "network_segment_range, segment",
        "Enables to set tag on resources with standard attribute.",
        "2017-01-01T00:00:00-00:00",
    ),
    (
        "tag-creation",
        "Tag creation extension",
        "Allow to create multiple tags for a resource",
        "2024-23-07T10:00:00-00:00",  # sic: Neutron's own value
    ),
    (
        "revision-if-match",
        "If-Match constraints based on revision_number",
        "Extension indicating that If-Match based on revision_number is supported.",
        "2016-12-11T00:00:00-00:00",
    ),
    (
        "pagination",
        "Pagination support",
        "Extension that indicates that pagination is enabled.",
        "2016-06-12T00:00:00-00:00",
    ),
    (
        "sorting",
        "Sorting support",
        "Extension that indicates that sorting is enabled.",
        "2016-06-12T00:00:00-00:00",
    ),
    (
        "filter-validation",
        "Filter parameters validation",
        "Provides validation on filter parameters.",
        "2018-07-04T10:00:00-00:00",
    ),
    (
        "empty-string-filtering",
        "Empty String Filtering Extension",
        "Allow filtering by attributes with empty string value",
        "2018-05-01T10:00:00-00:00",
    ),
    (
        "project-id",
        "project_id field enabled",
        "Extension that indicates that project_id field is enabled.",
        "2016-09-09T09:09:09-09:09",
    ),
    (
        "quotas",
        "Quota management support",
        "Expose functions for quotas management per project",
        "2012-07-29T10:00:00-00:00",
    ),
    (
        "quota_details",
        "Quota details management support",
        "Expose functions for quotas usage statistics per project",
        "2017-02-10T10:00:00-00:00",
    ),
    ("agent", "agent", "The agent management extension.", "2013-02-03T10:00:00-00:00"),
    (
        "agent_sort_key",
        "Agents Sort Key",
        "Enabling the keyword sort_key for sorting in agents.",
        "2013-02-03T10:00:00-00:00",
    ),
)


def _extension(alias: str, name: str, description: str, updated: str) -> dict[str, Any]:
    return {
        "alias": alias,
        "name": name,
        "description": description,
        "updated": updated,
        "links": [],
    }


BY_ALIAS = {e[0]: _extension(*e) for e in EXTENSIONS}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/", response_model=schemas.Versions)
@PROBE
async def versions(request: Request) -> Response:
    link = {"href": f"{_base(request)}/v2.0/", "rel": "self"}
    return json_response({"versions": [{"id": "v2.0", "status": "CURRENT", "links": [link]}]})


@router.get("/v2.0/", response_model=schemas.Resources)
@router.get("/v2.0", response_model=schemas.Resources)
@DISCOVERY
async def resources(request: Request) -> Response:
    names = (
        ("network", "networks"),
        ("segment", "segments"),
        ("subnet", "subnets"),
        ("network_segment_range", "network_segment_ranges"),
        ("agent", "agents"),
    )
    listing = [
        {
            "name": one,
            "collection": many,
            "links": [{"href": f"{_base(request)}/v2.0/{many}", "rel": "self"}],
        }
        for one, many in names
    ]
    return json_response({"resources": listing})


@router.get("/v2.0/extensions", response_model=schemas.Extensions)
@DISCOVERY
async def extensions() -> Response:
    return json_response({"extensions": list(BY_ALIAS.values())})


@router.get("/v2.0/extensions/{alias}", response_model=schemas.ExtensionOne)
@DISCOVERY
async def extension(alias: Annotated[str, Path(max_length=255)]) -> Response:
    """One extension by alias; an unknown alias is 404 (Neutron's wording)."""
    found = BY_ALIAS.get(alias)
    if found is None:
        raise errors.ExtensionNotFound(alias=alias)
    return json_response({"extension": found})


@router.get("/openapi.json", include_in_schema=False)
@DISCOVERY
async def openapi(request: Request) -> Response:
    """The OpenAPI document: for authenticated callers only (it maps the API)."""
    return json_response(request.app.openapi())


@router.get("/healthz", response_model=schemas.Health)
@PROBE
async def healthz() -> Response:
    return json_response({"status": "ok"})
