"""Version discovery, extension list and liveness: what clients probe first."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import Response

from segmentd.api import schemas
from segmentd.api.pipeline import Operation, routes
from segmentd.api.wire import json_response
from segmentd.authz import Permission

router = routes(tag="discovery")

# Under /v2.0 everything needs a caller, as behind keystonemiddleware.
DISCOVERY = Operation(Permission.GET_API_DISCOVERY, "info")
PROBE = Operation.public()

# Only what segmentd really implements; clients probe this list.
EXTENSIONS = (
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    (
        "multi-provider",
        "Multi Provider Network",
        "Expose mapping of virtual networks to multiple physical networks",
    ),
    ("segment", "Segment", "Segments extension."),
    (
        "network-segment-range",
        "Network Segment Range",
        "Provides support for the network segment range management",
    ),
    (
        "standard-attr-description",
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
    ),
    (
        "standard-attr-revisions",
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    (
        "standard-attr-timestamp",
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
    ),
    (
        "standard-attr-tag",
        "Tag support for resources with standard attribute",
        "Enables to set tag on resources with standard attribute.",
    ),
    (
        "standard-attr-segment",
        "Standard Attribute Segment Extension",
        "Add standard attributes to Segment resource",
    ),
    (
        "revision-if-match",
        "If-Match constraints based on revision_number",
        "Extension indicating that If-Match based on revision_number is supported.",
    ),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    (
        "fields",
        "Fields Query Parameter",
        "Extension that indicates the fields query parameter is supported.",
    ),
    (
        "filter-validation",
        "Filter parameters validation",
        "Provides validation on filter parameters.",
    ),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    (
        "quota_details",
        "Quota details management support",
        "Expose functions for quotas usage statistics per project",
    ),
    ("agent", "agent", "The agent management extension."),
)


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
    items = [
        {
            "alias": alias,
            "name": name,
            "description": desc,
            "updated": "2026-11-25T00:00:00-00:00",
            "links": [],
        }
        for alias, name, desc in EXTENSIONS
    ]
    return json_response({"extensions": items})


@router.get("/openapi.json", include_in_schema=False)
@DISCOVERY
async def openapi(request: Request) -> Response:
    """The OpenAPI document: for authenticated callers only (it maps the API)."""
    return json_response(request.app.openapi())


@router.get("/healthz", response_model=schemas.Health)
@PROBE
async def healthz() -> Response:
    return json_response({"status": "ok"})
