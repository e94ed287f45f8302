"""Admin queries over the segment-host mapping, all paginated.

- ``GET /v2.0/segments/{segment_id}/hosts``: hosts mapped to a segment;
- ``GET /v2.0/hosts/{host}/segments``: segments mapped to a host (the
  segment list's filters, sorts and keyset pagination);
- ``GET /v2.0/segment-host-mappings``: every mapped host, filtered by
  ``include_agent_types`` / ``exclude_agent_types`` (and ``segment_id``).

Host lists page by host name: ``limit``, ``marker=<host>``, ``page_reverse``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from segmentd import errors
from segmentd.api import schemas
from segmentd.api.deps import (
    Context,
    ListParams,
    TransactionalRoute,
    list_params,
    page_limit,
    reader,
    runtime,
)
from segmentd.api.wire import json_response
from segmentd.authz import Permission
from segmentd.db.base import Page
from segmentd.services import host_queries
from segmentd.services import segments as segment_service
from segmentd.services.agents import HOST_RE
from segmentd.services.host_mapping import AGENT_TYPES
from segmentd.services.query import parse_bool, parse_uuid

router = APIRouter(route_class=TransactionalRoute, tags=["host mapping"])

_PAGING = ("limit", "marker", "page_reverse")
_AGENT_FILTERS = ("include_agent_types", "exclude_agent_types")


def host_query(*filters: str) -> Callable[..., Awaitable[host_queries.HostQuery]]:
    """Parses a host-list query string; unknown parameters are refused (400)."""
    allowed = frozenset((*_PAGING, *filters))

    async def dependency(request: Request) -> host_queries.HostQuery:
        settings = runtime(request).settings
        raw: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            if name not in allowed:
                raise errors.InvalidQuery(error_message=f"'{name}' is not a valid filter")
            raw.setdefault(name, []).append(value)
        if sum(map(len, raw.values())) > settings.max_filter_values:
            raise errors.InvalidQuery(error_message="too many filter values")
        try:
            limit = int(raw["limit"][-1]) if "limit" in raw else None
            reverse = parse_bool(raw["page_reverse"][-1]) if "page_reverse" in raw else False
            segment_ids = tuple(parse_uuid(v) for v in raw.get("segment_id", []))
        except ValueError:
            raise errors.InvalidQuery(
                error_message="invalid limit, page_reverse or segment_id"
            ) from None
        if limit is not None and limit < 0:
            raise errors.InvalidQuery(error_message="limit must not be negative")
        marker = raw["marker"][-1] if "marker" in raw else None
        if marker is not None and not HOST_RE.match(marker):
            raise errors.InvalidQuery(error_message="marker must be a host name")
        types = {k: tuple(raw.get(k, [])) for k in _AGENT_FILTERS}
        for name in (t for values in types.values() for t in values):
            if name not in AGENT_TYPES:
                raise errors.InvalidQuery(error_message=f"unknown agent type '{name}'")
        return host_queries.HostQuery(
            page_limit(limit, settings),
            marker,
            reverse,
            types["include_agent_types"],
            types["exclude_agent_types"],
            segment_ids,
        )

    return dependency


SegmentHosts = Annotated[host_queries.HostQuery, Depends(host_query(*_AGENT_FILTERS))]
MappedHosts = Annotated[host_queries.HostQuery, Depends(host_query(*_AGENT_FILTERS, "segment_id"))]
SegmentParams = Annotated[
    ListParams, Depends(list_params(segment_service.LIST_SPEC, schemas.SEGMENT_FIELDS))
]


def _hosts(request: Request, name: str, page: Page, query: host_queries.HostQuery) -> Response:
    views = [{"host": item.host} for item in page.items]
    return json_response(
        schemas.collection(request.url, name, views, page, query, "limit" in request.query_params)
    )


@router.get("/v2.0/segments/{segment_id}/hosts")
def hosts_of_segment(
    request: Request,
    segment_id: str,
    query: SegmentHosts,
    ctx: Context = reader(Permission.GET_SEGMENT_HOST_MAPPING),
) -> Response:
    page = host_queries.hosts_of_segment(ctx.session, ctx.principal, segment_id, query)
    return _hosts(request, "hosts", page, query)


@router.get("/v2.0/hosts/{host}/segments")
def segments_of_host(
    request: Request,
    host: str,
    params: SegmentParams,
    ctx: Context = reader(Permission.GET_SEGMENT_HOST_MAPPING),
) -> Response:
    if not HOST_RE.match(host) or len(host) > 255:
        raise errors.InvalidInput(error_message="invalid host name")
    page = host_queries.segments_of_host(ctx.session, ctx.principal, host, params.query)
    views = [schemas.project(schemas.segment_view(s), params.fields) for s in page.items]
    return json_response(
        schemas.collection(request.url, "segments", views, page, params.query, params.limit_given)
    )


@router.get("/v2.0/segment-host-mappings")
def mapped_hosts(
    request: Request,
    query: MappedHosts,
    ctx: Context = reader(Permission.GET_SEGMENT_HOST_MAPPING),
) -> Response:
    page = host_queries.mapped_hosts(ctx.session, ctx.principal, query)
    return _hosts(request, "segment_host_mappings", page, query)
